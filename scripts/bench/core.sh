#!/usr/bin/env sh
# Core daemon benchmarks (issue 2): restart latency, status with 100 components, idle cost of 100 and
# 1,000 children. Prints each figure beside its goal. HMS_BENCH_IDLE_SECS=5 for a quicker run.
set -eu
cd "$(dirname "$0")/../.."
exec cargo bench --bench core
