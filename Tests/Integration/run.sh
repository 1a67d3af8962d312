#!/bin/bash
# Integration tests: real Linux-PAM, Debian's sudo and OpenSSH's sshd against the built
# pam_writ.so / sudo_writ.so and writ CLI. Everything that touches /etc happens inside a private
# mount namespace (see suite.sh); this wrapper checks afterwards that the machine is unchanged.
#
#   Tests/Integration/run.sh [BUILD_DIR]     (default: .build/release; run as root)
#   WRIT_SERVER=PATH: the writ-server the fleet scenarios use (default: BUILD_DIR/writ-server)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/.build/release}" && pwd)
[ "$(id -u)" = 0 ] || { echo "integration tests need root (they run sudo and sshd for test users)" >&2; exit 1; }
for f in "$BUILD/pam_writ.so" "$BUILD/writ"; do
    [ -e "$f" ] || { echo "missing $f: run swift build -c release && scripts/build-module.sh first" >&2; exit 1; }
done

fingerprint() {
    # What the tests must leave as they found it.
    { sha256sum /etc/passwd /etc/group /etc/shadow /etc/sudo.conf /etc/sudoers 2>/dev/null
      find /etc/pam.d /etc/sudoers.d -type f -exec sha256sum {} + 2>/dev/null | sort
      ls -la /dev/log /run/sshd /var/lib/writ /var/log/writ 2>&1 | sed "s/ [A-Z][a-z][a-z] .*//" || true; } | sha256sum
}
before=$(fingerprint)

WORK=$(mktemp -d /tmp/writ-it.XXXXXX)
chmod 0755 "$WORK"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

status=0
unshare --mount --propagation private --fork \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    WORK="$WORK" BUILD="$BUILD" HERE="$HERE" ONLY="${ONLY:-}" FAULT_KILLS="${FAULT_KILLS:-20}" \
    WRIT_SERVER="${WRIT_SERVER:-$BUILD/writ-server}" \
    bash "$HERE/suite.sh" || status=$?

after=$(fingerprint)
if [ "$before" != "$after" ]; then
    echo "FAIL: the machine was changed by the tests (/etc, /dev/log, /run/sshd, /var/lib/writ or /var/log/writ differ)"
    status=1
else
    echo "machine unchanged: /etc/passwd, /etc/group, /etc/shadow, /etc/pam.d, /etc/sudo*, /dev/log, /var/lib/writ, /var/log/writ as before"
fi
exit $status
