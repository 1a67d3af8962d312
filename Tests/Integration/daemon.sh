# writd end to end: requests, approvals, expiry on time, ended sessions, audit. Sourced by
# suite.sh inside the sandbox (test users, /run, /var/log and /etc are the namespace's own).

source "$HERE/daemon-lib.sh"

# =================================================================================================
section "writd: start, policy, socket"
clear_grants
write_policy
sudo_pam_plain
sudo_conf_plugin
start_writd || fail "writd starts"
out=$(writ_as writt_alice status)
expect "status with no grants" "$out" "rc=0"$'\n'"no active grants"
out=$("$WRIT" policy validate "$POLICY")
expect "writ policy validate: the test policy is valid" "$out" "valid, 3 flow"
ls -la /run/writ/writd.sock >"$WORK/sock.txt"
expect "socket is world-connectable (the peer uid decides)" "$(cat "$WORK/sock.txt")" "^srw-rw-rw- 1 root root"

# =================================================================================================
section "writd: request, approve, sudo, expiry, ended root shell (alice asks, bob approves)"
out=$(sudo_as writt_alice /usr/bin/id -u)
expect "before: no grant, sudo refused with the line" "$out" "writ: no active sudo grant for writt_alice"
out=$(writ_as writt_alice request sudo --flow ops --for 30m --reason "no ticket" --no-wait)
expect "reason pattern enforced, with what to do" "$out" "rc=1"$'\n'"writ: .*INC-"
RID=$(file_request writt_alice --flow quick --for 8s)
expect "request filed (pending)" "$(request_state "$RID")" "^pending$"
out=$(writ_as writt_alice approve "$RID")
expect "self-approval refused" "$out" "rc=1"$'\n'"writ: you cannot approve your own request"
out=$(writ_as writt_dave approve "$RID")
expect "a non-approver cannot approve (or see) it" "$out" "rc=1"$'\n'"writ: no request $RID that you can see"
out=$(writ_as writt_bob requests)
expect "bob sees it in writ requests, with what it grants" "$out" "$RID +writt_alice +sudo as root: any command +[^ ]+ +quick"
t0=$(date +%s.%N)
out=$(writ_as writt_bob approve "$RID" --comment "go ahead")
expect "bob approves" "$out" "rc=0"$'\n'"approved $RID"
out=$(sudo_as writt_alice /usr/bin/id -u)
t1=$(date +%s.%N)
expect "after approval: alice's sudo works" "$out" "rc=0"$'\n'"0"
echo "approve→sudo allowed: $(python3 -c "print(round(($t1-$t0)*1000))") ms" | tee -a "$WORK/figures.txt" | sed "s/^/  figure: /"
GID=$(grant_of_request "$RID")
expect "exactly one grant for the request" "$(grants_of_request "$RID")" "^1$"
out=$(writ_as writt_alice status)
expect "writ status shows the grant with time left" "$out" "$GID +sudo .* [0-9]+s left"

# A root shell opened under the grant, on a pty: it must be warned and then ended at expiry.
mkfifo "$WORK/shin"
TS=$WORK/home/writt_alice/typescript
runuser -u writt_alice -- script -qfec "sudo -n /bin/bash --norc -i" "$TS" <"$WORK/shin" >/dev/null 2>&1 &
SCRIPT_PID=$!
exec 7>"$WORK/shin"
echo 'echo ROOTSHELL-$(id -u)' >&7
for _ in $(seq 100); do grep -q "ROOTSHELL-0" "$TS" 2>/dev/null && break; sleep 0.05; done
expect "a root shell runs under the grant" "$(cat "$TS")" "ROOTSHELL-0"
sleep 0.3
expect "writd tracks the sudo session" "$(open_sessions "$GID")" "^[1-9]"
EXP=$(grant_expires "$GID")
while [ "$(date +%s)" -lt "$EXP" ]; do sleep 0.05; done
out=$(sudo_as writt_alice /usr/bin/id -u)
expect "at expires_at: sudo denied at once (the modules check the time)" "$out" "writ: no active sudo grant for writt_alice"
for _ in $(seq 100); do kill -0 "$SCRIPT_PID" 2>/dev/null || break; sleep 0.05; done
tend=$(date +%s.%N)
exec 7>&-
if kill -0 "$SCRIPT_PID" 2>/dev/null; then fail "the root shell is ended at expiry"; kill -9 "$SCRIPT_PID"; else pass "the root shell is ended at expiry"; fi
wait "$SCRIPT_PID" 2>/dev/null
echo "expiry→root shell ended: $(python3 -c "print(round(($tend-$EXP)*1000))") ms" | tee -a "$WORK/figures.txt" | sed "s/^/  figure: /"
expect "the shell's terminal was warned before expiry" "$(cat "$TS")" "writ: your sudo grant $GID ends in"
expect "... and told at expiry" "$(cat "$TS")" "writ: your sudo grant $GID has ended"
expect_not "no process of alice's root shell is left" "$(ps -eo user,args | grep -E '^root .*bash --norc -i' | grep -v grep)" "bash"
expect "grant marked ended by writd" "$(watch_end_reason "$GID")" "^expired$"
for _ in $(seq 40); do grep -q '"event":"session.end"' "$AUDIT" && break; sleep 0.05; done
out=$("$WRIT" audit show --json)
for ev in request.create request.approve grant.issue sudo.accept sudo.exit grant.expire session.end; do
    expect "audit holds $ev" "$out" "\"event\":\"$ev\""
done
expect "audit: approval carries who and the policy version" "$out" "\"event\":\"request.approve\",\"actor\":\"writt_bob\".*\"policy_version\":\"[0-9a-f]{64}\""
out=$("$WRIT" audit verify)
expect "audit chain verifies" "$out" "chain intact"
expect "head hashes are anchored in syslog" "$(cat "$SYSLOG")" "writd\[[0-9]+\]: audit seq=[0-9]+ hash=[0-9a-f]{64}"

# =================================================================================================
section "writd: what an engineer and an approver see"
# Through a pipe (no terminal): the id must show at once, not when the request is decided.
(cd "$WORK/home/writt_alice" && runuser -u writt_alice -- "$WRIT" request sudo --flow dual \
    --command "/usr/bin/id -u" --reason "pipe test" 2>&1 | cat >"$WORK/request-out.txt") &
REQ_PID=$!
for _ in $(seq 100); do grep -q "filed" "$WORK/request-out.txt" 2>/dev/null && break; sleep 0.05; done
out=$(cat "$WORK/request-out.txt")
expect "writ request through a pipe prints the id at once, and what it asks for" "$out" "^request r_[0-9a-z]+ filed: sudo as root on [^ ]+, only \"/usr/bin/id -u\", for 10m — waiting for 0/2 approvals"
RID2=$(grep -oE 'r_[0-9a-z]+' "$WORK/request-out.txt" | head -1)
out=$(writ_as writt_bob requests)
expect "writ requests: a command-limited request does not look like full root" "$out" "$RID2 +writt_alice +sudo as root: \"/usr/bin/id -u\" "
out=$(writ_as writt_bob approve "$RID2")
expect "approve says exactly what is being granted" "$out" "rc=0"$'\n'"approval recorded for $RID2 \(writt_alice asks for sudo as root on [^ ]+, only \"/usr/bin/id -u\", for 10m\): 1/2"
out=$(writ_as writt_carol approve "$RID2")
expect "... and once approved, what was granted" "$out" "rc=0"$'\n'"approved $RID2: writt_alice has sudo as root on [^ ]+, only \"/usr/bin/id -u\", for 10m \(grant g_"
wait "$REQ_PID"
G2=$(grant_of_request "$RID2")
writ_as writt_alice revoke "$G2" >/dev/null
expect "the waiting request ends with the grant's scope" "$(cat "$WORK/request-out.txt")" "approved $RID2 by writt_carol: you can now use sudo \(sudo as root on [^ ]+, only \"/usr/bin/id -u\", for 10m\)"
out=$(writ_as writt_alice flows)
expect "writ flows: the flows alice may request, what they grant, who approves" "$out" "ops +sudo as root: any command +30m \(max 2h\) +1 of writt_bob, writt_carol; auto_approve oncall +required, \^INC-\[0-9\]\+"
expect "... every flow she may request" "$out" "dual +sudo as root: any command +10m \(max 1h\) +2 of writt_bob, writt_carol"
expect "writ flows: someone in no flow is told so" "$(writ_as writt_carol flows)" "rc=0"$'\n'"no flow lets you request anything on this host"
out=$(writ_as writt_alice audit --user writt_bob)
expect "writ audit --user as a user: refused, not ignored" "$out" "rc=1"$'\n'"writ: only root sees the audit records of other users"
expect "writ audit verify as a user: it is the audit log that is root's" "$(writ_as writt_alice audit verify)" "rc=1"$'\n'"writ: writ audit verify needs root: the audit log belongs to root"
out=$(writ_as writt_alice request sudo --flow ops --for 1h --reason "INC-1 $(printf 'x%.0s' $(seq 1500))" --no-wait)
expect "an over-long reason is refused with its real length" "$out" "rc=1"$'\n'"writ: the reason is 1506 characters, over the limit of 500"
expect "--for -5m: a clear error, not 'missing value'" "$(writ_as writt_alice request sudo --flow ops --for -5m --reason INC-1)" "rc=64"$'\n'"writ: .*-5m"
expect "writ, writd and the sudo plugins print one version" "$("$WRIT" --version) $("$WRITD" --version) $(sudo -V | sed -n 's/^writ approval plugin version //p')" "^([0-9.]+) \1 \1$"
out=$("$WRIT" audit show)
expect_not "writ audit (human): no row repeats the 64-hex policy hash" "$out" "[0-9a-f]{64}"
with=$("$WRIT" audit show --json | grep -c '"policy_version"')
shown=$(printf '%s\n' "$out" | grep -c "policy=[0-9a-f]\{12\}" || true)
[ "$shown" -ge 1 ] && [ "$shown" -lt "$with" ] && pass "writ audit (human): the short policy hash shows where it changes ($shown of $with records)" \
    || fail "writ audit (human): the short policy hash shows where it changes" "$shown of $with"

# =================================================================================================
section "writd: one sudo run, one audit record"
cat >/etc/pam.d/sudo <<PAM
#%PAM-1.0
auth       include    common-auth
account    include    common-account
session    required   pam_permit.so
session    optional   $MODULE store=$STORE
PAM
CG=$(grant --user writt_carol --capability sudo --for 10m)
n0=$(wc -l <"$AUDIT")
expect "carol's sudo runs under her grant" "$(sudo_as writt_carol /usr/bin/true)" "^rc=0"
for _ in $(seq 100); do tail -n +$((n0 + 1)) "$AUDIT" | grep -q '"event":"sudo.exit"' && break; sleep 0.05; done
sleep 0.3
new=$(tail -n +$((n0 + 1)) "$AUDIT" | grep '"actor":"writt_carol"')
expect "one sudo run: one sudo.accept record, naming the grant" "$(printf '%s\n' "$new" | grep '"event":"sudo.accept"' | grep -c '"grant":"g_')" "^1$"
expect "... one sudo.exit" "$(printf '%s\n' "$new" | grep -c '"event":"sudo.exit"')" "^1$"
expect "... and nothing else (no second accept, no session.open from the PAM hook)" "$(printf '%s\n' "$new" | grep -c .)" "^2$"
n0=$(wc -l <"$AUDIT")
expect "dave's sudo without a grant is refused" "$(sudo_as writt_dave /bin/true)" "^rc=1"
for _ in $(seq 100); do tail -n +$((n0 + 1)) "$AUDIT" | grep -q '"event":"sudo.reject"' && break; sleep 0.05; done
sleep 0.3
new=$(tail -n +$((n0 + 1)) "$AUDIT" | grep '"actor":"writt_dave"')
expect "one refused sudo: one sudo.reject record and nothing else" "$(printf '%s\n' "$new" | grep -c .) $(printf '%s\n' "$new" | grep -c '"event":"sudo.reject"')" "^1 1$"
sudo_pam_plain
revoke "$CG"
# Session reports follow managed_group= too: users outside the group are not Writ's.
printf 'session optional %s capability=login managed_group=writt_managed\n' "$MODULE" >/etc/pam.d/writt-sessions
n0=$(wc -l <"$AUDIT")
pamtester writt-sessions writt_carol open_session close_session >/dev/null 2>&1
pamtester writt-sessions writt_alice open_session close_session >/dev/null 2>&1
for _ in $(seq 100); do tail -n +$((n0 + 1)) "$AUDIT" | grep -q '"event":"session.close","actor":"writt_alice"' && break; sleep 0.05; done
new=$(tail -n +$((n0 + 1)) "$AUDIT")
expect "a managed user's session is reported to writd" "$(printf '%s\n' "$new" | grep -c '"event":"session.open","actor":"writt_alice"')" "^1$"
expect "a session outside the managed group is not" "$(printf '%s\n' "$new" | grep -c '"actor":"writt_carol"')" "^0$"
rm -f /etc/pam.d/writt-sessions

# A session opened under one grant keeps running when the user holds another one at its end.
RID=$(file_request writt_alice --flow quick --for 5s)
writ_as writt_bob approve "$RID" >/dev/null
GA=$(grant_of_request "$RID")
runuser -u writt_alice -- sudo -n /bin/sleep 300 &
SLEEPER=$!
sleep 0.5
RID=$(file_request writt_alice --flow ops --for 20m --reason "INC-9 renewal")
writ_as writt_bob approve "$RID" >/dev/null
GB=$(grant_of_request "$RID")
EXPA=$(grant_expires "$GA")
while [ "$(date +%s)" -le "$((EXPA + 1))" ]; do sleep 0.1; done
sleep 0.5
if kill -0 "$SLEEPER" 2>/dev/null; then pass "renewed: a session outlives the grant it was opened under"; else fail "renewed: a session outlives the grant it was opened under"; fi
expect "... it now runs under the new grant" "$(open_sessions "$GB")" "^[1-9]"
writ_as writt_alice revoke "$GB" >/dev/null
for _ in $(seq 100); do kill -0 "$SLEEPER" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$SLEEPER" 2>/dev/null; then fail "... and ends when that one is revoked"; kill -9 "$SLEEPER"; else pass "... and ends when that one is revoked"; fi
wait "$SLEEPER" 2>/dev/null

# =================================================================================================
section "writd: an ssh login session is ended when its login grant ends (sshd session hook)"
# sshd_login_stack SESSION-MODULE: sshd's PAM stack with pam_writ, after SESSION-MODULE.
sshd_login_stack() {
    cat >/etc/pam.d/sshd <<PAM
auth       required   pam_deny.so
account    required   $MODULE store=$STORE capability=login
account    include    common-account
session    required   $1
session    optional   $MODULE capability=login
password   required   pam_deny.so
PAM
}
sshd_login_stack pam_permit.so
start_sshd "$WORK/ssh2" writt_carol
LGID=$("$WRIT" grant add --store "$STORE" --user writt_carol --capability login --for 6s --reason "login test")
expect "root's grant add goes through writd (it watches the grant)" "$(watch_count "$LGID")" "^1$"
ssh -i "$WORK/ssh2/client_key" -p "$PORT" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR writt_carol@127.0.0.1 'echo LOGGED-IN; exec sleep 1000' >"$WORK/ssh2/out" 2>&1 &
SSH_PID=$!
for _ in $(seq 100); do grep -q LOGGED-IN "$WORK/ssh2/out" && break; sleep 0.05; done
expect "ssh login under the login grant" "$(cat "$WORK/ssh2/out")" "LOGGED-IN"
sleep 0.3
expect "writd tracks the sshd session (reported by the PAM session hook)" "$(session_service "$LGID")" "^sshd$"
LEXP=$(grant_expires "$LGID")
for _ in $(seq 200); do kill -0 "$SSH_PID" 2>/dev/null || break; sleep 0.05; done
lend=$(date +%s.%N)
if kill -0 "$SSH_PID" 2>/dev/null; then fail "the ssh session is ended at expiry"; kill "$SSH_PID"; else pass "the ssh session is ended at expiry"; fi
wait "$SSH_PID" 2>/dev/null
echo "expiry→ssh session ended: $(python3 -c "print(round(($lend-$LEXP)*1000))") ms" | tee -a "$WORK/figures.txt" | sed "s/^/  figure: /"
expect_not "no sleep of carol's session is left" "$(ps -eo user,args | grep -E '^writt_c.*sleep 1000' | grep -v grep)" "sleep"
for _ in $(seq 40); do grep -q '"event":"session.end".*"service":"sshd"' "$AUDIT" && break; sleep 0.05; done
expect "audit: the ended ssh session" "$(cat "$AUDIT")" '"event":"session.end","actor":"writd".*"user":"writt_carol".*"service":"sshd"'
stop_sshd

# =================================================================================================
section "writd: what a login starts outside its process tree ends with its grant (audit session)"
# pam_loginuid gives the login an audit session id, which everything it starts keeps: setsid -f,
# a double fork, nohup (ignores SIGHUP: killed after the grace), tmux and screen servers.
sshd_login_stack pam_loginuid.so
start_sshd "$WORK/ssh3" writt_carol
LGID=$("$WRIT" grant add --store "$STORE" --user writt_carol --capability login --for 8s --reason "escape test")
escapes='setsid -f sleep 1001 </dev/null >/dev/null 2>&1; (sleep 1002 </dev/null >/dev/null 2>&1 &);
nohup sleep 1003 </dev/null >/dev/null 2>&1 & TMUX_TMPDIR=$HOME tmux new-session -d "sleep 1004";
mkdir -m 0700 -p $HOME/.screen && SCREENDIR=$HOME/.screen screen -dmS esc sleep 1005'
ssh -i "$WORK/ssh3/client_key" -p "$PORT" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR writt_carol@127.0.0.1 "$escapes; echo LOGGED-IN; exec sleep 1000" >"$WORK/ssh3/out" 2>&1 &
SSH_PID=$!
for _ in $(seq 100); do grep -q LOGGED-IN "$WORK/ssh3/out" && break; sleep 0.05; done
expect "ssh login that starts five escapes" "$(cat "$WORK/ssh3/out")" "LOGGED-IN"
sleep 0.5
declare -A ESC=([setsid]=1001 [double-fork]=1002 [nohup]=1003 [tmux]=1004 [screen]=1005)
for name in "${!ESC[@]}"; do
    pid=$(pgrep -u writt_carol -xf "sleep ${ESC[$name]}" | head -1)
    expect "escape $name: its sleep runs" "${pid:-none}" "^[0-9]+$"
done
ppid1=$(ps -o ppid= -p "$(pgrep -u writt_carol -xf 'sleep 1001' | head -1)" 2>/dev/null | tr -d ' ')
expect_not "setsid -f left the login's process tree (its parent is not the login's)" "$ppid1" "^$SSH_PID$"
LEXP=$(grant_expires "$LGID")
declare -A GONE=()
for _ in $(seq 300); do
    for name in "${!ESC[@]}"; do
        [ -n "${GONE[$name]:-}" ] && continue
        pgrep -u writt_carol -xf "sleep ${ESC[$name]}" >/dev/null || GONE[$name]=$(date +%s.%N)
    done
    [ "${#GONE[@]}" -eq "${#ESC[@]}" ] && break
    sleep 0.05
done
for name in setsid double-fork nohup tmux screen; do
    if [ -n "${GONE[$name]:-}" ]; then
        pass "escape $name: ended with the login grant"
        echo "expiry→escape ended ($name): $(python3 -c "print(round((${GONE[$name]}-$LEXP)*1000))") ms" | tee -a "$WORK/figures.txt" | sed "s/^/  figure: /"
    else
        fail "escape $name: ended with the login grant"
    fi
done
pkill -9 -u writt_carol 2>/dev/null || true
kill "$SSH_PID" 2>/dev/null; wait "$SSH_PID" 2>/dev/null
stop_sshd

# sudo -b under a command-limited grant: sudo's front end exits at once, the command is reparented
# to init, and only its audit session (and run-as user, and start) ties it to the grant.
# dave holds no other sudo grant (the sessions of one would move to it instead of ending).
for g in $("$WRIT" grant list --store "$STORE" --json | python3 -c 'import json,sys; [print(g["id"]) for g in json.load(sys.stdin) if g.get("user") == "writt_dave"]'); do revoke "$g"; done
BGID=$(grant --user writt_dave --capability sudo --for 30m --command "/usr/bin/sleep 1010")
( cd "$WORK/home/writt_dave" && sh -c 'echo 29004 >/proc/self/loginuid && exec runuser -u writt_dave -- sudo -n -b /usr/bin/sleep 1010' ) >/dev/null 2>&1
sleep 0.5
bpid=$(pgrep -u root -xf "/usr/bin/sleep 1010" | head -1)
expect "sudo -b: the command runs as root" "${bpid:-none}" "^[0-9]+$"
bparent=$(ps -o ppid= -p "${bpid:-1}" | tr -d ' ')
expect "sudo -b: ... under a sudo whose front end (the tracked process) has exited: reparented to init" "$(ps -o ppid= -p "${bparent:-1}" | tr -d ' ')" "^1$"
t0=$(date +%s.%N)
revoke "$BGID"
for _ in $(seq 200); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.02; done
t1=$(date +%s.%N)
if kill -0 "$bpid" 2>/dev/null; then fail "sudo -b: the command ends when the grant is revoked"; kill -9 "$bpid"; else pass "sudo -b: the command ends when the grant is revoked"; fi
echo "revoke→sudo -b command ended: $(python3 -c "print(round(($t1-$t0)*1000))") ms" | tee -a "$WORK/figures.txt" | sed "s/^/  figure: /"
for _ in $(seq 40); do grep -q '"event":"session.end".*"service":"audit-session"' "$AUDIT" && break; sleep 0.05; done
expect "audit: what the grant left behind was ended" "$(grep '"event":"session.end"' "$AUDIT" | tail -1)" "\"grant\":\"$BGID\".*\"service\":\"audit-session\""
# An audit session that is not the user's own login (an admin's shell that ran `su`/`runuser` to
# the user) is never a grant's scope: the admin's root processes in it survive the grant's end.
BGID=$(grant --user writt_dave --capability sudo --for 30m --command "/usr/bin/sleep 1011")
# (The admin's process starts after dave's sudo: it would be in a sudo scope taken from that session.)
sh -c 'echo 0 >/proc/self/loginuid && cd "$1" && runuser -u writt_dave -- sudo -n -b /usr/bin/sleep 1011; sleep 0.3; setsid -f sleep 1020 >/dev/null 2>&1' _ "$WORK/home/writt_dave" >/dev/null 2>&1
sleep 0.5
apid=$(pgrep -u root -xf "sleep 1020" | head -1)
revoke "$BGID"
sleep 1
if [ -n "$apid" ] && kill -0 "$apid" 2>/dev/null; then pass "an admin's root process in the same audit session survives the user's grant"; else fail "an admin's root process in the same audit session survives the user's grant"; fi
pkill -9 -xf "sleep 1020" 2>/dev/null || true; pkill -9 -xf "/usr/bin/sleep 1011" 2>/dev/null || true

# =================================================================================================
section "writd: deny, unanswered expiry, cancel, revoke, extend, two approvals, auto-approval"
RID=$(file_request writt_alice --flow ops --for 10m --reason "INC-1 disk")
out=$(writ_as writt_carol deny "$RID" --reason "use the runbook")
expect "carol denies" "$out" "rc=0"
expect "denied request is denied" "$(request_state "$RID")" "^denied$"
expect "no grant after a denial" "$(grants_of_request "$RID")" "^0$"
out=$(writ_as writt_bob approve "$RID")
expect "a decided request cannot be approved" "$out" "rc=1"$'\n'"writ: the request is denied, not pending"

RID=$(file_request writt_alice --flow quick)
sleep 4.2
expect "unanswered request expires on time" "$(request_state "$RID")" "^expired$"
out=$(writ_as writt_bob approve "$RID")
expect "an expired request cannot be approved" "$out" "rc=1"

RID=$(file_request writt_alice --flow ops --reason "INC-2")
out=$(writ_as writt_alice cancel "$RID")
expect "requester cancels" "$out" "rc=0"$'\n'"cancelled $RID"
expect "cancelled" "$(request_state "$RID")" "^cancelled$"

RID=$(file_request writt_alice --flow ops --for 20m --reason "INC-3")
writ_as writt_bob approve "$RID" >/dev/null
GID=$(grant_of_request "$RID")
expect "grant works before revocation" "$(sudo_as writt_alice /usr/bin/true)" "rc=0"
out=$(writ_as writt_carol revoke "$GID" --reason "done early")
expect "an approver revokes mid-grant" "$out" "rc=0"$'\n'"revoked $GID"
expect "revoked: sudo denied at once" "$(sudo_as writt_alice /usr/bin/true)" "writ: no active sudo grant"
out=$(writ_as writt_dave revoke "$GID")
expect "someone unrelated cannot revoke" "$out" "rc=1"

RID=$(file_request writt_alice --flow ops --for 20m --reason "INC-4")
writ_as writt_bob approve "$RID" >/dev/null
GID=$(grant_of_request "$RID")
old=$(grant_expires "$GID")
out=$(writ_json writt_alice extend "$GID" --for 30m --reason "INC-4 still going" --no-wait --json)
XID=$(json_field "$out" id)
expect "extension filed through the flow (pending)" "$(json_field "$out" state)" "^pending$"
writ_as writt_carol approve "$XID" >/dev/null
new=$(grant_expires "$GID")
expect "approved extension moves expires_at by 30m" "$((new - old))" "^1800$"
out=$(writ_as writt_alice extend "$GID" --for 5h --reason "INC-4" --no-wait)
expect "an extension over the flow's maximum is refused" "$out" "rc=1"$'\n'"writ: .*maximum"
"$WRIT" grant revoke --store "$STORE" "$GID" >/dev/null

RID=$(file_request writt_alice --flow dual --for 10m)
out=$(writ_as writt_bob approve "$RID")
expect "two-approval flow: the first approval is recorded" "$out" "approval recorded for $RID \(writt_alice asks for sudo as root on [^ ]+, any command, for 10m\): 1/2"
expect "... and no grant yet" "$(grants_of_request "$RID")" "^0$"
out=$(writ_as writt_bob approve "$RID")
expect "... the same approver twice does not count" "$out" "rc=1"$'\n'"writ: writt_bob has already approved"
out=$(writ_as writt_carol approve "$RID")
expect "... the second distinct approval issues the grant" "$out" "approved $RID"
expect "... one grant" "$(grants_of_request "$RID")" "^1$"

out=$(writ_json writt_dave request sudo --flow ops --for 1h --reason "INC-5 paged" --json)
expect "on-call requester auto-approved" "$(json_field "$out" state)" "^approved$"
expect "... by the rule, clamped to its maximum" "$(json_field "$out" auto_rule)/$(json_field "$out" duration)" "^oncall/600$"
expect "... and sudo works" "$(sudo_as writt_dave /usr/bin/id -u)" "rc=0"$'\n'"0"

# writ request waits and follows the request; Ctrl-C leaves it pending and says how to follow it.
(cd "$WORK/home/writt_alice" && runuser -u writt_alice -- "$WRIT" request sudo --flow dual --for 5m >"$WORK/wait.out" 2>&1; echo "rc=$?" >>"$WORK/wait.out") &
WAITER=$!
for _ in $(seq 100); do RID=$(latest_request state=pending flow=dual); [ -n "$RID" ] && break; sleep 0.05; done
writ_as writt_bob approve "$RID" >/dev/null; writ_as writt_carol approve "$RID" >/dev/null
wait "$WAITER"
expect "writ request waits, then prints what the user can now do" "$(cat "$WORK/wait.out")" "approved $RID by writt_carol: you can now use sudo.*rc=0"
(cd "$WORK/home/writt_alice" && exec runuser -u writt_alice -- "$WRIT" request sudo --flow dual --for 5m >"$WORK/int.out" 2>&1) &
WAITER=$!
sleep 1
pkill -INT -u writt_alice -f "writ request sudo --flow dual"
wait "$WAITER"; rc=$?
expect "Ctrl-C while waiting: exit 2, the request stays pending, and how to follow it" "rc=$rc $(cat "$WORK/int.out")" "^rc=2 .*still pending.*writ status.*writ cancel r_"

# writ audit: root sees everything, a user only what is about them.
out=$(writ_as writt_dave audit --json)
expect "writ audit as a user: their own records" "$out" "\"requester\":\"writt_dave\""
expect_not "... and nobody else's" "$out" "\"requester\":\"writt_alice\""

# Concurrent approvals of one request: exactly one grant.
RID=$(file_request writt_alice --flow ops --for 10m --reason "INC-6")
pids=()
for u in writt_bob writt_carol writt_bob writt_carol; do (writ_as $u approve "$RID" >/dev/null) & pids+=($!); done
wait "${pids[@]}"
expect "concurrent approvals: exactly one grant" "$(grants_of_request "$RID")" "^1$"

# =================================================================================================
section "writd: bad input on the socket and in the policy"
out=$(python3 "$HERE/wire.py" garbage)
expect "garbage frame: error reply, connection dropped" "$out" "bad_request"
out=$(python3 "$HERE/wire.py" oversized)
expect "oversized frame: refused by its header" "$out" "too_large"
out=$(python3 "$HERE/wire.py" version)
expect "unknown protocol version: refused" "$out" "unsupported_version"
out=$(python3 "$HERE/wire.py" slow)
expect "a slow client is timed out" "$out" "timeout"
out=$(python3 "$HERE/wire.py" truncated)
expect "a truncated frame then EOF: nothing breaks" "$out" "closed"
out=$(runuser -u writt_alice -- python3 "$HERE/wire.py" forged-report)
expect "a user cannot forge module reports" "$out" "forbidden"
out=$(python3 "$HERE/wire.py" flood 2>&1)
expect "a client that floods requests without reading is cut off" "$out" "^cut off after [0-9]+ replies$"
out=$(runuser -u writt_dave -- python3 "$HERE/wire.py" many)
expect "one user holding connections: capped at 32, the rest refused" "$out" "^held=32 refused=68$"
pids=()
for i in $(seq 200); do (writ_as writt_alice status >"$WORK/st.$i") & pids+=($!); done
wait "${pids[@]}"
answered=$(head -qn1 "$WORK"/st.* | grep -c '^rc=0$')
expect "200 concurrent writ status from one user: all answered (busy ones retry)" \
    "$answered $(grep -L '^rc=0$' "$WORK"/st.* | head -3 | xargs -r cat)" "^200 $"
rm -f "$WORK"/st.*
out=$(python3 "$HERE/wire.py" ping)
expect "after all that writd still serves everyone" "$out" "\"ok\": true"

cp "$POLICY" "$WORK/policy.good"
cat >"$POLICY" <<'YAML'
version: 1
flows:
  - name: broken
    capability: sudoo
    aprovers: {users: [writt_bob]}
    duration: {default: 3h, max: 1h}
YAML
out=$("$WRIT" policy validate "$POLICY" 2>&1)
expect "policy errors: each at file:line:column (missing key)" "$out" "policy.yaml:3:5: 'requesters' is missing in flow broken"
expect "... a bad value, with a suggestion" "$out" "policy.yaml:4:17: unknown capability 'sudoo' in flow broken — did you mean 'sudo'\?"
expect "... a typo'd key, with a suggestion" "$out" "policy.yaml:5:5: unknown key 'aprovers' in flow broken — did you mean 'approvers'\?"
expect "... an inconsistent duration" "$out" "policy.yaml:6:25: the default duration 3h in flow broken is over its max 1h"
expect "... and the exit status says so" "$("$WRIT" policy validate "$POLICY" >/dev/null 2>&1; echo "rc=$?")" "^rc=1$"
kill -HUP "$WRITD_PID"; sleep 0.5
out=$(python3 "$HERE/wire.py" ping)
expect "SIGHUP with a bad policy: writd keeps the last good one and says so" "$out" "\"policy_error\": \".*policy.yaml:"
expect "... and still takes requests under the old policy" "$(file_request writt_alice --flow dual)" "^r_"
expect "... and logs why" "$(cat "$WRITD_LOG")" "policy not loaded \(keeping policy"
cp "$WORK/policy.good" "$POLICY"
kill -HUP "$WRITD_PID"; sleep 0.5
out=$(python3 "$HERE/wire.py" ping)
expect "fixed policy reloaded on SIGHUP" "$out" "\"policy_version\": \"[0-9a-f]{64}\""
expect_not "... and the reload error is gone" "$out" "policy_error"

# =================================================================================================
section "writd: SIGKILL during request/approve/expiry traffic, then restart"
kills=0
for round in 1 2 3 4 5 6; do
    for i in 1 2 3; do
        r=$(file_request writt_alice --flow quick --for 2s)
        [ -n "$r" ] && (writ_as writt_bob approve "$r" >/dev/null &)
    done
    sleep "0.$((RANDOM % 5))"
    kill -KILL "$WRITD_PID" 2>/dev/null; wait "$WRITD_PID" 2>/dev/null; kills=$((kills + 1))
    start_writd || break
done
sleep 3
for _ in 1 2; do python3 "$HERE/wire.py" ping >/dev/null; sleep 1; done
expect "writd killed $kills times and restarted" "$kills" "^6$"
expect "no request has two grants" "$(requests_with_two_grants)" "^0$"
approved_without_grant grant >"$WORK/lost.txt"
expect "no approved request lost its grant" "$(cat "$WORK/lost.txt")" "^0$"
expect "no expiry missed: every ended grant is marked ended" "$(unmarked_expiries)" "^0$"
expect "no audit record lost (outbox empty)" "$(audit_outbox_size)" "^0$"
expect "the audit chain still verifies" "$("$WRIT" audit verify)" "chain intact"
grants_in_audit=$(grep -c '"event":"grant.issue"' "$AUDIT")
grants_in_store=$(grant_count_from_requests)
expect "every issued grant has exactly one grant.issue record" "$grants_in_audit" "^$grants_in_store$"

out=$(writ_as writt_alice doctor --policy "$POLICY" --pam-dir /etc/pam.d)
expect "writ doctor reports writd and its policy" "$out" "OK +writd +running.*OK +policy \(writd\)"
stop_writd
out=$(writ_as writt_alice status)
expect "writd down: the CLI says so in one line" "$out" "rc=1"$'\n'"writ: writd is not running"
out=$(sudo_as writt_dave /usr/bin/id -u)
expect "writd down: enforcement goes on from the store" "$out" "rc=0"$'\n'"0"
sudo_conf_plain
