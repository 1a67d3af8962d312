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

if [ -z "${WRIT_BENCH_INNER:-}" ]; then
    source "$SELF/sandbox.sh"
    BENCH_ENV="N=${2:-50}" bench_outer "$SELF/slack.sh" slack "${1:-}"
fi

# --- inside the private mount namespace ----------------------------------------------------------
source "$HERE/lib.sh"
source "$BENCH/sandbox.sh"
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
bench_setup
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
bench_start_writd --integrations "$WORK/integrations.yaml"
for _ in $(seq 200); do
    curl -s "$S/_fake/connections" | grep -q '"state": "open"' && break
    sleep 0.05
done
echo "== Slack benchmarks: $(nproc) cores, $(uname -r), writd $("$WRITD" --version), $(date -u '+%F %H:%M UTC')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
export WRIT STORE STATE
python3 "$BENCH/slack_clicks.py" clicks "$S" writt_alice writt_bob U0BOB00001 bench "$N" || { tail -20 "$WRITD_LOG"; exit 1; }
python3 "$BENCH/slack_clicks.py" refresh "$S" 40 || { tail -20 "$WRITD_LOG"; exit 1; }
