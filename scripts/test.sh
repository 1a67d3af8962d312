#!/bin/bash
# The test command (README): unit tests, the linkage checks of the module, and the integration
# suite against real Linux-PAM, sudo and sshd. Run as root on Debian 12 with the packages that
# .ci/run installs. One build configuration (release) serves all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH

echo "== format (swift format lint, .swift-format)"
swift format lint --strict -r Sources Tests Benchmarks Package.swift
echo "== build (release)"
swift build -c release
scripts/build-module.sh .build/release
echo "== linkage of pam_writ.so / sudo_writ.so"
scripts/check-linkage.sh .build/release/pam_writ.so
echo "== unit tests (Swift Testing)"
swift test -c release
echo "== integration tests (real PAM, sudo, sshd; private mount namespace)"
Tests/Integration/run.sh .build/release
