//! The actions pane's command language (guide §3.1 step 4, grown to the whole of
//! [`SupervisorCommand`]): `restart [c]`, `start [c]`, `stop [c]`, `status [c]`, `help [cmd]`,
//! `clear-cache [c]`, `shutdown [c]`, `heal [c]`, `logs [c]`, `config [c] key=value…` and
//! `action [c] NAME`, and `open [c]`, which shows a component's window (built when first opened).
//! The actions pane and `hms-console action "LINE"` both speak it.
//!
//! - [`parse()`] turns one line into an [`ActionLine`] or a [`ParseError`] whose text is meant for
//!   the operator as it is (with a "did you mean" suggestion on a typo).
//! - [`help_text`] is what `help` and `help COMMAND` answer, locally.
//! - [`to_request`] maps an action to the protocol request that carries it out.
//!
//! This module is pure: a line and what is known about the fleet go in, a typed action or a
//! friendly error comes out. It must not do I/O, use tokio, talk to tmux or the core, know about
//! sockets or terminals, or guess: an unknown component is an error, never a best match.

use std::fmt;

use crate::model::SupervisorCommand;
use crate::protocol::Request;

mod help;
mod parse;

pub use help::help_text;
pub use parse::{ParseContext, ParseError, parse};

/// How many lines `logs` asks for.
pub const LOG_LINES: usize = 20;

/// The commands of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Restart,
    Start,
    Stop,
    Status,
    Help,
    ClearCache,
    Shutdown,
    Heal,
    Logs,
    Config,
    Action,
    Open,
}

impl Verb {
    /// In the order `help` lists them.
    pub const ALL: [Verb; 12] = [
        Verb::Restart,
        Verb::Start,
        Verb::Stop,
        Verb::Status,
        Verb::Open,
        Verb::Logs,
        Verb::Heal,
        Verb::ClearCache,
        Verb::Config,
        Verb::Action,
        Verb::Shutdown,
        Verb::Help,
    ];

    /// The word typed for it.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Restart => "restart",
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Status => "status",
            Verb::Help => "help",
            Verb::ClearCache => "clear-cache",
            Verb::Shutdown => "shutdown",
            Verb::Heal => "heal",
            Verb::Logs => "logs",
            Verb::Config => "config",
            Verb::Action => "action",
            Verb::Open => "open",
        }
    }

    /// The command for a typed word, ignoring case; `clear_cache` is accepted for `clear-cache`.
    pub fn from_word(word: &str) -> Option<Verb> {
        let word = word.to_ascii_lowercase();
        if word == "clear_cache" {
            return Some(Verb::ClearCache);
        }
        Verb::ALL.into_iter().find(|v| v.name() == word)
    }

    pub fn usage(self) -> &'static str {
        match self {
            Verb::Restart => "restart [component]",
            Verb::Start => "start [component]",
            Verb::Stop => "stop [component]",
            Verb::Status => "status [component]",
            Verb::Help => "help [command]",
            Verb::ClearCache => "clear-cache [component]",
            Verb::Shutdown => "shutdown [component]",
            Verb::Heal => "heal [component]",
            Verb::Logs => "logs [component]",
            Verb::Config => "config [component] key=value [key=value…]",
            Verb::Action => "action [component] NAME",
            Verb::Open => "open [component]",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionLine {
    /// A supervisor command for one component: restart, start, stop, clear-cache, shutdown, config
    /// (as [`SupervisorCommand::UpdateConfig`]) and named actions.
    Command {
        component: String,
        command: SupervisorCommand,
    },
    /// The status of one component, or of all.
    Status(Option<String>),
    /// The command list, or one command's help. Answered locally: see [`help_text`].
    Help(Option<Verb>),
    /// Run the healing path for a component.
    Heal(String),
    /// The last [`LOG_LINES`] lines of a component's output.
    Logs(String),
    /// Show a component's window in the console, building it if it is not built yet. Carried
    /// out by the console (tmux), not by the core.
    Open(String),
}

/// The request that carries out an action; `None` for help, which is answered locally.
pub fn to_request(line: &ActionLine) -> Option<Request> {
    match line {
        // One request per operation: start, stop and restart have their own.
        ActionLine::Command { component, command } => Some(match command {
            SupervisorCommand::Start => Request::Start {
                component: component.clone(),
            },
            SupervisorCommand::Stop => Request::Stop {
                component: component.clone(),
            },
            SupervisorCommand::Restart => Request::Restart {
                component: component.clone(),
            },
            SupervisorCommand::ClearCache
            | SupervisorCommand::UpdateConfig(_)
            | SupervisorCommand::Shutdown
            | SupervisorCommand::Action(_) => Request::Command {
                component: component.clone(),
                command: command.clone(),
            },
        }),
        ActionLine::Status(component) => Some(Request::Status {
            component: component.clone(),
        }),
        ActionLine::Help(_) | ActionLine::Open(_) => None,
        ActionLine::Heal(component) => Some(Request::Heal {
            component: component.clone(),
        }),
        ActionLine::Logs(component) => Some(Request::Logs {
            component: component.clone(),
            lines: LOG_LINES,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn fleet() -> ParseContext {
        ParseContext::new(["api", "cache", "db"], None)
    }

    #[test]
    fn requests_follow_the_protocol() {
        let r = |line: &str| to_request(&parse(line, &fleet()).unwrap());
        assert_eq!(
            r("restart api"),
            Some(Request::Restart {
                component: "api".into()
            })
        );
        assert_eq!(
            r("action api restart"),
            Some(Request::Restart {
                component: "api".into()
            })
        );
        assert_eq!(r("status"), Some(Request::Status { component: None }));
        assert_eq!(
            r("status db"),
            Some(Request::Status {
                component: Some("db".into())
            })
        );
        assert_eq!(
            r("heal db"),
            Some(Request::Heal {
                component: "db".into()
            })
        );
        assert_eq!(
            r("logs db"),
            Some(Request::Logs {
                component: "db".into(),
                lines: LOG_LINES
            })
        );
        assert_eq!(
            r("stop db"),
            Some(Request::Stop {
                component: "db".into(),
            })
        );
        assert_eq!(
            r("config db a=1"),
            Some(Request::Command {
                component: "db".into(),
                command: SupervisorCommand::UpdateConfig(BTreeMap::from([(
                    "a".into(),
                    "1".into()
                )]))
            })
        );
        assert_eq!(
            r("open db"),
            None,
            "the console opens windows, not the core"
        );
        assert_eq!(r("help"), None);
        assert_eq!(r("help stop"), None);
    }
}
