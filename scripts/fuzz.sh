#!/bin/bash
# Coverage-guided fuzzing of every parser of untrusted input (writ-fuzz, Fuzz/Sources).
#
#   scripts/fuzz.sh [--build-only | --no-build] [SECONDS] [TARGET…]
#
# Builds writ-fuzz with libFuzzer and AddressSanitizer (.build-fuzz, debug), then runs each
# target for SECONDS (default 60) from its corpus in Fuzz/Corpus/TARGET, inside a private mount
# namespace whose /run is empty (the PAM and sudo targets' reports reach no writd) and whose
# /dev/log goes nowhere (no syslog flood). With WRIT_FUZZ_MERGE=1, new inputs that add coverage
# are merged into the corpus (to commit); a crash stops that target, and its input is saved
# under .build-fuzz/findings/TARGET/.
# Prints executions, coverage and corpus size per target. The test command runs it with 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
build=1 run=1
case "${1:-}" in
--build-only) run=0; shift ;;
--no-build) build=0; shift ;;
esac
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wire policy condition regex hook slack pagerduty audit core pam sudo)

if [ "${WRIT_FUZZ_INSIDE:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "scripts/fuzz.sh: run as root (it makes a private mount namespace)"; exit 1; }
    # libFuzzer's own driver (no main: writ-fuzz's main picks the target and calls it).
    fuzzer=$(ls "$(dirname "$(readlink -f "$(command -v swift)")")"/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a | head -1)
    [ -f "$fuzzer" ] || { echo "scripts/fuzz.sh: libclang_rt.fuzzer_no_main not found in the Swift toolchain"; exit 1; }
    if [ $build = 1 ]; then
        echo "== building writ-fuzz with libFuzzer and AddressSanitizer (.build-fuzz)"
        swift build --product writ-fuzz --scratch-path .build-fuzz \
            -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
            -Xlinker --whole-archive -Xlinker "$fuzzer" -Xlinker --no-whole-archive -Xlinker -lstdc++
    fi
    [ $run = 1 ] || exit 0
    exec unshare --mount --propagation private env WRIT_FUZZ_INSIDE=1 "$0" "$seconds" "${targets[@]}"
fi

# Inside the namespace: nothing the modules report can reach a writd, nothing reaches syslog.
mount -t tmpfs -o size=64m writ-fuzz-run /run
if [ -e /dev/log ]; then mount --bind /dev/null /dev/log 2>/dev/null || true; fi
bin=.build-fuzz/debug/writ-fuzz
findings=.build-fuzz/findings
mkdir -p "$findings"
export SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
printf '%-10s %10s %10s %8s %8s %s\n' target runs exec/s cov ft corpus
failed=0
for t in "${targets[@]}"; do
    corpus=Fuzz/Corpus/$t
    mkdir -p "$corpus" "$findings/$t"
    log=$findings/$t.log
    work=$(mktemp -d)
    if "$bin" "$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
        -artifact_prefix="$findings/$t/" -print_final_stats=1 "$work" "$corpus" >"$log" 2>&1; then
        if [ "${WRIT_FUZZ_MERGE:-}" = 1 ]; then
            # Keep only what adds coverage: merge the new inputs into the corpus.
            "$bin" "$t" -merge=1 -timeout=10 -max_len=16384 "$corpus" "$work" >>"$log" 2>&1 || true
        fi
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
        ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
        printf '%-10s %10s %10s %8s %8s %s\n' "$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
            "$(find "$corpus" -type f | wc -l) inputs"
    else
        failed=1
        echo "FAIL: $t found a crash; input and log in $findings/$t/ and $log:"
        grep -E "ERROR|Fatal error|property broken|SUMMARY|Test unit written" "$log" | head -8
    fi
    rm -rf "$work"
done
exit $failed
