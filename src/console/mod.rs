//! The operator's console language: what a line typed into the actions pane (or given to
//! `hms-console action "LINE"`) means.
//!
//! Everything here is pure: a line and what is known about the fleet go in, a typed action or a
//! friendly error comes out. This module must not do I/O, talk to the core or draw anything; the
//! panels and the CLI do that with what it returns.

#![forbid(unsafe_code)]

pub mod command;
pub mod session;
pub mod watch;

pub use command::{ActionLine, ParseContext, ParseError, Verb, help_text, parse, to_request};
