#!/bin/bash
# What one account can cost everyone else (issue 14), as figures against a baseline measured in
# the same run: another user's `writ status` latency (p99) and writd's RSS with no flood, then
# during and after each flood from one account — refused requests with long command lists, writ
# audit reads in a loop on a 28 MiB log, every connection a uid may hold from 97 accounts — with
# the audit bytes each added; and the Slack outbox's scheduling query at 2,400 and 20,000 waiting
# rows, the old query (NOT EXISTS over every earlier row) against the new one (thread heads
# through an index), on the same rows. Runs as root in a private mount namespace with the
# integration tests' sandbox; builds nothing; leaves the machine as it was. About 3 minutes.
#
#   Benchmarks/flood.sh [BUILD_DIR] [SECONDS]   (default .build/release, 10 s per flood; output
#                                               also in Benchmarks/results/flood-latest.txt)
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$SELF/.." && pwd)

if [ -z "${WRIT_BENCH_INNER:-}" ]; then
    source "$SELF/sandbox.sh"
    BENCH_ENV="FLOOD_SECONDS=${2:-10}" bench_outer "$SELF/flood.sh" flood "${1:-}"
fi

# --- inside the private mount namespace ----------------------------------------------------------
source "$HERE/lib.sh"
source "$BENCH/sandbox.sh"
SECONDS_EACH=${FLOOD_SECONDS:-10}
WRITD=$BUILD/writd
STATE=$WORK/store/writd.db
POLICY=$WORK/policy.yaml
WRITD_LOG=$WORK/writd.log
cleanup() { teardown_sandbox; }
trap cleanup EXIT
bench_setup

# 97 accounts for the connection flood (writd lets a uid hold 32; 3,072 in all for non-root).
HOLDERS=()
for i in $(seq -w 1 97); do
    u=writt_h$i uid=$((29400 + 10#$i))
    echo "$u:x:$uid:$uid:writ flood holder:/nonexistent:/bin/sh" >>/etc/passwd
    echo "$u:x:$uid:" >>/etc/group
    HOLDERS+=("$u")
done
cat >"$POLICY" <<'YAML'
version: 1
flows:
  - name: ops
    capability: sudo
    requesters: {users: [writt_alice]}
    approvers: {users: [writt_bob]}
    reason: {required: false}
YAML
start_writd() { bench_start_writd; }
rss() { awk '/^VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$WRITD_PID/status"; }
audit_bytes() { stat -c %s "$AUDIT"; }
export AUDIT STORE STATE
FLOOD="python3 $BENCH/flood_clients.py"

echo "== flood benchmarks: $(nproc) cores, $(uname -r), writd $("$WRITD" --version), $(date -u '+%F %H:%M UTC'), $SECONDS_EACH s per flood"
echo "source tree: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start_writd
sleep 2

# flood NAME COMMAND...: the victim (writt_alice's status every 20 ms) during COMMAND, with writd's
# RSS at the end of the flood and 5 s after, and the audit log's growth.
flood() {
    local name=$1; shift
    local a0 r0
    a0=$(audit_bytes)
    r0=$(rss)
    echo
    echo "== $name"
    $FLOOD victim writt_alice "$SECONDS_EACH" >"$WORK/victim.txt" &
    local vpid=$!
    "$@"
    local rdur
    rdur=$(rss)
    wait "$vpid"
    sed 's/^/  during: /' "$WORK/victim.txt"
    sleep 5
    echo "  writd RSS: $r0 before, $rdur at the end of the flood, $(rss) 5 s later"
    echo "  audit log: +$(( $(audit_bytes) - a0 )) bytes"
}

echo
echo "== baseline: no flood"
$FLOOD victim writt_alice "$SECONDS_EACH" | sed 's/^/  /'
echo "  writd RSS: $(rss)"

flood "1. refused requests: writt_carol (in no flow), 8 connections, 32 commands of ~490 bytes each" \
    $FLOOD refusals writt_carol "$SECONDS_EACH" 8
echo
$FLOOD prefill-audit 28 | sed 's/^/  (for 2.) /'
sleep 2
flood "2. writ audit in a loop: writt_carol, 32 connections, on the 28 MiB log" \
    $FLOOD audit-reads writt_carol "$SECONDS_EACH" 32
echo
echo "== 3. 97 accounts each hold their 32 idle connections (3,104 > the 3,072 that users share)"
$FLOOD hold "$(IFS=,; echo "${HOLDERS[*]}")" 32 8 | sed 's/^/  /' &
hpid=$!
sleep 5
$FLOOD root-check | sed 's/^/  /'
$FLOOD victim writt_alice 1 | sed 's/^/  a 98th user meanwhile (the users share is full): /'
wait "$hpid" || true
echo "  writd's log: $(grep -c 'refused a connection' "$WRITD_LOG" || true) line(s) about refused connections"

kill "$WRITD_PID"; wait "$WRITD_PID" 2>/dev/null || true
echo
echo "== 4. Slack outbox scheduling: the old query against the new, on the same rows (sqlite3, writd.db schema $(sqlite3 "$STATE" "SELECT value FROM meta WHERE key='schema'"))"
for rows in 2400 20000; do
    sqlite3 "$STATE" "DELETE FROM slack_outbox;
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $rows / 2 - 1)
        INSERT INTO slack_outbox (kind, event, request_id, actor, created_at, next_at, thread, head)
        SELECT 'card', e.event, printf('r_%06d', n.i), 'writt_carol', 0, 9999999999, printf('r_%06d', n.i), e.head
        FROM n, (SELECT 'request.create' AS event, 1 AS head UNION ALL SELECT 'request.cancel', 0) e;"
    old=$(python3 - "$STATE" <<'PY'
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1])
q_old = """SELECT seq FROM slack_outbox o WHERE NOT EXISTS (SELECT 1 FROM slack_outbox p WHERE p.seq < o.seq
           AND coalesce(p.request_id, p.grant_id, '') = coalesce(o.request_id, o.grant_id, ''))
           ORDER BY (next_at > ?), seq LIMIT 20"""
q_new = """SELECT seq FROM slack_outbox INDEXED BY slack_outbox_heads WHERE head = 1 AND next_at <= ?
           ORDER BY seq LIMIT 20"""
def timed(q, n):
    best = 1e9
    for _ in range(n):
        t = time.perf_counter(); c.execute(q, (1000,)).fetchall(); best = min(best, time.perf_counter() - t)
    return best
o = timed(q_old, 3); n = timed(q_new, 50)
print(f"{o * 1000:.1f} ms (old, best of 3) against {n * 1000:.3f} ms (new, best of 50): {o / n:,.0f}x")
PY
)
    echo "  $rows waiting rows: $old"
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
