# writd as a fleet's agent, with the real modules: enrolled with a writ-server (SQLite, trial
# mode), the server's grants enforced by sudo here, revoked there and refused here, the server
# away (enforcement goes on, expiry on time), and what changed while it was away applied when
# it is back. Sourced by suite.sh after daemon.sh (its writd helpers: daemon-lib.sh).

# =================================================================================================
section "fleet: writd enrolls with writ-server and enforces its grants (real sudo)"
if [ -z "${WRIT_SERVER:-}" ] || [ ! -x "$WRIT_SERVER" ]; then
    fail "fleet: WRIT_SERVER names a writ-server binary (test.sh sets it)" "WRIT_SERVER=${WRIT_SERVER:-}"
else
stop_writd
clear_grants
# sudo as daemon.sh sets it up (the scenarios before this one leave their own configuration):
# Writ's account check in sudo's PAM stack, and the approval and audit plugins.
sudo_pam_plain
sudo_conf_plugin
SDIR=$WORK/fleet-server
start_server() {
    : >"$WORK/server.out"
    "$WRIT_SERVER" serve --state-dir "$SDIR" --listen "127.0.0.1:${1:-0}" --log-level warning --policy "$POLICY" \
        >"$WORK/server.out" 2>>"$WORK/server.log" &
    SERVER_PID=$!
    for _ in $(seq 400); do grep -q "^listening on" "$WORK/server.out" && break; sleep 0.05; done
    PORT=$(sed -n 's/^listening on 127\.0\.0\.1://p' "$WORK/server.out")
}
stop_server() { kill -TERM "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; }
server_cli() { "$WRIT_SERVER" "$@" --state-dir "$SDIR" 2>&1; }
# until SECONDS CMD...: runs CMD every 50 ms until it succeeds; fails after SECONDS.
until_ok() {
    local limit=$1; shift
    local end=$(($(date +%s) + limit))
    while [ "$(date +%s)" -lt "$end" ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
    return 1
}
sudo_works() { [ "$(sudo_as writt_alice /usr/bin/id -u)" = "rc=0"$'\n'"0" ]; }
sudo_refused() { ! sudo_works; }
# in_store ID: the grant is in grants.db and not revoked (polled instead of sudo: refused sudo
# runs are audited, and a budget would soon count them instead).
in_store() { [ "$(grant_revoked "$1")" = no ]; }
revoked_in_store() { [ "$(grant_revoked "$1")" = yes ]; }

start_server
URL=https://127.0.0.1:$PORT
expect "writ-server listens (its CA made at first start)" "$PORT" "^[0-9]+$"
expect "the CA key is root's alone" "$(stat -c %a "$SDIR/ca/ca.key")" "^600$"
out=$(server_cli host enroll "$SHORT" --url "$URL")
TOKEN=$(printf '%s\n' "$out" | sed -n 2p | tr -d ' ')
SHA=$(printf '%s\n' "$out" | sed -n 's/.*--ca-sha256 //p')
expect "host enroll prints the one command to run on the host (the token on stdin)" "$out" \
    "echo wet_[0-9a-f]{64} \| writd enroll --server $URL --token-file - --ca-sha256 [0-9a-f]{64}"
out=$(echo "$TOKEN" | "$WRITD" enroll --server "$URL" --token-file - --ca-sha256 "$(printf '0%.0s' $(seq 64))" \
    --agent-dir "$WORK/agent" 2>&1)
expect "a CA that is not the one pinned: refused, nothing sent" "$out" "does not have the SHA-256 given"
out=$(echo "$TOKEN" | "$WRITD" enroll --server "$URL" --token-file - --ca-sha256 "$SHA" --agent-dir "$WORK/agent" 2>&1)
expect "writd enroll with the printed command" "$out" "enrolled as $SHORT with $URL"
expect "the host's key is root's alone" "$(stat -c %a "$WORK/agent/key.pem")" "^600$"
out=$("$WRITD" enroll --server "$URL" --token "$TOKEN" --ca-sha256 "$SHA" --agent-dir "$WORK/agent2" 2>&1)
expect "the token works once" "$out" "unknown, used or expired"

start_writd --server "$URL" --agent-dir "$WORK/agent" || fail "writd starts as an agent"
has_cursor() { [ -n "$(fleet_cursor)" ]; }
until_ok 20 has_cursor || fail "the agent takes its snapshot" "$(tail -5 "$WRITD_LOG")"
expect "no grant: sudo refused" "$(sudo_as writt_alice /usr/bin/id -u)" "writ: no active sudo grant for writt_alice"
# writ on an enrolled host: writd relays to the server as the user the kernel names.
out=$(writ_as writt_alice request sudo --flow ops --for 30m --reason "INC-7 through the host" --no-wait)
expect "writ request on an enrolled host: filed on the server" "$out" "rc=0"$'\n'"pending r_[0-9a-f]+ \(sudo as root on $SHORT, any command, for 30m\): 0/1 approvals from writt_bob, writt_carol"
RID=$(printf '%s\n' "$out" | grep -oE 'r_[0-9a-f]+' | head -1)
out=$(writ_as writt_carol request sudo --flow ops --for 30m --reason "INC-7" --no-wait)
expect "someone the flow does not list as a requester: refused by the server, saying why" "$out" "rc=1"$'\n'"writ: .*writt_carol"
out=$(writ_as writt_bob requests)
expect "the approver sees it through the host" "$out" "$RID +writt_alice +sudo"
out=$(writ_as writt_alice status)
expect "the requester's status shows it pending on the server" "$out" "$RID .*pending"
t0=$(date +%s.%N)
out=$(writ_as writt_bob approve "$RID")
expect "writ approve on the host: approved on the server" "$out" "rc=0"$'\n'"approved $RID: writt_alice has sudo as root on $SHORT, for 30m \(grant g_"
GR=$(printf '%s\n' "$out" | grep -oE 'g_[0-9a-f]{16}' | head -1)
until_ok 30 in_store "$GR" || fail "the approved grant reaches grants.db" "$(tail -5 "$WRITD_LOG")"
t1=$(date +%s.%N)
expect "approved through the host: sudo works" "$(sudo_as writt_alice /usr/bin/id -u)" "rc=0"$'\n'"0"
echo "fleet, SQLite trial store: writ approve on the host→grant in grants.db: $(python3 -c "print(round(($t1-$t0)*1000))") ms" | tee -a "$WORK/figures.txt" | sed "s/^/  figure: /"
out=$(writ_as writt_alice extend "$GR" --for 10m --reason "INC-7 more time" --no-wait)
expect "writ extend on the host: an extension request on the server" "$out" "rc=0"$'\n'"pending r_[0-9a-f]+"
XID=$(printf '%s\n' "$out" | grep -oE 'r_[0-9a-f]+' | head -1)
end_before=$(grant_expires "$GR")
out=$(writ_as writt_bob approve "$XID")
expect "the extension approved on the host" "$out" "rc=0"
extended() { [ "$(grant_expires "$GR")" -gt "$end_before" ]; }
until_ok 30 extended || fail "the extension reaches grants.db" "$(tail -5 "$WRITD_LOG")"
expect "the extended end is in grants.db: 10 min more" "$(( $(grant_expires "$GR") - end_before ))" "^(59[0-9]|600)$"
out=$(writ_as writt_alice revoke "$GR")
expect "writ revoke of her own grant on the host: revoked on the server" "$out" "rc=0"
until_ok 30 revoked_in_store "$GR" || fail "her revocation reaches grants.db" "$(tail -5 "$WRITD_LOG")"
expect "revoked through the host: sudo refused" "$(sudo_as writt_alice /usr/bin/id -u)" "writ: no active sudo grant for writt_alice"

t0=$(date +%s.%N)
G=$(server_cli grant add --user writt_alice --host "$SHORT" --for 10m --reason "INC-7 fleet")
expect "the server's admin grants alice sudo on this host" "$G" "^g_[0-9a-f]{16}$"
until_ok 30 in_store "$G" || fail "the server's grant reaches grants.db" "$(tail -5 "$WRITD_LOG")"
t1=$(date +%s.%N)
expect "the server's grant: sudo works here" "$(sudo_as writt_alice /usr/bin/id -u)" "rc=0"$'\n'"0"
echo "fleet, SQLite trial store, the grant added by another process: server grant→in grants.db: $(python3 -c "print(round(($t1-$t0)*1000))") ms" | tee -a "$WORK/figures.txt" | sed "s/^/  figure: /"
expect "grants.db holds it with this host's uid" "$(_store_db "SELECT uid FROM grants WHERE id='$G'")" "^$(id -u writt_alice)$"

t0=$(date +%s.%N)
out=$(server_cli grant revoke "$G" --reason "done")
expect "revoked on the server" "$out" "$G revoked"
# Polled in grants.db, not by running sudo: every sudo run is reported to writd and audited (an
# fsync each), and a loop of them queues writd's work behind its own reports.
until_ok 30 revoked_in_store "$G" || fail "the revocation reaches grants.db" "$(tail -5 "$WRITD_LOG")"
t1=$(date +%s.%N)
echo "fleet, SQLite trial store: server revoke→revoked in grants.db: $(python3 -c "print(round(($t1-$t0)*1000))") ms" | tee -a "$WORK/figures.txt" | sed "s/^/  figure: /"
expect "revoked on the server: refused here" "$(sudo_as writt_alice /usr/bin/id -u)" "writ: no active sudo grant for writt_alice"

# The server goes away: what the host has is enforced to the second.
G2=$(server_cli grant add --user writt_alice --host "*" --for 15s --reason "INC-8 short")
until_ok 30 in_store "$G2" || fail "a short grant arrives"
stop_server
expect "server away: the grant still works" "$(sudo_as writt_alice /usr/bin/id -u)" "rc=0"$'\n'"0"
EXP=$(grant_expires "$G2")
while [ "$(date +%s)" -lt "$EXP" ]; do sleep 0.05; done
expect "server away: refused at expires_at (the modules check the clock)" "$(sudo_as writt_alice /usr/bin/id -u)" "writ: no active sudo grant"
# A grant made while the agent cannot hear: it arrives once the server is back on its port.
G3=$(server_cli grant add --user writt_alice --host "*" --for 10m --reason "INC-9 while away")
start_server "$PORT"
t0=$(date +%s.%N)
until_ok 30 in_store "$G3" || fail "server back: what changed meanwhile arrives" "$(tail -5 "$WRITD_LOG")"
t1=$(date +%s.%N)
expect "server back: the grant made while away works" "$(sudo_as writt_alice /usr/bin/id -u)" "rc=0"$'\n'"0"
echo "fleet: server back→a grant made while away in grants.db: $(python3 -c "print(round(($t1-$t0)*1000))") ms" | tee -a "$WORK/figures.txt" | sed "s/^/  figure: /"
# The fleet's audit: this host's chain against the server's copy of its head.
uploaded() { "$WRIT" audit verify --audit-log "$AUDIT" 2>&1 | grep -q "matches the server's copy of this host's chain up to record [0-9]*$"; }
until_ok 20 uploaded || true
out=$("$WRIT" audit verify --audit-log "$AUDIT" 2>&1)
expect "writ audit verify on the agent: the log matches the server's copy of its head" "$out" \
    "chain intact.*"$'\n'"matches the server's copy of this host's chain up to record [0-9]+$"
out=$(server_cli audit verify --host "$SHORT")
expect "writ-server audit verify: the host's uploaded chain is intact" "$out" "^host $SHORT: [0-9]+ records, chain intact"
out=$(server_cli audit show --host "$SHORT" --user writt_alice --json)
expect "writ-server audit --host --user: alice's sudo runs from the host's chain" "$out" "^$SHORT"$'\t'".*\"event\":\"sudo.accept\",\"actor\":\"writt_alice\""
expect "... and her request through the host from the server's" "$out" "^server"$'\t'".*\"event\":\"request.create\",\"actor\":\"writt_alice\""
# The last record rewritten here (the chain alone cannot show it): the server's copy does.
python3 - "$AUDIT" <<'PY'
import sys
path = sys.argv[1]
lines = open(path).read().split("\n")
last = len(lines) - 2
lines[last] = lines[last].replace('"time":', '"time":1', 1)
open(path, "w").write("\n".join(lines))
PY
out=$("$WRIT" audit verify --audit-log "$AUDIT" 2>&1)
expect "the last record rewritten: writ audit verify finds it against the server's copy" "$out" \
    "here is not the one the server holds \(hash [0-9a-f]{64}\): this log was rewritten"
stop_writd
# writd stopped on an enrolled host: the comparison cannot be made, and verify says so.
out=$("$WRIT" audit verify --audit-log "$AUDIT" --agent-dir "$WORK/agent" 2>&1)
expect "writd stopped: writ audit verify says it could not compare with the server" "$out" \
    "not compared with the server's copy of this host's chain: writd is not running"
stop_server
fi

# =================================================================================================
section "scripts/install-server.sh (in a nested namespace: install targets and /etc are overlays)"
if [ -n "${WRIT_SERVER:-}" ] && [ -x "$WRIT_SERVER" ]; then
ROOTDIR=$(cd "$HERE/../.." && pwd)
out=$(unshare --mount --propagation private bash -c '
    i=0
    for d in /etc /usr/local/sbin /var/lib; do
        i=$((i + 1)); mkdir -p "'"$WORK"'/svr$i/up" "'"$WORK"'/svr$i/work"
        mount -t overlay overlay -o "lowerdir=$d,upperdir='"$WORK"'/svr$i/up,workdir='"$WORK"'/svr$i/work" "$d"
    done
    "'"$ROOTDIR"'/scripts/install-server.sh" --binary "'"$WRIT_SERVER"'" --no-start --name 127.0.0.1 2>&1 | tail -2
    stat -c "%U:%G %a %n" /usr/local/sbin/writ-server /etc/writ/writ-server.env /etc/writ/fleet-policy.yaml /var/lib/writ-server /etc/systemd/system/writ-server.service
    grep WRIT_SERVER_OPTIONS= /etc/writ/writ-server.env
    getent passwd writ-server | cut -d: -f1,6,7
    # As the unit runs it: the installed options, the defaults for state and policy.
    cd /
    setpriv --reuid=writ-server --regid=writ-server --init-groups -- /usr/local/sbin/writ-server serve --listen 127.0.0.1:0 --name 127.0.0.1 \
        >"'"$WORK"'/svr.out" 2>"'"$WORK"'/svr.log" &
    pid=$!
    for _ in $(seq 200); do grep -q "^listening" "'"$WORK"'/svr.out" && break; sleep 0.05; done
    cat "'"$WORK"'/svr.out"
    grep -o "policy [0-9a-f]* loaded from /etc/writ/fleet-policy.yaml: [0-9]* flow(s)" "'"$WORK"'/svr.log"
    stat -c "%U %a %n" /var/lib/writ-server/ca/ca.key
    kill -TERM $pid; wait $pid; echo "stopped: rc=$?"
' 2>&1)
expect "install-server.sh installs the binary and says where its options and policy are" "$out" \
    "installed /usr/local/sbin/writ-server; options in /etc/writ/writ-server.env, policy in /etc/writ/fleet-policy.yaml"
expect "... the binary root's, 755" "$out" "^root:root 755 /usr/local/sbin/writ-server$"
expect "... its options readable by the server's group only" "$out" "^root:writ-server 640 /etc/writ/writ-server.env$"
expect "... the shipped policy, root's and not writable by others" "$out" "^root:root 644 /etc/writ/fleet-policy.yaml$"
expect "... the state directory the server's alone" "$out" "^writ-server:writ-server 700 /var/lib/writ-server$"
expect "... the options it was given" "$out" 'WRIT_SERVER_OPTIONS="--listen 0.0.0.0:8443 --name 127.0.0.1"'
expect "... the system account, no login" "$out" "^writ-server:/var/lib/writ-server:/usr/sbin/nologin$"
expect "the installed server starts as writ-server with the defaults" "$out" "^listening on 127\.0\.0\.1:[0-9]+$"
expect "... and loads the installed policy" "$out" "policy [0-9a-f]+ loaded from /etc/writ/fleet-policy.yaml: 1 flow\(s\)"
expect "... its CA key is its own, 600" "$out" "^writ-server 600 /var/lib/writ-server/ca/ca.key$"
expect "... and it stops cleanly on SIGTERM" "$out" "stopped: rc=0"
fi
