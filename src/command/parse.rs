//! Parsing one line of the command language: words, quotes, components resolved against what
//! the fleet knows, and errors written for the operator.
//!
//! Pure, like the rest of [`crate::command`].

use std::collections::BTreeMap;

use super::{ActionLine, Verb};
use crate::model::SupervisorCommand;
use crate::text::nearest;

/// What the parser knows about where the line was typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseContext {
    /// The components the core knows, in display order.
    pub components: Vec<String>,
    /// The component whose own window the line was typed in; commands may leave it out there.
    pub current: Option<String>,
}

impl ParseContext {
    pub fn new<S: Into<String>>(
        components: impl IntoIterator<Item = S>,
        current: Option<&str>,
    ) -> ParseContext {
        ParseContext {
            components: components.into_iter().map(Into::into).collect(),
            current: current.map(str::to_string),
        }
    }

    /// A component named on the line: it must be known.
    fn resolve(&self, name: &str) -> Result<String, ParseError> {
        if self.is_component(name) {
            Ok(name.to_string())
        } else {
            Err(self.unknown(name))
        }
    }

    fn unknown(&self, name: &str) -> ParseError {
        ParseError::UnknownComponent {
            name: name.to_string(),
            suggestion: nearest(name, self.components.iter().map(String::as_str))
                .map(str::to_string),
            known: self.components.clone(),
        }
    }

    /// The component a command applies to when the line names none.
    fn implied(&self, verb: Verb) -> Result<String, ParseError> {
        self.current.clone().ok_or_else(|| self.missing(verb))
    }

    fn missing(&self, verb: Verb) -> ParseError {
        ParseError::MissingComponent {
            verb,
            known: self.components.clone(),
        }
    }

    fn is_component(&self, name: &str) -> bool {
        self.components.iter().any(|c| c == name)
    }
}

/// Why a line could not be parsed. The `Display` text is shown to the operator as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line was blank.
    #[error("nothing to do: type a command, or 'help' for the list")]
    Empty,
    /// The first word is not a command; `suggestion` is the nearest one, if any is near.
    #[error("unknown command '{word}' — {}", did_you_mean(.suggestion.as_deref(), "type 'help' for the list"))]
    UnknownCommand {
        word: String,
        suggestion: Option<String>,
    },
    /// A named component the core does not know.
    #[error("unknown component '{name}' — {}", unknown_component_tail(.suggestion.as_deref(), .known))]
    UnknownComponent {
        name: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },
    /// No component named, and the line was not typed in a component's own window.
    #[error("'{verb}' needs a component here: {} ({})", .verb.usage(), known_list(.known))]
    MissingComponent { verb: Verb, known: Vec<String> },
    /// More words than the command takes.
    #[error("unexpected '{token}' — usage: {}", .verb.usage())]
    UnexpectedArgument { verb: Verb, token: String },
    /// A `config` setting that is not `key=value` with a non-empty key.
    #[error("'{token}' is not a key=value setting — e.g. config api log_level=debug")]
    BadAssignment { token: String },
    /// A `config` line that sets the same key twice.
    #[error("'{key}' is set twice")]
    DuplicateKey { key: String },
    /// `config` without any setting.
    #[error("config needs at least one key=value — e.g. config api log_level=debug")]
    MissingAssignment,
    /// `action` without an action name.
    #[error("action needs a name — usage: action [component] NAME, e.g. action api reconnect")]
    MissingActionName,
    /// An action name with characters other than letters, digits, `_` and `-`.
    #[error("'{name}' is not an action name (letters, digits, '_' and '-' only)")]
    BadActionName { name: String },
    /// A quote opened and not closed.
    #[error("unterminated quote — close it with a matching quote")]
    UnterminatedQuote,
}

fn did_you_mean(suggestion: Option<&str>, otherwise: &str) -> String {
    match suggestion {
        Some(s) => format!("did you mean '{s}'?"),
        None => otherwise.to_string(),
    }
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "no components are known yet".to_string()
    } else {
        format!("known: {}", known.join(", "))
    }
}

fn unknown_component_tail(suggestion: Option<&str>, known: &[String]) -> String {
    match suggestion {
        Some(s) => format!("did you mean '{s}'? {}", known_list(known)),
        None => known_list(known),
    }
}

/// Parses one line typed by the operator.
pub fn parse(line: &str, ctx: &ParseContext) -> Result<ActionLine, ParseError> {
    let tokens = tokenize(line)?;
    let Some((word, args)) = tokens.split_first() else {
        return Err(ParseError::Empty);
    };
    let verb = Verb::from_word(word).ok_or_else(|| unknown_command(word))?;
    match verb {
        Verb::Help => match args {
            [] => Ok(ActionLine::Help(None)),
            [topic] => Verb::from_word(topic)
                .map(|v| ActionLine::Help(Some(v)))
                .ok_or_else(|| unknown_command(topic)),
            [_, extra, ..] => Err(unexpected(verb, extra)),
        },
        Verb::Status => match args {
            [] => Ok(ActionLine::Status(ctx.current.clone())),
            [c] => Ok(ActionLine::Status(Some(ctx.resolve(c)?))),
            [_, extra, ..] => Err(unexpected(verb, extra)),
        },
        Verb::Restart => simple(verb, SupervisorCommand::Restart, args, ctx),
        Verb::Start => simple(verb, SupervisorCommand::Start, args, ctx),
        Verb::Stop => simple(verb, SupervisorCommand::Stop, args, ctx),
        Verb::ClearCache => simple(verb, SupervisorCommand::ClearCache, args, ctx),
        Verb::Shutdown => simple(verb, SupervisorCommand::Shutdown, args, ctx),
        Verb::Heal => Ok(ActionLine::Heal(one_component(verb, args, ctx)?)),
        Verb::Logs => Ok(ActionLine::Logs(one_component(verb, args, ctx)?)),
        Verb::Open => Ok(ActionLine::Open(one_component(verb, args, ctx)?)),
        Verb::Config => parse_config(args, ctx),
        Verb::Action => parse_action(args, ctx),
    }
}

/// `VERB [component]` for a plain supervisor command.
fn simple(
    verb: Verb,
    command: SupervisorCommand,
    args: &[String],
    ctx: &ParseContext,
) -> Result<ActionLine, ParseError> {
    Ok(ActionLine::Command {
        component: one_component(verb, args, ctx)?,
        command,
    })
}

/// `VERB [component]`.
fn one_component(verb: Verb, args: &[String], ctx: &ParseContext) -> Result<String, ParseError> {
    match args {
        [] => ctx.implied(verb),
        [c] => ctx.resolve(c),
        [_, extra, ..] => Err(unexpected(verb, extra)),
    }
}

/// `config [component] key=value [key=value…]`: the first word is a component unless it is a
/// setting.
fn parse_config(args: &[String], ctx: &ParseContext) -> Result<ActionLine, ParseError> {
    let (component, settings) = match args.split_first() {
        None => (ctx.implied(Verb::Config)?, args),
        Some((first, _)) if first.contains('=') => (ctx.implied(Verb::Config)?, args),
        Some((first, rest)) if ctx.is_component(first) => (first.clone(), rest),
        // In a component's window a stray word is more likely a broken setting than a component.
        Some((first, _)) if ctx.current.is_some() => {
            return Err(ParseError::BadAssignment {
                token: first.clone(),
            });
        }
        Some((first, _)) => return Err(ctx.unknown(first)),
    };
    if settings.is_empty() {
        return Err(ParseError::MissingAssignment);
    }
    let mut values = BTreeMap::new();
    for token in settings {
        let (key, value) = token
            .split_once('=')
            .filter(|(key, _)| !key.is_empty() && !key.contains(char::is_whitespace))
            .ok_or_else(|| ParseError::BadAssignment {
                token: token.clone(),
            })?;
        if values.insert(key.to_string(), value.to_string()).is_some() {
            return Err(ParseError::DuplicateKey {
                key: key.to_string(),
            });
        }
    }
    Ok(ActionLine::Command {
        component,
        command: SupervisorCommand::UpdateConfig(values),
    })
}

/// `action [component] NAME`.
fn parse_action(args: &[String], ctx: &ParseContext) -> Result<ActionLine, ParseError> {
    let (component, name) = match args {
        [] => {
            ctx.implied(Verb::Action)?;
            return Err(ParseError::MissingActionName);
        }
        [only] => match &ctx.current {
            Some(current) => (current.clone(), only),
            None if ctx.is_component(only) => return Err(ParseError::MissingActionName),
            None => return Err(ctx.missing(Verb::Action)),
        },
        [c, name] => (ctx.resolve(c)?, name),
        [_, _, extra, ..] => return Err(unexpected(Verb::Action, extra)),
    };
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ParseError::BadActionName { name: name.clone() });
    }
    Ok(ActionLine::Command {
        component,
        command: SupervisorCommand::from_action(name),
    })
}

fn unknown_command(word: &str) -> ParseError {
    ParseError::UnknownCommand {
        word: word.to_string(),
        suggestion: nearest(word, Verb::ALL.iter().map(|v| v.name())).map(str::to_string),
    }
}

fn unexpected(verb: Verb, token: &str) -> ParseError {
    ParseError::UnexpectedArgument {
        verb,
        token: token.to_string(),
    }
}

/// Splits a line into words; single or double quotes group words (`msg="two words"`).
fn tokenize(line: &str) -> Result<Vec<String>, ParseError> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_token = true;
            }
            None if c.is_whitespace() => {
                if in_token {
                    tokens.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            None => {
                current.push(c);
                in_token = true;
            }
        }
    }
    if quote.is_some() {
        return Err(ParseError::UnterminatedQuote);
    }
    if in_token {
        tokens.push(current);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> ParseContext {
        ParseContext::new(["api", "cache", "db"], None)
    }

    fn in_window(c: &str) -> ParseContext {
        ParseContext::new(["api", "cache", "db"], Some(c))
    }

    fn cmd(component: &str, command: SupervisorCommand) -> ActionLine {
        ActionLine::Command {
            component: component.into(),
            command,
        }
    }

    fn err(line: &str, ctx: &ParseContext) -> String {
        parse(line, ctx).expect_err(line).to_string()
    }

    #[test]
    fn every_component_command_parses_with_a_component() {
        let cases = [
            ("restart api", SupervisorCommand::Restart),
            ("start api", SupervisorCommand::Start),
            ("stop api", SupervisorCommand::Stop),
            ("clear-cache api", SupervisorCommand::ClearCache),
            ("clear_cache api", SupervisorCommand::ClearCache),
            ("shutdown api", SupervisorCommand::Shutdown),
        ];
        for (line, command) in cases {
            assert_eq!(parse(line, &fleet()), Ok(cmd("api", command)), "{line}");
        }
        assert_eq!(
            parse("heal db", &fleet()),
            Ok(ActionLine::Heal("db".into()))
        );
        assert_eq!(
            parse("logs cache", &fleet()),
            Ok(ActionLine::Logs("cache".into()))
        );
    }

    #[test]
    fn open_names_one_known_component_or_its_own_window() {
        assert_eq!(
            parse("open api", &fleet()),
            Ok(ActionLine::Open("api".into()))
        );
        assert_eq!(
            parse("OPEN  db ", &fleet()),
            Ok(ActionLine::Open("db".into()))
        );
        assert_eq!(
            parse("open", &in_window("cache")),
            Ok(ActionLine::Open("cache".into()))
        );
        assert_eq!(
            parse("open db", &in_window("cache")),
            Ok(ActionLine::Open("db".into()))
        );
        assert_eq!(
            err("open apu", &fleet()),
            "unknown component 'apu' — did you mean 'api'? known: api, cache, db"
        );
        assert_eq!(
            err("open", &fleet()),
            "'open' needs a component here: open [component] (known: api, cache, db)"
        );
        assert_eq!(
            err("open api db", &fleet()),
            "unexpected 'db' — usage: open [component]"
        );
        assert_eq!(
            err("opne api", &fleet()),
            "unknown command 'opne' — did you mean 'open'?"
        );
    }

    #[test]
    fn component_may_be_left_out_in_its_own_window() {
        let ctx = in_window("cache");
        assert_eq!(
            parse("restart", &ctx),
            Ok(cmd("cache", SupervisorCommand::Restart))
        );
        assert_eq!(
            parse("stop", &ctx),
            Ok(cmd("cache", SupervisorCommand::Stop))
        );
        assert_eq!(parse("heal", &ctx), Ok(ActionLine::Heal("cache".into())));
        assert_eq!(parse("logs", &ctx), Ok(ActionLine::Logs("cache".into())));
        assert_eq!(
            parse("status", &ctx),
            Ok(ActionLine::Status(Some("cache".into())))
        );
        // Naming another component still works there.
        assert_eq!(
            parse("restart db", &ctx),
            Ok(cmd("db", SupervisorCommand::Restart))
        );
    }

    #[test]
    fn words_are_case_insensitive_and_spacing_is_free() {
        assert_eq!(
            parse("  RESTART   api  ", &fleet()),
            Ok(cmd("api", SupervisorCommand::Restart))
        );
    }

    #[test]
    fn status_without_component_outside_a_window_is_the_fleet() {
        assert_eq!(parse("status", &fleet()), Ok(ActionLine::Status(None)));
        assert_eq!(
            parse("status db", &fleet()),
            Ok(ActionLine::Status(Some("db".into())))
        );
        assert_eq!(
            err("status db api", &fleet()),
            "unexpected 'api' — usage: status [component]"
        );
    }

    #[test]
    fn help_with_and_without_topic() {
        assert_eq!(parse("help", &fleet()), Ok(ActionLine::Help(None)));
        assert_eq!(
            parse("help restart", &fleet()),
            Ok(ActionLine::Help(Some(Verb::Restart)))
        );
        assert_eq!(
            parse("help clear_cache", &fleet()),
            Ok(ActionLine::Help(Some(Verb::ClearCache)))
        );
        assert_eq!(
            err("help rstart", &fleet()),
            "unknown command 'rstart' — did you mean 'restart'?"
        );
        assert_eq!(
            err("help restart now", &fleet()),
            "unexpected 'now' — usage: help [command]"
        );
    }

    #[test]
    fn config_takes_settings_with_or_without_component() {
        let expected = cmd(
            "api",
            SupervisorCommand::UpdateConfig(BTreeMap::from([
                ("log_level".into(), "debug".into()),
                ("msg".into(), "two words".into()),
                ("empty".into(), "".into()),
            ])),
        );
        assert_eq!(
            parse(
                "config api log_level=debug msg=\"two words\" empty=",
                &fleet()
            ),
            Ok(expected.clone())
        );
        assert_eq!(
            parse(
                "config log_level=debug 'msg=two words' empty=",
                &in_window("api")
            ),
            Ok(expected)
        );
        // A value may itself contain '='.
        assert_eq!(
            parse("config db url=a=b", &fleet()),
            Ok(cmd(
                "db",
                SupervisorCommand::UpdateConfig(BTreeMap::from([("url".into(), "a=b".into())]))
            ))
        );
    }

    #[test]
    fn config_errors_name_the_bad_token() {
        assert_eq!(
            err("config api log_level", &fleet()),
            "'log_level' is not a key=value setting — e.g. config api log_level=debug"
        );
        assert_eq!(
            err("config api =debug", &fleet()),
            "'=debug' is not a key=value setting — e.g. config api log_level=debug"
        );
        assert_eq!(
            err("config verbose", &in_window("api")),
            "'verbose' is not a key=value setting — e.g. config api log_level=debug"
        );
        assert_eq!(
            err("config api", &fleet()),
            "config needs at least one key=value — e.g. config api log_level=debug"
        );
        assert_eq!(
            err("config", &in_window("api")),
            "config needs at least one key=value — e.g. config api log_level=debug"
        );
        assert_eq!(err("config api a=1 a=2", &fleet()), "'a' is set twice");
        assert_eq!(
            err("config apx a=1", &fleet()),
            "unknown component 'apx' — did you mean 'api'? known: api, cache, db"
        );
        assert_eq!(
            err("config a=1", &fleet()),
            "'config' needs a component here: config [component] key=value [key=value…] (known: api, cache, db)"
        );
        assert_eq!(
            err("config api msg=\"open", &fleet()),
            "unterminated quote — close it with a matching quote"
        );
    }

    #[test]
    fn named_actions() {
        assert_eq!(
            parse("action api reconnect", &fleet()),
            Ok(cmd("api", SupervisorCommand::Action("reconnect".into())))
        );
        assert_eq!(
            parse("action reconnect", &in_window("db")),
            Ok(cmd("db", SupervisorCommand::Action("reconnect".into())))
        );
        // Well-known names become their own commands.
        assert_eq!(
            parse("action api clear_cache", &fleet()),
            Ok(cmd("api", SupervisorCommand::ClearCache))
        );
        assert_eq!(
            err("action api", &fleet()),
            "action needs a name — usage: action [component] NAME, e.g. action api reconnect"
        );
        assert_eq!(
            err("action", &in_window("api")),
            "action needs a name — usage: action [component] NAME, e.g. action api reconnect"
        );
        assert_eq!(
            err("action", &fleet()),
            "'action' needs a component here: action [component] NAME (known: api, cache, db)"
        );
        assert_eq!(
            err("action reconnect", &fleet()),
            "'action' needs a component here: action [component] NAME (known: api, cache, db)"
        );
        assert_eq!(
            err("action api re;boot", &fleet()),
            "'re;boot' is not an action name (letters, digits, '_' and '-' only)"
        );
        assert_eq!(
            err("action api reconnect now", &fleet()),
            "unexpected 'now' — usage: action [component] NAME"
        );
        assert_eq!(
            err("action apx reconnect", &fleet()),
            "unknown component 'apx' — did you mean 'api'? known: api, cache, db"
        );
    }

    #[test]
    fn typo_in_command_suggests_the_nearest() {
        assert_eq!(
            err("rstart api", &fleet()),
            "unknown command 'rstart' — did you mean 'restart'?"
        );
        assert_eq!(
            err("stauts", &fleet()),
            "unknown command 'stauts' — did you mean 'status'?"
        );
        assert_eq!(
            err("hlep", &fleet()),
            "unknown command 'hlep' — did you mean 'help'?"
        );
        assert_eq!(
            err("clear api", &fleet()),
            "unknown command 'clear' — did you mean 'clear-cache'?"
        );
        assert_eq!(
            err("frobnicate", &fleet()),
            "unknown command 'frobnicate' — type 'help' for the list"
        );
    }

    #[test]
    fn unknown_component_lists_the_known_ones() {
        assert_eq!(
            err("restart apx", &fleet()),
            "unknown component 'apx' — did you mean 'api'? known: api, cache, db"
        );
        assert_eq!(
            err("restart API", &fleet()),
            "unknown component 'API' — did you mean 'api'? known: api, cache, db"
        );
        assert_eq!(
            err("stop mailer", &fleet()),
            "unknown component 'mailer' — known: api, cache, db"
        );
        assert_eq!(
            err("stop mailer", &ParseContext::default()),
            "unknown component 'mailer' — no components are known yet"
        );
    }

    #[test]
    fn missing_component_outside_a_window_says_so() {
        assert_eq!(
            err("restart", &fleet()),
            "'restart' needs a component here: restart [component] (known: api, cache, db)"
        );
        for verb in ["start", "stop", "clear-cache", "shutdown", "heal", "logs"] {
            assert!(
                err(verb, &fleet()).starts_with(&format!("'{verb}' needs a component here")),
                "{verb}"
            );
        }
    }

    #[test]
    fn extra_words_are_rejected() {
        assert_eq!(
            err("restart api db", &fleet()),
            "unexpected 'db' — usage: restart [component]"
        );
    }

    #[test]
    fn blank_line_is_an_error() {
        assert_eq!(parse("   ", &fleet()), Err(ParseError::Empty));
        assert_eq!(
            ParseError::Empty.to_string(),
            "nothing to do: type a command, or 'help' for the list"
        );
    }
}
