#!/bin/bash
# Started by Benchmarks/run.sh inside a private mount namespace.
set -euo pipefail
source "$HERE/lib.sh"
trap teardown_sandbox EXIT
setup_sandbox
USER_NAME=writt_alice
USER_ID=$(id -u "$USER_NAME")
RUNS=${RUNS:-150}

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
echo "== sudo -n /bin/true as $USER_NAME: hyperfine run as the user, configurations alternated in 4 rounds of $RUNS runs"
mkdir -m 0777 "$WORK/hf"
cd /tmp
configs=("stock sudo:pam-plain:conf-plain" "pam_writ.so (account):pam-writ:conf-plain"
    "sudo_writ.so (approval+audit):pam-plain:conf-plugin" "both:pam-writ-plugin:conf-plugin")
for round in 1 2 3 4; do
    for i in "${!configs[@]}"; do
        IFS=: read -r name pam conf <<<"${configs[$i]}"
        sh -c "$(use "$pam" "$conf")"
        $AS_USER hyperfine -N --warmup 20 --runs "$RUNS" --style none \
            --export-json "$WORK/hf/$i-$round.json" -n "$name" "sudo -n /bin/true" >/dev/null 2>&1
    done
done
python3 - "$WORK/hf" "${#configs[@]}" <<'PY'
import json, sys, statistics
d, n = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(n):
    rs = [json.load(open(f"{d}/{i}-{r}.json"))["results"][0] for r in (1, 2, 3, 4)]
    times = [t for x in rs for t in x["times"]]
    rows.append((rs[0]["command"], statistics.median(times), statistics.mean(times), statistics.stdev(times), [x["median"] for x in rs]))
stock = rows[0][1]
print(f"{'configuration':32} {'median':>9} {'mean±sd':>16}  {'ratio':>5}  (round medians)")
for name, med, mean, sd, per in rows:
    print(f"{name:32} {med*1000:7.2f}ms {mean*1000:7.2f}±{sd*1000:4.2f}ms  {med/stock:5.2f}  ({', '.join(f'{p*1000:.2f}' for p in per)} ms)")
PY

echo
echo "== peak RSS of the sudo process (largest ru_maxrss of 20 runs, from wait4)"
gcc -O2 -o "$WORK/maxrss" "$BENCH/maxrss.c"
stock_kb=
for v in "${configs[@]}"; do
    IFS=: read -r name pam conf <<<"$v"
    sh -c "$(use "$pam" "$conf")"
    kb=$($AS_USER "$WORK/maxrss" 20 /usr/bin/sudo -n /bin/true)
    stock_kb=${stock_kb:-$kb}
    printf '%-32s %6.2f MiB  (+%.2f MiB)\n' "$name" "$(echo "$kb / 1024" | awk '{print $1/$3}')" "$(echo "$kb $stock_kb" | awk '{print ($1-$2)/1024}')"
done

echo
echo "== the check itself in-process: verify + open + query + decide + close (WritStore, as the module runs it)"
"$BUILD/writ-bench-check" "$STORE" "$USER_NAME" 5000

echo
echo "== pam_acct_mgmt in-process (module loaded; adds NSS lookups and the syslog line), against the same SQLite work in C"
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
