//! The command line of the core program `hms-core` (src/bin/hms-core.rs): the settings
//! `hms-console up` settled, in one canonical form, and the two helper commands the core starts
//! from its own program (`/proc/self/exe`).
//!
//! ```text
//! hms-core up [--socket PATH] [--data-dir DIR] [--config FILE | --procfile FILE] [--no-watch]
//!             [--verbosity quiet|normal|debug|trace]
//! hms-core reaper --core-id ID [--cgroup TREE]
//! hms-core probe-runner
//! ```
//!
//! `hms-console up` checks its arguments with clap, then execs `hms-core` with the words
//! [`UpArgs::to_args`] writes (socket and data directory always given, resolved from
//! `--socket`/`HMS_SOCKET`/the default as `up` does; the config as the user wrote it, since the
//! working directory is the same). It is parsed by hand, not by clap: clap's parser is most of
//! what the core would otherwise carry, and the command line is written by a program, not typed.
//! Options take `--opt VALUE` or `--opt=VALUE`, in any order after the command. Nothing here
//! reads the environment or the file system: the program applies `HMS_SOCKET` / `HMS_DATA_DIR`
//! and the defaults to what is left out.

use std::ffi::OsString;
use std::path::PathBuf;

/// What `hms-core --help` prints.
pub const USAGE: &str = "\
Usage: hms-core up [--socket PATH] [--data-dir DIR] [--config FILE | --procfile FILE] [--no-watch]
                   [--verbosity quiet|normal|debug|trace]
       hms-core reaper --core-id ID [--cgroup TREE]
       hms-core probe-runner

The core daemon of hms-console alone: what `hms-console up` runs (it starts this program when it
is installed beside hms-console). Use `hms-console up`; see `hms-console up --help`.";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run the core in the foreground.
    Up(UpArgs),
    /// Be the reaper of the core `core_id` (see [`super::orphans::reaper_main`]).
    Reaper {
        core_id: String,
        cgroup: Option<PathBuf>,
    },
    /// Be the core's probe runner (see [`super::probe_runner::runner_main`]).
    ProbeRunner,
    Help,
    Version,
}

/// Which fleet `up` runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FleetChoice {
    /// `./hms.toml` when there is one, else the embedded demo fleet.
    #[default]
    Found,
    /// `--config FILE`.
    Config(PathBuf),
    /// `--procfile FILE`.
    Procfile(PathBuf),
}

/// How much the core logs when `RUST_LOG` does not say (`-q`, nothing, `-v`, `-vv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    Quiet,
    #[default]
    Normal,
    Debug,
    Trace,
}

impl Verbosity {
    pub const ALL: [Verbosity; 4] = [
        Verbosity::Quiet,
        Verbosity::Normal,
        Verbosity::Debug,
        Verbosity::Trace,
    ];

    /// From the global `-q` / `-v…` flags.
    pub fn from_flags(quiet: bool, verbose: u8) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Debug,
            (false, _) => Verbosity::Trace,
        }
    }

    /// The log filter when `RUST_LOG` is not set: the core says what it does by default, a
    /// command only what went wrong.
    pub fn default_filter(self, core: bool) -> &'static str {
        match self {
            Verbosity::Quiet => "error",
            Verbosity::Normal if core => "hms=info",
            Verbosity::Normal => "warn",
            Verbosity::Debug => "hms=debug,info",
            Verbosity::Trace => "trace",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Verbosity::Quiet => "quiet",
            Verbosity::Normal => "normal",
            Verbosity::Debug => "debug",
            Verbosity::Trace => "trace",
        }
    }
}

/// A core to run, as the command line gave it (no defaults applied).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpArgs {
    pub socket: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub fleet: FleetChoice,
    /// Reload by itself when the config file changes (`--no-watch` turns it off).
    pub watch_config: bool,
    pub verbosity: Verbosity,
}

impl UpArgs {
    /// The words after the program's name that [`parse`] reads back as `self`, in the canonical
    /// order: the command, then each option that differs from its default.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut words: Vec<OsString> = vec!["up".into()];
        let mut option = |name: &str, value: OsString| {
            words.push(name.into());
            words.push(value);
        };
        if let Some(s) = &self.socket {
            option("--socket", s.clone().into());
        }
        if let Some(d) = &self.data_dir {
            option("--data-dir", d.clone().into());
        }
        match &self.fleet {
            FleetChoice::Found => {}
            FleetChoice::Config(p) => option("--config", p.clone().into()),
            FleetChoice::Procfile(p) => option("--procfile", p.clone().into()),
        }
        if self.verbosity != Verbosity::Normal {
            option("--verbosity", self.verbosity.name().into());
        }
        if !self.watch_config {
            words.push("--no-watch".into());
        }
        words
    }
}

/// Why a command line was refused; each message names the word at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// No command word.
    #[error("a command is required: up, reaper or probe-runner")]
    MissingCommand,
    /// The first word is not a command.
    #[error("unknown command '{0}'; commands: up, reaper, probe-runner")]
    UnknownCommand(String),
    /// A word where an option was expected.
    #[error("unexpected argument '{0}'")]
    Extra(String),
    /// An option the command does not have.
    #[error("unknown option '{0}'")]
    UnknownOption(String),
    /// An option that takes a value came last.
    #[error("'{0}' needs a value")]
    MissingValue(&'static str),
    /// A flag was given a value (`--no-watch=yes`).
    #[error("'{0}' takes no value")]
    UnexpectedValue(&'static str),
    /// The same option twice.
    #[error("'{0}' given more than once")]
    Repeated(&'static str),
    /// Both `--config` and `--procfile`.
    #[error("'--config' and '--procfile' cannot be used together")]
    Conflict,
    /// `--verbosity` with a word other than its four.
    #[error("unknown verbosity '{0}'; one of quiet, normal, debug, trace")]
    UnknownVerbosity(String),
    /// `reaper` without `--core-id`.
    #[error("'--core-id' is required")]
    MissingCoreId,
    /// A word that must be text is not valid UTF-8.
    #[error("'{0}' is not valid UTF-8")]
    NotUtf8(String),
}

/// The options, by their long name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opt {
    Socket,
    DataDir,
    Config,
    Procfile,
    NoWatch,
    Verbosity,
    CoreId,
    Cgroup,
}

impl Opt {
    /// The option `name` of `command`, if it has one.
    fn of(command: Command, name: &str) -> Option<Opt> {
        let opt = match name {
            "--socket" => Opt::Socket,
            "--data-dir" => Opt::DataDir,
            "--config" => Opt::Config,
            "--procfile" => Opt::Procfile,
            "--no-watch" => Opt::NoWatch,
            "--verbosity" => Opt::Verbosity,
            "--core-id" => Opt::CoreId,
            "--cgroup" => Opt::Cgroup,
            _ => return None,
        };
        let belongs = match command {
            Command::Up => !matches!(opt, Opt::CoreId | Opt::Cgroup),
            Command::Reaper => matches!(opt, Opt::CoreId | Opt::Cgroup),
            Command::ProbeRunner => false,
        };
        belongs.then_some(opt)
    }

    fn name(self) -> &'static str {
        match self {
            Opt::Socket => "--socket",
            Opt::DataDir => "--data-dir",
            Opt::Config => "--config",
            Opt::Procfile => "--procfile",
            Opt::NoWatch => "--no-watch",
            Opt::Verbosity => "--verbosity",
            Opt::CoreId => "--core-id",
            Opt::Cgroup => "--cgroup",
        }
    }

    fn takes_value(self) -> bool {
        self != Opt::NoWatch
    }
}

#[derive(Clone, Copy)]
enum Command {
    Up,
    Reaper,
    ProbeRunner,
}

/// Parses the arguments after the program's name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, ArgsError> {
    let mut args = args.into_iter();
    let first = args.next().ok_or(ArgsError::MissingCommand)?;
    let command = match first.to_str() {
        Some("up") => Command::Up,
        Some("reaper") => Command::Reaper,
        Some("probe-runner") => Command::ProbeRunner,
        Some("-h" | "--help") => return Ok(Invocation::Help),
        Some("-V" | "--version") => return Ok(Invocation::Version),
        Some(other) => return Err(ArgsError::UnknownCommand(other.to_string())),
        None => return Err(not_utf8(&first)),
    };
    let mut up = UpArgs {
        watch_config: true,
        ..UpArgs::default()
    };
    let mut config = None;
    let mut procfile = None;
    let mut verbosity = None;
    let mut core_id = None;
    let mut cgroup = None;
    while let Some(arg) = args.next() {
        let text = arg.to_str().ok_or_else(|| not_utf8(&arg))?;
        match text {
            "-h" | "--help" => return Ok(Invocation::Help),
            "-V" | "--version" => return Ok(Invocation::Version),
            _ => {}
        }
        if !text.starts_with("--") {
            return Err(ArgsError::Extra(text.to_string()));
        }
        let (name, inline) = match text.split_once('=') {
            Some((name, value)) => (name, Some(OsString::from(value))),
            None => (text, None),
        };
        let opt =
            Opt::of(command, name).ok_or_else(|| ArgsError::UnknownOption(text.to_string()))?;
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
            (Opt::NoWatch, _) => {
                if !up.watch_config {
                    return Err(repeated());
                }
                up.watch_config = false;
            }
            (Opt::Socket, Some(v)) => set(&mut up.socket, v.into()).ok_or_else(repeated)?,
            (Opt::DataDir, Some(v)) => set(&mut up.data_dir, v.into()).ok_or_else(repeated)?,
            (Opt::Config, Some(v)) => set(&mut config, PathBuf::from(v)).ok_or_else(repeated)?,
            (Opt::Procfile, Some(v)) => {
                set(&mut procfile, PathBuf::from(v)).ok_or_else(repeated)?
            }
            (Opt::Verbosity, Some(v)) => {
                let word = utf8(v)?;
                let level = Verbosity::ALL
                    .into_iter()
                    .find(|l| l.name() == word)
                    .ok_or(ArgsError::UnknownVerbosity(word))?;
                set(&mut verbosity, level).ok_or_else(repeated)?
            }
            (Opt::CoreId, Some(v)) => set(&mut core_id, utf8(v)?).ok_or_else(repeated)?,
            (Opt::Cgroup, Some(v)) => set(&mut cgroup, PathBuf::from(v)).ok_or_else(repeated)?,
            (
                Opt::Socket
                | Opt::DataDir
                | Opt::Config
                | Opt::Procfile
                | Opt::Verbosity
                | Opt::CoreId
                | Opt::Cgroup,
                None,
            ) => unreachable!("options that take a value were given one above"),
        }
    }
    Ok(match command {
        Command::Up => {
            up.fleet = match (config, procfile) {
                (Some(_), Some(_)) => return Err(ArgsError::Conflict),
                (Some(c), None) => FleetChoice::Config(c),
                (None, Some(p)) => FleetChoice::Procfile(p),
                (None, None) => FleetChoice::Found,
            };
            up.verbosity = verbosity.unwrap_or_default();
            Invocation::Up(up)
        }
        Command::Reaper => Invocation::Reaper {
            core_id: core_id.ok_or(ArgsError::MissingCoreId)?,
            cgroup,
        },
        Command::ProbeRunner => Invocation::ProbeRunner,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_helpers_command_lines_parse() {
        // What `orphans::keep_reaper` and `probe_runner::start` run.
        assert_eq!(
            parse(words(&[
                "reaper",
                "--core-id",
                "abc",
                "--cgroup",
                "/sys/fs/cgroup/x"
            ])),
            Ok(Invocation::Reaper {
                core_id: "abc".into(),
                cgroup: Some("/sys/fs/cgroup/x".into())
            })
        );
        assert_eq!(
            parse(words(&["reaper", "--core-id=abc"])),
            Ok(Invocation::Reaper {
                core_id: "abc".into(),
                cgroup: None
            })
        );
        assert_eq!(parse(words(&["probe-runner"])), Ok(Invocation::ProbeRunner));
    }

    #[test]
    fn a_bare_up_watches_the_found_fleet_at_normal_verbosity() {
        assert_eq!(
            parse(words(&["up"])),
            Ok(Invocation::Up(UpArgs {
                watch_config: true,
                ..UpArgs::default()
            }))
        );
    }

    #[test]
    fn bad_command_lines_are_refused_naming_the_word() {
        let err = |line: &[&str]| parse(words(line)).unwrap_err().to_string();
        assert_eq!(
            err(&[]),
            "a command is required: up, reaper or probe-runner"
        );
        assert_eq!(
            err(&["down"]),
            "unknown command 'down'; commands: up, reaper, probe-runner"
        );
        assert_eq!(err(&["up", "hms.toml"]), "unexpected argument 'hms.toml'");
        assert_eq!(err(&["up", "-c", "x"]), "unexpected argument '-c'");
        assert_eq!(err(&["up", "--core-id", "x"]), "unknown option '--core-id'");
        assert_eq!(
            err(&["reaper", "--config=x"]),
            "unknown option '--config=x'"
        );
        assert_eq!(
            err(&["probe-runner", "--no-watch"]),
            "unknown option '--no-watch'"
        );
        assert_eq!(err(&["up", "--socket"]), "'--socket' needs a value");
        assert_eq!(err(&["up", "--no-watch=1"]), "'--no-watch' takes no value");
        assert_eq!(
            err(&["up", "--no-watch", "--no-watch"]),
            "'--no-watch' given more than once"
        );
        assert_eq!(
            err(&["up", "--config", "a", "--procfile", "b"]),
            "'--config' and '--procfile' cannot be used together"
        );
        assert_eq!(
            err(&["up", "--verbosity", "loud"]),
            "unknown verbosity 'loud'; one of quiet, normal, debug, trace"
        );
        assert_eq!(err(&["reaper"]), "'--core-id' is required");
    }

    #[test]
    fn help_and_version_win_wherever_they_are() {
        assert_eq!(parse(words(&["--help"])), Ok(Invocation::Help));
        assert_eq!(
            parse(words(&["up", "--bad", "-h"])),
            Err(ArgsError::UnknownOption("--bad".into()))
        );
        assert_eq!(parse(words(&["up", "-h", "--bad"])), Ok(Invocation::Help));
        assert_eq!(parse(words(&["-V", "nonsense"])), Ok(Invocation::Version));
    }

    #[test]
    fn paths_need_not_be_utf8_but_names_must_be() {
        use std::os::unix::ffi::OsStringExt;
        let odd = OsString::from_vec(vec![b'/', 0xff]);
        let args = vec!["up".into(), "--config".into(), odd.clone()];
        let Ok(Invocation::Up(up)) = parse(args) else {
            panic!("a non-UTF-8 path is a path");
        };
        assert_eq!(up.fleet, FleetChoice::Config(odd.clone().into()));
        let args = vec!["reaper".into(), "--core-id".into(), odd];
        assert!(matches!(parse(args), Err(ArgsError::NotUtf8(_))));
    }

    #[test]
    fn verbosity_follows_the_global_flags() {
        assert_eq!(Verbosity::from_flags(true, 0), Verbosity::Quiet);
        assert_eq!(Verbosity::from_flags(false, 0), Verbosity::Normal);
        assert_eq!(Verbosity::from_flags(false, 1), Verbosity::Debug);
        assert_eq!(Verbosity::from_flags(false, 3), Verbosity::Trace);
        assert_eq!(Verbosity::Normal.default_filter(true), "hms=info");
        assert_eq!(Verbosity::Normal.default_filter(false), "warn");
    }

    fn any_path() -> impl Strategy<Value = PathBuf> {
        // Relative or absolute, spaces, `=` and leading dashes included: a value is never an
        // option, whatever it looks like.
        "[ -~]{1,16}".prop_map(PathBuf::from)
    }

    fn any_up() -> impl Strategy<Value = UpArgs> {
        let fleet = prop_oneof![
            Just(FleetChoice::Found),
            any_path().prop_map(FleetChoice::Config),
            any_path().prop_map(FleetChoice::Procfile),
        ];
        (
            proptest::option::of(any_path()),
            proptest::option::of(any_path()),
            fleet,
            any::<bool>(),
            prop::sample::select(Verbosity::ALL.to_vec()),
        )
            .prop_map(
                |(socket, data_dir, fleet, watch_config, verbosity)| UpArgs {
                    socket,
                    data_dir,
                    fleet,
                    watch_config,
                    verbosity,
                },
            )
    }

    /// The words after the command, in option groups (an option with its value), for shuffling.
    fn groups(words: &[OsString]) -> Vec<Vec<OsString>> {
        let mut out: Vec<Vec<OsString>> = Vec::new();
        let mut i = 1;
        while i < words.len() {
            if words[i] == "--no-watch" {
                out.push(vec![words[i].clone()]);
                i += 1;
            } else {
                out.push(vec![words[i].clone(), words[i + 1].clone()]);
                i += 2;
            }
        }
        out
    }

    proptest! {
        /// What `hms-console up` writes for any settings reads back as the same settings.
        #[test]
        fn what_up_writes_reads_back_the_same(up in any_up()) {
            let line = up.to_args();
            prop_assert_eq!(parse(line.clone()), Ok(Invocation::Up(up)), "{:?}", line);
        }

        /// The options may come in any order and as `--opt=VALUE`.
        #[test]
        fn any_order_and_spelling_reads_the_same(
            up in any_up(),
            shuffle in proptest::collection::vec(0usize..16, 0..8),
            inline in proptest::collection::vec(any::<bool>(), 1..6),
        ) {
            let mut groups = groups(&up.to_args());
            let n = groups.len().max(1);
            for (i, s) in shuffle.iter().enumerate() {
                if !groups.is_empty() {
                    groups.swap(i % n, s % n);
                }
            }
            let mut line: Vec<OsString> = vec!["up".into()];
            for (i, g) in groups.into_iter().enumerate() {
                if g.len() == 2 && inline[i % inline.len()] {
                    let mut w = g[0].clone();
                    w.push("=");
                    w.push(&g[1]);
                    line.push(w);
                } else {
                    line.extend(g);
                }
            }
            prop_assert_eq!(parse(line.clone()), Ok(Invocation::Up(up)), "{:?}", line);
        }

        /// No command line makes the parser panic; it runs, asks for help or says why not.
        #[test]
        fn any_words_are_parsed_or_refused(line in proptest::collection::vec("[-a-z=]{0,10}", 0..6)) {
            let _ = parse(line.into_iter().map(OsString::from));
        }
    }
}
