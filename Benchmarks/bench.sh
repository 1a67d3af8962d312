#!/bin/bash
# Started by Benchmarks/run.sh inside a private mount namespace.
set -euo pipefail
source "$HERE/lib.sh"
trap teardown_sandbox EXIT
setup_sandbox
USER_NAME=writt_alice
USER_ID=$(id -u "$USER_NAME")
RUNS=${RUNS:-300}

echo "== machine: $(nproc) cores, $(uname -r), $(sudo -V | head -1), $(date -u +%F)"
"$BUILD/writ-bench-seed" "$STORE" "$USER_NAME" "$USER_ID" 100000 10000
echo "store: $(sqlite3 "$STORE" 'SELECT count(*) FROM grants') grants, $(sqlite3 "$STORE" "SELECT count(*) FROM grants WHERE revoked_at IS NULL AND expires_at > strftime('%s','now')") active; $(du -h "$STORE" | cut -f1)"

# Configurations, switched by hyperfine's --prepare before each timed run.
mkdir -p "$WORK/conf"
sudo_pam_plain; cp /etc/pam.d/sudo "$WORK/conf/pam-plain"
sudo_pam_stack; cp /etc/pam.d/sudo "$WORK/conf/pam-writ"
sudo_pam_stack sudo_plugin; cp /etc/pam.d/sudo "$WORK/conf/pam-writ-plugin"
sudo_conf_plain; cp /etc/sudo.conf "$WORK/conf/conf-plain"
sudo_conf_plugin; cp /etc/sudo.conf "$WORK/conf/conf-plugin"
use() { echo "cat $WORK/conf/$1 > /etc/pam.d/sudo; cat $WORK/conf/$2 > /etc/sudo.conf"; }
# setpriv: become the user without a PAM session of its own (runuser/su would add one).
AS_USER="setpriv --reuid=$USER_ID --regid=$USER_ID --init-groups"

echo
echo "== sudo -n /bin/true as $USER_NAME (hyperfine, $RUNS runs each, same run)"
cd /tmp
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$WORK/sudo.json" --style basic \
    --prepare "sh -c '$(use pam-plain conf-plain)'" -n "stock sudo" "$AS_USER sudo -n /bin/true" \
    --prepare "sh -c '$(use pam-writ conf-plain)'" -n "pam_writ.so (account)" "$AS_USER sudo -n /bin/true" \
    --prepare "sh -c '$(use pam-plain conf-plugin)'" -n "sudo_writ.so (approval+audit)" "$AS_USER sudo -n /bin/true" \
    --prepare "sh -c '$(use pam-writ-plugin conf-plugin)'" -n "both" "$AS_USER sudo -n /bin/true" \
    --prepare "true" -n "setpriv only (launcher cost)" "$AS_USER /bin/true" >"$WORK/hyperfine.txt"
python3 - "$WORK/sudo.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
stock = r["stock sudo"]["median"]
launch = r["setpriv only (launcher cost)"]["median"]
print(f"{'configuration':32} {'median':>9} {'mean±sd':>16}  ratio  ratio(launcher removed)")
for name, x in r.items():
    m = x["median"]
    line = f"{name:32} {m*1000:7.2f}ms {x['mean']*1000:7.2f}±{x['stddev']*1000:4.2f}ms"
    if name != "setpriv only (launcher cost)":
        line += f"  {m/stock:5.2f}  {(m-launch)/(stock-launch):5.2f}"
    print(line)
PY

echo
echo "== peak RSS of the sudo process (max of 20 runs each, getrusage of the children)"
for v in "stock sudo:pam-plain:conf-plain" "pam_writ.so (account):pam-writ:conf-plain" \
    "sudo_writ.so (approval+audit):pam-plain:conf-plugin" "both:pam-writ-plugin:conf-plugin"; do
    IFS=: read -r name pam conf <<<"$v"
    sh -c "$(use "$pam" "$conf")"
    python3 - "$name" "$USER_ID" <<'PY'
import resource, subprocess, sys
name, uid = sys.argv[1], sys.argv[2]
for _ in range(20):
    subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--init-groups", "sudo", "-n", "/bin/true"], check=True)
print(f"{name:32} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:6.1f} MiB")
PY
done

echo
echo "== one check in-process (module already loaded), against the same SQLite work in C"
gcc -O2 -o "$WORK/check_bench" "$BENCH/check_bench.c" -lpam -lsqlite3
pam_service bench "account required $MODULE store=$STORE capability=sudo"
"$WORK/check_bench" "$PAMDIR" bench "$USER_NAME" "$STORE" 5000

echo
echo "== load + first check in a fresh process (pam_start_confdir, pam_acct_mgmt, pam_end)"
gcc -O2 -o "$WORK/pam_harness" "$HERE/pam_harness.c" -lpam
pam_service permit "account required pam_permit.so"
hyperfine -N --warmup 20 --runs "$RUNS" --style basic \
    -n "pam_permit.so only" "$WORK/pam_harness $PAMDIR permit $USER_NAME" \
    -n "pam_writ.so" "$WORK/pam_harness $PAMDIR bench $USER_NAME" 2>&1 | grep -E "^Benchmark|Time|±|faster|slower|pam_" || true
