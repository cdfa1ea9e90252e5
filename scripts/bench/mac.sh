#!/usr/bin/env sh
# MAC task bus benchmarks (issue 11): task round trip over the socket, throughput with 8
# concurrent requesters, crash -> restart latency while the bus is at full load. Prints each
# figure beside its goal. HMS_BENCH_SECS=2 for a quicker run.
set -eu
cd "$(dirname "$0")/../.."
exec cargo bench --bench mac
