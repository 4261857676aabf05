#!/usr/bin/env bash
# Builds (first time) and runs libFuzzer targets (docs/fuzzing.md).
#   tools/fuzz.sh TARGET [SECONDS]    one target, SECONDS of fuzzing (default 20)
#   tools/fuzz.sh all [SECONDS]       every target in turn, SECONDS each
#   tools/fuzz.sh list                the target names
# Targets: recipe overrides text idx image audio video checkpoint.
# Exits non-zero on any finding (crash, sanitizer report, escaping exception,
# leak, allocation over the malloc limit, timeout); the input that caused it
# is saved as $SSLAB_FUZZ_BUILD/findings/<target>-<kind>-<sha1>.
# Environment: SSLAB_FUZZ_BUILD (build tree, default build-fuzz/ at the root),
# SSLAB_FUZZ_SKIP (targets that `all` leaves out, e.g. "checkpoint video"),
# SSLAB_FUZZ_CXX (compiler, default clang++-14), SSLAB_FUZZ_MALLOC_MB (512),
# SSLAB_FUZZ_RSS_MB (2048), SSLAB_FUZZ_TIMEOUT_S (per input, 10).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SSLAB_FUZZ_BUILD:-$root/build-fuzz}
targets=(recipe overrides text idx image audio video safetensors checkpoint)

usage() {
  sed -n '2,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[ $# -ge 1 ] || usage
what=$1
seconds=${2:-20}
[[ "$seconds" =~ ^[0-9]+$ ]] || usage
if [ "$what" = list ]; then
  printf '%s\n' "${targets[@]}"
  exit 0
fi
if [ "$what" = all ]; then
  run=()
  for t in "${targets[@]}"; do
    [[ " ${SSLAB_FUZZ_SKIP:-} " == *" $t "* ]] && { echo "fuzz.sh: skipping $t (SSLAB_FUZZ_SKIP)"; continue; }
    run+=("$t")
  done
else
  [[ " ${targets[*]} " == *" $what "* ]] || { echo "fuzz.sh: unknown target '$what' (known: ${targets[*]})" >&2; exit 2; }
  run=("$what")
fi

# ---- build: only the fuzz targets and the sources they drive (SSLAB_FUZZ)
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
if [ ! -f "$build/build.ninja" ]; then
  cxx=${SSLAB_FUZZ_CXX:-clang++-14}
  command -v "$cxx" > /dev/null || { echo "fuzz.sh: $cxx not found (tools/setup.sh installs clang-14)" >&2; exit 2; }
  cmake -S "$root" -B "$build" -G Ninja -DSSLAB_FUZZ=ON -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" > /dev/null
fi
cmake --build "$build" --target fuzz_make_seeds "${run[@]/#/fuzz_}"

# ---- seed corpora: generated binaries, the repository's recipes, fuzz/seeds/
seeds=$build/seeds
if [ ! -f "$seeds/.done" ] || [ "$build/bin/fuzz_make_seeds" -nt "$seeds/.done" ]; then
  rm -rf "$seeds"
  ASAN_OPTIONS=detect_leaks=0 "$build/bin/fuzz_make_seeds" "$seeds"
  mkdir -p "$seeds/recipe" "$seeds/overrides"
  find "$root/recipes" -name '*.toml' -exec cp {} "$seeds/recipe/" \;
  for d in "$root"/fuzz/seeds/*/; do
    mkdir -p "$seeds/$(basename "$d")"
    cp "$d"* "$seeds/$(basename "$d")/"
  done
  touch "$seeds/.done"
fi

# ---- run
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/fuzz/lsan.supp:print_suppressions=0}
export SSLAB_FFMPEG_LOG=quiet OMP_NUM_THREADS=1
mkdir -p "$build/findings" "$build/logs"
failed=()
summary=()
for t in "${run[@]}"; do
  corpus=$build/corpus/$t  # what libFuzzer adds; kept between local runs
  mkdir -p "$corpus"
  log=$build/logs/$t.log
  echo "fuzz.sh: $t for ${seconds} s (log: $log)"
  start=$(date +%s)
  rc=0
  "$build/bin/fuzz_$t" -max_total_time="$seconds" -timeout="${SSLAB_FUZZ_TIMEOUT_S:-10}" \
    -rss_limit_mb="${SSLAB_FUZZ_RSS_MB:-2048}" -malloc_limit_mb="${SSLAB_FUZZ_MALLOC_MB:-512}" \
    -artifact_prefix="$build/findings/$t-" -print_final_stats=1 -close_fd_mask=1 \
    "$corpus" "$seeds/$t" > "$log" 2>&1 || rc=$?
  took=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  line="$t: ${took} s, ${execs:-?} executions, corpus $(find "$corpus" -type f | wc -l) files"
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    line="$line, FINDING (exit $rc)"
    echo "fuzz.sh: $t found a problem:" >&2
    grep -E 'ERROR|SUMMARY|Test unit written|fuzz check failed|terminate called|what\(\)' "$log" | head -20 >&2 || true
  fi
  summary+=("$line")
  echo "fuzz.sh: $line"
done
echo "fuzz.sh: summary"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in ${failed[*]}: inputs in $build/findings/, logs in $build/logs/" >&2
  exit 1
fi
