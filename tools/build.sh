#!/usr/bin/env bash
# Configures (first time) and builds sslab with Ninja, Release, ccache.
#   tools/build.sh [BUILD_DIR] [extra cmake -D options...]
# BUILD_DIR defaults to build/ at the repository root.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
shift || true

# ccache and precompiled headers: let ccache cache the PCH users too.
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}

if [ ! -f "$build/build.ninja" ] || [ $# -gt 0 ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
fi
cmake --build "$build"
