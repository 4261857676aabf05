#!/usr/bin/env bash
# Builds sslab and runs the whole test suite (GoogleTest through ctest,
# including the out-of-tree plugin build and the smoke recipes).
#   tools/test.sh [ctest options...]     e.g. tools/test.sh -R Recipe
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/build.sh" "$root/build"
jobs=${SSLAB_TEST_JOBS:-2}
ctest --test-dir "$root/build" --output-on-failure -j"$jobs" "$@"
