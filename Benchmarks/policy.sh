#!/bin/bash
# Policy evaluation time for a 200-flow policy, with and without conditions (issue 4's figure:
# < 1 ms per request without hooks). Usage: Benchmarks/policy.sh [BUILD_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
build=${1:-.build/release}
# The shipped build's flags: another set would rebuild all of .build/release.
if [ ! -x "$build/writ-bench-policy" ]; then swift build -c release --product writ-bench-policy; fi
"$build/writ-bench-policy" "${2:-20000}"
