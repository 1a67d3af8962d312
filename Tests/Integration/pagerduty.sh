# PagerDuty break-glass end to end (issue 5, first part): writd asks a local fake PagerDuty (REST
# API v2, Tests/Fakes/fake_pagerduty.py) whether the requester is on call now, auto-approves the
# flow's break-glass for those who are, and sends everyone else — and everything when PagerDuty
# fails — to people. Sourced by suite.sh after policy.sh (its helpers), inside the sandbox.

section "PagerDuty break-glass: on call now → sudo at once; otherwise, or PagerDuty down → people"
ROOTDIR=$(cd "$HERE/../.." && pwd)
clear_grants
sudo_pam_plain
sudo_conf_plugin
coproc PD { exec python3 "$ROOTDIR/Tests/Fakes/fake_pagerduty.py" --port 0; }
PD_PID=$PD_PID
read -r _ PD_URL <&"${PD[0]}"
expect "the fake PagerDuty is listening" "$PD_URL" "^http://127.0.0.1:[0-9]+$"
now=$(date +%s)
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
curl -sf "$PD_URL/_fake/seed" -d '{
  "users": [{"id": "PALICE", "name": "Alice", "email": "writt_alice@example.test"},
            {"id": "PMALICE", "name": "Not Alice", "email": "xwritt_alice@example.test"},
            {"id": "PDAVE", "name": "Dave", "email": "writt_dave@example.test"},
            {"id": "PCAROL", "name": "Carol", "email": "writt_carol@example.test"}],
  "escalation_policies": [{"id": "PEPOPS", "name": "Ops"}, {"id": "PEPWEB", "name": "Web"}],
  "schedules": [{"id": "PSOPS", "name": "Ops primary"}],
  "oncalls": [
    {"user": "PALICE", "escalation_policy": "PEPOPS", "schedule": "PSOPS", "escalation_level": 1,
     "start": "'"$(iso $((now - 3600)))"'", "end": "'"$(iso $((now + 3600)))"'"},
    {"user": "PMALICE", "escalation_policy": "PEPOPS", "schedule": "PSOPS", "escalation_level": 1,
     "start": null, "end": null},
    {"user": "PDAVE", "escalation_policy": "PEPOPS", "schedule": null, "escalation_level": 2,
     "start": null, "end": null},
    {"user": "PCAROL", "escalation_policy": "PEPWEB", "schedule": null, "escalation_level": 1,
     "start": null, "end": null}]}' >/dev/null || fail "seed the fake PagerDuty"

INTEGRATIONS=$WORK/integrations.yaml
cat >"$INTEGRATIONS" <<YAML
pagerduty:
  token: pd-fake-token
  api_url: $PD_URL
  timeout: 2s
identities:
  email_template: "{user}@example.test"
YAML
chmod 0600 "$INTEGRATIONS"
POLICY=$WORK/pd-policy.yaml
cat >"$POLICY" <<'YAML'
version: 1
flows:
  - name: glass
    capability: sudo
    requesters: {users: [writt_alice, writt_carol, writt_dave]}
    approvers: {users: [writt_bob]}
    duration: {default: 30m, max: 2h}
    reason: {required: true, pattern: "^INC-[0-9]+"}
    break_glass:
      pagerduty: {escalation_policies: [PEPOPS], max_level: 1}
      max_duration: 45m
  - name: sched
    capability: sudo
    runas: writt_bob
    requesters: {users: [writt_alice, writt_dave]}
    approvers: {users: [writt_bob]}
    reason: {required: false}
    break_glass:
      pagerduty: {schedules: [PSOPS], max_level: 2}
YAML
start_writd --integrations "$INTEGRATIONS" || fail "writd starts with PagerDuty configured"

out=$(writ_as writt_alice request sudo --for 2h --reason "INC-77 paged")
expect "on call now for the flow's escalation policy: approved at once" "$out" "rc=0"$'\n'".*approved r_[0-9a-f]+ automatically \(break-glass \(PagerDuty on call\)\)"
out=$(writ_json writt_alice status --json)
expect "... clamped to break-glass's 45m" "$out" '"duration":2700,"fields"|"duration":2700,"flow":"glass"'
expect "... and the requester reads the evidence" "$out" '"decision_note":"break-glass: on call in PagerDuty: escalation policy PEPOPS \(Ops\), level 1, schedule PSOPS \(Ops primary\), from '
out=$(sudo_as writt_alice /usr/bin/id -u)
expect "... and sudo works" "$out" "rc=0"$'\n'"0"
expect "the evidence is in the audit log" "$(grep '"event":"request.approve"' "$AUDIT" | tail -1)" '"actor":"policy:break-glass".*"evidence":"on call in PagerDuty: escalation policy PEPOPS \(Ops\), level 1'
expect "writd asked PagerDuty with its v2 Accept header and the token" \
    "$(curl -s "$PD_URL/_fake/requests?path=/oncalls")" '"accept_v2": ?true'
expect "... and found the user by exact email, not the substring match" "$(curl -s "$PD_URL/_fake/requests?path=/oncalls")" 'PALICE'
expect_not "... never the look-alike" "$(curl -s "$PD_URL/_fake/requests?path=/oncalls")" 'PMALICE'

out=$(writ_as writt_dave request sudo --for 30m --reason "INC-78" --no-wait)
expect "on call at level 2 (over max_level 1): to people" "$out" "rc=2"$'\n'"pending r_"
out=$(writ_as writt_carol request sudo --for 30m --reason "INC-79" --no-wait)
expect "on call for another escalation policy: to people" "$out" "rc=2"$'\n'"pending r_"
out=$(writ_as writt_dave request sudo --flow sched --runas writt_bob --no-wait)
expect "on call, but not on the flow's schedule: to people" "$out" "rc=2"$'\n'"pending r_"
out=$(writ_as writt_alice request sudo --flow sched --runas writt_bob)
expect "on call on the flow's schedule: approved at once" "$out" "rc=0"$'\n'".*approved r_[0-9a-f]+ automatically"
curl -sf "$PD_URL/_fake/seed" -d '{"replace_oncalls": true, "oncalls": [
    {"user": "PALICE", "escalation_policy": "PEPOPS", "schedule": "PSOPS", "escalation_level": 1,
     "start": "'"$(iso $((now + 7200)))"'", "end": "'"$(iso $((now + 10800)))"'"}]}' >/dev/null
out=$(writ_as writt_alice request sudo --for 30m --reason "INC-80" --no-wait)
expect "on call later, not now: to people" "$out" "rc=2"$'\n'"pending r_"

curl -sf "$PD_URL/_fake/down" -d '{"mode": "503"}' >/dev/null
out=$(writ_as writt_alice request sudo --for 30m --reason "INC-81" --no-wait)
expect "PagerDuty failing: never approves, the request goes to people" "$out" "rc=2"$'\n'"pending r_"
expect "... and syslog says why" "$(cat "$SYSLOG")" "PagerDuty lookup for writt_alice failed"
curl -sf "$PD_URL/_fake/down" -d '{"mode": "hang"}' >/dev/null
(sleep 0.3; b0=$(date +%s%N); writ_as writt_bob requests >/dev/null; echo $(( ($(date +%s%N) - b0) / 1000000 )) >"$WORK/bob.ms") &
BOB_PID=$!
t0=$(date +%s%N)
out=$(writ_as writt_alice request sudo --for 30m --reason "INC-82" --no-wait)
t1=$(date +%s%N)
wait "$BOB_PID"
expect "... while PagerDuty hangs, other clients are answered at once (ms)" "$(cat "$WORK/bob.ms")" "^[0-9]{1,3}$"
expect "PagerDuty hanging: to people after the 2s timeout" "$out" "rc=2"$'\n'"pending r_"
expect "... within about the timeout" "$(( (t1 - t0) / 1000000 ))" "^(1[89][0-9]{2}|2[0-9]{3}|3[0-4][0-9]{2})$"
curl -sf "$PD_URL/_fake/up" -d '{}' >/dev/null

out=$(writ_as writt_alice doctor --policy "$POLICY" --pam-dir /etc/pam.d)
expect_not "writ doctor (a user) does not see the integrations" "$out" "pagerduty"
out=$("$WRIT" doctor --policy "$POLICY" --pam-dir /etc/pam.d 2>&1)
expect "writ doctor (root): PagerDuty configured and reachable" "$out" "integrations +pagerduty: configured, reachable"
chmod 0644 "$INTEGRATIONS"
kill -HUP "$WRITD_PID"; sleep 0.5
out=$("$WRIT" doctor --policy "$POLICY" --pam-dir /etc/pam.d 2>&1)
expect "a token file others can read is refused, with the fix" "$out" "integrations: not loaded — .*integrations.yaml is owned by uid 0 with mode 644; it holds tokens: chown root: .* && chmod 0600"
out=$(writ_as writt_alice request sudo --for 30m --reason "INC-83" --no-wait)
expect "... and without integrations requests go to people" "$out" "rc=2"$'\n'"pending r_"
expect_not "the token never reaches the logs" "$(cat "$WRITD_LOG" "$SYSLOG" "$AUDIT")" "pd-fake-token"
stop_writd
kill "$PD_PID" 2>/dev/null; wait "$PD_PID" 2>/dev/null
sudo_conf_plain
