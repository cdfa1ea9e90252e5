//! The help texts of the command language: the one-line summary, details and an example of
//! every command, and the text `help` answers with.
//!
//! Pure, like the rest of [`crate::command`]; `help` is answered locally, never by the core.

use super::Verb;

impl Verb {
    /// One line for the command list.
    pub fn summary(self) -> &'static str {
        match self {
            Verb::Restart => "restart now; also clears its backoff and closes its breaker",
            Verb::Start => "start a stopped component",
            Verb::Stop => "stop a component; it stays stopped until started",
            Verb::Status => "health, state, pid, uptime and restarts",
            Verb::Help => "list the commands, or explain one",
            Verb::ClearCache => "ask a component to clear its cache",
            Verb::Shutdown => "shut a component down gracefully; it is not restarted",
            Verb::Heal => "run the healing path for a component now",
            Verb::Logs => "show the last lines a component wrote",
            Verb::Config => "send new configuration values to a component",
            Verb::Action => "run one of a component's named recovery actions",
            Verb::Open => "show a component's window (metrics, logs, health, actions)",
        }
    }

    /// What `help COMMAND` adds to the summary.
    fn details(self) -> &'static str {
        match self {
            Verb::Restart => {
                "Stops the process (SIGTERM to its group, then SIGKILL after the grace period) and \
                 starts it again. An operator's restart resets the restart counters."
            }
            Verb::Start => "Starts a component that is stopped, exited or failed.",
            Verb::Stop => {
                "Stops the process (SIGTERM to its group, then SIGKILL after the grace period). \
                 Healing leaves a stopped component alone."
            }
            Verb::Status => {
                "Without a component (outside a component's own window): one line per component."
            }
            Verb::Help => "Without a command: the list of commands.",
            Verb::ClearCache => "Carried out by the component's `clear_cache` recovery action.",
            Verb::Shutdown => {
                "The component finishes what it is doing and exits; it is not restarted."
            }
            Verb::Heal => {
                "Checks the component and takes the healing action its level allows, as if an \
                 issue had been detected."
            }
            Verb::Logs => "Shows the last 20 lines of the component's output.",
            Verb::Config => {
                "Each setting is key=value; quote a value with spaces: msg=\"two words\"."
            }
            Verb::Action => {
                "NAME is one of the component's recovery actions, e.g. reconnect, clear_cache."
            }
            Verb::Open => {
                "A component's window is built the first time it is opened (so an unopened one \
                 costs nothing) and shown after that. Enter on a component's tile does the same; \
                 from a shell: hms-console layout twobytwo api."
            }
        }
    }

    fn example(self) -> &'static str {
        match self {
            Verb::Restart => "restart api",
            Verb::Start => "start api",
            Verb::Stop => "stop api",
            Verb::Status => "status api",
            Verb::Help => "help restart",
            Verb::ClearCache => "clear-cache api",
            Verb::Shutdown => "shutdown api",
            Verb::Heal => "heal api",
            Verb::Logs => "logs api",
            Verb::Config => "config api log_level=debug",
            Verb::Action => "action api reconnect",
            Verb::Open => "open api",
        }
    }
}

/// The help shown for `help` (no topic) or `help COMMAND`.
pub fn help_text(topic: Option<Verb>) -> String {
    match topic {
        None => {
            let width = Verb::ALL
                .iter()
                .map(|v| v.usage().chars().count())
                .max()
                .unwrap_or(0);
            let mut text = String::from(
                "commands (in a component's own window the component may be left out):\n",
            );
            for verb in Verb::ALL {
                text.push_str(&format!("  {:<width$}  {}\n", verb.usage(), verb.summary()));
            }
            text.push_str("type 'help COMMAND' for more, e.g. help restart");
            text
        }
        Some(verb) => format!(
            "usage: {}\n{}.\n{}\nexample: {}",
            verb.usage(),
            verb.summary(),
            verb.details(),
            verb.example()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{ParseContext, parse};

    fn fleet() -> ParseContext {
        ParseContext::new(["api", "cache", "db"], None)
    }

    #[test]
    fn help_lists_every_command_and_explains_one() {
        let all = help_text(None);
        for verb in Verb::ALL {
            assert!(all.contains(verb.usage()), "{verb} missing from help");
        }
        assert_eq!(
            help_text(Some(Verb::Restart)),
            "usage: restart [component]\n\
             restart now; also clears its backoff and closes its breaker.\n\
             Stops the process (SIGTERM to its group, then SIGKILL after the grace period) and \
             starts it again. An operator's restart resets the restart counters.\n\
             example: restart api"
        );
        for verb in Verb::ALL {
            // Every example parses to something.
            let ctx = fleet();
            assert!(parse(verb.example(), &ctx).is_ok(), "{verb}");
        }
    }
}
