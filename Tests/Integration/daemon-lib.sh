# writd's test helpers (writd's paths, the test policy, start and stop, the CLI as a test user).
# Questions about writd's state: state.sh. Sourced by daemon.sh and faults.sh inside the sandbox.

WRITD=$BUILD/writd
STATE=$WORK/store/writd.db
POLICY=$WORK/policy.yaml
WRITD_LOG=$WORK/writd.log

write_policy() {
    cat >"$POLICY" <<'YAML'
version: 1
groups:
  oncall: [writt_dave]
flows:
  - name: ops
    description: root for incidents
    capability: sudo
    requesters: {users: [writt_alice, writt_dave]}
    approvers: {users: [writt_bob, writt_carol]}
    duration: {default: 30m, max: 2h}
    reason: {required: true, pattern: "^INC-[0-9]+"}
    pending_timeout: 1h
    warn_before: 3s
    auto_approve:
      - name: oncall
        requester_in: {groups: [oncall]}
        max_duration: 10m
  - name: quick
    description: short grants for the expiry tests
    capability: sudo
    requesters: {users: [writt_alice]}
    approvers: {users: [writt_bob]}
    duration: {default: 6s, max: 1m}
    reason: {required: false}
    pending_timeout: 3s
    warn_before: 3s
  - name: dual
    description: two approvals
    capability: sudo
    requesters: {users: [writt_alice]}
    approvers: {users: [writt_bob, writt_carol]}
    approvals: 2
    duration: {default: 10m, max: 1h}
    reason: {required: false}
YAML
}

start_writd() {
    "$WRITD" --store "$STORE" --state "$STATE" --audit-log "$AUDIT" --policy "$POLICY" \
        --session-grace 2 --warn-before 3 "$@" >>"$WRITD_LOG" 2>&1 &
    WRITD_PID=$!
    for _ in $(seq 100); do
        [ -S /run/writ/writd.sock ] && python3 "$HERE/wire.py" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "writd did not start:"; tail -20 "$WRITD_LOG"
    return 1
}
stop_writd() {
    [ -n "${WRITD_PID:-}" ] || return 0
    kill -TERM "$WRITD_PID" 2>/dev/null; wait "$WRITD_PID" 2>/dev/null; WRITD_PID=
}

# writ_as USER ARGS...: the CLI as that user; prints "rc=N" then its output.
writ_as() {
    local u=$1; shift
    local out rc=0
    out=$(cd "$WORK/home/$u" && runuser -u "$u" -- "$WRIT" "$@" 2>&1) || rc=$?
    printf 'rc=%s\n%s' "$rc" "$out"
}
# writ_json USER ARGS...: the CLI's stdout alone (for --json).
writ_json() { local u=$1; shift; (cd "$WORK/home/$u" && runuser -u "$u" -- "$WRIT" "$@" 2>/dev/null); }
# json_field JSON KEY: one top-level field of a JSON object.
json_field() { printf '%s' "$1" | python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$2"; }
# file_request USER ARGS...: files with --no-wait --json, prints the request id.
file_request() {
    local u=$1; shift
    local out
    out=$(cd "$WORK/home/$u" && runuser -u "$u" -- "$WRIT" request sudo --no-wait --json "$@" 2>/dev/null)
    json_field "$out" id
}
