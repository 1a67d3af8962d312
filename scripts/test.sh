#!/bin/bash
# The test command (README): format lint, one release build of everything (what ships: writ,
# writd and writ-server with the Swift runtime linked in, pam_writ.so built with Embedded Swift;
# and the unit tests, the benchmark tools and the fuzz corpus replayer), the unit tests on it,
# the linkage checks, and the integration suite against real Linux-PAM, sudo and sshd. Run as
# root on Debian 12 with the packages that .ci/run installs. One configuration: the unit tests
# run on the objects that ship (Package.swift's `shipped` and `testable` say how).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
# Each phase says how long the run has taken so far (CI's budget is 30 minutes).
phase() { echo "== $* ($((SECONDS / 60)) min $((SECONDS % 60)) s so far)"; }

phase "format (swift format lint, .swift-format)"
swift format lint --strict -r Sources Tests Benchmarks Fuzz Package.swift
phase "module edges (README's table against Package.swift and every import)"
python3 scripts/check-module-edges.py
phase "the Slack fake speaks Slack: checked with Slack's own slack_sdk (a virtualenv from PyPI)"
python3 Tests/Fakes/check_fakes.py
phase "build (release, everything and the unit tests); pam_writ.so with Embedded Swift"
swift build -c release --build-tests
scripts/build-module.sh .build/release
phase "unit tests (Swift Testing, on the release build; the engine's store tests on SQLite and a private PostgreSQL cluster)"
# The two-process race tests run on their own afterwards: two engine processes and PostgreSQL
# beside the timing tests of the other suites would only slow both.
# A bound, so that a test that hangs fails the run in minutes, not at CI's limit (the whole run
# takes about a minute here).
timeout --kill-after=30 15m swift test -c release --skip-build --skip WritEngineTests.RaceTests
phase "the engine's race tests: two engine processes on one store, 1,000 rounds each (SQLite, PostgreSQL)"
timeout --kill-after=30 15m swift test -c release --skip-build --filter WritEngineTests.RaceTests
phase "linkage"
scripts/check-linkage.sh .build/release/pam_writ.so
for bin in writ writd writ-server; do
    if ldd ".build/release/$bin" | grep -q 'libswift\|/opt/swift'; then
        echo "FAIL: $bin needs the Swift toolchain at run time"; exit 1
    fi
    echo "$bin: self-contained ($(du -h ".build/release/$bin" | cut -f1))"
done
phase "the shipped policies are valid and pass their test cases"
for p in examples/policy.yaml dist/policy.yaml; do
    .build/release/writ policy validate "$p"
    .build/release/writ policy test "$p"
done
phase "the fuzz corpus replayed through the release build (Fuzz/Corpus: seeds and every finding)"
for t in wire policy condition regex hook slack pagerduty audit core; do
    .build/release/writ-fuzz "$t" "Fuzz/Corpus/$t"
done
# pam and sudo: in a namespace with an empty /run and a tmpfs /var/lib (their seeded grant store).
unshare --mount --propagation private sh -c 'mount -t tmpfs none /run && mount -t tmpfs none /var/lib &&
    { [ ! -e /dev/log ] || mount --bind /dev/null /dev/log || true; } &&
    for t in pam sudo; do .build/release/writ-fuzz "$t" "Fuzz/Corpus/$t" || exit 1; done'
phase "integration tests (real PAM, sudo, sshd; private mount namespace)"
WRIT_SERVER=$PWD/.build/release/writ-server Tests/Integration/run.sh .build/release
# The fuzzers' build (libFuzzer, AddressSanitizer: .build-fuzz, about 9 minutes) runs beside the
# package test, which waits mostly on downloads and dpkg; not beside the integration suite: with
# the build next to it, session ends after a revoke took over 4 s twice in one run (40-165 ms alone).
phase "the Debian package (lintian; install, upgrade, remove, purge in a debootstrapped Debian 12 root), with the fuzzers' build beside it"
# After it, in the same job: the generated fleet API sources against openapi.yaml (the
# generator's own build, about 2 minutes).
nice -n 10 sh -c 'scripts/fuzz.sh --build-only && scripts/openapi.sh --check' >/tmp/writ-fuzz-build.log 2>&1 &
fuzz_build=$!
package_status=0
Tests/Integration/package.sh .build/release || package_status=$?
fuzz_status=0
wait $fuzz_build || fuzz_status=$?
[ $fuzz_status = 0 ] || { tail -40 /tmp/writ-fuzz-build.log; echo "FAIL: the fuzzers' build or the OpenAPI check"; exit 1; }
[ $package_status = 0 ] || { echo "FAIL: the package test"; exit 1; }
phase "fuzzing: each fuzzer for 10 s, one per CPU at a time"
scripts/fuzz.sh --no-build 10
phase "done"
