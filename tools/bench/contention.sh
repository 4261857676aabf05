#!/usr/bin/env bash
# The OpenMP wait policy with and without one competing 2-thread training
# (docs/trainer.md, "Threads under contention"). Seconds per MAE step
# (recipes/vision/mae_fmnist.toml, 2 threads): alone (twice, alternating the
# policies), beside a competitor started from this session, and beside one
# in its own session (setsid).
#   tools/bench/contention.sh [POLICY...]    default: PASSIVE ACTIVE default
# ("default" is a value libgomp does not know: it warns and keeps its own
# spin-then-sleep behaviour, as when the variable is unset.)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
sslab=${SSLAB:-$root/build/bin/sslab}
recipe=$root/recipes/vision/mae_fmnist.toml
if [ $# -gt 0 ]; then policies=("$@"); else policies=(PASSIVE ACTIVE default); fi
args=(--no-eval --set train.probe=false --set log.monitors=false --set log.images=false --set 'log.progress="none"' --set log.tensorboard=false
      --set checkpoint.every_steps=1000000 --set train.warmup_steps=0 --set train.threads=2)
tmp=$(mktemp -d)
trap 'pkill -f "$tmp/comp" || true; rm -rf "$tmp"' EXIT
measure() {  # policy name steps every
  OMP_WAIT_POLICY=$1 "$sslab" train "$recipe" "${args[@]}" --out "$tmp/$2" --set train.steps="$3" \
    --set log.every_steps="$4" > /dev/null 2> "$tmp/$2.err"
  /usr/bin/python3 -c "import json,sys; l=[json.loads(x) for x in open(sys.argv[1])]; \
print(f'{sys.argv[2]:28s}', ' '.join(f'{256 / x[\"samples_per_s\"]:.2f}' for x in l[1:]), 's/step')" \
    "$tmp/$2/metrics.jsonl" "$2"
}
compete() {  # policy name how
  if [ "$3" = own-session ]; then
    setsid env OMP_WAIT_POLICY="$1" "$sslab" train "$recipe" "${args[@]}" --out "$tmp/comp-$2" \
      --set train.steps=100000 > /dev/null 2>&1 &
  else
    OMP_WAIT_POLICY="$1" "$sslab" train "$recipe" "${args[@]}" --out "$tmp/comp-$2" \
      --set train.steps=100000 > /dev/null 2>&1 &
  fi
  sleep 15
  measure "$1" "$2" 6 2
  pkill -f "$tmp/comp-$2" || true
  wait || true
}
for round in 1 2; do for p in "${policies[@]}"; do measure "$p" "alone$round-$p" 12 4; done; done
for p in "${policies[@]}"; do compete "$p" "same-session-$p" same; done
for p in "${policies[@]}"; do compete "$p" "own-session-$p" own-session; done
