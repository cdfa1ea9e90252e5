#!/usr/bin/env sh
# Knowledge registry benchmarks (issue 9): the §5.2 query, `contains`, and contributions at 10k,
# 100k and 1M items (contributions timestamped as they arrive; random timestamps printed apart),
# each beside its goal, then the core's crash -> restart latency with the registry idle and busy.
# HMS_BENCH_KNOWLEDGE_MAX=100000 for a quicker run.
set -eu
cd "$(dirname "$0")/../.."
exec cargo bench --bench knowledge
