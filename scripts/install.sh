#!/bin/bash
# Builds Writ in release mode and installs it on this host (Debian 12 or later, as root):
#
#   /usr/lib/<multiarch>/security/pam_writ.so    the PAM module (0644 root)
#   /usr/libexec/sudo/sudo_writ.so               the sudo plugins: a symlink to pam_writ.so, so a
#                                                sudo that loads both maps one copy
#   /usr/local/bin/writ                          the CLI
#   /usr/local/sbin/writd                        the daemon, started (systemd unit writd.service,
#                                                or in the background where systemd is not running)
#   /usr/local/lib/writ/python/writ_hook.py      the helper Python policy hooks import
#   the system account writ-hook                 what policy hooks run as
#   /etc/writ/policy.yaml                        a starting policy, only if none exists, and its
#   /etc/writ/policy.tests.yaml                  test cases (writ policy test)
#   /var/lib/writ/grants.db                      the grant store (dir 0700, file 0600, root)
#
# It does not touch /etc/pam.d or /etc/sudo.conf: a wrong line there can lock people out. It
# prints the lines to add instead. With --enable-sudo-plugin it adds the writ_approval and
# writ_audit lines to /etc/sudo.conf — gating only the members of --managed-group GROUP (the
# staged rollout), or every user with --all-users — after checking, with the policy in force,
# that the users it would gate can get a grant (writ doctor --enforcement), and after proving
# in a private mount namespace that sudo loads the lines. On any failure /etc/sudo.conf is left
# exactly as it was.
#
#   scripts/install.sh [--enable-sudo-plugin (--managed-group GROUP | --all-users)]
#                      [--prefix DIR] [--no-deps] [--no-build] [--no-start]
#
# --no-build installs what .build/release holds (after a build with the same flags).
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=/usr/local
ENABLE_SUDO=0
MANAGED_GROUP=
ALL_USERS=0
DEPS=1
BUILD=1
START=1
while [ $# -gt 0 ]; do
    case $1 in
        --enable-sudo-plugin) ENABLE_SUDO=1 ;;
        --managed-group) MANAGED_GROUP=$2; shift ;;
        --all-users) ALL_USERS=1 ;;
        --prefix) PREFIX=$2; shift ;;
        --no-deps) DEPS=0 ;;
        --no-build) BUILD=0 ;;
        --no-start) START=0 ;;
        -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
    shift
done
if [ $ENABLE_SUDO = 1 ] && [ -z "$MANAGED_GROUP" ] && [ $ALL_USERS = 0 ]; then
    echo "install.sh: --enable-sudo-plugin needs --managed-group GROUP (gate only that group's members: the safe first step) or --all-users" >&2
    exit 64
fi
# The package's files and these would shadow each other (/etc/systemd/system overrides its unit).
if dpkg-query -W -f='${Status}' writ 2>/dev/null | grep -q "install ok installed"; then
    echo "install.sh: the writ package is installed; use apt (or remove it first: apt remove writ)" >&2
    exit 1
fi
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (it installs a PAM module and a sudo plugin)" >&2; exit 1; }
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
command -v swift >/dev/null || { echo "install.sh: swift not found (expected in PATH or /opt/swift/usr/bin)" >&2; exit 1; }

if [ $DEPS = 1 ]; then
    need=()
    for p in libpam0g-dev libsqlite3-dev sudo; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
    if [ ${#need[@]} -gt 0 ]; then
        echo "== installing build dependencies: ${need[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
    fi
fi

if [ $BUILD = 1 ]; then
    echo "== building (release)"
    # What ships, and only that (not the test and benchmark tools); writ and writd need no toolchain at
    # run time (Package.swift links the Swift runtime into them).
    for product in writ writd; do swift build -c release --product "$product"; done
    scripts/build-module.sh .build/release
fi
for f in writ writd pam_writ.so; do
    [ -f ".build/release/$f" ] || { echo "install.sh: .build/release/$f is missing: run without --no-build" >&2; exit 1; }
done
scripts/check-linkage.sh .build/release/pam_writ.so >/dev/null

MULTIARCH=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
PAMDIR=/usr/lib/$MULTIARCH/security
[ -d "$PAMDIR" ] || PAMDIR=/lib/$MULTIARCH/security
SUDODIR=/usr/libexec/sudo
echo "== installing"
install -d -o root -g root -m 0755 "$PAMDIR" "$SUDODIR" "$PREFIX/bin"
# install(1) writes a temporary file and renames it: a running sshd or sudo keeps its mapping.
install -o root -g root -m 0644 .build/release/pam_writ.so "$PAMDIR/pam_writ.so"
ln -sfn "$PAMDIR/pam_writ.so" "$SUDODIR/sudo_writ.so"
install -o root -g root -m 0755 .build/release/writ "$PREFIX/bin/writ"
install -d -o root -g root -m 0755 "$PREFIX/sbin" /etc/writ /etc/systemd/system
install -o root -g root -m 0755 .build/release/writd "$PREFIX/sbin/writd"
# Policy hooks run as an account of their own (docs/hooks.md): no home, no shell, no password.
getent passwd writ-hook >/dev/null ||
    useradd --system --user-group --no-create-home --home-dir / --shell /usr/sbin/nologin writ-hook
install -d -o root -g root -m 0755 "$PREFIX/lib/writ" "$PREFIX/lib/writ/python"
install -o root -g root -m 0644 hooks/python/writ_hook.py "$PREFIX/lib/writ/python/writ_hook.py"
WRITD_ARGS=""
[ "$PREFIX" = /usr/local ] || WRITD_ARGS=" --hook-library $PREFIX/lib/writ/python"
sed "s|^ExecStart=/usr/local/sbin/writd|ExecStart=$PREFIX/sbin/writd$WRITD_ARGS|" dist/writd.service \
    >/etc/systemd/system/writd.service
chmod 0644 /etc/systemd/system/writd.service
[ -e /etc/writ/policy.yaml ] || install -o root -g root -m 0644 dist/policy.yaml /etc/writ/policy.yaml
[ -e /etc/writ/policy.tests.yaml ] || install -o root -g root -m 0644 dist/policy.tests.yaml /etc/writ/policy.tests.yaml
"$PREFIX/bin/writ" policy validate /etc/writ/policy.yaml || echo "install.sh: fix /etc/writ/policy.yaml; writd refuses requests until it is valid" >&2
"$PREFIX/bin/writ" store init
"$PREFIX/bin/writ" store check

if [ $START = 1 ]; then
    if [ -d /run/systemd/system ]; then
        echo "== starting writd (systemd)"
        systemctl daemon-reload
        systemctl enable writd >/dev/null 2>&1
        systemctl restart writd
    else
        # No systemd (containers, CI): the same daemon in the background, logging to a file.
        # writd restart signals only the writd holding the pid file's lock, never a reused pid.
        echo "== starting writd (no systemd running: in the background, log /var/log/writ/writd.log)"
        install -d -o root -g root -m 0700 /var/log/writ
        # shellcheck disable=SC2086 # WRITD_ARGS is words on purpose
        "$PREFIX/sbin/writd" restart -- $WRITD_ARGS
    fi
    for _ in $(seq 100); do [ -S /run/writ/writd.sock ] && break; sleep 0.1; done
    [ -S /run/writ/writd.sock ] && echo "writd is running: writ doctor checks the whole set-up" \
        || { echo "install.sh: writd did not start; see journalctl -u writd or /var/log/writ/writd.log" >&2; exit 1; }
fi

if [ $ENABLE_SUDO = 1 ]; then
    echo "== enabling the sudo plugins in /etc/sudo.conf"
    if grep -Eqi '^[[:space:]]*plugin[[:space:]]+writ_approval' /etc/sudo.conf 2>/dev/null; then
        echo "already enabled"
    else
        candidate=$(mktemp /etc/.sudo.conf.writ.XXXXXX)
        trap 'rm -f "$candidate"' EXIT
        [ -f /etc/sudo.conf ] && cat /etc/sudo.conf >"$candidate"
        # Listing any Plugin line replaces sudo's built-in defaults: keep sudoers explicitly.
        if ! grep -Eqi '^[[:space:]]*plugin[[:space:]]' "$candidate"; then
            printf '%s\n' "Plugin sudoers_policy sudoers.so" "Plugin sudoers_io sudoers.so" \
                "Plugin sudoers_audit sudoers.so" >>"$candidate"
        fi
        if [ -n "$MANAGED_GROUP" ]; then
            printf '%s\n' "# Writ: members of $MANAGED_GROUP need an active grant for sudo (writ doctor says who)" \
                "Plugin writ_approval sudo_writ.so managed_group=$MANAGED_GROUP" >>"$candidate"
        else
            printf '%s\n' "# Writ: every sudo but root's needs an active grant (writ doctor says who)" \
                "Plugin writ_approval sudo_writ.so" >>"$candidate"
        fi
        printf '%s\n' "Plugin writ_audit sudo_writ.so" >>"$candidate"
        chmod 0644 "$candidate"
        # Who the new line would gate, and whether they can get a grant under the policy in force.
        # The admin who reached root through sudo (SUDO_USER) must not be the one locked out.
        if ! "$PREFIX/bin/writ" doctor --enforcement --sudo-conf "$candidate" ${SUDO_USER:+--for-user "$SUDO_USER"}; then
            echo "install.sh: not enabling the sudo plugin: it would lock out the users above (see FAIL). Let them request (the policy's requesters and approvers), or choose a --managed-group whose members can; /etc/sudo.conf unchanged" >&2
            exit 1
        fi
        if unshare --mount --propagation private sh -c \
            "mount --bind '$candidate' /etc/sudo.conf && sudo -V 2>&1 | grep -q 'writ approval plugin version'"; then
            mv "$candidate" /etc/sudo.conf
            trap - EXIT
            echo "sudo.conf updated; root keeps sudo whatever happens"
        else
            echo "install.sh: sudo did not load the writ plugins with the new sudo.conf; /etc/sudo.conf unchanged" >&2
            exit 1
        fi
    fi
fi

echo
echo "== what Writ enforces on this host now (writ doctor --enforcement)"
"$PREFIX/bin/writ" doctor --enforcement || true
cat <<EOF2

Writ is installed. The lines that enable enforcement (root keeps access whatever happens):

  sudo, with the approval and audit plugins (sudo >= 1.9; or: scripts/install.sh --enable-sudo-plugin --managed-group GROUP)
    /etc/sudo.conf:
      Plugin sudoers_policy sudoers.so        # keep these if sudo.conf had no Plugin lines
      Plugin sudoers_io sudoers.so
      Plugin sudoers_audit sudoers.so
      Plugin writ_approval sudo_writ.so managed_group=writ-managed   # only that group is gated
      Plugin writ_audit sudo_writ.so

  sudo, with the PAM module (also works with sudo-rs); first line of the account section of both:
    /etc/pam.d/sudo and /etc/pam.d/sudo-i (sudo -i uses the sudo-i service):
      account required pam_writ.so sudo_plugin managed_group=writ-managed
                                      # drop sudo_plugin if sudo.conf lacks writ_approval

  ssh logins (key and password alike); first line of the account section:
    /etc/pam.d/sshd:
      account required pam_writ.so capability=login managed_group=writ-managed
  and, so that writd can end sessions when their grant ends, in the session sections:
      session optional pam_writ.so capability=login    (sshd, login)
      session optional pam_writ.so                     (sudo, sudo-i)

Roll out to one group first: groupadd writ-managed; usermod -aG writ-managed alice. Put the
people who request and approve in the policy's groups (/etc/writ/policy.yaml), then check who
is gated and who can get a grant with: writ doctor
  alice:  writ request sudo --for 30m --reason "INC-1 disk full"
  bob:    writ requests; writ approve ID
Break-glass for root:  writ grant add --user alice --capability sudo --for 30m --reason "INC-1"
Examples with comments: pam.d/ in the source tree.
EOF2
