#!/bin/bash
# writd figures (issue 3), not pass/fail: approve → sudo allowed, expiry → sudo denied, expiry →
# session ended, idle RSS and CPU with 10,000 active grants, 1,000 concurrent status clients. Each
# figure is printed with how it was measured, its target and the verdict. Runs as root inside a
# private mount namespace with the integration tests' sandbox (Tests/Integration/lib.sh: test users
# only in the overlay over /etc, real sudo with the Writ plugins, writd's socket
# under a private /run, store and logs under a temporary directory); builds nothing, and checks
# afterwards that the machine is as it was. About 4 minutes.
#
#   Benchmarks/daemon.sh [BUILD_DIR]     (default .build/release; output also in
#                                        Benchmarks/results/daemon-latest.txt)
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$SELF/.." && pwd)

if [ -z "${WRIT_BENCH_INNER:-}" ]; then
    source "$SELF/sandbox.sh"
    BENCH_NEEDS=writ-bench-seed bench_outer "$SELF/daemon.sh" daemon "${1:-}"
fi

# --- inside the private mount namespace ----------------------------------------------------------
source "$HERE/lib.sh"
source "$BENCH/sandbox.sh"
WRITD=$BUILD/writd
STATE=$WORK/store/writd.db
POLICY=$WORK/policy.yaml
WRITD_LOG=$WORK/writd.log
GRACE=2
cleanup() {
    teardown_sandbox
}
trap cleanup EXIT
bench_setup

# 33 more test users for the session and expiry figures, in the namespace's overlay over /etc (/etc/passwd,
# /etc/group, /etc/shadow, /etc/sudoers) only.
SESSION_USERS=()
for i in $(seq -w 1 33); do
    u=writt_s$i uid=$((29200 + 10#$i))
    mkdir -p "$WORK/home/$u"
    echo "$u:x:$uid:$uid:writ bench user:$WORK/home/$u:/bin/sh" >>/etc/passwd
    echo "$u:x:$uid:" >>/etc/group
    echo "$u:*:19000:0:99999:7:::" >>/etc/shadow
    chown "$uid:$uid" "$WORK/home/$u"
    SESSION_USERS+=("$u")
done
echo "$(IFS=,; echo "${SESSION_USERS[*]}") ALL=(ALL:ALL) NOPASSWD: ALL" >>/etc/sudoers
# The approve figure's requesters, in turn (one account may file 30 requests at once, then one
# every 20 s): alice and five of the session users.
REQUESTERS=writt_alice,$(IFS=,; echo "${SESSION_USERS[*]:20:5}")
echo "writt_requesters:x:29099:${REQUESTERS}" >>/etc/group
# 40 users for the concurrent status clients (writd caps connections per uid).
CLIENT_USERS=()
for i in $(seq -w 1 40); do
    u=writt_c$i uid=$((29300 + 10#$i))
    echo "$u:x:$uid:$uid:writ bench client:/nonexistent:/bin/sh" >>/etc/passwd
    echo "$u:x:$uid:" >>/etc/group
    echo "$u:*:19000:0:99999:7:::" >>/etc/shadow
    CLIENT_USERS+=("$u")
done

cat >"$POLICY" <<'YAML'
version: 1
flows:
  - name: bench
    description: approve → sudo benchmark
    capability: sudo
    requesters: {unix_groups: [writt_requesters]}
    approvers: {users: [writt_bob]}
    duration: {default: 10m, max: 1h}
    reason: {required: false}
    pending_timeout: 1h
YAML
# sudo as in the integration tests: the stock PAM stack, the writ_approval + writ_audit plugins
# (which also report accepts, refusals and exits to writd: its session tracking).
sudo_pam_plain
sudo_conf_plugin

start_writd() { bench_start_writd --session-grace "$GRACE"; }
rss_line() { awk '/^(VmRSS|RssAnon|RssFile)/ {printf "%s %.1f MiB  ", $1, $2/1024}' "/proc/$1/status"; }

echo "== writd benchmarks: $(nproc) cores, $(uname -r), $(sudo -V | head -1), writd $("$WRITD" --version), $(date -u '+%F %H:%M UTC')"
echo "build: $BUILD (writd built $(date -u -r "$WRITD" '+%F %H:%M UTC')); source tree when run: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- Sources CShims Package.swift 2>/dev/null || echo ' with uncommitted changes in Sources/')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the latencies)"
echo "sudo: stock PAM stack + Plugin writ_approval / writ_audit (sudo_conf_plugin); writd --session-grace $GRACE"

export WRIT STORE STATE
CLIENTS="python3 $BENCH/daemon_clients.py"

# Baseline: writd on an empty store — its RSS 5 s after start, and the approve and session
# figures, to compare with the same on 10,000 active grants below (printed at the end).
start_writd
sleep 5
baseline=$(rss_line "$WRITD_PID")
{ $CLIENTS approve "$REQUESTERS" writt_bob bench 30
  $CLIENTS drain "$WRITD_PID" "the approvals"
  $CLIENTS expiry "$WRITD_PID" "${SESSION_USERS[@]:30:3}"
  $CLIENTS sessions "$GRACE" 0 "${SESSION_USERS[@]:0:30}"; } >"$WORK/baseline.txt" 2>&1 ||
    { cat "$WORK/baseline.txt"; tail -5 "$WRITD_LOG"; exit 1; }
kill "$WRITD_PID"; wait "$WRITD_PID" 2>/dev/null || true
rm -f "$STATE"

# 100,000 grants over 10,000 users (writ-bench-seed: real schema and index, written through
# GrantStore), then exactly 10,000 of them made active — ending 2 to 26 hours from now, so that
# none falls due during the run — and every other one ended (expired or revoked). Written while
# writd is stopped; writd picks them up at start (it watches grants written behind its back).
rm -f "$STORE"
"$BUILD/writ-bench-seed" "$STORE" writt_seedowner 29999 100000 10000 >/dev/null
NOW=$(date +%s)
sqlite3 "$STORE" "UPDATE grants SET not_before = $NOW - 60, expires_at = $NOW + 7200 + (rowid * 7919) % 86400,
    revoked_at = NULL, revoked_by = NULL WHERE rowid % 10 = 0;
    UPDATE grants SET revoked_at = $NOW - 10, revoked_by = 'bench'
    WHERE rowid % 10 != 0 AND revoked_at IS NULL AND expires_at > $NOW;"
t0=$(date +%s.%N)
start_writd

echo "store: $(sqlite3 "$STORE" 'SELECT count(*) FROM grants') grants, $(sqlite3 "$STORE" "SELECT count(*) FROM grants WHERE revoked_at IS NULL AND expires_at > strftime('%s','now')") active ($(du -h "$STORE" | cut -f1)); writd up and answering $(python3 -c "print(round(($(date +%s.%N)-$t0)*1000))") ms after start (start-up watches every grant written while it was down)"
echo
echo "== 4. writd idle with 10,000 active grants (after 5 s to settle)"
sleep 5
echo "for comparison, writd on an empty store 5 s after start: $baseline"
$CLIENTS idle "$WRITD_PID" 60
if command -v strace >/dev/null; then
    timeout -s INT 10 strace -c -f -p "$WRITD_PID" -o "$WORK/strace.txt" 2>/dev/null || true
    calls=$(awk '$NF == "total" {print $4}' "$WORK/strace.txt")
    echo "writd syscalls over 10 s idle (strace -c -f -p PID, all threads): ${calls:-0}$( [ -n "$calls" ] && grep -E '^ +[0-9]' "$WORK/strace.txt" | sort -k4 -nr | head -4 | awk '{printf "%s%s %s", (NR==1?" (":", "), $NF, $4}' && echo ")")"
else
    echo "(strace not installed: syscall count skipped)"
fi

echo
echo "== 5. 1,000 concurrent status clients (Python speaking the wire protocol — 4-byte length + {\"v\":1,\"op\":\"status\"}, one request per connection — from 40 users, one process each)"
$CLIENTS status "$WRITD_PID" "$(IFS=,; echo "${CLIENT_USERS[*]}")" 25 writt_alice,writt_bob,writt_carol,writt_dave
$CLIENTS drain "$WRITD_PID" "the status clients"

echo
echo "== 1. approve → sudo allowed"
$CLIENTS approve "$REQUESTERS" writt_bob bench 100
$CLIENTS drain "$WRITD_PID" "the approvals"

echo
echo "== 2. expiry → sudo denied"
$CLIENTS expiry "$WRITD_PID" "${SESSION_USERS[@]:0:5}"

echo
echo "== 3. expiry → session ended"
$CLIENTS sessions "$GRACE" 3 "${SESSION_USERS[@]}"

echo
echo "== for comparison: the same on an empty store (writd started on a fresh store; run before the figures above)"
sed 's/^/  /' "$WORK/baseline.txt"

echo
echo "== afterwards"
echo "writd $(rss_line "$WRITD_PID")$(awk '/^Threads/ {print $2}' "/proc/$WRITD_PID/status") threads; lines in its log with error/warning: $(grep -ciE 'error|warning' "$WRITD_LOG" || true)"
echo "audit: $("$WRIT" audit verify 2>&1 | head -1)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
