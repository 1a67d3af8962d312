#!/bin/bash
# Coverage-guided fuzzing of every parser of untrusted input (writ-fuzz, Fuzz/Sources).
#
#   scripts/fuzz.sh [--no-build | --build-only] [SECONDS] [TARGET…]
#
# Builds writ-fuzz with libFuzzer and AddressSanitizer (.build-fuzz, debug), then runs each
# target for SECONDS (default 60), as many at once as there are CPUs, from its corpus in
# Fuzz/Corpus/TARGET, inside a private mount namespace whose /run is empty (the PAM and sudo
# targets' reports reach no writd) and whose /dev/log goes nowhere (no syslog flood). With WRIT_FUZZ_MERGE=1, new inputs that add coverage
# are merged into the corpus (to commit); a crash stops that target, and its input is saved
# under .build-fuzz/findings/TARGET/.
# Prints executions, coverage and corpus size per target. The test command runs it with 10 s.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
build=1
build_only=0
case "${1:-}" in
--no-build) build=0; shift ;;
--build-only) build_only=1; shift ;;
esac
seconds=${1:-60}
shift || true
case "$seconds" in
'' | *[!0-9]*) echo "scripts/fuzz.sh: SECONDS must be a number (got '$seconds'); usage: scripts/fuzz.sh [--no-build | --build-only] [SECONDS] [TARGET…]"; exit 2 ;;
esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wire policy condition regex hook slack pagerduty audit core pam sudo)

# Inside our own namespace only when its mount namespace differs from init's: an inherited
# variable alone must never make this script mount over the machine's /run or /var/lib.
inside=0
if [ "${WRIT_FUZZ_INSIDE:-}" = 1 ] && [ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ]; then
    inside=1
fi
if [ $inside = 0 ]; then
    if [ $build = 1 ]; then
        # libFuzzer's own driver (no main: writ-fuzz's main picks the target and calls it).
        fuzzer=$(ls "$(dirname "$(readlink -f "$(command -v swift)")")"/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-"$(uname -m)".a 2>/dev/null | head -1 || true)
        [ -f "$fuzzer" ] || { echo "scripts/fuzz.sh: libclang_rt.fuzzer_no_main not found in the Swift toolchain"; exit 1; }
        echo "== building writ-fuzz with libFuzzer and AddressSanitizer (.build-fuzz)"
        swift build --product writ-fuzz --scratch-path .build-fuzz \
            -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
            -Xlinker --whole-archive -Xlinker "$fuzzer" -Xlinker --no-whole-archive -Xlinker -lstdc++
    fi
    [ $build_only = 0 ] || exit 0
    [ "$(id -u)" = 0 ] || { echo "scripts/fuzz.sh: run as root (it makes a private mount namespace)"; exit 1; }
    exec unshare --mount --propagation private env WRIT_FUZZ_INSIDE=1 "$self" --no-build "$seconds" "${targets[@]}"
fi

# Inside the namespace: nothing the modules report can reach a writd, nothing reaches syslog, and
# the grant store the pam and sudo targets seed and read is a tmpfs's, not the machine's.
mount -t tmpfs -o size=64m writ-fuzz-run /run
mount -t tmpfs -o size=64m writ-fuzz-lib /var/lib
if [ -e /dev/log ]; then mount --bind /dev/null /dev/log 2>/dev/null || true; fi
# sudo.conf as a host that enables both plugins has it (HostFacts reads it).
if [ -f /etc/sudo.conf ]; then
    printf 'Plugin writ_approval sudo_writ.so\nPlugin writ_audit sudo_writ.so\n' >/run/writ-fuzz-sudo.conf
    mount --bind /run/writ-fuzz-sudo.conf /etc/sudo.conf
fi
findings=.build-fuzz/findings
mkdir -p "$findings" .build-fuzz/targets
export SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
# One target: its line of figures, or why it failed, in $findings/$t.result; fails on a crash.
run_target() {
    local t=$1 corpus=Fuzz/Corpus/$1 log=$findings/$1.log result=$findings/$1.result
    mkdir -p "$corpus" "$findings/$t"
    # One name per target: libFuzzer re-executes argv[0] (merging), which must name the target.
    local bin=.build-fuzz/targets/writ-fuzz-$t work status=0
    ln -sf ../debug/writ-fuzz "$bin"
    work=$(mktemp -d /run/writ-fuzz-new.XXXXXX)
    if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
        -artifact_prefix="$findings/$t/" -print_final_stats=1 "$work" "$corpus" >"$log" 2>&1; then
        if [ "${WRIT_FUZZ_MERGE:-}" = 1 ]; then
            # Keep only what adds coverage: merge the new inputs into the corpus.
            "$bin" -merge=1 -timeout=10 -max_len=16384 "$corpus" "$work" >>"$log" 2>&1 || true
        fi
        local runs rate cov ft
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1 || true)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
        ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
        printf '%-10s %10s %10s %8s %8s %s\n' "$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
            "$(find "$corpus" -type f | wc -l) inputs" >"$result"
    else
        status=1
        {
            echo "FAIL: $t found a crash; input and log in $findings/$t/ and $log:"
            grep -E "ERROR|Fatal error|property broken|SUMMARY|Test unit written|writ-fuzz:" "$log" | head -8 || true
        } >"$result"
    fi
    rm -rf "$work"
    return $status
}

# As many targets at once as there are CPUs (each fuzzer is one thread); results in order.
printf '%-10s %10s %10s %8s %8s %s\n' target runs exec/s cov ft corpus
failed=0
for t in "${targets[@]}"; do
    rm -f "$findings/$t.result"
    while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || true; done
    run_target "$t" &
done
wait
for t in "${targets[@]}"; do
    # A target that ended without a result (killed, out of memory) counts as a failure too.
    if [ ! -s "$findings/$t.result" ]; then
        echo "FAIL: $t ended without a result; its log is $findings/$t.log"
        failed=1
        continue
    fi
    cat "$findings/$t.result"
    if grep -q '^FAIL:' "$findings/$t.result"; then failed=1; fi
done
exit $failed
