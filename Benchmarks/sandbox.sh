# Sourced by the benchmark scripts that drive writd, sudo and sshd as test users (daemon.sh,
# flood.sh). bench_outer runs the calling script again inside a private mount namespace with the
# integration tests' sandbox (Tests/Integration/lib.sh), and checks afterwards that the machine is
# as it was: /etc, /dev/log, /run, /var/lib/writ, /var/log/writ, and no process left.
#
#   bench_outer SCRIPT NAME [BUILD_DIR]    (output also in Benchmarks/results/NAME-latest.txt)
#
# Inside, bench_setup prepares the sandbox (and an overlay over /var/lib, so the CLI's default
# store is never the host's) and bench_start_writd starts writd on it.
bench_outer() {
    local script=$1 name=$2 build status=0 before left
    build=$(cd "${3:-$ROOT/.build/release}" && pwd)
    [ "$(id -u)" = 0 ] || { echo "the $name benchmarks need root" >&2; exit 1; }
    for f in writd writ pam_writ.so ${BENCH_NEEDS:-}; do
        [ -e "$build/$f" ] || {
            echo "missing $build/$f: swift build -c release && scripts/build-module.sh" >&2
            exit 1
        }
    done
    for tool in python3 sqlite3 sudo unshare pgrep; do
        command -v "$tool" >/dev/null || { echo "$tool missing" >&2; exit 1; }
    done
    fingerprint() {
        { sha256sum /etc/passwd /etc/group /etc/shadow /etc/sudo.conf /etc/sudoers 2>/dev/null
          find /etc/pam.d /etc/sudoers.d -type f -exec sha256sum {} + 2>/dev/null | sort
          ls -la /dev/log /run/sshd /run/writ /var/lib/writ /var/log/writ 2>&1 | sed "s/ [A-Z][a-z][a-z] .*//" || true; } | sha256sum
    }
    before=$(fingerprint)
    WORK=$(mktemp -d "/tmp/writ-$name-bench.XXXXXX")
    chmod 0755 "$WORK"
    trap 'rm -rf "$WORK"' EXIT
    mkdir -p "$SELF/results"
    unshare --mount --propagation private --fork \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        WRIT_BENCH_INNER=1 WORK="$WORK" BUILD="$build" HERE="$ROOT/Tests/Integration" BENCH="$SELF" \
        ${BENCH_ENV:-} \
        bash "$script" 2>&1 | tee "$SELF/results/$name-latest.txt" || status=$?
    left=$(pgrep -fa "$WORK" || true)
    if [ "$before" != "$(fingerprint)" ] || [ -n "$left" ]; then
        echo "FAIL: the machine was changed (/etc, /dev/log, /run, /var/lib/writ or /var/log/writ differ) or processes are left: $left"
        status=1
    else
        echo "machine unchanged: /etc/passwd, /etc/group, /etc/shadow, /etc/pam.d, /etc/sudo*, /dev/log, /run, /var/lib/writ, /var/log/writ as before; no process left"
    fi
    exit $status
}

# Inside the namespace: the integration tests' sandbox, plus an overlay over /var/lib.
bench_setup() {
    setup_sandbox
    mkdir -p "$WORK/varlib-up" "$WORK/varlib-work"
    mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$WORK/varlib-up,workdir=$WORK/varlib-work" /var/lib
}

# bench_start_writd [ARGS...]: writd on the sandbox's store, state, audit log and policy; waits
# until it answers (sets WRITD_PID).
bench_start_writd() {
    "$WRITD" --store "$STORE" --state "$STATE" --audit-log "$AUDIT" --policy "$POLICY" "$@" >>"$WRITD_LOG" 2>&1 &
    WRITD_PID=$!
    for _ in $(seq 200); do
        [ -S /run/writ/writd.sock ] && python3 "$HERE/wire.py" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "writd did not start:"; tail -20 "$WRITD_LOG"; exit 1
}
