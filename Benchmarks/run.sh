#!/bin/bash
# Benchmarks (figures, not pass/fail): whole `sudo -n /bin/true` runs with hyperfine against
# stock sudo in the same run, peak RSS of sudo, and the in-process cost of one check, with
# 100,000 grants (10,000 users, mostly ended history) in the store. Runs as root inside a private
# mount namespace, like the integration tests; the machine is left as it was.
#
#   Benchmarks/run.sh [BUILD_DIR]          writes results to Benchmarks/results/latest.txt too
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:-$ROOT/.build/release}
[ "$(id -u)" = 0 ] || { echo "benchmarks need root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine missing: apt-get install hyperfine" >&2; exit 1; }
[ -x "$BUILD/writ-bench-seed" ] && [ -e "$BUILD/pam_writ.so" ] ||
    { echo "build first: swift build -c release && scripts/build-module.sh" >&2; exit 1; }
WORK=$(mktemp -d /tmp/writ-bench.XXXXXX)
chmod 0755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$HERE/results"
unshare --mount --propagation private --fork \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    WORK="$WORK" BUILD="$BUILD" HERE="$ROOT/Tests/Integration" BENCH="$HERE" \
    bash "$HERE/bench.sh" 2>&1 | tee "$HERE/results/latest.txt"
