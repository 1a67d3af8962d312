#!/bin/bash
# How soon a host's long-poll hears of its grant, with 1 to 10,000 hosts waiting: one engine
# instance issues grants, another (a second replica on the same PostgreSQL database, or the same
# SQLite file) answers the waits through its GrantFeedHub, woken by NOTIFY. In-process: no HTTP,
# no TLS, no agent (issue 13 adds those). Usage (root): Benchmarks/feed.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
rounds=${1:-200}
# The shipped build's flags: one configuration in .build/release.
swift build -c release --product writ-bench-feed >/dev/null
bench=.build/release/writ-bench-feed
work=$(mktemp -d /tmp/writ-bench-feed.XXXXXX)
chmod 755 "$work"
trap 'scripts/pg-test-cluster.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/pg-test-cluster.sh start "$work/pg" --watch $$ >/dev/null
echo "# $(nproc) cores, $(uname -r), SQLite $(sqlite3 --version | cut -d' ' -f1), $(psql --version)"
for waiters in 1 100 1000 10000; do
    psql -q -h "$work/pg" -U writ -d writ -c "CREATE DATABASE feed_$waiters" >/dev/null
    "$bench" --pg "$work/pg" "feed_$waiters" writ "$waiters" "$rounds" 2>/dev/null
    "$bench" --sqlite "$work/feed-$waiters.db" "$waiters" "$rounds" 2>/dev/null
done
