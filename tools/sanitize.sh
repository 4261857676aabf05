#!/usr/bin/env bash
# The sanitizer job: the test programs built with AddressSanitizer + UBSan
# (-DSSLAB_SANITIZE=ON, -O1 -g1) into build-asan/, and the unit tests run with
# leak detection on and every report fatal. What it runs, what it leaves out
# and why, and the suppressions policy: docs/sanitizers.md.
#   tools/sanitize.sh [ctest options...]     e.g. tools/sanitize.sh -R Reader
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SSLAB_SANITIZE_BUILD_DIR:-$root/build-asan}
supp=$root/tools/sanitizers

# Every report ends the process with a failure; leaks are checked at exit.
# The same settings reach the programs the tests start (the sslab command)
# and the test discovery run at build time.
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0
export LSAN_OPTIONS=suppressions=$supp/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # see tools/test.sh
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}

# -O1: the level ASan's authors recommend; -g1: line tables for the reports'
# stacks, not full debug info (measured costs: docs/sanitizers.md).
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DSSLAB_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
fi
cmake --build "$build" --target sslab_tests

jobs=${SSLAB_TEST_JOBS:-2}
# Left out (docs/sanitizers.md): the recipes trained end to end (e2e_test:
# Recipes/Smoke.*, Resume.*), the checks of the Python data set scripts
# (data.*: nothing instrumented runs) and the out-of-tree build (label slow).
ctest --test-dir "$build" --output-on-failure -j"$jobs" -LE slow -E '^(Recipes/Smoke|Resume|data)\.' "$@"
