#!/usr/bin/env bash
# Builds sslab and runs the whole test suite (GoogleTest through ctest,
# including the out-of-tree plugin build and the smoke recipes), then the
# fuzz targets for a bounded time.
#   tools/test.sh [ctest options...]     e.g. tools/test.sh -R Recipe
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/build.sh" "$root/build"
jobs=${SSLAB_TEST_JOBS:-2}
# Tests run side by side on few cores: OpenMP threads that spin while waiting
# would steal the other test's core (a text MLM step: 1.0 s spinning, 0.1 s passive).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
ctest --test-dir "$root/build" --output-on-failure -j"$jobs" "$@"
# The whole suite (no ctest options) ends with every fuzz target for a bounded
# time; any finding fails it (docs/fuzzing.md). SSLAB_FUZZ_SECONDS=0 skips it.
# checkpoint is left out: LibTorch's TorchScript importer crashes on some
# damaged archives, which no catch can stop (sslab's own checkpoints carry a
# CRC-32C, checked before the importer runs; docs/fuzzing.md).
fuzz_seconds=${SSLAB_FUZZ_SECONDS:-10}
if [ $# -eq 0 ] && [ "$fuzz_seconds" != 0 ]; then
  SSLAB_FUZZ_SKIP=${SSLAB_FUZZ_SKIP-checkpoint} "$root/tools/fuzz.sh" all "$fuzz_seconds"
fi
