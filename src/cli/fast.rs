//! The fast path for `hms-console status` (issue 12: a status of 100 components, process start
//! included, within 1.5 ms). Building clap's whole command tree (every subcommand, its help
//! texts) and the tracing subscriber costs more than the request itself, and `status` needs
//! neither: the plain command lines are recognised here and everything else goes to clap.
//!
//! A command line takes the fast path only when clap would parse it to the same `status`
//! (a property test checks this against clap): the words `status`, at most one component name,
//! `--wide` or `--json` (not both), and the global options `--socket`, `--data-dir` and
//! `--tmux-socket` (each at most once, as `--opt VALUE` or `--opt=VALUE`, non-empty). Anything
//! else (`-v`, `-q`, `--help`, `--`, a second name, a word starting with `-` …) is clap's, as is
//! any command line when `RUST_LOG` is set (logging is then wanted, and only clap's path installs
//! it) or when `HMS_SOCKET`, `HMS_DATA_DIR` or `HMS_TMUX_SOCKET` is set but empty or not text
//! clap accepts (clap then refuses the command line, and says why).

use std::ffi::OsString;
use std::path::PathBuf;

/// A plain `status` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PlainStatus {
    /// `--socket`, else `HMS_SOCKET`.
    pub socket: Option<PathBuf>,
    pub component: Option<String>,
    pub wide: bool,
    pub json: bool,
}

/// `Some` when `args` (the words after the program's name) are a plain `status` command line in
/// the environment `env` gives (see the module docs); `None`: clap's to parse.
pub(super) fn plain_status(
    args: &[OsString],
    env: impl Fn(&str) -> Option<OsString>,
) -> Option<PlainStatus> {
    if env("RUST_LOG").is_some() {
        return None;
    }
    let env_socket = match env("HMS_SOCKET") {
        Some(v) if v.is_empty() => return None,
        v => v.map(PathBuf::from),
    };
    if env("HMS_DATA_DIR").is_some_and(|v| v.is_empty()) {
        return None;
    }
    if env("HMS_TMUX_SOCKET").is_some_and(|v| v.is_empty() || v.to_str().is_none()) {
        return None;
    }
    let mut socket = None;
    // Read only to refuse what clap would refuse: `status` uses neither.
    let mut data_dir = None;
    let mut tmux_socket = None;
    let mut status = false;
    let mut component = None;
    let mut wide = false;
    let mut json = false;
    let mut words = args.iter();
    while let Some(arg) = words.next() {
        let word = arg.to_str()?;
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(OsString::from(value))),
            _ => (word, None),
        };
        let (slot, text_only) = match name {
            "--socket" => (&mut socket, false),
            "--data-dir" => (&mut data_dir, false),
            "--tmux-socket" => (&mut tmux_socket, true),
            "--wide" | "--json" if status && inline.is_none() => {
                let flag = if name == "--wide" {
                    &mut wide
                } else {
                    &mut json
                };
                if *flag {
                    return None;
                }
                *flag = true;
                continue;
            }
            "status" if !status => {
                status = true;
                continue;
            }
            _ if status && component.is_none() && !word.starts_with('-') => {
                component = Some(word.to_string());
                continue;
            }
            _ => return None,
        };
        let value = match inline {
            Some(v) => v,
            // A value that looks like an option is clap's to judge.
            None => words
                .next()
                .filter(|v| !v.to_str().is_some_and(|t| t.starts_with('-')))?
                .clone(),
        };
        if slot.is_some() || value.is_empty() || (text_only && value.to_str().is_none()) {
            return None;
        }
        *slot = Some(value);
    }
    if !status || (wide && json) {
        return None;
    }
    Some(PlainStatus {
        socket: socket.map(PathBuf::from).or(env_socket),
        component,
        wide,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::*;
    use clap::Parser;
    use proptest::prelude::*;

    fn words(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    #[test]
    fn plain_status_lines_take_the_fast_path() {
        let s = plain_status(&words(&["status"]), no_env).expect("plain");
        assert_eq!(
            s,
            PlainStatus {
                socket: None,
                component: None,
                wide: false,
                json: false
            }
        );
        let s = plain_status(
            &words(&["--socket", "/s", "status", "api", "--json", "--data-dir=/d"]),
            no_env,
        )
        .expect("plain");
        assert_eq!(s.socket, Some("/s".into()));
        assert_eq!(s.component.as_deref(), Some("api"));
        assert!(s.json && !s.wide);
    }

    #[test]
    fn anything_else_is_left_to_clap() {
        for line in [
            &[][..],
            &["status", "--help"],
            &["status", "-v"],
            &["-q", "status"],
            &["status", "a", "b"],
            &["status", "--wide", "--json"],
            &["status", "--wide", "--wide"],
            &["status", "--", "api"],
            &["--socket", "status"],
            &["--socket", "/a", "--socket", "/b", "status"],
            &["--socket=", "status"],
            &["--wide", "status"],
            &["status", "--json=yes"],
            &["issues"],
            &["status", "-"],
        ] {
            assert_eq!(plain_status(&words(line), no_env), None, "{line:?}");
        }
    }

    #[test]
    fn the_environment_can_send_a_line_to_clap() {
        let env = |set: &'static str, value: &'static str| {
            move |name: &str| (name == set).then(|| OsString::from(value))
        };
        let line = words(&["status"]);
        assert_eq!(plain_status(&line, env("RUST_LOG", "debug")), None);
        assert_eq!(plain_status(&line, env("HMS_SOCKET", "")), None);
        assert_eq!(plain_status(&line, env("HMS_DATA_DIR", "")), None);
        assert_eq!(plain_status(&line, env("HMS_TMUX_SOCKET", "")), None);
        let s = plain_status(&line, env("HMS_SOCKET", "/e")).expect("plain");
        assert_eq!(s.socket, Some("/e".into()));
        let s = plain_status(
            &words(&["status", "--socket", "/c"]),
            env("HMS_SOCKET", "/e"),
        );
        assert_eq!(s.expect("plain").socket, Some("/c".into()), "the flag wins");
    }

    const VOCABULARY: &[&str] = &[
        "status",
        "status",
        "api",
        "db",
        "--wide",
        "--json",
        "--socket",
        "/s",
        "--socket=/t",
        "--data-dir",
        "/d",
        "--data-dir=",
        "--tmux-socket",
        "x",
        "--tmux-socket=y",
        "-v",
        "-q",
        "--",
        "-",
        "--help",
        "-h",
        "--wide=1",
        "issues",
        "--bogus",
    ];

    proptest! {
        /// Whatever the fast path accepts, clap parses to the same `status` (in this process's
        /// environment, which both read).
        #[test]
        fn the_fast_path_agrees_with_clap(
            picks in proptest::collection::vec(0..VOCABULARY.len(), 0..7)
        ) {
            let line: Vec<OsString> = picks.iter().map(|i| OsString::from(VOCABULARY[*i])).collect();
            let Some(fast) = plain_status(&line, |n| std::env::var_os(n)) else {
                return Ok(());
            };
            let argv = std::iter::once(OsString::from("hms-console")).chain(line.clone());
            let cli = Cli::try_parse_from(argv);
            prop_assert!(cli.is_ok(), "{:?}: clap says {:?}", line, cli.err().map(|e| e.to_string()));
            let cli = cli.expect("checked");
            match cli.command {
                Command::Status { component, wide, json } => {
                    prop_assert_eq!(fast.component, component);
                    prop_assert_eq!(fast.wide, wide);
                    prop_assert_eq!(fast.json, json);
                    prop_assert_eq!(fast.socket, cli.socket);
                }
                other => prop_assert!(false, "{:?}: clap says {:?}", line, other),
            }
            prop_assert!(!cli.quiet && cli.verbose == 0);
        }
    }
}
