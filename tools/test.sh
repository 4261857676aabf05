#!/usr/bin/env bash
# Builds sslab and runs the whole test suite (GoogleTest through ctest,
# including the out-of-tree plugin build and the smoke recipes).
#   tools/test.sh [ctest options...]     e.g. tools/test.sh -R Recipe
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/build.sh" "$root/build"
jobs=${SSLAB_TEST_JOBS:-2}
# Tests run side by side on few cores: OpenMP threads that spin while waiting
# would steal the other test's core (a text MLM step: 1.0 s spinning, 0.1 s passive).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
ctest --test-dir "$root/build" --output-on-failure -j"$jobs" "$@"
