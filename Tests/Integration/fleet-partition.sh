# writd as a fleet's agent cut off from writ-server by a real network partition: the agent runs in
# a network namespace of the test's own (a veth pair, private addresses), writ-server listens on
# the host's end, and nftables inside the namespace DROPs (not rejects) all traffic with the
# server, so TCP sees silence as in a real partition. During it the host enforces what it has
# (sudo with a grant works, a short grant ends on time, a revocation on the server is not heard);
# at the heal the revocation arrives (the time is printed as a figure); with --strict-after, a
# partition longer than the limit refuses the server's grants until the server answers again.
# Sourced by suite.sh after fleet.sh (writd's helpers: daemon-lib.sh). Needs ip (iproute2) and
# nft (nftables); only the namespace's own addresses are targets, and the namespace, the veth pair
# and the processes are gone at the end, also on failure (trap).

# =================================================================================================
section "fleet partition: writd in a network namespace, cut off from writ-server by nftables (DROP)"
if [ -z "${WRIT_SERVER:-}" ] || [ ! -x "$WRIT_SERVER" ]; then
    fail "fleet partition: WRIT_SERVER names a writ-server binary (test.sh sets it)" "WRIT_SERVER=${WRIT_SERVER:-}"
elif ! command -v nft >/dev/null || ! command -v ip >/dev/null; then
    fail "fleet partition: ip and nft are installed (.ci/run installs iproute2 and nftables)"
else
stop_writd
clear_grants
sudo_pam_plain
sudo_conf_plugin
FP=$WORK/partition
mkdir -p "$FP"
FP_SDIR=$FP/server
FP_LOG=$FP/writd.log
# The agent's own state and audit log (fleet.sh's writd state follows another server); the store
# stays $STORE, the one sudo's modules read. STATE is put back at the end.
FP_SAVED_STATE=$STATE
STATE=$FP/writd.db
FP_NS=writ-it-$$
FP_VH=writ$$h   # the host's end of the veth pair (interface names: 15 characters at most)
FP_VN=writ$$n   # the namespace's end
FP_NET=10.251.$(($$ % 250 + 1))
FP_SRV=$FP_NET.1
FP_AGT=$FP_NET.2
FP_SERVER_PID=
FP_SLEEPER=

# fp_kill_tree PID: the process and its descendants (by parent pid).
fp_kill_tree() {
    local c
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do fp_kill_tree "$c"; done
    kill -9 "$1" 2>/dev/null
    return 0
}
fp_cleanup() {
    [ -n "${FP_SLEEPER:-}" ] && { fp_kill_tree "$FP_SLEEPER"; wait "$FP_SLEEPER" 2>/dev/null; FP_SLEEPER=; }
    [ -n "${WRITD_PID:-}" ] && { kill -TERM "$WRITD_PID" 2>/dev/null; wait "$WRITD_PID" 2>/dev/null; WRITD_PID=; }
    [ -n "${FP_SERVER_PID:-}" ] && { kill -TERM "$FP_SERVER_PID" 2>/dev/null; wait "$FP_SERVER_PID" 2>/dev/null; FP_SERVER_PID=; }
    ip link del "$FP_VH" 2>/dev/null
    ip netns del "$FP_NS" 2>/dev/null
    return 0
}
# Cleanup also when the suite dies here; suite.sh's own trap is put back at the end.
trap 'fp_cleanup; teardown_sandbox' EXIT

fp_ms() { date +%s%3N; }
fp_until() {   # fp_until SECONDS CMD...: CMD every 50 ms until it succeeds; fails after SECONDS.
    local limit=$1; shift
    local end=$(($(fp_ms) + limit * 1000))
    while [ "$(fp_ms)" -lt "$end" ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
    "$@" >/dev/null 2>&1
}
fp_mark() { echo "=== test $(date -u +%FT%T.%3N) $*" >>"$FP_LOG"; }
fp_server_cli() { "$WRIT_SERVER" "$@" --state-dir "$FP_SDIR" 2>&1; }
fp_sudo() { sudo_as "$1" /usr/bin/id -u; }
fp_live() { [ "$(grant_revoked "$1")" = no ]; }
fp_revoked() { [ "$(grant_revoked "$1")" = yes ]; }
# Strict mode closes a suspended grant's window in grants.db (expires_at now); the server's
# answer puts the real end back.
fp_suspended() { [ "$(grant_expires "$1")" -le "$(date +%s)" ]; }
fp_restored() { [ "$(grant_expires "$1")" -gt "$(date +%s)" ]; }
fp_partition() {
    fp_mark "partition: nft drops all traffic with $FP_SRV in $FP_NS"
    ip netns exec "$FP_NS" nft -f - <<NFT
table inet writ_partition {
    chain output { type filter hook output priority 0; policy accept; ip daddr $FP_SRV drop; }
    chain input { type filter hook input priority 0; policy accept; ip saddr $FP_SRV drop; }
}
NFT
}
fp_heal() { ip netns exec "$FP_NS" nft delete table inet writ_partition; fp_mark "heal: table deleted"; }

if ip -4 -o addr show | grep -q " $FP_NET\." || ip -4 route show | grep -q "^$FP_NET\."; then
    fail "fleet partition: $FP_NET.0/30 is free on this machine" "$(ip -4 -o addr show | grep " $FP_NET\.")"
elif ! out=$({ ip netns add "$FP_NS" &&
    ip link add "$FP_VH" type veth peer name "$FP_VN" &&
    ip link set "$FP_VN" netns "$FP_NS" &&
    ip addr add "$FP_SRV/30" dev "$FP_VH" && ip link set "$FP_VH" up &&
    ip netns exec "$FP_NS" ip addr add "$FP_AGT/30" dev "$FP_VN" &&
    ip netns exec "$FP_NS" ip link set "$FP_VN" up &&
    ip netns exec "$FP_NS" ip link set lo up; } 2>&1); then
    fail "a network namespace of the test's own, reached over a veth pair" "$out"
else
expect "a network namespace of the test's own, reached over a veth pair" \
    "$(ip netns exec "$FP_NS" ip -4 -o addr show dev "$FP_VN" 2>&1)" "inet $FP_AGT/30"

: >"$FP/server.out"
"$WRIT_SERVER" serve --state-dir "$FP_SDIR" --listen "$FP_SRV:0" --log-level info \
    >"$FP/server.out" 2>>"$FP/server.log" &
FP_SERVER_PID=$!
for _ in $(seq 400); do grep -q "^listening on" "$FP/server.out" && break; sleep 0.05; done
FP_PORT=$(sed -n "s/^listening on $FP_SRV://p" "$FP/server.out")
expect "writ-server listens on the host's end of the veth pair" "$FP_PORT" "^[0-9]+$"
FP_URL=https://$FP_SRV:$FP_PORT

out=$(fp_server_cli host enroll "$SHORT" --url "$FP_URL")
FP_TOKEN=$(printf '%s\n' "$out" | sed -n 2p | tr -d ' ')
FP_SHA=$(printf '%s\n' "$out" | sed -n 's/.*--ca-sha256 //p')
out=$(echo "$FP_TOKEN" | ip netns exec "$FP_NS" "$WRITD" enroll --server "$FP_URL" --token-file - \
    --ca-sha256 "$FP_SHA" --agent-dir "$FP/agent" 2>&1)
expect "writd enroll from inside the namespace" "$out" "enrolled as $SHORT with $FP_URL"

out=$("$WRITD" --heartbeat 31 --server "$FP_URL" --agent-dir "$FP/agent" 2>&1; echo "rc=$?")
expect "writd refuses a heartbeat past 30 s" "$out" "--heartbeat takes 1 to 30 seconds, or 0 for none"$'\n'"rc=64"

# The agent in the namespace, strict mode at its smallest (writd refuses less than 1m): it does
# nothing in the first, short partition, and refuses the server's grants in the second, long one.
# Heartbeats every 2 s (the default, said here because the test relies on it): the poll sent
# before a partition is dropped after 6 s of silence.
ip netns exec "$FP_NS" "$WRITD" --store "$STORE" --state "$STATE" --audit-log "$FP/audit.jsonl" \
    --policy "$POLICY" --session-grace 2 --warn-before 3 --heartbeat 2 \
    --server "$FP_URL" --agent-dir "$FP/agent" --strict-after 1m >>"$FP_LOG" 2>&1 &
WRITD_PID=$!
for _ in $(seq 100); do
    [ -S /run/writ/writd.sock ] && python3 "$HERE/wire.py" ping >/dev/null 2>&1 && break
    sleep 0.05
done
fp_has_cursor() { [ -n "$(fleet_cursor)" ]; }
fp_until 20 fp_has_cursor || fail "the agent in the namespace takes its snapshot" "$(tail -5 "$FP_LOG")"

# Alice's grant is revoked during the first partition; dave's is short (it ends during it);
# carol's outlives everything (strict mode refuses it, the heal brings it back).
GA=$(fp_server_cli grant add --user writt_alice --host "$SHORT" --for 10m --reason "INC-21 partition")
GC=$(fp_server_cli grant add --user writt_carol --host "$SHORT" --for 10m --reason "INC-22 partition")
fp_until 30 fp_live "$GA" && fp_until 30 fp_live "$GC" &&
    pass "the server's grants reach the agent's grants.db through the veth pair" ||
    fail "the server's grants reach the agent's grants.db through the veth pair" "$(tail -5 "$FP_LOG")"
expect "the server's grant: sudo works" "$(fp_sudo writt_alice)" "rc=0"$'\n'"0"
t_add=$(date +%s)
GD=$(fp_server_cli grant add --user writt_dave --host "$SHORT" --for 12s --reason "INC-23 short")
fp_until 30 fp_live "$GD" || fail "a short grant arrives" "$(tail -5 "$FP_LOG")"
EXP=$(grant_expires "$GD")

# --- partition 1, shorter than the agent's long-poll timeout ------------------------------------
fp_partition
expect "partition: the namespace's nft table drops traffic with the server" \
    "$(ip netns exec "$FP_NS" nft list table inet writ_partition 2>&1)" "ip daddr $FP_SRV drop"
expect "partition: the grant the host has still works" "$(fp_sudo writt_alice)" "rc=0"$'\n'"0"
expect "partition: the short grant works before its end" "$(fp_sudo writt_dave)" "rc=0"$'\n'"0"
out=$(fp_server_cli grant revoke "$GA" --reason "revoked during the partition")
expect "partition: alice's grant revoked on the server" "$out" "$GA revoked"
expect "partition: the server cannot be reached from the namespace (no answer, no refusal: a timeout)" \
    "$(ip netns exec "$FP_NS" timeout 1 bash -c "echo >/dev/tcp/$FP_SRV/$FP_PORT" 2>&1; echo "rc=$?")" "rc=124"
expect "partition: the short grant's end here is the server's (±2 s of clock uncertainty)" \
    "$((EXP - t_add))" "^(10|11|12|13)$"
while [ "$(date +%s)" -lt "$EXP" ]; do sleep 0.05; done
out=$(fp_sudo writt_dave)
t_sudo=$(fp_ms)
expect "partition: the short grant ends on time, sudo refused at expires_at" "$out" "writ: no active sudo grant for writt_dave"
expect "... within 2 s of expires_at" "$(((t_sudo - EXP * 1000) / 1000))" "^[01]$"
sleep 0.5
expect "partition: the revocation made on the server is not heard here yet" "$(grant_revoked "$GA")" "^no$"
# The long-poll sent before the cut hears no heartbeat for 6 s and is dropped; the agent then
# tries a TCP connection every half second (logged after two silent tries).
expect "partition: the silent long-poll was dropped (no heartbeat), not waited out" "$(cat "$FP_LOG")" \
    "cannot reach https://[^ ]+: (ReadTimeout|readTimeout|HTTPClientError.readTimeout)"
expect "partition: writd tries a connection every half second" "$(cat "$FP_LOG")" \
    "no server answers a connection \(a partition\?\); trying every half second"
expect "partition: so the host keeps enforcing what it has (alice's sudo works)" "$(fp_sudo writt_alice)" "rc=0"$'\n'"0"

t0=$(fp_ms)
fp_heal
# The first connection attempt after the heal gets through (each tries for 0.5 s), and the next
# long-poll is answered at once with the revocation: within a second (the figure); the bound is
# for a loaded machine.
fp_until 10 fp_revoked "$GA"
t1=$(fp_ms)
fp_mark "revocation applied after $((t1 - t0)) ms"
if fp_revoked "$GA"; then pass "heal: the revocation made during the partition reaches grants.db"; else
    fail "heal: the revocation made during the partition reaches grants.db" "$(tail -5 "$FP_LOG")"; fi
echo "fleet partition (DROP, ~12 s, shorter than the long-poll timeout): heal→revocation in grants.db: $((t1 - t0)) ms" |
    tee -a "$WORK/figures.txt" | sed "s/^/  figure: /"
expect "heal: alice's sudo refused" "$(fp_sudo writt_alice)" "writ: no active sudo grant for writt_alice"

# --- partition 2, longer than --strict-after 1m --------------------------------------------------
# A grant for bob, revoked on the server during this partition.
GB=$(fp_server_cli grant add --user writt_bob --host "$SHORT" --for 10m --reason "INC-24 partition")
fp_until 30 fp_live "$GB" || fail "bob's grant arrives" "$(tail -5 "$FP_LOG")"
# A command bob runs under it, still running when the server revokes the grant.
runuser -u writt_bob -- sudo -n /bin/sleep 2917 >/dev/null 2>&1 &
FP_SLEEPER=$!
fp_session() { [ "$(open_sessions "$GB")" -ge 1 ]; }
fp_until 10 fp_session || fail "writd tracks bob's sudo session" "$(tail -5 "$FP_LOG")"
t_cut=$(date +%s)
fp_partition
expect "strict partition: before the limit, carol's grant still works" "$(fp_sudo writt_carol)" "rc=0"$'\n'"0"
out=$(fp_server_cli grant revoke "$GB" --reason "revoked during the strict partition")
expect "strict partition: bob's grant revoked on the server" "$out" "$GB revoked"
# The limit counts from the last answer, which came at the latest when bob's grant arrived: no
# polling before 55 s.
while [ "$(date +%s)" -lt $((t_cut + 55)) ]; do sleep 0.5; done
fp_until 20 fp_suspended "$GC"
t_strict=$(date +%s)
if fp_suspended "$GC"; then pass "strict: past --strict-after, the server's grants are suspended in grants.db"; else
    fail "strict: past --strict-after, the server's grants are suspended in grants.db" "$(tail -5 "$FP_LOG")"; fi
expect "strict: not before 1m of silence" "$((t_strict - t_cut >= 59))" "^1$"
expect "strict: sudo with a live grant refused" "$(fp_sudo writt_carol)" "writ: no active sudo grant for writt_carol"
expect "strict: writd says why" "$(cat "$FP_LOG")" "no answer from the server for [0-9]+ s: [0-9]+ fleet grant\(s\) refused for new use \(strict mode\)"
expect "strict: bob's revocation is not heard yet" "$(grant_revoked "$GB")" "^no$"
if kill -0 "$FP_SLEEPER" 2>/dev/null; then pass "strict: the session bob opened before goes on (strict mode refuses new use only)"; else
    fail "strict: the session bob opened before goes on (strict mode refuses new use only)"; fi

t0=$(fp_ms)
fp_heal
# As above: connection attempts every half second, the first answer puts the server's times back.
fp_until 10 fp_restored "$GC"
t1=$(fp_ms)
fp_mark "carol's grant in force again after $((t1 - t0)) ms"
if fp_restored "$GC"; then pass "strict heal: the server answers, carol's grant is in force again"; else
    fail "strict heal: the server answers, carol's grant is in force again" "$(tail -5 "$FP_LOG")"; fi
echo "fleet partition (DROP, >1m, longer than the long-poll timeout), strict mode: heal→grants in force again: $((t1 - t0)) ms" |
    tee -a "$WORK/figures.txt" | sed "s/^/  figure: /"
expect "strict heal: carol's sudo works again" "$(fp_sudo writt_carol)" "rc=0"$'\n'"0"
expect "strict heal: writd says the server's grants are in force again" "$(cat "$FP_LOG")" \
    "the server answers again; its grants are in force again"
# Bob's grant, suspended and then revoked on the server: the same answer carries the revocation.
fp_until 3 fp_revoked "$GB"
fp_mark "bob's revocation: revoked_at $(grant_revoked "$GB")"
if fp_revoked "$GB"; then pass "strict heal: the revocation made during the partition is recorded in grants.db"; else
    fail "strict heal: the revocation made during the partition is recorded in grants.db" \
        "revoked_at still empty 3 s after the server answered: expires_at $(grant_expires "$GB") (the suspension's), watch end_reason '$(watch_end_reason "$GB")'"; fi
expect "strict heal: bob's sudo refused" "$(fp_sudo writt_bob)" "writ: no active sudo grant for writt_bob"
fp_sleeper_gone() { ! kill -0 "$FP_SLEEPER" 2>/dev/null; }
if fp_until 5 fp_sleeper_gone; then pass "strict heal: bob's session is ended (revoked on the server)"; else
    fail "strict heal: bob's session is ended (revoked on the server)" "still running 5 s after the server answered; watch end_reason '$(watch_end_reason "$GB")'"; fi
fi

fp_pids="${WRITD_PID:-} ${FP_SERVER_PID:-}"
fp_cleanup
trap teardown_sandbox EXIT
fp_left=""
for p in $fp_pids; do kill -0 "$p" 2>/dev/null && fp_left="$fp_left $p"; done
expect "cleanup: writd and writ-server have stopped" "left:$fp_left" "^left:$"
expect_not "cleanup: no command of the test is left running" "$(ps -eo args)" "^/bin/sleep 2917"
expect_not "cleanup: the namespace is gone" "$(ip netns list)" "$FP_NS"
expect_not "cleanup: the veth pair is gone" "$(ip -o link show 2>&1)" "$FP_VH|$FP_VN"
expect_not "cleanup: the test's addresses are gone" "$(ip -4 -o addr show)" " $FP_NET\."
STATE=$FP_SAVED_STATE
clear_grants
fi
