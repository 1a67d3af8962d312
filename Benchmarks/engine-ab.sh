#!/bin/bash
# Two builds of writ-bench-engine against one private PostgreSQL cluster, alternating, so the
# machine's drift (fsync time varies 2x here within minutes) hits both alike. Build each with
#   swift build -c release --product writ-bench-engine
# at the commits to compare and copy .build/release/writ-bench-engine aside.
# Usage (root): Benchmarks/engine-ab.sh BEFORE_BINARY AFTER_BINARY [REQUESTS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] && [ -x "$1" ] && [ -x "$2" ] || {
    echo "usage: Benchmarks/engine-ab.sh BEFORE_BINARY AFTER_BINARY [REQUESTS] [ROUNDS]"
    exit 2
}
before=$1 after=$2 requests=${3:-2000} rounds=${4:-3}
work=$(mktemp -d /tmp/writ-bench-ab.XXXXXX)
chmod 755 "$work"
trap 'scripts/pg-test-cluster.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/pg-test-cluster.sh start "$work/pg" --watch $$ >/dev/null
n=0
for round in $(seq "$rounds"); do
    for c in 8 1; do
        for which in before after; do
            n=$((n + 1))
            psql -q -h "$work/pg" -U writ -d writ -c "CREATE DATABASE ab_$n" >/dev/null
            bin=$before
            [ $which = after ] && bin=$after
            echo "$which round=$round $("$bin" --pg "$work/pg" "ab_$n" writ "$requests" "$c" 2>/dev/null)"
        done
    done
done
