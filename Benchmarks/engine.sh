#!/bin/bash
# The approval engine on its two stores, side by side in one run: requests filed and approved
# per second, and one decision's p50/p99, on SQLite (a file in /tmp) and on PostgreSQL (a private
# cluster, scripts/pg-test-cluster.sh, stopped at the end), one engine instance with 1 and with 8
# requests in flight. Usage (root): Benchmarks/engine.sh [REQUESTS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
requests=${1:-2000}
rounds=${2:-2}
# The shipped build's flags: one configuration in .build/release.
swift build -c release --product writ-bench-engine >/dev/null
bench=.build/release/writ-bench-engine
work=$(mktemp -d /tmp/writ-bench-engine.XXXXXX)
chmod 755 "$work"
trap 'scripts/pg-test-cluster.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/pg-test-cluster.sh start "$work/pg" --watch $$ >/dev/null
echo "# $(nproc) cores, $(uname -r), SQLite $(sqlite3 --version | cut -d' ' -f1), $(psql --version)"
# Rounds alternate the stores: the machine drifts.
for round in $(seq "$rounds"); do
    for c in 1 8; do
        "$bench" --sqlite "$work/engine-$round-$c.db" "$requests" "$c"
        psql -q -h "$work/pg" -U writ -d writ -c "CREATE DATABASE bench_${round}_$c" >/dev/null
        "$bench" --pg "$work/pg" "bench_${round}_$c" writ "$requests" "$c"
    done
done
