//! The command line of the slim panel program `hms-panel` (src/bin/hms-panel.rs): what the words
//! after `hms-console panel` say, plus the two global options a pane command passes.
//!
//! ```text
//! hms-panel [--socket PATH] [--data-dir DIR] KIND [--component C] [--title T] [--panel P]
//!           [--ascii] [--frameless]
//! ```
//!
//! It is parsed by hand, not by clap: clap's parser and help renderer are most of what a slim
//! binary would otherwise carry, and panes are started by the console, not typed by people. It
//! accepts what `hms-console panel` accepts for these options (`--opt VALUE` and `--opt=VALUE`,
//! options before or after the kind, `--` before a kind that starts with `-`), so a pane command
//! works with either program. Nothing here reads the environment or the file system: the binary
//! applies `HMS_SOCKET` / `HMS_DATA_DIR` and the defaults.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::model::PanelKind;

/// What `hms-panel --help` prints.
pub const USAGE: &str = "\
Usage: hms-panel [--socket PATH] [--data-dir DIR] KIND [--component C] [--title T] [--panel P] [--ascii] [--frameless]

Runs one panel in this terminal: the same as `hms-console panel KIND …`, in a smaller program
(the console's tmux panes run it when it is installed beside hms-console).

KIND: metrics, logs, status, actions, system-health, component, text, knowledge or agents.
  --socket PATH    the core's control socket (also HMS_SOCKET)
  --data-dir DIR   where the panel's log goes, under logs/ (also HMS_DATA_DIR)
  --component C    the component shown
  --title T        the panel's title
  --panel P        for `text`: which of the component's panels
  --ascii          ASCII icons and borders (also HMS_ASCII=1)
  --frameless      no border or title of its own (tmux's pane border shows the title)
  -h, --help       this text;  -V, --version  the version";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Run(PanelArgs),
    Help,
    Version,
}

/// A panel to run, as the command line gave it (no defaults applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelArgs {
    pub socket: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub kind: PanelKind,
    pub component: Option<String>,
    pub title: Option<String>,
    pub panel: Option<String>,
    pub ascii: bool,
    pub frameless: bool,
}

/// Why a command line was refused; each message names the word at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// No KIND word.
    #[error("a panel kind is required")]
    MissingKind,
    /// The KIND word is not a panel kind.
    #[error("unknown panel kind '{0}'; kinds: {kinds}", kinds = kind_names())]
    UnknownKind(String),
    /// A second KIND word.
    #[error("unexpected argument '{0}'")]
    Extra(String),
    /// An option this program does not have.
    #[error("unknown option '{0}'")]
    UnknownOption(String),
    /// An option that takes a value came last.
    #[error("'{0}' needs a value")]
    MissingValue(&'static str),
    /// A flag was given a value (`--ascii=yes`).
    #[error("'{0}' takes no value")]
    UnexpectedValue(&'static str),
    /// The same option twice (clap refuses that too).
    #[error("'{0}' given more than once")]
    Repeated(&'static str),
    /// A word that must be text is not valid UTF-8.
    #[error("'{0}' is not valid UTF-8")]
    NotUtf8(String),
}

/// The panel kinds as the command line spells them, comma-separated (for error messages).
pub fn kind_names() -> String {
    PanelKind::ALL
        .iter()
        .map(|k| k.name().replace('_', "-"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The options, by their long name.
#[derive(Clone, Copy)]
enum Opt {
    Socket,
    DataDir,
    Component,
    Title,
    Panel,
    Ascii,
    Frameless,
}

impl Opt {
    fn from_name(name: &str) -> Option<Opt> {
        Some(match name {
            "--socket" => Opt::Socket,
            "--data-dir" => Opt::DataDir,
            "--component" => Opt::Component,
            "--title" => Opt::Title,
            "--panel" => Opt::Panel,
            "--ascii" => Opt::Ascii,
            "--frameless" => Opt::Frameless,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Opt::Socket => "--socket",
            Opt::DataDir => "--data-dir",
            Opt::Component => "--component",
            Opt::Title => "--title",
            Opt::Panel => "--panel",
            Opt::Ascii => "--ascii",
            Opt::Frameless => "--frameless",
        }
    }

    fn takes_value(self) -> bool {
        !matches!(self, Opt::Ascii | Opt::Frameless)
    }
}

/// Parses the arguments after the program's name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, ArgsError> {
    let mut args = args.into_iter();
    let mut socket = None;
    let mut data_dir = None;
    let mut component = None;
    let mut title = None;
    let mut panel = None;
    let mut ascii = false;
    let mut frameless = false;
    let mut kind: Option<PanelKind> = None;
    let mut only_words = false;
    while let Some(arg) = args.next() {
        let text = arg.to_str();
        let is_option = !only_words && text.is_some_and(|t| t.starts_with('-') && t != "-");
        if !is_option {
            let word = text.ok_or_else(|| not_utf8(&arg))?;
            if kind.is_some() {
                return Err(ArgsError::Extra(word.to_string()));
            }
            let found = crate::console::session::panel_kind(word)
                .ok_or_else(|| ArgsError::UnknownKind(word.to_string()))?;
            kind = Some(found);
            continue;
        }
        let text = text.expect("an option is UTF-8 (checked above)");
        match text {
            "--" => {
                only_words = true;
                continue;
            }
            "-h" | "--help" => return Ok(Invocation::Help),
            "-V" | "--version" => return Ok(Invocation::Version),
            _ => {}
        }
        let (name, inline) = match text.split_once('=') {
            Some((name, value)) => (name, Some(OsString::from(value))),
            None => (text, None),
        };
        let opt = Opt::from_name(name).ok_or_else(|| ArgsError::UnknownOption(text.to_string()))?;
        let value = if opt.takes_value() {
            match inline {
                Some(v) => Some(v),
                None => Some(args.next().ok_or(ArgsError::MissingValue(opt.name()))?),
            }
        } else if inline.is_some() {
            return Err(ArgsError::UnexpectedValue(opt.name()));
        } else {
            None
        };
        let repeated = || ArgsError::Repeated(opt.name());
        match (opt, value) {
            (Opt::Socket, Some(v)) => set(&mut socket, PathBuf::from(v)).ok_or_else(repeated)?,
            (Opt::DataDir, Some(v)) => set(&mut data_dir, PathBuf::from(v)).ok_or_else(repeated)?,
            (Opt::Component, Some(v)) => set(&mut component, utf8(v)?).ok_or_else(repeated)?,
            (Opt::Title, Some(v)) => set(&mut title, utf8(v)?).ok_or_else(repeated)?,
            (Opt::Panel, Some(v)) => set(&mut panel, utf8(v)?).ok_or_else(repeated)?,
            (Opt::Ascii, _) => flag(&mut ascii).ok_or_else(repeated)?,
            (Opt::Frameless, _) => flag(&mut frameless).ok_or_else(repeated)?,
            (Opt::Socket | Opt::DataDir | Opt::Component | Opt::Title | Opt::Panel, None) => {
                unreachable!("options that take a value were given one above")
            }
        }
    }
    Ok(Invocation::Run(PanelArgs {
        socket,
        data_dir,
        kind: kind.ok_or(ArgsError::MissingKind)?,
        component,
        title,
        panel,
        ascii,
        frameless,
    }))
}

fn not_utf8(word: &OsString) -> ArgsError {
    ArgsError::NotUtf8(word.to_string_lossy().into_owned())
}

fn utf8(word: OsString) -> Result<String, ArgsError> {
    word.into_string().map_err(|w| not_utf8(&w))
}

/// Sets `slot` unless it is set already (`None` then).
fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

fn flag(slot: &mut bool) -> Option<()> {
    if *slot {
        return None;
    }
    *slot = true;
    Some(())
}

impl PanelArgs {
    /// The panel's options: `socket` and `data_dir` are the ones in effect (the command line's,
    /// else the environment's, else the defaults: see [`crate::paths`]). The log goes to
    /// `<data dir>/logs/panel-<kind>[-<component>].log`.
    pub fn options(self, socket: PathBuf, data_dir: PathBuf) -> super::PanelOptions {
        let mut opts = super::PanelOptions::new(self.kind, socket);
        opts.frameless = self.frameless;
        opts.component = self.component;
        opts.title = self.title;
        opts.panel = self.panel;
        opts.ascii = self.ascii;
        let file = opts
            .default_log_file()
            .file_name()
            .map_or_else(|| "panel.log".into(), |n| n.to_os_string());
        opts.log_file = Some(crate::paths::log_dir(&data_dir).join(file));
        opts.data_dir = Some(data_dir);
        opts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    fn run(line: &[&str]) -> PanelArgs {
        match parse(words(line)) {
            Ok(Invocation::Run(a)) => a,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn a_pane_command_parses_whole() {
        let a = run(&[
            "--socket",
            "/tmp/it's here/core.sock",
            "--data-dir=/tmp/d",
            "system-health",
            "--frameless",
            "--component",
            "api",
            "--title",
            "System Health",
            "--ascii",
        ]);
        assert_eq!(a.socket, Some("/tmp/it's here/core.sock".into()));
        assert_eq!(a.data_dir, Some("/tmp/d".into()));
        assert_eq!(a.kind, PanelKind::SystemHealth);
        assert_eq!(a.component.as_deref(), Some("api"));
        assert_eq!(a.title.as_deref(), Some("System Health"));
        assert!(a.ascii && a.frameless);
        assert_eq!(a.panel, None);
    }

    #[test]
    fn bad_command_lines_are_refused_naming_the_word() {
        let err = |line: &[&str]| parse(words(line)).unwrap_err().to_string();
        assert_eq!(err(&[]), "a panel kind is required");
        assert!(err(&["graphs"]).starts_with("unknown panel kind 'graphs'; kinds: metrics, logs"));
        assert_eq!(err(&["logs", "status"]), "unexpected argument 'status'");
        assert_eq!(err(&["logs", "--colour"]), "unknown option '--colour'");
        assert_eq!(err(&["logs", "--component"]), "'--component' needs a value");
        assert_eq!(err(&["logs", "--ascii=yes"]), "'--ascii' takes no value");
        assert_eq!(
            err(&["logs", "--title", "a", "--title=b"]),
            "'--title' given more than once"
        );
        assert_eq!(err(&["logs", "-v"]), "unknown option '-v'");
    }

    #[test]
    fn help_and_version_win_wherever_they_are() {
        assert_eq!(parse(words(&["logs", "--help"])), Ok(Invocation::Help));
        assert_eq!(parse(words(&["-h"])), Ok(Invocation::Help));
        assert_eq!(parse(words(&["-V", "nonsense"])), Ok(Invocation::Version));
    }

    #[test]
    fn a_value_may_start_with_a_dash_and_a_kind_may_follow_the_double_dash() {
        let a = run(&["--title", "--frameless", "--", "logs"]);
        assert_eq!(a.title.as_deref(), Some("--frameless"));
        assert!(!a.frameless);
        assert_eq!(a.kind, PanelKind::Logs);
    }

    #[test]
    fn paths_need_not_be_utf8_but_names_must_be() {
        use std::os::unix::ffi::OsStringExt;
        let odd = OsString::from_vec(vec![b'/', 0xff]);
        let args = vec!["--socket".into(), odd.clone(), "logs".into()];
        match parse(args) {
            Ok(Invocation::Run(a)) => assert_eq!(a.socket, Some(PathBuf::from(odd.clone()))),
            other => panic!("{other:?}"),
        }
        let args = vec!["logs".into(), "--component".into(), odd];
        assert!(matches!(parse(args), Err(ArgsError::NotUtf8(_))));
    }

    #[test]
    fn options_put_the_log_under_the_data_dir() {
        let opts = run(&["logs", "--component", "api"]).options("/s".into(), "/d".into());
        assert_eq!(
            opts.log_file,
            Some(crate::paths::log_dir(std::path::Path::new("/d")).join("panel-logs-api.log"))
        );
        assert_eq!(opts.data_dir, Some("/d".into()));
        assert_eq!(opts.socket, PathBuf::from("/s"));
    }

    fn any_args() -> impl Strategy<Value = PanelArgs> {
        let text = "[ -~]{0,12}";
        (
            prop::sample::select(PanelKind::ALL.to_vec()),
            proptest::option::of("/[ -~]{0,12}"),
            proptest::option::of("/[ -~]{0,12}"),
            proptest::option::of(text),
            proptest::option::of(text),
            proptest::option::of(text),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(kind, socket, data_dir, component, title, panel, ascii, frameless)| PanelArgs {
                    socket: socket.map(PathBuf::from),
                    data_dir: data_dir.map(PathBuf::from),
                    kind,
                    component,
                    title,
                    panel,
                    ascii,
                    frameless,
                },
            )
    }

    /// The words of a command line for `a`, in the order `shuffle` picks, each option as
    /// `--opt VALUE` or `--opt=VALUE` as `inline` says.
    fn render(a: &PanelArgs, shuffle: &[usize], inline: &[bool]) -> Vec<OsString> {
        let mut groups: Vec<Vec<OsString>> = Vec::new();
        let value = |name: &str, v: OsString, i: usize| {
            if inline[i % inline.len()] {
                let mut w = OsString::from(format!("{name}="));
                w.push(v);
                vec![w]
            } else {
                vec![name.into(), v]
            }
        };
        if let Some(s) = &a.socket {
            groups.push(value("--socket", s.clone().into(), 0));
        }
        if let Some(d) = &a.data_dir {
            groups.push(value("--data-dir", d.clone().into(), 1));
        }
        if let Some(c) = &a.component {
            groups.push(value("--component", c.into(), 2));
        }
        if let Some(t) = &a.title {
            groups.push(value("--title", t.into(), 3));
        }
        if let Some(p) = &a.panel {
            groups.push(value("--panel", p.into(), 4));
        }
        if a.ascii {
            groups.push(vec!["--ascii".into()]);
        }
        if a.frameless {
            groups.push(vec!["--frameless".into()]);
        }
        groups.push(vec![a.kind.name().replace('_', "-").into()]);
        let n = groups.len();
        for (i, s) in shuffle.iter().enumerate() {
            groups.swap(i % n, s % n);
        }
        groups.into_iter().flatten().collect()
    }

    proptest! {
        /// Whatever the order and the spelling of the options, the same panel comes back.
        #[test]
        fn every_command_line_round_trips(
            a in any_args(),
            shuffle in proptest::collection::vec(0usize..16, 0..8),
            inline in proptest::collection::vec(any::<bool>(), 1..6),
        ) {
            let line = render(&a, &shuffle, &inline);
            // A value such as `--title -x` reads as a value, never as an option.
            prop_assert_eq!(parse(line.clone()), Ok(Invocation::Run(a)), "{:?}", line);
        }

        /// No command line makes the parser panic; it runs, asks for help or says why not.
        #[test]
        fn any_words_are_parsed_or_refused(line in proptest::collection::vec("[-a-z=]{0,10}", 0..6)) {
            let _ = parse(line.into_iter().map(OsString::from));
        }

    }
}
