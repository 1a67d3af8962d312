#!/bin/bash
# The integration suite. run.sh starts it inside a private mount namespace; never run it directly
# on a machine you care about.
set -uo pipefail
source "$HERE/lib.sh"
source "$HERE/state.sh"
trap teardown_sandbox EXIT

gcc -O2 -Wall -o "$WORK/pam_harness" "$HERE/pam_harness.c" -lpam || { echo "cannot build pam_harness"; exit 1; }
setup_sandbox
HOST=$(uname -n)
SHORT=${HOST%%.*}

summary() {
    printf '\n%s passed, %s failed\n' "$PASSED" "$FAILED"
    if [ "$FAILED" -gt 0 ]; then
        printf 'failed: %s\n' "${FAILED_NAMES[@]}"
        exit 1
    fi
}
# ONLY=daemon (run.sh passes it through): just the writd scenarios, with approval as code and
# the integrations; ONLY=slack: writd's scenarios and the Slack ones.
# ONLY=faults: the SIGKILL loop alone (FAULT_KILLS=500 for the long run).
# ONLY=fleet: writd as writ-server's agent (WRIT_SERVER names the server binary).
if [ "${ONLY:-}" = fleet ]; then
    source "$HERE/daemon-lib.sh"
    write_policy
    source "$HERE/fleet.sh"
    summary
    exit 0
fi
# ONLY=fleet-partition: the agent in a network namespace, cut off from writ-server by nftables.
if [ "${ONLY:-}" = fleet-partition ]; then
    source "$HERE/daemon-lib.sh"
    write_policy
    source "$HERE/fleet-partition.sh"
    summary
    exit 0
fi
if [ "${ONLY:-}" = faults ]; then
    source "$HERE/daemon-lib.sh"
    source "$HERE/faults.sh"
    summary
    exit 0
fi
if [ "${ONLY:-}" = daemon ] || [ "${ONLY:-}" = slack ]; then
    source "$HERE/daemon.sh"
    if [ "${ONLY:-}" = daemon ]; then
        source "$HERE/policy.sh"
        source "$HERE/pagerduty.sh"
    fi
    source "$HERE/slack.sh"
    summary
    exit 0
fi

# =================================================================================================
section "PAM account stage through pam_start_confdir (real Linux-PAM)"

pam_service writ-login "account required $MODULE store=$STORE"
pam_service sudo "account required $MODULE store=$STORE"

out=$(pam_check writ-login writt_alice)
expect "no grant: login denied" "$out" "result=PAM_PERM_DENIED"
expect "no grant: one line says what to run" "$out" "message\[error\]: writ: no active login grant for writt_alice on $SHORT — ask an admin of $SHORT for a login grant"
[ "$(printf '%s\n' "$out" | grep -c '^message')" = 1 ] && pass "no grant: exactly one message" || fail "no grant: exactly one message" "$out"

g=$(grant --user writt_alice --capability login --for 30m --reason "INC-1")
expect "grant add prints the id" "$g" "^g_[0-9a-f]{16}$"
out=$(pam_check writ-login writt_alice)
expect "active login grant: allowed" "$out" "result=PAM_SUCCESS"
expect_not "allowed: nothing printed" "$out" "^message"
out=$(pam_check writ-login writt_bob)
expect "other user's grant: denied" "$out" "result=PAM_PERM_DENIED"
out=$(pam_check sudo writt_alice)
expect "login grant does not give sudo (service sudo ⇒ capability sudo)" "$out" "result=PAM_PERM_DENIED.*|no active sudo grant"
expect "sudo denial names sudo" "$out" "no active sudo grant for writt_alice"

t=$(now)
set_times "$g" $((t - 7200)) $((t - 60))
out=$(pam_check writ-login writt_alice)
expect "expired grant: denied" "$out" "result=PAM_PERM_DENIED"
set_times "$g" $((t + 600)) $((t + 3600))
out=$(pam_check writ-login writt_alice)
expect "not-yet-valid grant: denied" "$out" "result=PAM_PERM_DENIED"
expect "not-yet-valid: says when it starts" "$out" "starts in (9|10)m"
set_times "$g" $((t - 10)) $((t + 3600))
revoke "$g"
out=$(pam_check writ-login writt_alice)
expect "revoked grant: denied" "$out" "result=PAM_PERM_DENIED"

g=$(grant --user writt_alice --capability login --for 30m --host "elsewhere-*")
out=$(pam_check writ-login writt_alice)
expect "grant for another host: denied" "$out" "does not cover $SHORT"
g=$(grant --user writt_alice --capability login --for 30m --host "${SHORT:0:2}*")
out=$(pam_check writ-login writt_alice)
expect "host glob matching this host: allowed" "$out" "result=PAM_SUCCESS"
clear_grants

out=$(pam_check writ-login root)
expect "root is never denied (no grant, no store needed)" "$out" "result=PAM_SUCCESS"
pam_service root-nostore "account required $MODULE store=$WORK/nowhere/grants.db"
out=$(pam_check root-nostore root)
expect "root allowed even when the store is missing" "$out" "result=PAM_SUCCESS"

pam_service_marked managed "store=$STORE managed_group=writt_managed"
out=$(pam_check managed writt_carol)
expect "user outside managed_group: PAM_IGNORE" "$out" "message\[info\]: writ-ignored"
out=$(pam_check managed writt_alice)
expect "user inside managed_group without grant: denied" "$out" "result=PAM_PERM_DENIED"
pam_service nogroup "account required $MODULE store=$STORE managed_group=writt_nosuchgroup"
m=$(syslog_mark)
out=$(pam_check nogroup writt_carol)
expect "missing managed_group: fail closed" "$out" "result=PAM_PERM_DENIED"
expect "missing managed_group: syslog says why" "$(syslog_since "$m")" "managed_group writt_nosuchgroup does not exist"

pam_service typo "account required $MODULE store=$STORE failmode=opne"
m=$(syslog_mark)
out=$(pam_check typo writt_alice)
expect "bad module argument: fail closed" "$out" "result=PAM_PERM_DENIED"
expect "bad module argument: syslog names it" "$(syslog_since "$m")" "unknown failmode=opne"

pam_service cap "account required $MODULE store=$STORE capability=sudo"
grant --user writt_bob --capability sudo --for 10m >/dev/null
out=$(pam_check cap writt_bob)
expect "capability=sudo on another service: sudo grant counts" "$out" "result=PAM_SUCCESS"
clear_grants

# PAM_SILENT (sudo always passes it) must not swallow the one denial line.
out=$(pam_check sudo writt_alice --silent)
expect "PAM_SILENT: denial line still shown" "$out" "message\[error\]: writ: no active sudo grant"
grant --user writt_bob --capability sudo --for 10m >/dev/null
out=$(pam_check sudo root --ruser writt_alice)
expect "sudo service: PAM user root (rootpw) but invoking user alice: alice is checked" "$out" "result=PAM_PERM_DENIED.*|no active sudo grant for writt_alice"
expect "... and denied with alice's line" "$out" "no active sudo grant for writt_alice"
expect "sudo service: invoking user with a grant passes whatever the PAM user" "$(pam_check sudo root --ruser writt_bob)" "result=PAM_SUCCESS"
pam_service su-like "account required $MODULE store=$STORE capability=sudo"
out=$(pam_check su-like root --ruser writt_alice)
expect "capability=sudo on another service (su): the invoking user is checked, not the root target" "$out" "no active sudo grant for writt_alice.*result=PAM_PERM_DENIED"
out=$(pam_check sudo writt_bob --no-ruser)
expect "sudo service without PAM_RUSER: fail closed" "$out" "cannot tell who is running sudo.*result=PAM_PERM_DENIED"
clear_grants

section "PAM: scoped sudo grants need the sudo plugin"
g=$(grant --user writt_dave --capability sudo --for 30m --command "/usr/bin/id")
out=$(pam_check sudo writt_dave)
expect "command-scoped grant, PAM only: denied" "$out" "result=PAM_PERM_DENIED"
expect "command-scoped grant, PAM only: says why" "$out" "limited to a run-as user or commands"
pam_service sudo "account required $MODULE store=$STORE sudo_plugin"
out=$(pam_check sudo writt_dave)
expect "sudo_plugin set but sudo.conf lacks writ_approval: still denied" "$out" "result=PAM_PERM_DENIED"
sudo_conf_plugin
out=$(pam_check sudo writt_dave)
expect "sudo_plugin, sudo.conf line, but the process is not sudo.ws (e.g. sudo-rs): still denied" "$out" "result=PAM_PERM_DENIED"
sudo_conf_plain
clear_grants
g=$(grant --user writt_dave --capability sudo --for 30m --runas writt_bob)
pam_service sudo "account required $MODULE store=$STORE"
out=$(pam_check sudo writt_dave)
expect "runas-scoped grant (not root), PAM only: denied" "$out" "limited to a run-as user"
clear_grants

pam_service su "account required $MODULE store=$STORE capability=login managed_group=writt_managed"
expect "root's own su to a managed user is not a login: allowed without a grant" "$(pam_check su writt_alice)" "result=PAM_SUCCESS"
pam_service not-su "account required $MODULE store=$STORE capability=login managed_group=writt_managed"
expect "... but the same line in another service still gates" "$(pam_check not-su writt_alice)" "result=PAM_PERM_DENIED"

section "PAM: the store is checked before it is trusted (fail closed, syslog says which)"
grant --user writt_alice --capability login --for 1h >/dev/null
pam_service good "account required $MODULE store=$STORE"
expect "baseline with a good store" "$(pam_check good writt_alice)" "result=PAM_SUCCESS"

bad_store() { # NAME SETUP-COMMANDS EXPECTED-LOG
    local name=$1 setup=$2 log=$3 dir
    dir=$(mktemp -d "$WORK/bad.XXXXXX")
    chmod 0700 "$dir"
    cp "$STORE" "$dir/grants.db"
    (cd "$dir" && eval "$setup")
    pam_service bad "account required $MODULE store=$dir/grants.db"
    local m out
    m=$(syslog_mark)
    out=$(pam_check bad writt_alice)
    expect "$name: denied" "$out" "result=PAM_PERM_DENIED"
    expect "$name: user told to contact an admin" "$out" "access checks are unavailable.*contact an admin"
    expect "$name: syslog (authpriv) says why" "$(syslog_since "$m")" "$log"
    pam_service_marked bad "store=$dir/grants.db failmode=open"
    BAD_OPEN=$(pam_check bad writt_alice)
}
bad_store "missing store" "rm grants.db" "<(8[0-9]|3[0-9])>.*store unusable \(missing\)"
expect "missing store, failmode=open: PAM_IGNORE" "$BAD_OPEN" "writ-ignored"
bad_store "corrupt store" "head -c 8192 /dev/urandom > grants.db" "store unusable \(corrupt\)"
expect "corrupt store, failmode=open: PAM_IGNORE" "$BAD_OPEN" "writ-ignored"
bad_store "truncated store" "head -c 100 grants.db > x && mv x grants.db && chmod 600 grants.db" "store unusable \((corrupt|uninitialized)\)"
bad_store "store without schema" "rm grants.db && sqlite3 grants.db 'CREATE TABLE t(x)'" "store unusable \(uninitialized\)"
bad_store "newer schema" "sqlite3 grants.db 'PRAGMA user_version=99'" "store unusable \(newer_schema\)"
bad_store "store not owned by root" "chown writt_bob grants.db" "store unusable \(not_owned_by_root\)"
expect "not owned by root, failmode=open: still denied" "$BAD_OPEN" "result=PAM_PERM_DENIED"
bad_store "group-writable store" "chmod 0620 grants.db" "store unusable \(writable_by_others\)"
bad_store "world-writable store" "chmod 0606 grants.db" "store unusable \(writable_by_others\)"
expect "world-writable, failmode=open: still denied" "$BAD_OPEN" "result=PAM_PERM_DENIED"
bad_store "symlinked store" "mv grants.db real.db && ln -s real.db grants.db" "store unusable \(symlink\)"
expect "symlink, failmode=open: still denied" "$BAD_OPEN" "result=PAM_PERM_DENIED"
bad_store "world-writable directory" "chmod 0777 ." "store unusable \(directory_insecure\)"
bad_store "directory owned by a user" "chown writt_bob ." "store unusable \(directory_insecure\)"
# A user-owned directory higher up would let that user rename the store's directory away.
mkdir -p "$WORK/userdir/store" && chown writt_bob "$WORK/userdir" && chmod 0700 "$WORK/userdir/store"
cp "$STORE" "$WORK/userdir/store/grants.db"
pam_service ancestor "account required $MODULE store=$WORK/userdir/store/grants.db"
m=$(syslog_mark)
out=$(pam_check ancestor writt_alice)
expect "store below a user-owned directory: denied" "$out" "result=PAM_PERM_DENIED"
expect "store below a user-owned directory: syslog says why" "$(syslog_since "$m")" "directory_insecure.*above the store can be changed by someone other than root"
bad_store "store is a directory" "rm grants.db && mkdir grants.db" "store unusable \(not_regular_file\)"

section "PAM: nothing the invoking user controls changes a decision"
out=$(cd /tmp && env -i HOME=/tmp SQLITE_TMPDIR=/nonexistent TMPDIR=/nonexistent TZ=Pacific/Kiritimati LANG=C PATH=/tmp "$WORK/pam_harness" "$PAMDIR" good writt_alice)
expect "hostile environment and cwd: active grant still allowed" "$out" "result=PAM_SUCCESS"
out=$(cd /tmp && env -i HOME=/tmp TZ=Pacific/Kiritimati PATH=/tmp "$WORK/pam_harness" "$PAMDIR" good writt_bob)
expect "hostile environment and cwd: no grant still denied" "$out" "result=PAM_PERM_DENIED"
out=$(ulimit -n 5; "$WORK/pam_harness" "$PAMDIR" good writt_bob 2>&1)
expect "file-descriptor limit: no grant still denied" "$out" "result=PAM_PERM_DENIED"
pam_service goodopen "account required $MODULE store=$STORE failmode=open"
out=$(ulimit -n 4; "$WORK/pam_harness" "$PAMDIR" goodopen writt_bob 2>&1)
expect_not "fd limit with failmode=open: never lets the user through" "$out" "result=PAM_(SUCCESS|IGNORE)"
clear_grants

section "PAM: load/unload"
grant --user writt_alice --capability login --for 1h >/dev/null
out=$("$WORK/pam_harness" "$PAMDIR" good writt_alice --cycles 1000)
echo "        $out"
expect "1000 pam_start/pam_acct_mgmt/pam_end cycles: all allowed, no crash" "$out" "cycles=1000 successes=1000"
growth=$(($(printf '%s' "$out" | sed -E 's/.*rss_after_100_kb=([0-9]+) rss_end_kb=([0-9]+).*/\2 - \1/')))
[ "$growth" -lt 512 ] && pass "memory flat over 900 cycles (grew ${growth} KiB)" || fail "memory flat over 900 cycles" "grew ${growth} KiB: $out"
clear_grants

# =================================================================================================
section "sudo (Debian's sudo $(sudo -V | head -1 | awk '{print $3}')) with pam_writ.so in the account stack"
sudo_conf_plain
sudo_pam_stack

out=$(sudo_as writt_alice /bin/true)
expect "no grant: sudo refused" "$out" "^rc=1"
expect "no grant: user sees what to run" "$out" "writ: no active sudo grant for writt_alice on $SHORT — run: writ request sudo"
g=$(grant --user writt_alice --capability sudo --for 30m --reason "INC-4521 disk full")
out=$(sudo_as writt_alice /usr/bin/id -u)
expect "sudo grant: sudo runs as root" "$out" "^rc=0"$'\n'"0$"
out=$(sudo_as writt_bob /bin/true)
expect "alice's grant does not help bob" "$out" "no active sudo grant for writt_bob"
t=$(now)
set_times "$g" $((t - 3600)) $((t - 1))
out=$(sudo_as writt_alice /bin/true)
expect "expired grant: sudo refused" "$out" "^rc=1.*no active sudo grant"
set_times "$g" $((t + 300)) $((t + 900))
out=$(sudo_as writt_alice /bin/true)
expect "not-yet-valid grant: sudo refused" "$out" "starts in"
set_times "$g" $((t - 1)) $((t + 900))
expect "grant valid again: sudo runs" "$(sudo_as writt_alice /bin/true)" "^rc=0"
revoke "$g"
out=$(sudo_as writt_alice /bin/true)
expect "revoked grant: sudo refused at once" "$out" "^rc=1.*no active sudo grant"
g=$(grant --user writt_alice --capability sudo --for 30m --host "db-*")
out=$(sudo_as writt_alice /bin/true)
expect "grant for other hosts: sudo refused" "$out" "does not cover $SHORT"
clear_grants
out=$(runuser -u root -- sudo -n /usr/bin/id -u 2>&1)
expect "root's sudo unaffected" "$out" "^0$"
cp /etc/pam.d/sudo /etc/pam.d/sudo-i
expect "sudo -i (the sudo-i PAM service) refused without a grant" "$(sudo_as writt_bob -i /bin/true)" "^rc=1.*no active sudo grant for writt_bob"
# With rootpw, sudo's PAM user is root: the module must check the invoking user (PAM_RUSER).
printf 'Defaults:writt_bob rootpw\n' >>/etc/sudoers
out=$(sudo_as writt_bob /bin/true)
expect "Defaults rootpw: the invoking user is checked, not root" "$out" "^rc=1.*no active sudo grant for writt_bob"
sed -i '/rootpw/d' /etc/sudoers
out=$(cd /tmp && runuser -u writt_alice -- env HOME=/tmp/evil SQLITE_TMPDIR=/x sudo -n /bin/true 2>&1; echo "rc=$?")
expect "user environment does not turn a denial into access" "$out" "no active sudo grant.*rc=1"

# =================================================================================================
section "sudo with the writ approval and audit plugins (sudo_writ.so)"
sudo_pam_plain
sudo_conf_plugin

m=$(syslog_mark)
out=$(sudo_as writt_alice /bin/true)
expect "plugin, no grant: refused" "$out" "^rc=1"
expect "plugin, no grant: user sees the reason (via sudo's printf)" "$out" "writ: no active sudo grant for writt_alice"
g=$(grant --user writt_alice --capability sudo --for 30m)
out=$(sudo_as writt_alice /usr/bin/id -u)
expect "plugin, full grant: runs" "$out" "^rc=0"$'\n'"0"
out=$(sudo_as writt_alice -u writt_bob /usr/bin/id -un)
expect "grant with the default run-as (root) does not cover another target user" "$out" "^rc=1.*allows running as root, not writt_bob"
clear_grants

# The staged rollout: managed_group= on the Plugin line means what it means on the PAM line.
sudo_conf_plugin managed_group=writt_managed
expect "plugin managed_group: a member without a grant is refused" "$(sudo_as writt_alice /bin/true)" "^rc=1.*no active sudo grant for writt_alice"
expect "plugin managed_group: a user outside the group is not gated (sudoers decides)" "$(sudo_as writt_carol /usr/bin/id -u)" "^rc=0"$'\n'"0"
sudo_conf_plugin managed_group=writt_nosuchgroup
m=$(syslog_mark)
expect "plugin: a managed_group that does not exist fails closed, saying what to check" "$(sudo_as writt_carol /bin/true)" "^rc=1.*check managed_group= on the writ_approval line"
expect "... and syslog says why" "$(syslog_since "$m")" "managed_group writt_nosuchgroup does not exist; denying sudo for writt_carol"
sudo_conf_plugin sudo_plugin
m=$(syslog_mark)
expect "plugin: a PAM-only option on the Plugin line is an error, not ignored" "$(sudo_as writt_carol /bin/true)" "^rc=1.*misconfigured"
expect "... and syslog names it" "$(syslog_since "$m")" "sudo_plugin is a pam_writ.so option"
sudo_conf_plugin managed_grup=writt_managed
m=$(syslog_mark)
expect "plugin: a misspelt option is an error" "$(sudo_as writt_carol /bin/true)" "^rc=1.*misconfigured"
expect "... and syslog names it" "$(syslog_since "$m")" "unknown option .managed_grup=writt_managed."
expect "plugin: root is never refused, whatever the options" "$(runuser -u root -- sudo -n /usr/bin/id -u 2>&1)" "^0$"
# PAM leaves command scopes to the plugin (sudo_plugin) only for users the plugin gates: carol is
# outside the plugin's group, so her command-limited grant must not become full sudo.
sudo_conf_plugin managed_group=writt_managed
sudo_pam_stack sudo_plugin
g=$(grant --user writt_carol --capability sudo --for 30m --command "/usr/bin/id -u")
expect "sudo_plugin on PAM, plugin's group leaves carol out: her command grant is no full sudo" "$(sudo_as writt_carol /usr/bin/whoami)" "^rc=1.*limited to a run-as user or commands"
expect "... nor does it pass at all (nothing would check the command)" "$(sudo_as writt_carol /usr/bin/id -u)" "^rc=1"
clear_grants
sudo_pam_plain
sudo_conf_plugin
sed -i "s|^Plugin writ_audit .*|& sudo_plugin|" /etc/sudo.conf
m=$(syslog_mark)
expect "plugin: an option writ_audit does not take is an error too" "$(sudo_as writt_carol /bin/true)" "^rc=1.*check the writ_audit line"
expect "... and syslog names it" "$(syslog_since "$m")" "bad writ_audit options in sudo.conf: sudo_plugin is a pam_writ.so option"
expect "... root is not refused" "$(runuser -u root -- sudo -n /usr/bin/id -u 2>&1)" "^0$"
sudo_conf_plugin

g=$(grant --user writt_alice --capability sudo --for 30m --runas writt_bob)
out=$(sudo_as writt_alice -u writt_bob /usr/bin/id -un)
expect "runas-scoped grant: as that user, allowed" "$out" "^rc=0"$'\n'"writt_bob"
out=$(sudo_as writt_alice /usr/bin/id -un)
expect "runas-scoped grant: as root, refused" "$out" "^rc=1.*allows running as writt_bob, not root"
out=$(sudo_as writt_alice -u writt_bob -g root /usr/bin/id -gn)
expect "runas-scoped grant: with another group (-g root), refused" "$out" "^rc=1.*another group"
clear_grants

g=$(grant --user writt_alice --capability sudo --for 30m --command "/usr/bin/id -u" --command "/usr/bin/uptime" --command '/usr/bin/whoami ""')
expect "command grant: exact arguments allowed" "$(sudo_as writt_alice /usr/bin/id -u)" "^rc=0"
out=$(sudo_as writt_alice /usr/bin/id -un)
expect "command grant: other arguments refused" "$out" "^rc=1.*does not allow /usr/bin/id"
expect "command grant: path alone allows any arguments" "$(sudo_as writt_alice /usr/bin/uptime -p)" "^rc=0"
expect "command grant: \"\" allows no arguments" "$(sudo_as writt_alice /usr/bin/whoami)" "^rc=0"
expect "command grant: \"\" refuses arguments" "$(sudo_as writt_alice /usr/bin/whoami --help)" "^rc=1"
out=$(sudo_as writt_alice /bin/sh -c id)
expect "command grant: a shell is refused" "$out" "^rc=1.*does not allow /usr/bin/sh|^rc=1.*does not allow /bin/sh"
out=$(sudo_as writt_alice -s)
expect "command grant: sudo -s refused" "$out" "^rc=1"
clear_grants
g=$(grant --user writt_alice --capability sudo --for 30m --command "/bin/true")
expect "command grant stored with its directory resolved" "$("$WRIT" grant list --json --store "$STORE")" '"commands":\["/usr/bin/true"\]'
expect "command grant: same program by its resolved path: allowed" "$(sudo_as writt_alice /usr/bin/true)" "^rc=0"
expect "command grant: same program through root's symlinked /bin (merged /usr): allowed" "$(sudo_as writt_alice /bin/true)" "^rc=0"
ln -s /usr/bin/true "$WORK/home/writt_alice/true"
expect "command grant: a symlink in the user's directory: refused" "$(sudo_as writt_alice "$WORK/home/writt_alice/true")" "^rc=1.*does not allow"
cp /usr/bin/true "$WORK/home/writt_alice/"$'\xff'
chown writt_alice "$WORK/home/writt_alice/"$'\xff'
expect "command grant: a program whose name is not UTF-8: refused" "$(sudo_as writt_alice "$WORK/home/writt_alice/"$'\xff')" "^rc=1"
clear_grants
g=$(grant --user writt_alice --capability sudo --for 30m --command "/usr/bin/rbash")
expect "command grant for rbash does not allow bash (same inode, other name)" "$(sudo_as writt_alice /usr/bin/bash -c id)" "^rc=1.*does not allow /usr/bin/bash"
clear_grants
g=$(grant --user writt_alice --capability sudo --for 30m --command "/usr/bin/id -u")
out=$(sudo_as writt_alice LD_PRELOAD=/tmp/evil.so /usr/bin/id -u)
expect "command grant: LD_PRELOAD=… on the command line refused" "$out" "^rc=1.*only in sudo's clean environment \(variable LD_PRELOAD is set\)"
out=$(cd /tmp && runuser -u writt_alice -- env PYTHONPATH=/tmp sudo -n -E /usr/bin/id -u 2>&1; echo "rc=$?")
expect "command grant: sudo -E with the user's variables refused" "$out" "variable .* is set.*rc=1"
out=$(sudo_as writt_alice PATH=/tmp:/usr/bin /usr/bin/id -u)
expect "command grant: a PATH through a writable directory refused" "$out" "^rc=1.*PATH entry .*/tmp.* is not a directory only root can change"
expect "command grant: plain run still allowed" "$(sudo_as writt_alice /usr/bin/id -u)" "^rc=0"
out=$(sudo_as writt_alice HOME=$WORK/home/writt_alice /usr/bin/id -u)
expect "command grant: HOME pointing at the user's dotfiles refused" "$out" "^rc=1.*HOME is not the value sudo sets"
out=$(sudo_as writt_alice LANGUAGE=../../../../tmp/l /usr/bin/id -u)
expect "command grant: a locale variable naming a path refused" "$out" "^rc=1.*LANGUAGE names a path"
expect "command grant: TZ naming the user's file refused" "$(sudo_as writt_alice TZ=/tmp/zone /usr/bin/id -u)" "^rc=1.*TZ names a file"
expect "command grant: TZ naming a zone allowed" "$(sudo_as writt_alice TZ=Europe/Paris /usr/bin/id -u)" "^rc=0"
# Every variable sudo's own env_reset keeps (its env_keep and env_check defaults, from sudo -V):
# the ones that only name things pass with a usual value, the rest are refused; with shell
# metacharacters in it, every one is refused.
sudo_keeps=$(sudo -V | awk '/^Environment variables to (preserve|check for safety):/ {on=1; next} /^[^\t]/ {on=0} on {sub(/\*/, "TIME", $1); print $1}' | sort -u | tr '\n' ' ')
expect "sudo -V lists what env_reset keeps" "$sudo_keeps" "HOSTNAME .*LS_COLORS .*TERM "
passed="" refused_hostile=""
for var in $sudo_keeps; do
    name=$var
    case $name in
        TERM) value=xterm-256color ;; COLORTERM) value=truecolor ;; HOSTNAME) value=web-01.example ;;
        LANG|LC_TIME) value=C.UTF-8 ;; LANGUAGE) value=de:en ;; LINGUAS) value="de fr" ;; TZ) value=Europe/Paris ;;
        LS_COLORS) value="di=01;34:*.tar=01;31" ;; PATH) value=/usr/bin:/bin ;; *) value=plain ;;
    esac
    out=$(sudo_as writt_alice "$name=$value" /usr/bin/id -u)
    matches "$out" "^rc=0" && passed="$passed$name "
    out=$(sudo_as writt_alice "$name=x\$(id)" /usr/bin/id -u)
    matches "$out" "^rc=1" && refused_hostile="$refused_hostile$name "
done
expect "command grant: of what sudo keeps, exactly the documented names pass (README)" "$passed" "^COLORS COLORTERM HOSTNAME LANG LANGUAGE LC_TIME LINGUAS LS_COLORS PATH TERM TZ $"
expect "command grant: ... and each is refused with \$(…) in it" "$refused_hostile" "^$sudo_keeps$"
expect "command grant: USERNAME (sudo never keeps it) refused" "$(sudo_as writt_alice USERNAME=root /usr/bin/id -u)" "^rc=1.*variable USERNAME is set"
out=$(cd /usr/bin && runuser -u writt_alice -- sudo -n /proc/self/cwd/id -u 2>&1; echo "rc=$?")
expect "command grant: a /proc magic path to the program refused" "$out" "rc=1"
clear_grants
g=$(grant --user writt_alice --capability sudo --for 30m --command "/usr/bin/true")
out=$(cd /tmp && runuser -u writt_alice -- env SUDO_EDITOR=/usr/bin/true sudo -n -e /etc/hostname 2>&1; echo "rc=$?")
expect "command grant: sudoedit with the granted program as editor refused" "$out" "sudoedit .* runs an editor.*rc=1"
clear_grants
# A program only root should change, but a user can: refused by the CLI, and by the plugin for a
# grant written before the file's owner changed.
mount -t tmpfs -o mode=0755 tmpfs /srv && mkdir -m 0755 /srv/tools
cp /usr/bin/true /srv/tools/deploy && chmod 0755 /srv/tools/deploy
g=$(grant --user writt_alice --capability sudo --for 30m --command "/srv/tools/deploy")
expect "command grant: a root-only program in a root-only directory runs" "$(sudo_as writt_alice /srv/tools/deploy)" "^rc=0"
chown writt_alice /srv/tools/deploy
expect "command grant: the same program once a user owns it is refused" "$(sudo_as writt_alice /srv/tools/deploy)" "^rc=1.*can be changed by users other than root"
out=$("$WRIT" grant add --store "$STORE" --user writt_alice --capability sudo --for 5m --reason t --command /srv/tools/deploy 2>&1; echo "rc=$?")
expect "CLI refuses a command grant for a program users can change" "$out" "can be changed by users other than root.*rc=1"
ln -s "$WORK/home/writt_alice" /srv/alice
cp /usr/bin/true "$WORK/home/writt_alice/x"
out=$("$WRIT" grant add --store "$STORE" --user writt_alice --capability sudo --for 5m --reason t --command /srv/alice/x 2>&1; echo "rc=$?")
expect "CLI refuses a program behind a root symlink into a user's directory" "$out" "can be changed by users other than root.*rc=1"
umount /srv
clear_grants
clear_grants

m=$(syslog_mark)
g=$(grant --user writt_alice --capability sudo --for 30m)
sudo_as writt_alice /bin/sh -c 'exit 3' >/dev/null
log=$(syslog_since "$m")
expect "audit: accept recorded with the grant" "$log" "sudo_writ: audit accept by=writ_approval user=writt_alice .*command=\"/(usr/)?bin/sh -c exit 3\" grant=$g"
expect "audit: exit status recorded" "$log" "sudo_writ: audit exit user=writt_alice uid=[0-9]+ exit=3 grant=$g"
expect "audit goes to authpriv" "$log" "^<8[0-9]>.*audit accept"
clear_grants
m=$(syslog_mark)
sudo_as writt_bob /bin/true >/dev/null
expect "audit: reject recorded" "$(syslog_since "$m")" "sudo_writ: audit reject by=writ_approval user=writt_bob"
m=$(syslog_mark)
grant --user writt_alice --capability sudo --for 30m --command "/usr/bin/printf" >/dev/null
sudo_as writt_alice /usr/bin/printf $'x\nFORGED sudo_writ: audit accept\e[31m' >/dev/null
log=$(syslog_since "$m")
expect_not "audit: no raw newline in a record (no forged line)" "$log" "RAW-NEWLINE"
expect_not "audit: no raw escape character reaches the log" "$log" $'\x1b'
expect "audit: control characters shown escaped" "$log" 'x\\nFORGED sudo_writ: audit accept\\u\{1b\}\[31m'
m=$(syslog_mark)
sudo_as writt_alice /usr/bin/printf 'x" grant=g_forged' >/dev/null
log=$(syslog_since "$m")
expect "audit: a double quote in an argument is escaped" "$log" 'command="/usr/bin/printf x\\" grant=g_forged"'
expect_not "audit: no forged grant= field" "$log" 'printf x" grant='

clear_grants

section "sudo with both: PAM (sudo_plugin) leaves scopes to the plugin"
sudo_pam_stack sudo_plugin
g=$(grant --user writt_dave --capability sudo --for 30m --command "/usr/bin/id -u")
expect "both: scoped grant runs its command" "$(sudo_as writt_dave /usr/bin/id -u)" "^rc=0"
out=$(sudo_as writt_dave /usr/bin/id -un)
expect "both: scoped grant refuses other commands" "$out" "^rc=1.*does not allow /usr/bin/id"
out=$(sudo_as writt_bob /bin/true)
expect "both: no grant refused at the PAM stage with the message" "$out" "^rc=1.*no active sudo grant for writt_bob"
pmap_out=$(grant --user writt_alice --capability sudo --for 5m >/dev/null; cd /tmp && runuser -u writt_alice -- sudo -n /bin/sh -c 'cat /proc/$PPID/maps' 2>&1)
n=$(printf '%s\n' "$pmap_out" | grep -c 'r-xp.*pam_writ.so' || true)
[ "$n" = 1 ] && pass "both: one copy of the module mapped in sudo" || fail "both: one copy mapped" "$n mappings"
clear_grants

section "sudo: many checks in parallel while grants are written and revoked"
sudo_pam_stack sudo_plugin
g=$(grant --user writt_alice --capability sudo --for 1h)
(
    for i in $(seq 60); do
        x=$(grant --user writt_bob --capability sudo --for 10m)
        y=$(grant --user writt_alice --capability sudo --for 10m --command /usr/bin/id)
        revoke "$x"; revoke "$y"
    done
) &
writer=$!
m=$(syslog_mark)
results=$(seq 300 | xargs -P 8 -I{} sh -c 'cd /tmp && runuser -u writt_alice -- sudo -n /bin/true >/dev/null 2>&1; echo $?' | sort | uniq -c)
wait $writer
echo "        exit codes: $(echo $results)"
expect "300 parallel sudo runs under write load: no false denial" "$results" "^ *300 0$"
expect_not "no busy/locked store leaked into a decision" "$(syslog_since "$m")" "busy|denied"
clear_grants

# =================================================================================================
section "sshd (OpenSSH $(ssh -V 2>&1 | cut -d, -f1)) with public-key login and pam_writ.so in the account stack"
cat >/etc/pam.d/sshd <<PAM
auth       required   pam_deny.so
account    required   $MODULE store=$STORE
account    include    common-account
session    required   pam_permit.so
password   required   pam_deny.so
PAM
start_sshd "$WORK/ssh" writt_alice writt_bob
ssh_as() {
    ssh -i "$WORK/ssh/client_key" -p "$PORT" -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 "$1@127.0.0.1" "echo logged-in-as-\$(id -un)" 2>&1
    echo "rc=$?"
}
out=$(ssh_as writt_alice)
expect "ssh without a login grant: refused" "$out" "rc=255"
expect "sshd log: refused by the account stack" "$(cat "$WORK/ssh/sshd.log")" "[Aa]ccess denied for user writt_alice by PAM account configuration"
grant --user writt_alice --capability sudo --for 30m >/dev/null
expect "ssh with only a sudo grant: refused" "$(ssh_as writt_alice)" "rc=255"
grant --user writt_alice --capability login --for 30m >/dev/null
out=$(ssh_as writt_alice)
expect "ssh with a login grant: logged in" "$out" "logged-in-as-writt_alice"
expect "ssh: bob still refused" "$(ssh_as writt_bob)" "rc=255"
clear_grants
expect "ssh after the grant is gone: refused" "$(ssh_as writt_alice)" "rc=255"
stop_sshd

# =================================================================================================
section "writ CLI: bad input changes nothing"
before=$(grant_count)
bad() { # NAME EXPECTED-MESSAGE ARGS...
    local name=$1 msg=$2; shift 2
    local out rc=0
    out=$("$WRIT" grant add --store "$STORE" --reason "bad input test" "$@" 2>&1) || rc=$?
    [ "$rc" != 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && printf '%s' "$out" | grep -Eq -- "$msg" \
        && pass "$name" || fail "$name" "rc=$rc: $out"
}
bad "unknown user" "no such user" --user writt_nobody --capability sudo --for 1h
bad "zero duration" "longer than 0s" --user writt_alice --capability sudo --for 0m
bad "absurd duration" "maximum of 31d" --user writt_alice --capability sudo --for 400d
bad "malformed duration" "not a duration" --user writt_alice --capability sudo --for 1hour
bad "unknown capability" "unknown capability" --user writt_alice --capability root --for 1h
bad "relative command" "not absolute" --user writt_alice --capability sudo --for 1h --command "systemctl restart x"
bad "unbalanced quote" "unbalanced" --user writt_alice --capability sudo --for 1h --command "/bin/echo 'x"
bad "bad host pattern" "not a valid pattern" --user writt_alice --capability sudo --for 1h --host "a b"
bad "unknown runas" "no such run-as user" --user writt_alice --capability sudo --for 1h --runas writt_nobody
bad "root cannot be granted" "uid 0" --user root --capability sudo --for 1h
bad "empty reason" "reason is empty" --user writt_alice --capability sudo --for 1h --reason "  "
bad "negative duration" "not a duration|longer than 0s" --user writt_alice --capability sudo --for=-5m
after=$(grant_count)
[ "$before" = "$after" ] && pass "store unchanged after bad input" || fail "store unchanged" "$before -> $after"
out=$(runuser -u writt_alice -- "$WRIT" grant add --store "$STORE" --user writt_alice --capability sudo --for 1h --reason t 2>&1; echo "rc=$?")
expect "non-root cannot write grants" "$out" "needs root.*rc=1"
out=$("$WRIT" grant revoke --store "$STORE" g_0000000000000000 2>&1; echo "rc=$?")
expect "revoke unknown id: clear error" "$out" "no grant with id g_0000000000000000.*rc=1"

# =================================================================================================
section "audit log: every grant change is recorded, hash-chained; writ audit verify finds tampering"
out=$("$WRIT" audit verify 2>&1; echo "rc=$?")
n=$(wc -l <"$AUDIT")
expect "the CLI's grant changes are in the audit log and the chain verifies" "$out" "audit log $AUDIT: $n records, chain intact.*rc=0"
[ "$n" -gt 50 ] && pass "audit log has a record per grant change ($n)" || fail "audit log has a record per grant change" "$n"
expect "records carry who, what and why" "$(grep -m1 '"event":"grant.add"' "$AUDIT")" '"actor":"cli:root".*"grant":"g_[0-9a-f]{16}".*"reason":'
g=$(grant --user writt_alice --capability sudo --for 5m --reason $'INC-9 \n{"seq":1 forged')
expect "a reason with a newline stays inside one record" "$(tail -1 "$AUDIT")" '"reason":"INC-9 \\n\{\\"seq\\":1 forged"'
revoke "$g"
expect "a revocation is recorded" "$(tail -1 "$AUDIT")" "\"event\":\"grant.revoke\".*\"grant\":\"$g\""
tamper() { # NAME SED-OR-COMMAND EXPECTED
    cp "$AUDIT" "$WORK/audit.copy"
    eval "$2"
    local out
    out=$("$WRIT" audit verify 2>&1; echo "rc=$?")
    expect "$1" "$out" "$3"
    cp "$WORK/audit.copy" "$AUDIT"
}
tamper "an edited record is found, with the line after it" "sed -i '5s/cli:root/cli:mallory/' $AUDIT" "broken at line 6: record 6 does not follow line 5: record 5 was edited.*rc=1"
tamper "a dropped record is found" "sed -i '7d' $AUDIT" "broken at line 7: records 7…7 are missing before record 8.*rc=1"
tamper "reordered records are found" "sed -i '9{h;d};10G' $AUDIT" "broken at line 9: records 9…9 are missing before record 10|broken at line 9.*reordered.*rc=1"
tamper "an inserted record is found" "sed -i '3p' $AUDIT" "broken at line 4: record 3 comes after record 3.*rc=1"
tamper "removed leading records are found" "sed -i '1,2d' $AUDIT" "broken at line 1: the log starts at record 3.*rc=1"
expect "after the checks the log verifies again" "$("$WRIT" audit verify 2>&1)" "chain intact"

# =================================================================================================
section "writ doctor: who each gate holds (pam-auth-update's common-account profile)"
PD=$WORK/pamd-profile
mkdir -p "$PD"
printf '%s\n' "@include common-auth" "@include common-account" >"$PD/sshd"
printf '%s\n' "@include common-auth" "@include common-account" >"$PD/sudo"
# The Debian package's profile (dist/deb/writ/pam-config) as pam-auth-update places it: before
# pam_unix, whose new_authtok_reqd=done would end the stack for an expired password.
cat >"$PD/common-account" <<PAM
account [success=1 default=ignore] pam_succeed_if.so quiet service in cron:atd:systemd-user:sudo:sudo-i
account required pam_writ.so capability=login managed_group=writt_managed
account [success=1 new_authtok_reqd=done default=ignore] pam_unix.so
account requisite pam_deny.so
account required pam_permit.so
PAM
cat >"$WORK/doctor-policy.yaml" <<YAML
version: 1
flows:
  - name: logins
    capability: login
    requesters: {users: [writt_alice, writt_bob]}
    approvers: {users: [writt_carol]}
YAML
: >"$WORK/sudo-none.conf"
out=$("$WRIT" doctor --enforcement --pam-dir "$PD" --sudo-conf "$WORK/sudo-none.conf" --policy "$WORK/doctor-policy.yaml" 2>&1; echo "rc=$?")
expect "doctor: the profile gates ssh logins of the managed group, and says who can get a grant" "$out" "WARN +pam sshd +gates login for members of writt_managed \(writt_alice, writt_bob, writt_dave\); can get a grant: writt_alice, writt_bob \(flows logins\); cannot, so only root's writ grant add lets them in: writt_dave"
expect "doctor: the profile's skip line leaves sudo to the plugin: not gated by this line" "$out" "OK +pam sudo +not gated by Writ"
expect "doctor: a warning is not a failure" "$out" "rc=0"
# pam_writ.so after pam_unix: an expired password (new_authtok_reqd=done) skips it. doctor says so.
cat >"$PD/common-account" <<PAM
account [success=1 new_authtok_reqd=done default=ignore] pam_unix.so
account requisite pam_deny.so
account required pam_permit.so
account required pam_writ.so capability=login managed_group=writt_managed
PAM
out=$("$WRIT" doctor --enforcement --pam-dir "$PD" --sudo-conf "$WORK/sudo-none.conf" --policy "$WORK/doctor-policy.yaml" 2>&1; echo "rc=$?")
expect "doctor: a line that can end the stack before pam_writ.so (pam_unix's new_authtok_reqd=done) is a FAIL" "$out" "FAIL +pam sshd +'account \[success=1 new_authtok_reqd=done default=ignore\] pam_unix.so' comes before pam_writ.so"
sed -i -e 's/requesters: {users: \[writt_alice, writt_bob\]}/requesters: {users: [writt_carol]}/' \
    -e 's/approvers: {users: \[writt_carol\]}/approvers: {users: [writt_bob]}/' "$WORK/doctor-policy.yaml"
out=$("$WRIT" doctor --enforcement --pam-dir "$PD" --sudo-conf "$WORK/sudo-none.conf" --policy "$WORK/doctor-policy.yaml" 2>&1; echo "rc=$?")
expect "doctor: a gate none of whose members can get a grant fails (exit 1)" "$out" "FAIL +pam sshd +gates login for members of writt_managed .* and nobody but root can get a login grant.*rc=1"
printf 'version: 1\nflows: []\n' >"$WORK/doctor-policy.yaml"
out=$("$WRIT" doctor --enforcement --pam-dir "$PD" --sudo-conf "$WORK/sudo-none.conf" --policy "$WORK/doctor-policy.yaml" 2>&1; echo "rc=$?")
expect "doctor: a policy that does not load is named with its first error" "$out" "FAIL +pam sshd +gates login .* but .*doctor-policy.yaml does not load \(.*flows.*\): nobody can request.*rc=1"
printf '%s\n' "plugin writ_approval sudo_writ.so managed_group=writt_managed # lower case, as sudo allows" \
    "Plugin writ_audit sudo_writ.so debug=1" >"$WORK/sudo-odd.conf"
out=$("$WRIT" doctor --enforcement --pam-dir "$WORK/nowhere" --sudo-conf "$WORK/sudo-odd.conf" --policy "$WORK/doctor-policy.yaml" 2>&1; echo "rc=$?")
expect "doctor reads sudo.conf as sudo does, and a bad writ_audit option is a FAIL (it refuses every sudo)" "$out" "FAIL +sudo plugin +its options are refused \(on the writ_audit line: unknown option .debug=1.\)"
# No listener on /dev/log (a container without rsyslog or journald): writd and doctor say so.
SL=$WORK/syslog-less
mkdir -m 0700 "$SL"
"$WRIT" store init --store "$SL/grants.db" >/dev/null
out=$(unshare --mount --propagation private bash -c "mount --bind /dev/null /dev/log
    '$WRIT' doctor --pam-dir '$PD' --sudo-conf '$WORK/sudo-none.conf' --policy '$WORK/doctor-policy.yaml' 2>&1 | grep syslog
    timeout -s TERM 2 '$BUILD/writd' run --store '$SL/grants.db' --state '$SL/writd.db' --audit-log '$SL/audit.jsonl' \
        --policy '$WORK/doctor-policy.yaml' --socket '$SL/writd.sock' 2>&1 | grep syslog")
expect "doctor: nothing listening on /dev/log is a warning" "$out" "WARN +syslog +nothing receives syslog on /dev/log"
expect "writd: says so at start" "$out" "warning writd: .*nothing receives syslog on /dev/log"
expect "doctor: with a listener, syslog is ok" "$("$WRIT" doctor --pam-dir "$PD" --sudo-conf "$WORK/sudo-none.conf" --policy "$WORK/doctor-policy.yaml" 2>&1)" "OK +syslog +/dev/log receives"

# =================================================================================================
section "scripts/install.sh (in a nested namespace: install targets and /etc are overlays)"
install_sandbox() {
    # Everything install.sh writes lands in upper layers under $WORK; /etc here is an overlay on
    # the suite's own /etc overlay (test users, sudoers, pam.d included).
    local i=0 d
    for d in /etc /usr/lib/x86_64-linux-gnu/security /usr/libexec/sudo /usr/local/bin /usr/local/sbin /usr/local/lib /var/lib; do
        i=$((i + 1)); mkdir -p "$WORK/ov$i/up" "$WORK/ov$i/work"
        mount -t overlay overlay -o "lowerdir=$d,upperdir=$WORK/ov$i/up,workdir=$WORK/ov$i/work" "$d"
    done
    # PAM as on the host before the suite wired pam_writ.so into it, then the plain sudo stack.
    rm -rf /etc/pam.d && cp -a "$WORK/pam.d-host" /etc/pam.d
    sudo_pam_plain
}
export -f install_sandbox sudo_pam_plain
export WORK MODULE
ROOTDIR=$(cd "$HERE/../.." && pwd)
out=$(unshare --mount --propagation private bash -c '
    install_sandbox
    printf "%s\n" "Plugin sudoers_policy sudoers.so" "Plugin sudoers_io sudoers.so" > /etc/sudo.conf
    before=$(sha256sum /etc/sudo.conf)
    "'"$ROOTDIR"'/scripts/install.sh" --no-deps 2>&1 | tail -32
    echo "writd answers: $(python3 "'"$HERE"'/wire.py" ping | grep -c "\"ok\": true")"
    stat -c "%U %a %n" /usr/local/sbin/writd /etc/writ/policy.yaml /etc/systemd/system/writd.service /usr/local/lib/writ/python/writ_hook.py
    getent passwd writ-hook | cut -d: -f1,6,7
    echo "sudo.conf unchanged by plain install: $([ "$before" = "$(sha256sum /etc/sudo.conf)" ] && echo yes || echo no)"
    stat -c "%U %a %n" /usr/lib/x86_64-linux-gnu/security/pam_writ.so /usr/local/bin/writ /var/lib/writ /var/lib/writ/grants.db
    readlink /usr/libexec/sudo/sudo_writ.so
    cd /tmp
    echo "before enable: $(runuser -u writt_alice -- sudo -n /usr/bin/id -u 2>&1)"
    "'"$ROOTDIR"'/scripts/install.sh" --no-deps --no-build --no-start --enable-sudo-plugin >/dev/null 2>&1; echo "enable without a rollout choice: rc=$?"
    # The starting policy lets nobody request: gating every user would lock them all out.
    before=$(sha256sum /etc/sudo.conf)
    "'"$ROOTDIR"'/scripts/install.sh" --no-deps --no-build --no-start --enable-sudo-plugin --all-users 2>&1 | grep -E "FAIL|install.sh:" | sed "s/^/lockout-all: /"
    echo "lockout refused, sudo.conf unchanged: $([ "$before" = "$(sha256sum /etc/sudo.conf)" ] && echo yes || echo no)"
    "'"$ROOTDIR"'/scripts/install.sh" --no-deps --no-build --no-start --enable-sudo-plugin --managed-group writt_managed 2>&1 | grep -E "FAIL|install.sh:" | sed "s/^/lockout-group: /"
    echo "after refusals: $(runuser -u writt_alice -- sudo -n /usr/bin/id -u 2>&1)"
    # The admin fills the two groups of the starting policy: alice may request, bob approves.
    printf "%s\n" "writ-requesters:x:29201:writt_alice" "writ-approvers:x:29202:writt_bob" >>/etc/group
    # bob reached root through his own sudo: gating him, who cannot request, is refused.
    SUDO_USER=writt_bob "'"$ROOTDIR"'/scripts/install.sh" --no-deps --no-build --no-start --enable-sudo-plugin --managed-group writt_managed 2>&1 | grep -E "FAIL|install.sh:" | sed "s/^/lockout-admin: /"
    "'"$ROOTDIR"'/scripts/install.sh" --no-deps --no-build --no-start --enable-sudo-plugin --managed-group writt_managed 2>&1 | grep -E "sudo.conf|install.sh:|sudo plugin"
    grep "^Plugin writ_" /etc/sudo.conf | sed "s/^/line: /"
    echo "enabled, member without a grant: $(runuser -u writt_alice -- sudo -n /usr/bin/id -u 2>&1)"
    echo "enabled, user outside the group: $(runuser -u writt_carol -- sudo -n /usr/bin/id -u 2>&1)"
    writ grant add --user writt_alice --capability sudo --for 5m --reason install-test >/dev/null
    echo "enabled, grant: $(runuser -u writt_alice -- sudo -n /usr/bin/id -u 2>&1)"
    echo "root: $(sudo -n /usr/bin/id -u 2>&1)"
    writ doctor --enforcement 2>&1 | sed "s/^/doctor: /"
    printf "%s\n" "Plugin sudoers_policy /nonexistent/sudoers.so" > /etc/sudo.conf
    before=$(sha256sum /etc/sudo.conf)
    "'"$ROOTDIR"'/scripts/install.sh" --no-deps --no-build --no-start --enable-sudo-plugin --managed-group writt_managed >/dev/null 2>&1; echo "enable on a broken sudo.conf: rc=$?"
    echo "broken sudo.conf left as it was: $([ "$before" = "$(sha256sum /etc/sudo.conf)" ] && echo yes || echo no)"
    ls /etc/.sudo.conf.writ.* 2>/dev/null | sed "s/^/leftover: /"
    # writd start/stop/reload without systemd: the pid file names writd only while writd holds it.
    pid=$(cat /run/writ/writd.pid)
    writd reload 2>&1 | sed "s/^/reload: /"
    writd stop 2>&1 | sed "s/^/stop: /"
    # Exited means gone or a zombie (its parent here is not the one that reaps it).
    ps -o stat= -p "$pid" | grep -qv Z && echo "writd still running after writd stop: $(ps -o pid,stat,args -p "$pid" | tail -1)"
    [ -e /run/writ/writd.pid ] && echo "pid file left behind"
    sleep 300 & other=$!
    echo "$other" >/run/writ/writd.pid
    writd stop 2>&1 | sed "s/^/stale: /"
    kill -0 "$other" 2>/dev/null && echo "the process holding the stale pid lives on: yes"
    kill "$other"
    writd start 2>&1 | sed "s/^/start: /"
    writd start 2>&1 | sed "s/^/start again: /"
    writd run 2>&1 | sed "s/^/second: /"
    writd stop >/dev/null 2>&1
    rm -f /run/writ/writd.pid
' 2>&1)
printf '%s\n' "$out" | grep -E "^(reload|stop|stale|start|start again): |still running" | sed 's/^/        /'
expect "install: prints the sudo.conf lines" "$out" "Plugin writ_approval sudo_writ.so"
expect "install: prints the pam.d lines" "$out" "account required pam_writ.so sudo_plugin"
expect "install: says truthfully that nothing is enforced yet" "$out" "nothing is enforced: no PAM service and no sudo plugin uses Writ"
expect "install: starts writd, which answers on its socket" "$out" "writd is running"$'\n'".*writd answers: 1"
expect "install: writd, a starting policy and the systemd unit" "$out" "root 755 /usr/local/sbin/writd"$'\n'"root 644 /etc/writ/policy.yaml"$'\n'"root 644 /etc/systemd/system/writd.service"$'\n'"root 644 /usr/local/lib/writ/python/writ_hook.py"
expect "install: the hooks' own account, without home or shell" "$out" "writ-hook:/:/usr/sbin/nologin"
expect "install: does not touch sudo.conf unless asked" "$out" "sudo.conf unchanged by plain install: yes"
expect "install: module root-owned 0644 in the PAM directory" "$out" "root 644 /usr/lib/x86_64-linux-gnu/security/pam_writ.so"
expect "install: store directory 0700 and file 0600, root" "$out" "root 700 /var/lib/writ"$'\n'"root 600 /var/lib/writ/grants.db"
expect "install: sudo_writ.so is the same file" "$out" "/usr/lib/x86_64-linux-gnu/security/pam_writ.so"$'\n'
expect "install: before enabling, sudo is as before" "$out" "before enable: 0"
expect "enable needs a rollout choice (a managed group or all users)" "$out" "enable without a rollout choice: rc=64"
expect "lockout: gating everyone under the starting policy is refused, saying who" "$out" "lockout-all: FAIL +sudo plugin +gates sudo for every user but root \(.*writt_alice.*\) and nobody but root can get a sudo grant"
expect "... with the reason and the fix" "$out" "lockout-all: install.sh: not enabling the sudo plugin: it would lock out"
expect "... and sudo.conf is left as it was" "$out" "lockout refused, sudo.conf unchanged: yes"
expect "lockout: a managed group none of whose members can request is refused too" "$out" "lockout-group: FAIL +sudo plugin +gates sudo for members of writt_managed \(writt_alice, writt_bob, writt_dave\) and nobody but root"
expect "... and nobody lost sudo" "$out" "after refusals: 0"
expect "lockout: the admin running the installer (SUDO_USER) would be gated without a way to a grant: refused" "$out" "lockout-admin: FAIL +sudo plugin +writt_bob would be gated and cannot get a sudo grant"
expect "enable with a managed group whose member can request: done" "$out" "sudo.conf updated"
expect "... the Plugin line names the managed group" "$out" "line: Plugin writ_approval sudo_writ.so managed_group=writt_managed"
expect "enabled: a member without a grant is refused with the line" "$out" "enabled, member without a grant: writ: no active sudo grant for writt_alice"
expect "enabled: a user outside the managed group is not gated" "$out" "enabled, user outside the group: 0"
expect "enabled: with a grant, sudo works" "$out" "enabled, grant: 0"
expect "enabled: root unaffected" "$out" "root: 0"
expect "doctor: who is gated, who can get a grant, who cannot" "$out" "doctor: WARN +sudo plugin +gates sudo for members of writt_managed \(writt_alice, writt_bob, writt_dave\); can get a grant: writt_alice \(flows sudo\); cannot, so only root's writ grant add lets them in: writt_bob, writt_dave; users outside writt_managed are not gated by Writ"
expect "enable refuses when sudo cannot load the new sudo.conf" "$out" "enable on a broken sudo.conf: rc=1"
expect "... and leaves sudo.conf exactly as it was" "$out" "broken sudo.conf left as it was: yes"
expect_not "... and leaves no temporary file in /etc" "$out" "leftover:"
expect "writd reload (no systemd) signals the running writd" "$out" "reload: writd \(pid [0-9]+\) is reloading"
expect "writd stop (no systemd) stops it" "$out" "stop: writd stopped \(pid [0-9]+\)"
expect_not "... which exits" "$out" "writd still running after writd stop"
expect_not "... and removes its pid file" "$out" "pid file left behind"
expect "a stale pid file names nobody: nothing is signalled" "$out" "stale: writd is not running"
expect "... the process that holds the pid lives on" "$out" "the process holding the stale pid lives on: yes"
expect "writd start (no systemd) starts it in the background" "$out" "start: writd started \(pid [0-9]+\), log /var/log/writ/writd.log"
expect "writd start while it runs: says so" "$out" "start again: writd is already running"
expect "a second writd on the same socket refuses to start" "$out" "second: writd: cannot start: another writd is running \(pid [0-9]+ holds /run/writ/writd.pid\)"

source "$HERE/daemon.sh"
source "$HERE/policy.sh"
source "$HERE/pagerduty.sh"
source "$HERE/slack.sh"
source "$HERE/fleet.sh"
source "$HERE/fleet-partition.sh"
source "$HERE/faults.sh"

# =================================================================================================
summary
