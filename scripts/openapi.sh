#!/bin/bash
# Regenerates Sources/WritFleetAPI/Generated/ from Sources/WritFleetAPI/openapi.yaml, the fleet's
# one HTTP contract (writ-server's routes, the agent's client). Run it after changing the
# document and commit both; `scripts/openapi.sh --check` fails when the committed sources are not
# what the document gives. The generator is built once into .build-openapi (about 2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
swift build --package-path scripts/openapi --scratch-path .build-openapi --product swift-openapi-generator >&2
generator=.build-openapi/debug/swift-openapi-generator
api=Sources/WritFleetAPI
if [ "${1:-}" = --check ]; then
    out=$(mktemp -d /tmp/writ-openapi.XXXXXX)
    trap 'rm -rf "$out"' EXIT
    "$generator" generate "$api/openapi.yaml" --config "$api/openapi-generator-config.yaml" --output-directory "$out" >&2
    diff -ru "$api/Generated" "$out" || { echo "FAIL: $api/Generated is not what openapi.yaml gives: run scripts/openapi.sh"; exit 1; }
    echo "$api/Generated matches openapi.yaml"
else
    "$generator" generate "$api/openapi.yaml" --config "$api/openapi-generator-config.yaml" --output-directory "$api/Generated"
fi
