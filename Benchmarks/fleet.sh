#!/bin/bash
# Approval on writ-server → the agent's long-poll answered, over HTTPS with client
# certificates, with 1 to 10,000 agents connected (writ-bench-fleet enrolls them and holds
# their long-polls), on a private PostgreSQL cluster; the server's RSS and CPU with every agent
# waiting; every agent reconnecting at once. writd's own step after the answer (one SQLite
# transaction) is in Tests/Integration/fleet.sh's figures.
#   Usage (root): Benchmarks/fleet.sh [ROUNDS] [AGENTS...]   (default: 100 rounds; 1 100 1000 10000)
# WRIT_BENCH_HEARTBEAT=N: the heartbeat the agents ask for (0: none; default writd's 2 s).
# An approval answered later than WRIT_BENCH_LATE_MS (250) prints its timeline: the commit, this
# process hearing the store's NOTIFY, and the agent's last polls (sent, stamped by the server,
# received). With WRIT_BENCH_TRACE=1 the server logs each read of its feed and the reads after
# each late approval are printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
rounds=${1:-100}
shift || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1 100 1000 10000)
# The shipped build's flags: one configuration in .build/release.
for p in writ-server writ-bench-fleet; do swift build -c release --product $p >/dev/null; done
log_level=warning
[ -z "${WRIT_BENCH_TRACE:-}" ] || log_level=debug
work=$(mktemp -d /tmp/writ-bench-fleet.XXXXXX)
chmod 755 "$work"
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; scripts/pg-test-cluster.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/pg-test-cluster.sh start "$work/pg" --watch $$ >/dev/null
ulimit -n "$(ulimit -Hn)"
echo "# $(nproc) cores, $(uname -r), $(psql --version); server and load generator on this machine"
for agents in "${sizes[@]}"; do
    db=fleet_$agents
    psql -q -h "$work/pg" -U writ -d writ -c "CREATE DATABASE $db" >/dev/null
    : >"$work/server.out"
    .build/release/writ-server serve --listen 127.0.0.1:0 --state-dir "$work/state" --log-level "$log_level" \
        --database "postgres://writ@localhost/$db?host=$work/pg" >"$work/server.out" 2>"$work/server.log" &
    server_pid=$!
    for _ in $(seq 400); do grep -q "^listening on" "$work/server.out" && break; sleep 0.05; done
    port=$(sed -n 's/^listening on 127\.0\.0\.1://p' "$work/server.out")
    sha=$(.build/release/writ-server host enroll probe --state-dir "$work/state" \
        --database "postgres://writ@localhost/$db?host=$work/pg" | sed -n 's/.*--ca-sha256 //p')
    .build/release/writ-bench-fleet --pg "$work/pg" "$db" writ "https://127.0.0.1:$port" "$sha" "$server_pid" \
        "$agents" "$rounds" 2>"$work/bench.err" || { echo "writ-bench-fleet failed:"; tail -20 "$work/bench.err"; }
    grep '^late ' "$work/bench.err" || true
    # The server's feed reads within 10 s after each late approval.
    if [ -n "${WRIT_BENCH_TRACE:-}" ]; then
        for t0 in $(sed -n 's/^late [0-9]* ms at \([0-9]*\):.*/\1/p' "$work/bench.err"); do
            echo "server's feed reads after $t0:"
            awk -v t0="$t0" 'match($0, /woken at [0-9]+ ms/) {
                t = substr($0, RSTART + 9, RLENGTH - 12) + 0
                if (t >= t0 - 100 && t <= t0 + 10000) print "  +" (t - t0) " ms: " substr($0, index($0, "feed read"))
            }' "$work/server.log"
        done
    fi
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
done
