# What the tests ask about writd's state and the grant store, one function per question: the only
# place that knows tables and columns, so a schema change or a second store changes this file
# only. Read-only sqlite3 queries, as fast as the checks that poll them need (writd need not run:
# faults.sh kills it). Sourced by suite.sh after lib.sh; $STORE (lib.sh) and $STATE
# (daemon-lib.sh) are read when a function runs.

_state_db() { sqlite3 -cmd ".timeout 5000" "$STATE" "$@"; }
_store_db() { sqlite3 -cmd ".timeout 5000" "$STORE" "$@"; }
# Both files, writd's attached as d (as writd itself opens them).
_both_db() { sqlite3 -cmd ".timeout 5000" "$STORE" "ATTACH '$STATE' AS d; $1"; }

# --- requests ------------------------------------------------------------------------------------

REQUEST_FIELDS="state requester flow duration kind extends_grant decided_by grant_id"
# request_field RID NAME...: those fields of the request, joined by | (NAME from REQUEST_FIELDS).
request_field() {
    local rid=$1 f; shift
    for f in "$@"; do
        case " $REQUEST_FIELDS " in *" $f "*) ;; *) echo "request_field: unknown field $f" >&2; return 2 ;; esac
    done
    _state_db "SELECT $(IFS=,; echo "$*") FROM requests WHERE id='$rid'"
}
# request_state RID: pending, approved, denied, expired or cancelled.
request_state() { request_field "$1" state; }
# latest_request [NAME=VALUE...]: the id of the newest request (NAME: state, flow or kind).
latest_request() {
    local where="1" kv
    for kv in "$@"; do
        case ${kv%%=*} in
            state | flow | kind) where="$where AND ${kv%%=*}='${kv#*=}'" ;;
            *) echo "latest_request: unknown filter $kv" >&2; return 2 ;;
        esac
    done
    _state_db "SELECT id FROM requests WHERE $where ORDER BY created_at DESC, rowid DESC LIMIT 1"
}

# --- grants --------------------------------------------------------------------------------------

# grant_of_request RID: the id of the grant the store holds for the request (empty: none).
grant_of_request() { _store_db "SELECT id FROM grants WHERE request_id='$1'"; }
# grants_of_request RID: how many grants the store holds for the request.
grants_of_request() { _store_db "SELECT count(*) FROM grants WHERE request_id='$1'"; }
# grant_expires GID: the grant's expires_at (epoch seconds).
grant_expires() { _store_db "SELECT expires_at FROM grants WHERE id='$1'"; }
# grant_windows USER: one line per grant of USER, ended ones too: "NOT_BEFORE EXPIRES_AT ENDED_AT"
# (ENDED_AT: revoked_at, else expires_at).
grant_windows() {
    _store_db "SELECT not_before, expires_at, coalesce(revoked_at, expires_at) FROM grants WHERE user='$1'" | tr '|' ' '
}
# grant_count: how many grants the store holds, ended ones too.
grant_count() { _store_db "SELECT count(*) FROM grants"; }
# grant_count_from_requests: how many of them were issued for a request.
grant_count_from_requests() { _store_db "SELECT count(*) FROM grants WHERE request_id IS NOT NULL"; }

# --- what writd watches --------------------------------------------------------------------------

# open_sessions GID: how many sessions under the grant writd tracks as open.
open_sessions() { _state_db "SELECT count(*) FROM sessions WHERE grant_id='$1' AND closed_at IS NULL"; }
# session_service GID: the PAM service of each open session under the grant.
session_service() { _state_db "SELECT service FROM sessions WHERE grant_id='$1' AND closed_at IS NULL"; }
# watch_count GID: 1 when writd watches the grant, else 0.
watch_count() { _state_db "SELECT count(*) FROM watch WHERE grant_id='$1'"; }
# watch_end_reason GID: why writd marked the grant ended (expired, revoked, ...; empty: not yet).
watch_end_reason() { _state_db "SELECT end_reason FROM watch WHERE grant_id='$1'"; }

# --- outboxes and Slack --------------------------------------------------------------------------

# audit_outbox_size: audit records queued, not yet in the audit log.
audit_outbox_size() { _state_db "SELECT count(*) FROM outbox"; }
# slack_outbox_size: Slack messages waiting to be delivered.
slack_outbox_size() { _state_db "SELECT count(*) FROM slack_outbox"; }
# slack_outbox_error [RID]: the last delivery error of each waiting message about RID; without
# RID, the greatest one over all waiting messages.
slack_outbox_error() {
    if [ -n "${1:-}" ]; then
        _state_db "SELECT last_error FROM slack_outbox WHERE request_id='$1'"
    else
        _state_db "SELECT max(last_error) FROM slack_outbox"
    fi
}
# slack_pins SLACK_ID USER: how many pinned identities have that Slack id or that unix user.
slack_pins() { _state_db "SELECT count(*) FROM slack_users WHERE slack_id='$1' OR unix_user='$2'"; }

# --- invariants (counts; 0 when they hold) -------------------------------------------------------

# requests_with_two_grants: requests the store holds more than one grant for.
requests_with_two_grants() {
    _store_db "SELECT count(*) FROM (SELECT request_id FROM grants WHERE request_id IS NOT NULL GROUP BY request_id HAVING count(*) > 1)"
}
# approved_without_grant [KIND]: approved requests (of KIND: grant or extend) with no grant.
approved_without_grant() {
    local kind=""
    [ -n "${1:-}" ] && kind="AND r.kind='$1'"
    _both_db "SELECT count(*) FROM d.requests r WHERE r.state='approved' $kind AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.request_id=r.id)"
}
# grants_without_approved_request: grants issued for a request that is not approved.
grants_without_approved_request() {
    _both_db "SELECT count(*) FROM grants g WHERE g.request_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM d.requests r WHERE r.id=g.request_id AND r.state='approved')"
}
# unmarked_expiries: watched grants over 2 s past expires_at that writd has not marked ended.
unmarked_expiries() {
    _both_db "SELECT count(*) FROM grants g JOIN d.watch w ON w.grant_id=g.id WHERE g.expires_at <= strftime('%s','now') - 2 AND w.ended_at IS NULL"
}

# --- fixtures ------------------------------------------------------------------------------------

# Backdate or postdate a grant: the CLI only issues grants that start now or later.
# The agent's cursor in writd.db (empty before its first snapshot from writ-server).
fleet_cursor() { _state_db "SELECT value FROM meta WHERE key='fleet_cursor'" 2>/dev/null; }
# Whether a grant is revoked in grants.db: "yes" or "no".
grant_revoked() { _store_db "SELECT CASE WHEN revoked_at IS NULL THEN 'no' ELSE 'yes' END FROM grants WHERE id='$1'"; }

set_times() { sqlite3 "$STORE" "UPDATE grants SET not_before=$2, expires_at=$3 WHERE id='$1'"; }
clear_grants() { sqlite3 "$STORE" "DELETE FROM grants"; }
