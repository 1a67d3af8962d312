# Faults: writd killed with SIGKILL at random points, FAULT_KILLS times (20 in the test command;
# `FAULT_KILLS=500 ONLY=faults Tests/Integration/run.sh` for the long run), while requests,
# approvals, expiries and revocations run and a user runs sudo in a loop. Afterwards: no grant lost
# or duplicated, every audit record once, the chain verifies, nothing left queued, and no sudo was
# allowed outside a grant. Sourced by suite.sh inside the sandbox, after daemon-lib.sh.

section "faults: writd SIGKILLed ${FAULT_KILLS:-20} times during requests, approvals, expiries and revocations"
KILLS=${FAULT_KILLS:-20}
stop_writd
clear_grants
rm -f "$STATE" "$AUDIT"
write_policy
sudo_pam_plain
sudo_conf_plugin
start_writd || fail "writd starts"

# The prober: sudo as writt_alice back to back; each line "START END RC" (seconds since the epoch).
PROBES=$WORK/faults-probes.txt
: >"$PROBES"
(
    cd "$WORK/home/writt_alice"
    while [ ! -e "$WORK/faults-stop" ]; do
        t0=$(date +%s.%N)
        rc=0
        runuser -u writt_alice -- sudo -n /usr/bin/true >/dev/null 2>&1 || rc=$?
        echo "$t0 $(date +%s.%N) $rc" >>"$PROBES"
    done
) &
PROBER=$!

kills=0 restarts_failed=0
t_loop=$(date +%s)
for round in $(seq "$KILLS"); do
    # Traffic of every kind: requests approved at once and later, a revocation, short grants that
    # expire while writd is down or starting.
    r1=$(file_request writt_alice --flow quick --for 2s)
    [ -n "$r1" ] && (writ_as writt_bob approve "$r1" >/dev/null &)
    r2=$(file_request writt_alice --flow quick --for 3s)
    [ -n "$r2" ] && (writ_as writt_bob approve "$r2" >/dev/null; sleep 0.$((RANDOM % 3)); writ_as writt_alice revoke "$(grant_of_request "$r2")" >/dev/null) &
    sleep "0.$((RANDOM % 6))$((RANDOM % 10))"
    kill -KILL "$WRITD_PID" 2>/dev/null; wait "$WRITD_PID" 2>/dev/null; kills=$((kills + 1))
    start_writd || { restarts_failed=$((restarts_failed + 1)); break; }
done
# Let everything in flight finish and every grant expire (the longest is 3 s), under a live writd.
sleep 5
for _ in 1 2; do python3 "$HERE/wire.py" ping >/dev/null; sleep 1; done
touch "$WORK/faults-stop"; wait "$PROBER" 2>/dev/null; rm -f "$WORK/faults-stop"
echo "  figure: $kills SIGKILLs of writd in $(( $(date +%s) - t_loop )) s, $(wc -l <"$PROBES") sudo runs meanwhile"
expect "writd killed $KILLS times and restarted each time" "$kills/$restarts_failed" "^$KILLS/0$"
expect "no request has two grants" "$(requests_with_two_grants)" "^0$"
expect "no approved request lost its grant" "$(approved_without_grant grant)" "^0$"
expect "no grant without its approved request" "$(grants_without_approved_request)" "^0$"
expect "no expiry missed: every ended grant is marked ended" "$(unmarked_expiries)" "^0$"
expect "nothing left queued for the audit log" "$(audit_outbox_size)" "^0$"
expect "the audit chain verifies" "$("$WRIT" audit verify)" "chain intact"
ids=$(grep -o '"id":"e_[0-9a-f]*"' "$AUDIT" | sort | uniq -d | wc -l)
expect "every audit record is in the log once (no id twice)" "$ids" "^0$"
issued=$(grep '"event":"grant.issue"' "$AUDIT" | grep -o '"grant":"g_[0-9a-f]*"' | sort)
expect "every grant has exactly one grant.issue record" "$(printf '%s\n' "$issued" | uniq -d | wc -l) $(printf '%s\n' "$issued" | grep -c .)" "^0 $(grant_count)$"
for kind in request.create request.approve; do
    dup=$(grep "\"event\":\"$kind\"" "$AUDIT" | grep -o '"request":"r_[0-9a-f]*"' | sort | uniq -d | wc -l)
    expect "no request has two $kind records" "$dup" "^0$"
done
# Every allowed sudo overlapped a grant of alice's: granted before the run ended, not yet ended
# (expired or revoked) when it started.
grant_windows writt_alice >"$WORK/faults-grants.txt"
bad=$(python3 - "$PROBES" "$WORK/faults-grants.txt" <<'PY'
import sys
grants = [tuple(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
bad = 0
for line in open(sys.argv[1]):
    start, end, rc = line.split()
    start, end = float(start), float(end)
    if rc != "0":
        continue
    # The modules compare whole seconds: a run allowed in second S needs a grant with
    # not_before <= S < min(expires_at, revoked_at).
    if not any(nb <= int(end) and int(start) < min(exp, rev) for nb, exp, rev in grants):
        bad += 1
print(bad)
PY
)
expect "no sudo was allowed outside a grant ($(grep -c ' 0$' "$PROBES") allowed, $(grep -vc ' 0$' "$PROBES") refused)" "$bad" "^0$"
stop_writd

section "faults: disk full under writd's store, state and audit log (small tmpfs)"
# The same paths as always (the sudo plugin reads $STORE), on 3 MiB tmpfs mounts in this namespace.
mount -t tmpfs -o size=3m,mode=0700 tmpfs "$WORK/store"
mount -t tmpfs -o size=3m,mode=0700 tmpfs /var/log/writ
start_writd || fail "writd starts on the small filesystems"
r=$(file_request writt_alice --flow quick --for 1m)
writ_as writt_bob approve "$r" >/dev/null
expect "before: a grant, and sudo works" "$(sudo_as writt_alice /usr/bin/id -u)" "rc=0"$'\n'"0"
dd if=/dev/zero of="$WORK/store/filler" bs=64k >/dev/null 2>&1 || true
dd if=/dev/zero of=/var/log/writ/filler bs=64k >/dev/null 2>&1 || true
out=$(writ_as writt_alice request sudo --flow quick --for 1m --no-wait)
expect "disk full: a new request is refused with a clear error" "$out" "rc=1"$'\n'"writ: .*(full|space)"
expect "disk full: writd is still running" "$(kill -0 "$WRITD_PID" && echo alive)" "^alive$"
expect "disk full: the modules keep enforcing the grant there is" "$(sudo_as writt_alice /usr/bin/id -u)" "rc=0"$'\n'"0"
expect "disk full: status still answers" "$(writ_as writt_alice status)" "^rc=0"
rm -f "$WORK/store/filler" /var/log/writ/filler
r2=$(file_request writt_alice --flow quick --for 1m)
expect "space back: requests work again" "${r2:-none}" "^r_"
out=$(writ_as writt_bob approve "$r2")
expect "... and approvals" "$out" "^rc=0"
sleep 0.5
expect "nothing left queued for the audit log" "$(audit_outbox_size)" "^0$"
expect "the audit chain verifies" "$("$WRIT" audit verify)" "chain intact"
expect "no approved request without its grant" "$(approved_without_grant)" "^0$"
stop_writd
umount /var/log/writ "$WORK/store"
