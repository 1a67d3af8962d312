#!/bin/bash
# Slack figures (issue 5), not pass/fail: click → grant enforceable on the host (p50/p99), against
# `writ approve` measured in the same run; the time to recover from a `refresh_requested`
# disconnect and whether any envelope was lost. writd runs against the local fake Slack
# (Tests/Fakes/fake_slack.py) with real sudo, inside the integration tests' sandbox (private mount
# namespace, test users only in bind-mounted copies of /etc/passwd etc.); builds nothing, and
# checks afterwards that the machine is as it was. About a minute.
#
#   Benchmarks/slack.sh [BUILD_DIR] [N]   (default .build/release, 50; output also in
#                                         Benchmarks/results/slack-latest.txt)
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$SELF/.." && pwd)

if [ -z "${WRIT_SLACK_BENCH_INNER:-}" ]; then
    BUILD=$(cd "${1:-$ROOT/.build/release}" && pwd)
    [ "$(id -u)" = 0 ] || { echo "the writd benchmarks need root" >&2; exit 1; }
    for f in writd writ pam_writ.so; do
        [ -e "$BUILD/$f" ] || {
            echo "missing $BUILD/$f: swift build -c release --static-swift-stdlib && scripts/build-module.sh" >&2
            exit 1
        }
    done
    for tool in python3 sqlite3 sudo unshare pgrep; do
        command -v "$tool" >/dev/null || { echo "$tool missing" >&2; exit 1; }
    done
    fingerprint() {
        # What the run must leave as it found it (as Tests/Integration/run.sh checks).
        { sha256sum /etc/passwd /etc/group /etc/shadow /etc/sudo.conf /etc/sudoers 2>/dev/null
          find /etc/pam.d /etc/sudoers.d -type f -exec sha256sum {} + 2>/dev/null | sort
          ls -la /dev/log /run/sshd /run/writ /var/lib/writ /var/log/writ 2>&1 | sed "s/ [A-Z][a-z][a-z] .*//" || true; } | sha256sum
    }
    before=$(fingerprint)
    WORK=$(mktemp -d /tmp/writ-slack-bench.XXXXXX)
    chmod 0755 "$WORK"
    trap 'rm -rf "$WORK"' EXIT
    mkdir -p "$SELF/results"
    status=0
    unshare --mount --propagation private --fork \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        WRIT_SLACK_BENCH_INNER=1 N="${2:-50}" WORK="$WORK" BUILD="$BUILD" HERE="$ROOT/Tests/Integration" BENCH="$SELF" \
        bash "$SELF/slack.sh" 2>&1 | tee "$SELF/results/slack-latest.txt" || status=$?
    left=$(pgrep -fa "$WORK" || true)
    if [ "$before" != "$(fingerprint)" ] || [ -n "$left" ]; then
        echo "FAIL: the machine was changed (/etc, /dev/log, /run, /var/lib/writ or /var/log/writ differ) or processes are left: $left"
        status=1
    else
        echo "machine unchanged: /etc/passwd, /etc/group, /etc/shadow, /etc/pam.d, /etc/sudo*, /dev/log, /run, /var/lib/writ, /var/log/writ as before; no process left"
    fi
    exit $status
fi

# --- inside the private mount namespace ----------------------------------------------------------
source "$HERE/lib.sh"
WRITD=$BUILD/writd
STATE=$WORK/store/writd.db
POLICY=$WORK/policy.yaml
WRITD_LOG=$WORK/writd.log
N=${N:-50}
cleanup() {
    if [ -n "${WRITD_PID:-}" ]; then kill "$WRITD_PID" 2>/dev/null || true; wait "$WRITD_PID" 2>/dev/null || true; fi
    if [ -n "${SLACK_PID:-}" ]; then kill "$SLACK_PID" 2>/dev/null || true; wait "$SLACK_PID" 2>/dev/null || true; fi
    teardown_sandbox
}
trap cleanup EXIT
setup_sandbox
mkdir -p "$WORK/varlib-up" "$WORK/varlib-work"
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$WORK/varlib-up,workdir=$WORK/varlib-work" /var/lib
coproc SLACK { exec python3 "$ROOT/Tests/Fakes/fake_slack.py" --port 0; }
SLACK_PID=$SLACK_PID
read -r _ S <&"${SLACK[0]}"
curl -sf "$S/_fake/seed" -d '{"users": [{"id": "U0ALICE001", "email": "writt_alice@example.test"},
  {"id": "U0BOB00001", "email": "writt_bob@example.test"}],
  "channels": [{"id": "C0APPROVE1", "name": "writ-approvals"}]}' >/dev/null
cat >"$WORK/integrations.yaml" <<YAML
slack:
  bot_token: xoxb-writ-fake-bot-token
  app_token: xapp-1-A0WRITTEST-1-writ-fake-app-token
  api_url: $S/api/
  channel: C0APPROVE1
identities: {email_template: "{user}@example.test"}
YAML
chmod 0600 "$WORK/integrations.yaml"
cat >"$POLICY" <<'YAML'
version: 1
flows:
  - name: bench
    capability: sudo
    requesters: {users: [writt_alice]}
    approvers: {users: [writt_bob]}
    duration: {default: 10m, max: 1h}
    reason: {required: false}
YAML
sudo_pam_plain
sudo_conf_plugin
"$WRITD" --store "$STORE" --state "$STATE" --audit-log "$AUDIT" --policy "$POLICY" \
    --integrations "$WORK/integrations.yaml" >>"$WRITD_LOG" 2>&1 &
WRITD_PID=$!
for _ in $(seq 200); do
    curl -s "$S/_fake/connections" | grep -q '"state": "open"' && break
    sleep 0.05
done
echo "== Slack benchmarks: $(nproc) cores, $(uname -r), writd $("$WRITD" --version), $(date -u '+%F %H:%M UTC')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
export WRIT STORE STATE
python3 "$BENCH/slack_clicks.py" clicks "$S" writt_alice writt_bob U0BOB00001 bench "$N" || { tail -20 "$WRITD_LOG"; exit 1; }
python3 "$BENCH/slack_clicks.py" refresh "$S" 40 || { tail -20 "$WRITD_LOG"; exit 1; }
