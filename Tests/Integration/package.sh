#!/bin/bash
# The Debian package: built by scripts/build-deb.sh, checked by lintian, then installed, upgraded,
# removed and purged in a throwaway Debian 12 root (debootstrap into a temporary directory, used
# through chroot in a private mount and pid namespace, so no mount and no process outlives a step).
# The host gains nothing but that directory, removed at the end; the last check proves it.
#
#   Tests/Integration/package.sh [BUILD_DIR]        as root; default .build/release
#
# Needs dpkg-dev, lintian, debootstrap, Swift (generate-manual) and deb.debian.org (DEBIAN_MIRROR).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=$(realpath "${1:-.build/release}")
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
T=$(mktemp -d /tmp/writ-package.XXXXXX)
R=$T/root
bootstrap=
cleanup() {
    [ -z "$bootstrap" ] || kill -- "-$bootstrap" 2>/dev/null || true # its process group, if still running
    wait
    rm -rf --one-file-system "$T"
}
trap cleanup EXIT
START=$SECONDS
failures=0
pass() { echo "PASS  $1"; }
fail() { echo "FAIL  $1"; failures=$((failures + 1)); }
check() { # NAME COMMAND...: PASS when the command succeeds
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
# A shell command inside the root, with a clean environment, its own /proc and pid namespace.
in_root() {
    unshare --mount --propagation private --pid --fork --mount-proc="$R/proc" \
        chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive bash -c "$1"
}
r() { in_root "$1" >>"$T/root.log" 2>&1; } # quiet; the log is shown when a step fails
none='none() { for p; do [ ! -e "$p" ] && [ ! -L "$p" ] || return 1; done; }; none' # none PATH...: none exists
apt_in_root() { r "apt-get -y -q --no-install-recommends -o Dpkg::Use-Pty=0 $1"; }
# What the package must never change on the host, and what proves it was never installed there.
host_state() {
    dpkg-query -W -f='${Package} ${Status}\n' writ 2>/dev/null || echo "writ: not installed"
    cat /etc/pam.d/* /etc/sudo.conf /etc/passwd /etc/group /etc/shadow 2>/dev/null | md5sum
    ls -d /etc/writ /etc/logrotate.d/writ /usr/share/pam-configs/writ /usr/bin/writ /usr/sbin/writd 2>&1 | sort || true
}
host_before=$(host_state)

# A fresh Debian 12 root, made while the packages build (network there, CPU here). Its own
# session, to be stopped as a group; its own mount namespace for the /proc it mounts.
setsid unshare --mount --propagation private \
    debootstrap --variant=minbase --include=sudo bookworm "$R" "$MIRROR" >"$T/debootstrap.log" 2>&1 &
bootstrap=$!

echo "== building the packages (revision 1, and 2 for the upgrade: zstd, compression is not tested)"
deb=$(scripts/build-deb.sh "$BUILD" "$T/deb")
deb2=$(DEB_REVISION=2 DEB_COMPRESSION=zstd scripts/build-deb.sh "$BUILD" "$T/deb")
version=$("$BUILD/writ" --version)
ls -l "$deb" "$deb2" | awk '{print $5, $NF}'

# spelling-error-in-binary (info) is about strings of the libraries linked in (BoringSSL, the Swift
# runtime), not Writ's own text. TMPDIR: lintian leaves a temporary file behind (mldbm-elf-*).
echo "== lintian"
if TMPDIR=$T lintian --fail-on error,warning --display-info --tag-display-limit 0 --suppress-tags spelling-error-in-binary "$deb" >"$T/lintian.log" 2>&1; then
    pass "lintian: no errors or warnings"
else
    fail "lintian: errors or warnings"
fi
sed 's/^/    /' "$T/lintian.log"

echo "== a fresh Debian 12 root (debootstrap --variant=minbase, with sudo)"
if ! wait "$bootstrap"; then
    bootstrap=
    tail -20 "$T/debootstrap.log"
    echo "FAIL  debootstrap from $MIRROR (network?)"
    exit 1
fi
bootstrap=
cp /etc/resolv.conf "$R/etc/resolv.conf"
cp "$deb" "$deb2" "$R/tmp/"
d1=/tmp/$(basename "$deb") d2=/tmp/$(basename "$deb2")
etc_before=$(in_root 'cat /etc/pam.d/* /etc/sudo.conf /etc/sudoers | md5sum; ls /etc/pam.d')

echo "== install"
check "apt install ./$(basename "$deb") on a fresh Debian 12 (Depends resolve, no Recommends)" apt_in_root "install $d1"
expected="755 root:root /usr/bin/writ
755 root:root /usr/sbin/writd
644 root:root /usr/lib/x86_64-linux-gnu/security/pam_writ.so
777 root:root /usr/libexec/sudo/sudo_writ.so
644 root:root /usr/lib/systemd/system/writd.service
644 root:root /usr/lib/writ/python/writ_hook.py
755 root:root /etc/writ
644 root:root /etc/writ/policy.yaml
644 root:root /etc/writ/policy.tests.yaml
644 root:root /etc/logrotate.d/writ
644 root:root /usr/share/pam-configs/writ
700 root:root /var/lib/writ
600 root:root /var/lib/writ/grants.db
700 root:root /var/log/writ
644 root:root /usr/share/man/man1/writ.1.gz
644 root:root /usr/share/man/man5/writ-policy.5.gz
644 root:root /usr/share/man/man8/writd.8.gz
644 root:root /usr/share/man/man8/pam_writ.8.gz
644 root:root /usr/share/man/man8/sudo_writ.8.gz
644 root:root /usr/share/bash-completion/completions/writ
644 root:root /usr/share/zsh/vendor-completions/_writ
644 root:root /usr/share/fish/vendor_completions.d/writ.fish
644 root:root /usr/share/doc/writ/copyright
644 root:root /usr/share/doc/writ/changelog.Debian.gz"
expected=${expected//x86_64-linux-gnu/$(dpkg-architecture -qDEB_HOST_MULTIARCH)}
actual=$(in_root "stat -c '%a %U:%G %n' $(echo "$expected" | awk '{print $3}' | tr '\n' ' ')" 2>&1 || true)
if [ "$actual" = "$expected" ]; then pass "files in place with their owners and modes"; else
    fail "files in place with their owners and modes"
    diff <(echo "$expected") <(echo "$actual") | sed 's/^/    /'
fi
check "sudo_writ.so links to the PAM module (one file, one mapping)" \
    r '[ "$(readlink -f /usr/libexec/sudo/sudo_writ.so)" = "$(readlink -f /usr/lib/*/security/pam_writ.so)" ]'
check "a page per writ subcommand (writ.request.1, writ.grant.add.1, …)" \
    r 'ls /usr/share/man/man1/writ.request.1.gz /usr/share/man/man1/writ.grant.add.1.gz /usr/share/man/man1/writ.policy.test.1.gz'
check "accounts: writ-hook (system, no login shell), group writ-managed (empty)" \
    r 'getent passwd writ-hook | grep -q ":/usr/sbin/nologin$" && [ "$(id -u writ-hook)" -lt 1000 ] && getent group writ-managed | grep -q ":$"'
check "writ --version and writd --version print $version" \
    r "[ \"\$(writ --version)\" = $version ] && [ \"\$(writd --version)\" = $version ]"
check "writ store check accepts the store postinst created" r 'writ store check'
check "writd.service is enabled for boot (deb-systemd-helper), though no systemd runs here" \
    r '[ "$(readlink -f /etc/systemd/system/multi-user.target.wants/writd.service)" = /usr/lib/systemd/system/writd.service ]'
check "man writ-policy and bash completion load" \
    r 'zcat /usr/share/man/man5/writ-policy.5.gz | grep -q "^.SH NAME" && bash -c ". /usr/share/bash-completion/completions/writ && complete -p writ"'
# No systemd in the root: nothing started writd; `writd start` is the way, and doctor sees it.
in_root 'writd start || echo "writd start failed"; writ doctor; echo "doctor exit $?"; writd stop' >"$T/doctor.log" 2>&1 || true
check "writd start runs the packaged daemon; writ doctor runs and sees it" \
    grep -q "doctor exit [01]$" "$T/doctor.log"
grep -qE "writd +running \(pid" "$T/doctor.log" || fail "writ doctor reports writd running"
sed 's/^/    /' "$T/doctor.log"
check "install left /etc/pam.d, /etc/sudo.conf and /etc/sudoers alone (no enforcement)" \
    [ "$(in_root 'cat /etc/pam.d/* /etc/sudo.conf /etc/sudoers | md5sum; ls /etc/pam.d')" = "$etc_before" ]
check "the pam-auth-update profile is installed but off: no pam_writ in common-*" \
    r '[ -f /usr/share/pam-configs/writ ] && ! grep -q pam_writ /etc/pam.d/common-*'

echo "== the profile, enabled by the admin (managed and unmanaged users, expired passwords, cron)"
apt_in_root "install pamtester" || fail "apt install pamtester (for the checks below)"
# alice and carol are managed, bob and dave not. carol's and dave's passwords have expired
# (chage -d 0): pam_unix's account check answers new_authtok_reqd, and its "done" ends the stack.
r 'for u in alice bob carol dave; do useradd -m writt_$u; done && adduser --quiet writt_alice writ-managed &&
   adduser --quiet writt_carol writ-managed && chage -d 0 writt_carol && chage -d 0 writt_dave'
common_before=$(in_root 'cat /etc/pam.d/common-* | md5sum')
common_as_before() { [ "$(in_root 'cat /etc/pam.d/common-* | md5sum')" = "$common_before" ]; }
# What the login service's account stack says for writt_USER: the modules' messages, then pamtester's answer.
acct() { in_root "pamtester login writt_$1 acct_mgmt 2>&1" || true; }
refused_by_writ() { # USER: pam_writ refused (its message, then PAM_PERM_DENIED)
    local out
    out=$(acct "$1")
    echo "$out" | grep -q "^writ: no active login grant for writt_$1 " && [ "$(echo "$out" | tail -1)" = "pamtester: Permission denied" ]
}
must_change_password() { [ "$(acct "$1" | tail -1)" = "pamtester: Authentication token is no longer valid; new one required" ]; }
check "pam-auth-update --enable writ puts both lines in common-account and common-session only" \
    r 'pam-auth-update --enable writ && grep -q "pam_succeed_if.so quiet service in cron:atd" /etc/pam.d/common-account &&
       grep -q "required.*pam_writ.so capability=login managed_group=writ-managed" /etc/pam.d/common-account &&
       grep -q "optional.*pam_writ.so" /etc/pam.d/common-session && ! grep -q pam_writ /etc/pam.d/common-session-noninteractive'
# The account stack's modules in order: Writ's first, so nothing before it (pam_unix's
# new_authtok_reqd=done, a success jump) can end the stack without it.
modules=$(in_root "grep '^account' /etc/pam.d/common-account" | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /[.]so$/) { printf "%s ", $i; break } }' || true)
check "common-account runs the skip line and pam_writ.so first, then pam_unix.so" \
    [ "$modules" = "pam_succeed_if.so pam_writ.so pam_unix.so pam_deny.so pam_permit.so " ]
in_root "grep '^account' /etc/pam.d/common-account" | sed 's/^/    /' || true
check "writ doctor finds no account line before pam_writ.so that lets users skip it (login, su)" \
    r '! writ doctor --enforcement | grep "comes before pam_writ.so"'
# su counts as a login when a user runs it; root's own su to a managed user does not.
check "a managed user without a login grant is refused (login), though root may su to them" \
    r '! pamtester login writt_alice acct_mgmt && su -s /bin/true writt_alice'
check "an unmanaged user is not gated" r 'pamtester login writt_bob acct_mgmt && su -s /bin/true writt_bob'
check "an expired password does not skip the gate: a managed user without a grant is refused by pam_writ" \
    refused_by_writ carol
check "an unmanaged user with an expired password must change it, as without Writ" must_change_password dave
check "cron's account check is skipped for a managed user without a grant (pam_unix still runs)" \
    r 'printf "@include common-account\n" >/etc/pam.d/cron && pamtester cron writt_alice acct_mgmt &&
       pamtester cron writt_carol acct_mgmt 2>&1 | tail -1 | grep -q "new one required$"'
r 'rm /etc/pam.d/cron'
check "with a login grant the managed user gets in" \
    r 'writ grant add --user writt_alice --capability login --for 1h --reason "package test" >/dev/null &&
       pamtester login writt_alice acct_mgmt && su -s /bin/true writt_alice'
r 'writ grant add --user writt_carol --capability login --for 1h --reason "package test" >/dev/null'
check "with a login grant, a managed user whose password expired passes pam_writ and must change it" \
    must_change_password carol
check "pam-auth-update --disable writ takes the lines out: common-* as before --enable" \
    eval 'r "pam-auth-update --disable writ" && common_as_before'
check "pam-auth-update --enable writ again (kept through the upgrade below)" \
    r 'pam-auth-update --enable writ && grep -q pam_writ /etc/pam.d/common-account'

echo "== upgrade (same package, revision 2)"
r 'echo "# edited by the admin" >>/etc/writ/policy.yaml'
check "apt install of revision 2 upgrades" apt_in_root "install $d2"
check "the upgrade kept the edited policy.yaml, the grant and the enabled profile" \
    r 'dpkg-query -W -f="\${Version}" writ | grep -q -- "-2$" && grep -q "edited by the admin" /etc/writ/policy.yaml &&
       ! ls /etc/writ/*.dpkg-* && writ grant list | grep -q writt_alice && grep -q pam_writ /etc/pam.d/common-account'

echo "== remove"
r 'cp /etc/sudo.conf /root/sudo.conf && printf "Plugin sudoers_policy sudoers.so\nPlugin writ_approval sudo_writ.so\n" >>/etc/sudo.conf'
check "sudo loads the plugins through /usr/libexec/sudo/sudo_writ.so" r 'sudo -V | grep -q "writ approval plugin version"'
r 'echo "account required pam_writ.so capability=login" >>/etc/pam.d/login'
check "apt remove refuses while sudo.conf and /etc/pam.d/login name the module by hand" \
    r 'out=$(apt-get -y -q remove writ 2>&1) && exit 1; echo "$out"
       echo "$out" | grep -q "still load the Writ module.*: /etc/pam.d/login /etc/sudo.conf" &&
       dpkg-query -W -f="\${Status}" writ | grep -q "ok installed$"'
r 'cp /root/sudo.conf /etc/sudo.conf && sed -i "/pam_writ.so/d" /etc/pam.d/login'
check "apt remove" apt_in_root "remove writ"
check "remove kept /etc/writ (edited), /var/lib/writ, /var/log/writ and the accounts" \
    r 'grep -q "edited by the admin" /etc/writ/policy.yaml && [ -f /var/lib/writ/grants.db ] && [ -d /var/log/writ ] &&
       getent passwd writ-hook && getent group writ-managed && dpkg-query -W -f="\${Status}" writ | grep -q "config-files"'
check "remove took the module, the binaries and the profile's lines out" \
    r "$none"' /usr/lib/*/security/pam_writ.so /usr/libexec/sudo/sudo_writ.so /usr/bin/writ /usr/share/pam-configs/writ &&
       ! grep -q pam_writ /etc/pam.d/common-*'
check "remove left common-* as they were before pam-auth-update --enable writ" common_as_before

echo "== purge"
check "apt purge" apt_in_root "purge writ"
check "purge removed /etc/writ, /var/lib/writ, /var/log/writ, the logrotate file and the accounts" \
    r "$none"' /etc/writ /var/lib/writ /var/log/writ /etc/logrotate.d/writ /etc/systemd/system/multi-user.target.wants/writd.service &&
       ! getent passwd writ-hook && ! getent group writ-hook && ! getent group writ-managed && ! dpkg-query -W writ'
check "/etc/pam.d, /etc/sudo.conf and /etc/sudoers are as before the install" \
    [ "$(in_root 'cat /etc/pam.d/* /etc/sudo.conf /etc/sudoers | md5sum; ls /etc/pam.d')" = "$etc_before" ]

echo "== the host"
check "the host is unchanged (writ not installed, /etc/pam.d, sudo.conf, passwd, group, shadow as before)" \
    [ "$(host_state)" = "$host_before" ]

if [ $failures -gt 0 ]; then
    echo "--- the root's log (last 60 lines)"
    tail -60 "$T/root.log" | sed 's/^/    /'
fi
echo "package.sh: $failures failure(s), $((SECONDS - START)) s"
[ $failures = 0 ]
