//! The operator's console: the code that builds the tmux session of panel windows and keeps it in
//! shape while it runs.
//!
//! - [`session`]: builds the §3.2 overview, one §3.1 TwoByTwo window per component and windows
//!   from layout files, each pane started with its `hms-console panel …` command.
//! - [`watch`]: the console watcher, which re-lays out resized windows and rebuilds windows whose
//!   layout file changed.
//!
//! Unlike [`crate::command`] (the actions pane's language, which is pure), this module does I/O:
//! it drives tmux through [`crate::tmux::TmuxDriver`] and the watcher reads the fleet's names from
//! the core and posts notices to it. It must not draw anything or decide what a panel shows; the
//! panels do that in their own panes.

#![forbid(unsafe_code)]

pub mod session;
pub mod watch;
