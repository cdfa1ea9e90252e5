#!/usr/bin/env sh
# Healing benchmarks (issue 3): a hung component (SIGSTOP) restarted through its liveness probe, and
# the core's CPU with 500 probed components (tcp, then exec). Prints each figure beside its goal.
# HMS_BENCH_IDLE_SECS=10 for a quicker run (the CPU window is never shorter than 10 s).
set -eu
cd "$(dirname "$0")/../.."
exec cargo bench --bench healing
