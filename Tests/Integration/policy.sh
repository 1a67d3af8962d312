# Approval as code end to end (issue 4): conditions, auto_deny, approval steps with escalation,
# hooks run for real (Python with writ_hook, sh; as nobody), --field, provenance, writ policy
# test with a real hook, writ policy replay over the audit log writd wrote. Sourced by suite.sh
# after daemon.sh (whose helpers it uses), inside the sandbox.

section "approval as code: hooks, conditions, steps, policy test and replay"
T_START=$(date +%s)
clear_grants
sudo_pam_plain
sudo_conf_plugin
ROOTDIR=$(cd "$HERE/../.." && pwd)
POLDIR=$WORK/policy-repo
HOOKDIR=$WORK/hooks
PYLIB=$WORK/pylib
NOTIFIED=$WORK/notified
install -d -m 0755 "$POLDIR" "$POLDIR/.git/refs/heads" "$HOOKDIR" "$PYLIB"
install -d -m 0755 -o nobody "$NOTIFIED"
install -m 0644 "$ROOTDIR/hooks/python/writ_hook.py" "$PYLIB/writ_hook.py"
COMMIT=4f1c0ffee0ddba11c0ffee0ddba11c0ffee0dd51
echo "ref: refs/heads/main" >"$POLDIR/.git/HEAD"
echo "$COMMIT" >"$POLDIR/.git/refs/heads/main"

# on_request: approve for 90s with a ticket OK-…, deny BAD-…, otherwise leave it to people and
# add writt_carol. It also proves it runs as nobody with the fixed environment.
cat >"$HOOKDIR/ticket.py" <<'PY'
#!/usr/bin/env python3
import os, writ_hook

def decide(req):
    ticket = req.fields.get("ticket", "")
    if os.getuid() == 0 or "SUDO_USER" in os.environ or "WRIT_CANARY" in os.environ:
        return writ_hook.deny("the hook ran with privileges or the caller's environment")
    if ticket.startswith("OK-"):
        return writ_hook.approve(f"ticket {ticket} is open (hook uid {os.getuid()})", duration=90)
    if ticket.startswith("BAD-"):
        return writ_hook.deny(f"ticket {ticket} does not exist")
    return writ_hook.defer("no ticket: people decide", add_approvers=["writt_carol"])

writ_hook.run(decide)
PY
# on_approve: a plain sh hook that keeps what it was told.
cat >"$HOOKDIR/notify.sh" <<SH
#!/bin/sh
cat >"$NOTIFIED/\$(date +%s%N).json"
SH
printf '#!/bin/sh\nsleep 30\n' >"$HOOKDIR/slow.sh"
chmod 0755 "$HOOKDIR"/*

POLICY=$POLDIR/policy.yaml
cat >"$POLICY" <<YAML
version: 1
hook_user: nobody
flows:
  - name: hooked
    capability: sudo
    requesters: {users: [writt_alice]}
    approvers: {users: [writt_bob]}
    duration: {default: 1m, max: 10m}
    reason: {required: false}
    auto_deny:
      - name: too-long
        when: 'request.duration > duration("5m")'
        message: ask for 5m or less
    hooks:
      on_request: {path: $HOOKDIR/ticket.py, timeout: 5s}
      on_approve: $HOOKDIR/notify.sh
  - name: slow
    capability: login
    requesters: {users: [writt_alice]}
    approvers: {users: [writt_bob]}
    reason: {required: false}
    hooks: {on_request: {path: $HOOKDIR/slow.sh, timeout: 1s}}
  - name: staged
    capability: sudo
    requesters: {users: [writt_dave]}
    duration: {default: 1m, max: 10m}
    reason: {required: false}
    steps:
      - {name: team, approvers: {users: [writt_bob]}}
      - name: security
        when: '!has(request.fields.change)'
        approvers: {users: [writt_carol]}
        escalate: {after: 3s, to: {users: [writt_alice]}}
YAML
chmod 0644 "$POLICY"
out=$("$WRIT" policy validate "$POLICY")
expect "policy validate: valid, with the checkout's git commit" "$out" "valid, 3 flow\(s\).*\(git ${COMMIT:0:12}\)"
start_writd --hook-library "$PYLIB" || fail "writd starts with the hooks policy"

# --- on_request hook approves
export WRIT_CANARY=leak
RID=$(file_request writt_alice --flow hooked --for 2m --field ticket=OK-17)
unset WRIT_CANARY
for _ in $(seq 50); do [ "$(request_state "$RID")" = pending ] || break; sleep 0.1; done
expect "the on_request hook approves (a Python hook with writ_hook, as nobody)" "$(request_state "$RID")" "^approved$"
out=$(writ_json writt_alice status --json)
expect "... for the 90s the hook said, not the 2m asked for" "$out" "\"duration\":90"
expect "... and the request says what decided it" "$out" "\"decided_via\":\"hook on_request \(${HOOKDIR//\//\\/}/ticket.py\)\""
out=$(sudo_as writt_alice /usr/bin/id -u)
expect "... and sudo works at once" "$out" "rc=0"$'\n'"0"
expect "hook.run is audited with its result" "$(grep '"event":"hook.run"' "$AUDIT" | head -1)" '"result":"approve","reason":"ticket OK-17 is open \(hook uid 65534\)"'
expect "request.approve names the hook and the policy's commit" \
    "$(grep '"event":"request.approve"' "$AUDIT" | grep "$RID")" '"actor":"hook:on_request".*"decided_by":"hook on_request.*"policy_commit":"'"$COMMIT"'"'
for _ in $(seq 50); do [ -n "$(ls "$NOTIFIED")" ] && break; sleep 0.1; done
out=$(cat "$NOTIFIED"/*.json 2>/dev/null)
expect "the on_approve hook (sh) is told" "$out" '"event": ?"on_approve"'
expect "... with the decision and the grant" "$out" '"decision": ?\{"by": ?"hook:on_request".*"grant_id": ?"g_.*"state": ?"approved"'
expect "... and the policy's commit" "$out" '"git_commit": ?"'"$COMMIT"'"'

# --- on_request hook denies, defers
RID2=$(file_request writt_alice --flow hooked --field ticket=BAD-3)
for _ in $(seq 50); do [ "$(request_state "$RID2")" = pending ] || break; sleep 0.1; done
expect "the hook denies a request whose ticket does not exist" "$(request_state "$RID2")" "^denied$"
out=$(writ_json writt_alice status --json)
expect "... and the requester reads why" "$out" "\"decision_note\":\"ticket BAD-3 does not exist\""
RID3=$(file_request writt_alice --flow hooked)
for _ in $(seq 50); do grep -q "\"request\":\"$RID3\".*\"result\":\"defer\"" "$AUDIT" && break; sleep 0.1; done
out=$(writ_as writt_carol approve "$RID3")
expect "a deferring hook adds an approver, who may then approve" "$out" "rc=0"$'\n'"approved $RID3"

# --- auto_deny, fields
out=$(writ_as writt_alice request sudo --flow hooked --for 8m --field ticket=OK-1)
expect "auto_deny decides at once, with the rule's message" "$out" "rc=1"$'\n'"denied r_[0-9a-f]+ by auto_deny rule too-long: ask for 5m or less"
out=$(writ_as writt_alice request sudo --flow hooked --field "Bad Name=x" --no-wait)
expect "a malformed --field is refused with what to write" "$out" "rc=64"$'\n'"writ: field name Bad Name is not allowed"

# --- a hook that times out leaves the request to people, and syslog says why
RID4=$(json_field "$(writ_json writt_alice request login --flow slow --no-wait --json)" id)
for _ in $(seq 40); do grep -q "hook on_request.*slow.sh.*failed for request $RID4" "$SYSLOG" && break; sleep 0.1; done
expect "a hook that times out: logged to syslog (authpriv) with what happens next" "$(cat "$SYSLOG")" "hook on_request .*slow.sh failed for request $RID4: hook did not finish within 1000 ms and was killed.* — the request goes to its approvers"
out=$(writ_as writt_bob approve "$RID4")
expect "... and people decide it as usual" "$out" "rc=0"$'\n'"approved $RID4"

# --- steps and escalation
SID=$(file_request writt_dave --flow staged)
out=$(writ_as writt_carol approve "$SID")
expect "step 2's approver cannot approve before step 1" "$out" "rc=1"$'\n'"writ: writt_carol approves another step; this request waits for step team"
out=$(writ_as writt_bob approve "$SID")
expect "step 1 approved: the request waits for step 2" "$out" "rc=0"$'\n'"approval recorded for $SID"
out=$(writ_as writt_dave status)
expect "the requester sees which step it waits for" "$out" "$SID .*pending +1/2 security"
out=$(writ_as writt_alice approve "$SID")
expect "the escalation approver cannot approve before the escalation" "$out" "rc=1"
sleep 3.5
out=$(writ_as writt_alice approve "$SID")
expect "after 3s unanswered the step escalates, and the new approver approves" "$out" "rc=0"$'\n'"approved $SID"
expect "request.escalate is audited" "$(grep '"event":"request.escalate"' "$AUDIT")" "\"request\":\"$SID\".*\"step\":\"security\",\"added\":\"writt_alice\""
SID2=$(file_request writt_dave --flow staged --field change=CHG-12)
out=$(writ_as writt_bob approve "$SID2")
expect "a step whose condition is false is skipped: one approval is enough" "$out" "rc=0"$'\n'"approved $SID2"

# --- writ audit shows provenance; the chain holds
out=$("$WRIT" audit --since 1h)
expect "writ audit shows which rule or hook decided" "$out" "request.deny +policy:too-long .*decided_by=auto_deny rule too-long"
expect "writ audit verify: the chain holds" "$("$WRIT" audit verify)" "chain intact"

# --- writ policy test with the hook run for real (as nobody), and a failing case
cat >"$POLDIR/policy.tests.yaml" <<'YAML'
version: 1
defaults: {request: {capability: sudo, host: web-01}}
cases:
  - name: a ticket that is open is approved by the hook
    request: {user: writt_alice, flow: hooked, duration: 2m, fields: {ticket: OK-1}}
    expect: {outcome: approved, by: hook on_request, duration: 90s}
  - name: long requests are denied by rule
    request: {user: writt_alice, flow: hooked, duration: 9m}
    expect: {outcome: denied, rule: too-long}
  - name: without a change ticket there are two steps
    request: {user: writt_dave, flow: staged}
    expect:
      outcome: pending
      steps: [{name: team, approvers: [writt_bob]}, {name: security, approvers: [writt_carol]}]
YAML
out=$("$WRIT" policy test "$POLICY" --hook-library "$PYLIB" --verbose 2>&1; echo "rc=$?")
expect "writ policy test: every case passes, the hook run for real" "$out" "PASS  a ticket that is open is approved by the hook.*ran $HOOKDIR/ticket.py: approve.*3 case\(s\): 3 passed, 0 failed"$'\n'"rc=0"
printf '  - name: wrong on purpose\n    request: {user: writt_alice, flow: hooked, fields: {ticket: BAD-1}}\n    expect: {outcome: approved}\n' >>"$POLDIR/policy.tests.yaml"
out=$("$WRIT" policy test "$POLICY" --hook-library "$PYLIB" 2>&1; echo "rc=$?")
expect "a failing case: FAIL with what happened instead, exit 1" "$out" "FAIL  wrong on purpose.*expected approved, got denied by hook on_request.*4 case\(s\): 3 passed, 1 failed"$'\n'"rc=1"
out=$("$WRIT" policy test "$ROOTDIR/examples/policy.yaml" 2>&1; echo "rc=$?")
expect "the reference policy's cases pass" "$out" "case\(s\): [0-9]+ passed, 0 failed"$'\n'"rc=0"

# --- writ policy replay: the same policy changes nothing; a stricter one is previewed
out=$("$WRIT" policy replay "$POLICY" --audit-log "$AUDIT" --since "$T_START" --fail-on-change 2>&1; echo "rc=$?")
expect "replay under the policy in force: nothing would change" "$out" "replayed [0-9]+ request\(s\) from .*: 0 would be decided differently"$'\n'"rc=0"
sed -e 's/duration("5m")/duration("30s")/' -e "s|when: '!has(request.fields.change)'|when: 'true'|" "$POLICY" >"$WORK/stricter.yaml"
out=$("$WRIT" policy replay "$WORK/stricter.yaml" --audit-log "$AUDIT" --since "$T_START" --fail-on-change 2>&1; echo "rc=$?")
expect "replay under a stricter policy: the requests it would deny" "$out" "$RID3 .*writt_alice +hooked +to people.*denied by auto_deny rule too-long"
expect "... and those it would route to more approvers" "$out" "$SID2 .*to people — team: writt_bob \(1\) +to people — team: writt_bob \(1\); security: writt_carol \(1\)"
expect "... with a summary, exit 1 for CI" "$out" "would be decided differently — .*newly auto-denied.*"$'\n'"rc=1"
stop_writd
sudo_conf_plain
