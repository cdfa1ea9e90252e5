#!/usr/bin/env sh
# What spawning a component into its own cgroup costs next to a plain spawn (src/core/cgroup.rs):
# medians over HMS_BENCH_SPAWNS (default 300) spawn-and-reap round trips. Needs a writable cgroup v2
# (root, or a delegated subtree); says so and measures nothing otherwise.
set -eu
cd "$(dirname "$0")/../.."
exec cargo run --release --quiet --example cgroup_spawn
