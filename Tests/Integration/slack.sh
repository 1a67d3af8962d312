# Slack end to end (issue 5): writd against a local fake Slack (Web API over HTTP, Socket Mode over
# WebSocket; Tests/Fakes/fake_slack.py), with real sudo. /writ → form → request card → clicks →
# grant → sudo works → DMs; refused clicks; Slack down; 429s; disconnects. Sourced by suite.sh
# after pagerduty.sh, inside the sandbox.

section "Slack: request from Slack, approve on the card, get told; refused clicks; outages"
ROOTDIR=$(cd "$HERE/../.." && pwd)
clear_grants
sudo_pam_plain
sudo_conf_plugin
coproc SLACK { exec python3 "$ROOTDIR/Tests/Fakes/fake_slack.py" --port 0 --config '{"trigger_ttl": 10, "refresh_grace": 2, "warning_grace": 2}'; }
SLACK_PID=$SLACK_PID
# writt_karl (only for this section): a name with a k, which U+212A KELVIN SIGN lowercases to.
echo "writt_karl:x:29050:29050:writ test user:/nonexistent:/bin/sh" >>/etc/passwd
read -r _ S <&"${SLACK[0]}"
expect "the fake Slack is listening" "$S" "^http://127.0.0.1:[0-9]+$"
curl -sf "$S/_fake/seed" -d '{
  "users": [{"id": "U0ALICE001", "email": "writt_alice@example.test", "real_name": "Alice"},
            {"id": "U0BOB00001", "email": "writt_bob@example.test", "real_name": "Bob"},
            {"id": "U0CAROL001", "email": "writt_carol@example.test", "real_name": "Carol"},
            {"id": "U0DAVE0001", "email": "writt_dave@example.test", "real_name": "Dave"},
            {"id": "U0GUEST001", "email": "writt_erin@example.test", "is_ultra_restricted": true},
            {"id": "U0GONE0001", "email": "writt_frank@example.test", "deleted": true},
            {"id": "U0ROBOT001", "email": "writt_gina@example.test", "is_bot": true},
            {"id": "U0OTHER001", "email": "writt_harry@example.test", "team_id": "T0ELSEWHERE"},
            {"id": "U0KARL0001", "email": "writt_karl@example.test", "real_name": "Karl"},
            {"id": "U0KELVIN01", "email": "writt_\u212Aarl@example.test", "real_name": "Karl (look-alike)"}],
  "channels": [{"id": "C0APPROVE1", "name": "writ-approvals"}, {"id": "C0HIGHRISK", "name": "high-risk"}]}' >/dev/null \
    || fail "seed the fake Slack"

# calls METHOD: the recorded Web API calls of METHOD (JSON lines, one per call).
calls() { curl -s "$S/_fake/calls?method=$1" | python3 -c 'import json,sys; [print(json.dumps(c)) for c in json.load(sys.stdin)["items"]]'; }
# wait_calls METHOD N [TIMEOUT]: until N calls of METHOD were recorded.
wait_calls() { curl -s "$S/_fake/wait" -d "{\"collection\": \"calls\", \"where\": {\"method\": \"$1\"}, \"count\": $2, \"timeout\": ${3:-10}}" >/dev/null; }
# deliver JSON: a user action over Socket Mode; prints the fake's answer.
deliver() { curl -s "$S/_fake/socket/deliver" -d "$1"; }
# card_of REQUEST: the card message (latest version) of a request in any channel.
card_of() { curl -s "$S/_fake/messages" | python3 -c '
import json,sys
for m in json.load(sys.stdin)["items"]:
    if not m.get("thread_ts") and sys.argv[1] in json.dumps(m.get("blocks")):
        m.pop("edits", None); print(json.dumps(m))' "$1" | tail -1; }
card_ts() { printf '%s' "$(card_of "$1")" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ts"])'; }
# click USER REQUEST ACTION [CHANNEL]: clicks a button on the request's card.
click() { deliver "{\"kind\": \"block_actions\", \"user_id\": \"$1\", \"channel_id\": \"${4:-C0APPROVE1}\", \"message_ts\": \"$(card_ts "$2")\", \"action_id\": \"$3\"${5:-}}"; }
# ephemeral_for USER: the last ephemeral message to USER.
ephemeral_for() { curl -s "$S/_fake/ephemerals" | python3 -c 'import json,sys; e=[x for x in json.load(sys.stdin)["items"] if x.get("user")==sys.argv[1]]; print(e[-1]["text"] if e else "")' "$1"; }
# dms_to USER: every DM text to USER.
dms_to() {
    local ch
    ch=$(curl -s "$S/_fake/channels" | python3 -c 'import json,sys; c=[x["id"] for x in json.load(sys.stdin)["items"] if x.get("is_im") and x.get("user")==sys.argv[1]]; print(c[0] if c else "none")' "$1")
    curl -s "$S/_fake/messages?channel=$ch" | python3 -c 'import json,sys; print("\n".join(m["text"] for m in json.load(sys.stdin)["items"]))'
}
# wait_for DESCRIPTION COMMAND REGEX [SECONDS]: polls COMMAND until its output matches.
wait_for() { local i out; for i in $(seq $((${4:-10} * 10))); do out=$(eval "$2"); matches "$out" "$3" && break; sleep 0.1; done; expect "$1" "$out" "$3"; }

INTEGRATIONS=$WORK/integrations.yaml
cat >"$INTEGRATIONS" <<YAML
slack:
  bot_token: xoxb-writ-fake-bot-token
  app_token: xapp-1-A0WRITTEST-1-writ-fake-app-token
  api_url: $S/api/
  channel: "#writ-approvals"
  timeout: 3s
identities:
  email_template: "{user}@example.test"
YAML
chmod 0600 "$INTEGRATIONS"
POLICY=$WORK/slack-policy.yaml
cat >"$POLICY" <<'YAML'
version: 1
flows:
  - name: ops
    description: root for incidents
    capability: sudo
    requesters: {users: [writt_alice]}
    approvers: {users: [writt_bob, writt_carol]}
    duration: {default: 30m, max: 2h}
    reason: {required: true, pattern: "^INC-[0-9]+", example: "INC-4521 disk full"}
  - name: dual
    capability: sudo
    runas: root
    commands: ["/usr/bin/id -u"]
    requesters: {users: [writt_alice]}
    approvers: {users: [writt_bob, writt_carol]}
    approvals: 2
    duration: {default: 10m, max: 1h}
    reason: {required: false}
  - name: vault
    description: high risk
    capability: sudo
    runas: writt_dave
    requesters: {users: [writt_alice]}
    approvers: {users: [writt_bob]}
    reason: {required: false}
    slack_channel: C0HIGHRISK
    slack_approve: cli
  - name: careful
    capability: sudo
    runas: writt_carol
    requesters: {users: [writt_alice]}
    approvers: {users: [writt_bob]}
    reason: {required: false}
    slack_approve: confirm
  - name: quick
    capability: login
    requesters: {users: [writt_alice]}
    approvers: {users: [writt_bob]}
    duration: {default: 8s, max: 1m}
    reason: {required: false}
    pending_timeout: 3s
    warn_before: 5s
YAML
start_writd --integrations "$INTEGRATIONS" || fail "writd starts with Slack configured"
wait_for "writd opened a Socket Mode connection (hello)" "curl -s $S/_fake/connections" '"state": ?"open"'
wait_for "writ doctor (root): Slack configured, auth.test ok, connected" "$WRIT doctor --policy $POLICY --pam-dir /etc/pam.d 2>&1 | grep slack" "OK +integrations +slack: configured \(socket mode\), auth.test ok \(team Writ Test.*Socket Mode connected \(1 connection\)"

# /writ → form → request → card
ans=$(deliver '{"kind": "slash_command", "user_id": "U0ALICE001", "command": "/writ", "text": "", "channel_id": "C0APPROVE1"}')
wait_calls views.open 1
view=$(curl -s "$S/_fake/views" | python3 -c 'import json,sys; v=json.load(sys.stdin)["items"][-1]["view"]; print(json.dumps(v))')
expect "/writ opens the request form" "$view" '"callback_id": ?"writ_request"'
expect "... listing the flows alice may request" "$view" '"value": ?"ops".*"value": ?"dual".*"value": ?"vault"'
expect "... with durations within the flows' limits (2h is ops' max)" "$view" '"value": ?"7200"'
expect_not "... and none beyond them" "$view" '"value": ?"14400"'
view_id=$(printf '%s' "$view" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
deliver '{"kind": "view_submission", "user_id": "U0ALICE001", "view_id": "'"$view_id"'", "values": {
  "flow": {"flow": {"type": "static_select", "selected_option": {"value": "ops"}}},
  "duration": {"duration": {"type": "static_select", "selected_option": {"value": "1800"}}},
  "reason": {"reason": {"type": "plain_text_input", "value": "INC-4521 disk full <!channel>"}}}}' >/dev/null
wait_calls chat.postMessage 1
R1=$(latest_request)
expect "the form's submission filed a request as writt_alice" "$(request_field "$R1" requester flow duration)" "^writt_alice\|ops\|1800$"
expect "... audited as coming from Slack" "$(grep '"event":"request.create"' "$AUDIT" | tail -1)" '"via":"slack:U0ALICE001"'
card=$(card_of "$R1")
expect "the card is in the flow's channel" "$card" '"channel": ?"C0APPROVE1"'
expect "... says who, what, where, how long, why, and the id" "$card" "writt_alice asks for sudo as root on .*\*For\*\\\\n30m.*$R1.*INC-4521 disk full"
expect "... with the requester's text escaped (no @channel)" "$card" '&lt;!channel&gt;'
expect "... with Approve (confirmed) and Deny" "$card" '"action_id": ?"writ_approve".*"confirm".*"action_id": ?"writ_deny"'
wait_for "alice is told the request waits" "ephemeral_for U0ALICE001; dms_to U0ALICE001" "Request \`$R1\`.*waiting for approval by writt_bob, writt_carol"

# refused clicks: the requester, a guest, a deleted account, a bot, another workspace, a non-approver
n0=$(curl -s "$S/_fake/ephemerals" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
click U0ALICE001 "$R1" writ_approve >/dev/null
wait_for "the requester's own Approve click is refused" "ephemeral_for U0ALICE001" "Not done: .*(own|yourself|self)"
click U0GUEST001 "$R1" writ_approve >/dev/null
wait_for "a guest's click is refused" "ephemeral_for U0GUEST001" "Guest accounts cannot"
click U0GONE0001 "$R1" writ_approve >/dev/null
wait_for "a deactivated account's click is refused" "ephemeral_for U0GONE0001" "deactivated"
click U0ROBOT001 "$R1" writ_approve >/dev/null
wait_for "a bot's click is refused" "ephemeral_for U0ROBOT001" "Bots cannot"
click U0OTHER001 "$R1" writ_approve >/dev/null
wait_for "another workspace's click is refused" "ephemeral_for U0OTHER001" "its own Slack workspace only"
click U0DAVE0001 "$R1" writ_approve >/dev/null
wait_for "a non-approver's click is refused" "ephemeral_for U0DAVE0001" "not an approver of request $R1"
# A look-alike address (writt_\u212Aarl, KELVIN SIGN) is another Slack account: it maps to nobody,
# and never to writt_karl (Unicode lowercasing would make it writt_karl@example.test).
click U0KELVIN01 "$R1" writ_approve >/dev/null
wait_for "a look-alike email (KELVIN SIGN for K) maps to nobody" "ephemeral_for U0KELVIN01" "does not know which account is yours"
expect "... and is not pinned to writt_karl" "$(slack_pins U0KELVIN01 writt_karl)" "^0$"
click U0KARL0001 "$R1" writ_approve >/dev/null
wait_for "... while the real writt_karl maps (and is refused as a non-approver)" "ephemeral_for U0KARL0001" "not an approver of request $R1"
expect "... and the request is still pending" "$(request_state "$R1")" "^pending$"

# approve: click → grant → sudo
t0=$(date +%s%N)
click U0BOB00001 "$R1" writ_approve >/dev/null
for _ in $(seq 200); do [ "$(request_state "$R1")" = approved ] && break; sleep 0.01; done
t1=$(date +%s%N)
expect "Bob's click approves it" "$(request_field "$R1" state decided_by)" "^approved\|writt_bob$"
echo "    (click → grant in the store: $(( (t1 - t0) / 1000000 )) ms, polled every 10 ms)"
out=$(sudo_as writt_alice /usr/bin/id -u)
expect "... and alice's sudo works" "$out" "rc=0"$'\n'"0"
expect "the approval is audited as Bob's, via Slack" "$(grep '"event":"request.approve"' "$AUDIT" | tail -1)" '"actor":"writt_bob".*"via":"slack:U0BOB00001"'
wait_for "the card is updated in place: approved by, no buttons" "card_of $R1" "Approved\* by writt_bob"
expect_not "... and its buttons are gone" "$(card_of "$R1")" 'writ_approve'
wait_for "the decision is replied in the card's thread" "curl -s '$S/_fake/messages?thread_ts=$(card_ts "$R1")'" "approved by writt_bob"
wait_for "alice gets a DM: approved" "dms_to U0ALICE001" "Your request for sudo as root on .* \(\`$R1\`\) is approved \(writt_bob\)"
# a click on the stale card
curl -s "$S/_fake/socket/deliver" -d '{"kind": "block_actions", "user_id": "U0CAROL001", "channel_id": "C0APPROVE1", "message_ts": "'"$(card_ts "$R1")"'", "action_id": "writ_approve", "force": true, "value": "'"$R1"'"}' >/dev/null
wait_for "a second click on a decided card is refused" "ephemeral_for U0CAROL001" "is approved already"

# a CLI request is posted too; Deny asks for a reason
R2=$(file_request writt_alice --reason "INC-2 from the CLI")
wait_for "a request made with the CLI gets a card" "card_of $R2" "INC-2 from the CLI"
click U0BOB00001 "$R2" writ_deny >/dev/null
wait_calls views.open 2
view_id=$(curl -s "$S/_fake/views" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][-1]["view"]["id"])')
deliver '{"kind": "view_submission", "user_id": "U0BOB00001", "view_id": "'"$view_id"'", "values": {"text": {"text": {"type": "plain_text_input", "value": "use the runbook instead"}}}}' >/dev/null
wait_for "Deny + reason denies it" "request_state $R2" "^denied$"
wait_for "... the card says by whom and why" "card_of $R2" "Denied\* by writt_bob: use the runbook instead"
wait_for "... and alice gets a DM with the reason" "dms_to U0ALICE001" "\`$R2\`\) was denied by writt_bob: use the runbook instead"

# two approvals, shown on the card
R3=$(file_request writt_alice --flow dual --command "/usr/bin/id -u")
wait_for "a two-approval card" "card_of $R3" "approve 0/2"
click U0BOB00001 "$R3" writ_approve >/dev/null
wait_for "... shows who approved so far" "card_of $R3" "approve 1/2\*? approved by writt_bob"
expect "... still pending" "$(request_state "$R3")" "^pending$"
click U0CAROL001 "$R3" writ_approve >/dev/null
wait_for "... and the second approval grants it" "request_state $R3" "^approved$"

# slack_approve: cli and confirm
R4=$(file_request writt_alice --flow vault --runas writt_dave)
wait_for "a cli-only flow's card goes to its own channel, with no Approve button" "card_of $R4" "C0HIGHRISK.*writ approve $R4"
expect_not "... (no buttons)" "$(card_of "$R4")" "writ_approve\""
click U0BOB00001 "$R4" writ_approve C0HIGHRISK ", \"force\": true, \"value\": \"$R4\"" >/dev/null
wait_for "... and a forged click is refused by writd" "ephemeral_for U0BOB00001" "approved on a host only: run \`writ approve $R4\`"
expect "... still pending" "$(request_state "$R4")" "^pending$"
deliver '{"kind": "view_submission", "user_id": "U0BOB00001", "callback_id": "writ_approve_confirm", "private_metadata": "'"$R4"'",
  "values": {"text": {"text": {"type": "plain_text_input", "value": "forged form"}}}}' >/dev/null
wait_for "... and so is a forged approval form: writd itself checks slack_approve" "dms_to U0BOB00001" "approved on a host only: run \`writ approve $R4\`"
expect "... still pending" "$(request_state "$R4")" "^pending$"
out=$(writ_as writt_bob approve "$R4")
expect "... writ approve on the host works" "$out" "rc=0"
R5=$(file_request writt_alice --flow careful --runas writt_carol)
wait_for "a confirm flow's card" "card_of $R5" "asks for a comment"
click U0BOB00001 "$R5" writ_approve >/dev/null
wait_calls views.open 3
view_id=$(curl -s "$S/_fake/views" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][-1]["view"]["id"])')
expect "... its Approve opens a form, and nothing is approved yet" "$(request_state "$R5")" "^pending$"
deliver '{"kind": "view_submission", "user_id": "U0BOB00001", "callback_id": "writ_approve_confirm", "private_metadata": "'"$R5"'",
  "values": {"text": {"text": {"type": "plain_text_input", "value": "  "}}}}' >/dev/null
wait_for "... a submission without a comment is refused by writd" "dms_to U0BOB00001" "flow careful needs a comment to be approved from Slack"
deliver '{"kind": "view_submission", "user_id": "U0BOB00001", "view_id": "'"$view_id"'", "values": {"text": {"text": {"type": "plain_text_input", "value": "checked with alice on a call"}}}}' >/dev/null
wait_for "... the typed comment approves it" "request_state $R5" "^approved$"
expect "... and is in the audit log" "$(grep '"event":"request.approve"' "$AUDIT" | tail -1)" '"comment":"checked with alice on a call"|"note":"checked with alice'

# unanswered
R6=$(runuser -u writt_alice -- "$WRIT" request login --flow quick --no-wait --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_for "an unanswered request: the card says so" "card_of $R6" "Expired unanswered" 12
wait_for "... and alice is told" "dms_to U0ALICE001" "\`$R6\`\) expired: nobody approved it in time"

# warning with Extend, then expiry
R7=$(runuser -u writt_alice -- "$WRIT" request login --flow quick --no-wait --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
writ_as writt_bob approve "$R7" >/dev/null
G7=$(grant_of_request "$R7")
wait_for "a warning DM before the grant ends, with an Extend button" "curl -s $S/_fake/messages" "grant \`$G7\` on .* ends at .*writ_extend" 8
warn_ts=$(curl -s "$S/_fake/messages" | python3 -c 'import json,sys; print([m for m in json.load(sys.stdin)["items"] if sys.argv[1] in m["text"] and "ends at" in m["text"]][-1]["ts"])' "$G7")
warn_ch=$(curl -s "$S/_fake/messages" | python3 -c 'import json,sys; print([m for m in json.load(sys.stdin)["items"] if sys.argv[1] in m["text"] and "ends at" in m["text"]][-1]["channel"])' "$G7")
deliver "{\"kind\": \"block_actions\", \"user_id\": \"U0ALICE001\", \"channel_id\": \"$warn_ch\", \"message_ts\": \"$warn_ts\", \"action_id\": \"writ_extend\"}" >"$WORK/extend.json"
wait_for "Extend files an extension through the same flow" "request_field \"\$(latest_request kind=extend)\" flow kind extends_grant" "^quick\|extend\|$G7$"
matches "$(request_field "$(latest_request kind=extend)" extends_grant)" "$G7" || { cat "$WORK/extend.json"; curl -s "$S/_fake/responses"; tail -5 "$WRITD_LOG"; }
wait_for "the grant's end is a DM too" "dms_to U0ALICE001" "grant \`$G7\` on .* has ended" 15

# Slack down: the CLI still works, messages are delivered later
curl -sf "$S/_fake/down" -d '{"mode": "503", "scope": "web"}' >/dev/null
R8=$(file_request writt_alice --reason "INC-8 while Slack is down")
out=$(writ_as writt_bob approve "$R8")
expect "Slack down: writ approve still works" "$out" "rc=0"
out=$(sudo_as writt_alice /usr/bin/id -u)
expect "... and so does sudo" "$out" "rc=0"$'\n'"0"
wait_for "... the messages wait in the outbox, with Slack's error" 'echo "$(slack_outbox_size)|$(slack_outbox_error)"' "^[1-9][0-9]*\|Slack .*HTTP 503"
wait_for "... and writ doctor says so" "$WRIT doctor --policy $POLICY --pam-dir /etc/pam.d 2>&1 | grep 'slack outbox'" "WARN +integrations +slack outbox: [0-9]+ message\(s\) waiting, the oldest for .*last error: Slack .*HTTP 503"
curl -sf "$S/_fake/up" -d '{}' >/dev/null
wait_for "Slack back: the card is posted, already showing the approval" "card_of $R8" "Approved\* by writt_bob" 20
wait_for "... and the outbox drains" "slack_outbox_size" "^0$" 20

# a policy reload keeps the connection; a revoked token pauses delivery, and a fixed one resumes it
conns=$(curl -s "$S/_fake/connections" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
kill -HUP "$WRITD_PID"; sleep 1.5
expect "a reload with the same Slack settings keeps the Socket Mode connection" \
    "$(curl -s "$S/_fake/connections" | python3 -c 'import json,sys; i=json.load(sys.stdin)["items"]; print(len(i), sum(c["state"]=="open" for c in i))')" "^$conns 1$"
curl -sf "$S/_fake/config" -d '{"revoked_tokens": ["xoxb-writ-fake-bot-token"]}' >/dev/null
R15=$(file_request writt_alice --reason "INC-15 while the token is revoked")
wait_for "a revoked token pauses delivery: the card waits, with Slack's error" "slack_outbox_error $R15" "token_revoked"
expect "... and syslog says what to fix" "$(cat "$SYSLOG")" "Slack paused: Slack .*token_revoked — messages wait in the outbox; fix the bot token"
curl -sf "$S/_fake/config" -d '{"revoked_tokens": []}' >/dev/null
sed -i 's/^  timeout: 3s$/  timeout: 4s/' "$INTEGRATIONS"
kill -HUP "$WRITD_PID"
wait_for "... fixed and reloaded: the waiting card goes at once" "card_of $R15" "INC-15 while the token is revoked" 10

# 429 storm
curl -sf "$S/_fake/ratelimit" -d '{"method": "chat.postMessage", "count": 4, "retry_after": 1}' >/dev/null
R9=$(file_request writt_alice --reason "INC-9 in a rate-limit storm")
wait_for "HTTP 429 four times: the card still arrives" "card_of $R9" "INC-9 in a rate-limit storm" 20
expect "... after Slack's 429s were seen" "$(curl -s "$S/_fake/calls?method=chat.postMessage&status=429")" '"status": ?429'

# disconnects in the middle of a flow
curl -sf "$S/_fake/socket/disconnect" -d '{"reason": "refresh_requested"}' >/dev/null
click U0BOB00001 "$R9" writ_approve >/dev/null
wait_for "refresh_requested mid-flow: the click during the switch still approves" "request_state $R9" "^approved$"
wait_for "... over a new connection (make before break)" "curl -s $S/_fake/connections | python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin)[\"items\"]))'" "^[2-9]$"
expect "no envelope was left unacknowledged" "$(curl -s "$S/_fake/envelopes?status=unacked")" '"items": ?\[\]'
curl -sf "$S/_fake/socket/drop" -d '{}' >/dev/null
R10=$(file_request writt_alice --reason "INC-10 after a dropped socket")
wait_for "a dropped socket: writd reconnects" "curl -s $S/_fake/connections" '"state": ?"open"'
click U0CAROL001 "$R10" writ_approve >/dev/null
wait_for "... and clicks work again" "request_state $R10" "^approved$"
G10=$(grant_of_request "$R10")
out=$(writ_as writt_carol revoke "$G10" --reason "done early")
expect "the approver revokes the grant" "$out" "rc=0"
wait_for "... and alice gets a DM: revoked by whom" "dms_to U0ALICE001" "grant \`$G10\` on .* was revoked by writt_carol"
curl -sf "$S/_fake/socket/disconnect" -d '{"reason": "warning", "grace": 2}' >/dev/null
R12=$(file_request writt_alice --reason "INC-12 during a warning disconnect")
click U0BOB00001 "$R12" writ_approve >/dev/null
wait_for "disconnect warning mid-flow: the click still approves" "request_state $R12" "^approved$"
curl -sf "$S/_fake/socket/disconnect" -d '{"reason": "link_disabled"}' >/dev/null
wait_for "link_disabled: writ doctor says Socket Mode stopped and what to do" "$WRIT doctor --policy $POLICY --pam-dir /etc/pam.d 2>&1" "Socket Mode stopped: .*Socket Mode"
out=$(writ_as writt_alice request sudo --reason "INC-11 Slack link disabled" --no-wait)
expect "... requests still work from the CLI" "$out" "rc=2"$'\n'"pending r_"
curl -sf "$S/_fake/socket/enable" -d '{}' >/dev/null
kill -HUP "$WRITD_PID"
wait_for "Socket Mode enabled again and writd reloaded: connected" "$WRIT doctor --policy $POLICY --pam-dir /etc/pam.d 2>&1 | grep slack" "Socket Mode connected"
curl -sf "$S/_fake/socket/disconnect" -d '{"reason": "too_many_websockets"}' >/dev/null
wait_for "too_many_websockets: writd backs off, and says so" "$WRIT doctor --policy $POLICY --pam-dir /etc/pam.d 2>&1 | grep slack" "Socket Mode reconnecting \(.*too_many_websockets"

# HTTP mode instead of Socket Mode (a reload), with PagerDuty: break-glass evidence on the card
coproc PD { exec python3 "$ROOTDIR/Tests/Fakes/fake_pagerduty.py" --port 0; }
PD_PID=$PD_PID
read -r _ PD_URL <&"${PD[0]}"
curl -sf "$PD_URL/_fake/seed" -d '{"users": [{"id": "PALICE", "name": "Alice", "email": "writt_alice@example.test"}],
  "escalation_policies": [{"id": "PEPOPS", "name": "Ops"}],
  "oncalls": [{"user": "PALICE", "escalation_policy": "PEPOPS", "schedule": null, "escalation_level": 1, "start": null, "end": null}]}' >/dev/null
HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$INTEGRATIONS" <<YAML
slack:
  mode: http
  bot_token: xoxb-writ-fake-bot-token
  signing_secret: writ-fake-signing-secret
  listen: 127.0.0.1:$HTTP_PORT
  api_url: $S/api/
  channel: C0APPROVE1
pagerduty: {token: pd-fake-token, api_url: $PD_URL, timeout: 2s}
identities:
  email_template: "{user}@example.test"
YAML
cat >>"$POLICY" <<'YAML'
  - name: glass
    capability: sudo
    runas: writt_bob
    requesters: {users: [writt_alice]}
    approvers: {users: [writt_bob]}
    reason: {required: false}
    break_glass:
      pagerduty: {escalation_policies: [PEPOPS]}
      max_duration: 20m
YAML
kill -HUP "$WRITD_PID"
wait_for "a reload switches to HTTP mode" "$WRIT doctor --policy $POLICY --pam-dir /etc/pam.d 2>&1 | grep slack" "HTTP mode listening on 127.0.0.1:$HTTP_PORT"
R13=$(file_request writt_alice --reason "INC-13 over HTTP mode")
wait_for "HTTP mode: the card is posted" "card_of $R13" "INC-13 over HTTP mode"
http_click() { curl -s "$S/_fake/http/deliver" -d "{\"url\": \"http://127.0.0.1:$HTTP_PORT/slack/interactivity\", \"kind\": \"block_actions\", \"user_id\": \"$1\", \"channel_id\": \"C0APPROVE1\", \"message_ts\": \"$(card_ts "$R13")\", \"action_id\": \"writ_approve\"${2:-}}"; }
ans=$(http_click U0BOB00001 ', "bad_signature": true')
expect "a click with a bad signature gets 401" "$ans" '"status": ?401'
ans=$(http_click U0BOB00001 ', "timestamp": '"$(( $(date +%s) - 600 ))")
expect "... a replayed one (10 minutes old) too" "$ans" '"status": ?401'
ans=$(http_click U0BOB00001 ', "timestamp": "-9223372036854775808"')
expect "... a hostile timestamp too (no arithmetic trap)" "$ans" '"status": ?401'
expect "... and writd is still running" "$(kill -0 "$WRITD_PID" && echo alive)" "^alive$"
expect "... and none of them approved anything" "$(request_state "$R13")" "^pending$"
ans=$(http_click U0BOB00001)
expect "a signed click is answered 200 within Slack's 3 s" "$ans" '"status": ?200.*"late": ?false'
wait_for "... and approves" "request_state $R13" "^approved$"
R14=$(file_request writt_alice --flow glass --runas writt_bob)
expect "on call in PagerDuty: break-glass approves at once" "$(request_state "$R14")" "^approved$"
wait_for "... and the card says so, with the on-call evidence" "card_of $R14" "Auto-approved\* by break-glass \(PagerDuty on call\).*on call in PagerDuty: escalation policy PEPOPS \(Ops\), level 1"
kill "$PD_PID" 2>/dev/null; wait "$PD_PID" 2>/dev/null

expect_not "no token ever reaches the logs" "$(cat "$WRITD_LOG" "$SYSLOG" "$AUDIT")" "xoxb-writ-fake-bot-token|xapp-1-A0WRITTEST|writ-fake-signing-secret"
stop_writd
kill "$SLACK_PID" 2>/dev/null; wait "$SLACK_PID" 2>/dev/null
sed -i '/^writt_karl:/d' /etc/passwd
sudo_conf_plain
