#!/bin/bash
# A private PostgreSQL cluster for the tests: initdb into DIR (never the machine's own cluster),
# listening only on a Unix socket in DIR (no TCP port), trust authentication for the role `writ`,
# which owns the database `writ`. Run as root: the server runs as the `postgres` account that
# Debian's postgresql package makes.
#
#   scripts/pg-test-cluster.sh start DIR [--watch PID]   # prints DIR when the server accepts connections
#   scripts/pg-test-cluster.sh stop DIR                  # stops the server and removes DIR (only a
#                                                        # DIR that `start` made: it holds its mark)
#
# --watch PID: a watcher stops the cluster and removes DIR when process PID exits, so a test
# process that starts a cluster never leaves one running, however it ends.
set -euo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start DIR [--watch PID] | stop DIR" >&2; exit 2; }
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -x "$bin/initdb" ] || { echo "$0: PostgreSQL's server is not installed: apt-get install postgresql" >&2; exit 1; }
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

case "$cmd" in
start)
    [ ! -e "$dir" ] || { echo "$0: $dir exists: give a new directory" >&2; exit 1; }
    mkdir -p "$dir"
    # The mark `stop` looks for before it deletes anything: it removes only what `start` made.
    touch "$dir/.writ-test-cluster"
    chown postgres:postgres "$dir"
    chmod 700 "$dir"
    # The watcher first, so a failure from here on (or a kill) still ends in `stop`.
    if [ "${3:-}" = --watch ] && [ -n "${4:-}" ]; then
        pid=$4
        setsid bash -c "while kill -0 $pid 2>/dev/null; do sleep 1; done; '$0' stop '$dir'" </dev/null >/dev/null 2>&1 &
    fi
    as_postgres "$bin/initdb" -D "$dir/data" --username=writ --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # Small and fast: tests only. fsync stays on (the race tests count on real commits).
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=200 -c shared_buffers=32MB" \
        >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    as_postgres "$bin/createdb" -h "$dir" -U writ writ
    echo "$dir"
    ;;
stop)
    [ -e "$dir" ] || exit 0
    [ -f "$dir/.writ-test-cluster" ] || { echo "$0: $dir was not made by '$0 start': not touching it" >&2; exit 1; }
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start DIR [--watch PID] | stop DIR" >&2
    exit 2
    ;;
esac
