#!/bin/sh
# Median wall time to build a detached 3x3 window of 9 `sleep` panes into a running private
# tmux server: hms's driver (one chained tmux invocation) vs a plain script of 17 tmux calls.
# Uses its own socket (hms-bench-<pid>); never touches your tmux server.
set -eu
cd "$(dirname "$0")/../.."
cargo run --quiet --release --example tmux_layout_bench
