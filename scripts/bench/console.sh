#!/usr/bin/env sh
# Console benchmarks (issue 4): `layout custom 3x3` and a 3x3 of nine panels into a running session,
# `attach --no-attach` for a fleet of 4, a restart seen in a pane, and the idle cost of 16 panels.
# Each figure is printed beside its goal (medians); every run uses a fresh private tmux server
# (-L hms-bench-<pid>-<n>) and never touches yours. With tmuxp installed (`pip install tmuxp`) it
# also loads the same nine panel commands with tmuxp in the same run and prints the ratio.
# HMS_BENCH_RUNS=7 (runs per figure), HMS_BENCH_IDLE_SECS=10 (the CPU window).
set -eu
cd "$(dirname "$0")/../.."
exec cargo bench --bench console
