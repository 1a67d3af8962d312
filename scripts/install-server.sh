#!/bin/bash
# Builds writ-server in release mode and installs it as a service (Debian 12 or later, as root):
#
#   /usr/local/sbin/writ-server                 the server (Swift runtime linked in)
#   /etc/systemd/system/writ-server.service     its unit, run as the system account writ-server
#   /etc/writ/writ-server.env                   its options (WRIT_SERVER_OPTIONS), only if absent
#   /etc/writ/fleet-policy.yaml                 the fleet's policy: the shipped one, only if absent
#   /var/lib/writ-server/                       its state: the fleet CA (ca/), the SQLite store
#
#   scripts/install-server.sh [--database URL] [--name NAME]... [--no-build] [--no-start]
#                             [--binary PATH]   (install PATH instead of building; the tests)
#
# Without --database the server keeps its store in SQLite in /var/lib/writ-server (a trial on
# one machine); with postgres://… it is one replica of a fleet (see README, "A fleet").
set -euo pipefail
cd "$(dirname "$0")/.."
DATABASE=
BINARY=
NAMES=()
BUILD=1
START=1
while [ $# -gt 0 ]; do
    case $1 in
        --database) DATABASE=$2; shift ;;
        --name) NAMES+=("$2"); shift ;;
        --no-build) BUILD=0 ;;
        --no-start) START=0 ;;
        --binary) BINARY=$2; BUILD=0; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-server.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "install-server.sh: run as root" >&2; exit 1; }
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
if [ $BUILD = 1 ]; then
    command -v swift >/dev/null || { echo "install-server.sh: swift not found (expected in PATH or /opt/swift/usr/bin)" >&2; exit 1; }
    # SQLite's headers: the engine's embedded store (a trial server, and the engine's tests).
    if ! dpkg -s libsqlite3-dev >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsqlite3-dev
    fi
    swift build -c release --product writ-server
fi
BIN=${BINARY:-.build/release/writ-server}
[ -x "$BIN" ] || { echo "install-server.sh: $BIN is missing (build first, or drop --no-build)" >&2; exit 1; }
getent passwd writ-server >/dev/null || useradd --system --home-dir /var/lib/writ-server --shell /usr/sbin/nologin writ-server
install -m 0755 "$BIN" /usr/local/sbin/writ-server
install -m 0644 dist/writ-server.service /etc/systemd/system/writ-server.service
install -d -m 0755 /etc/writ
install -d -m 0700 -o writ-server -g writ-server /var/lib/writ-server
if [ ! -e /etc/writ/writ-server.env ]; then
    options="--listen 0.0.0.0:8443"
    [ -n "$DATABASE" ] && options="$options --database $DATABASE"
    for n in "${NAMES[@]}"; do options="$options --name $n"; done
    printf '# Options of writ-server serve (writ-server serve --help).\nWRIT_SERVER_OPTIONS="%s"\n' "$options" \
        >/etc/writ/writ-server.env
    chmod 0640 /etc/writ/writ-server.env
    chgrp writ-server /etc/writ/writ-server.env
fi
# The fleet's policy (writd's format): the shipped one to start from, never over an admin's.
if [ ! -e /etc/writ/fleet-policy.yaml ]; then
    install -m 0644 -o root -g root dist/policy.yaml /etc/writ/fleet-policy.yaml
fi
echo "installed /usr/local/sbin/writ-server; options in /etc/writ/writ-server.env, policy in /etc/writ/fleet-policy.yaml"
if [ $START = 1 ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now writ-server
    echo "writ-server started: journalctl -u writ-server"
elif [ $START = 1 ]; then
    echo "systemd is not running: start it with: runuser -u writ-server -- /usr/local/sbin/writ-server serve $(. /etc/writ/writ-server.env; echo "$WRIT_SERVER_OPTIONS")"
fi
