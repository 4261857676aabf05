#!/usr/bin/env bash
# Data-parallel scaling on this machine: the same recipe (same global batch)
# trained by 1 process with T threads and by N torchrun ranks with T/N
# threads each, back to back; prints samples/s (mean of the logged rates
# after the first log line) and the ratio.
#   tools/bench/scaling.sh [RECIPE] [STEPS] [RANKS] [THREADS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
recipe=${1:-$root/recipes/vision/mae_fmnist.toml}
steps=${2:-60}
ranks=${3:-2}
threads=${4:-$(nproc)}
sslab=${SSLAB:-$root/build/bin/sslab}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(--no-eval --set train.steps=$steps --set log.every_steps=10 --set log.progress=none
        --set checkpoint.every_steps=0 --set train.probe=false --set log.monitors=false --set log.images=false)

rate() {  # mean samples_per_s of metrics.jsonl lines after the first
  /usr/bin/python3 -c '
import json, sys
rates = [json.loads(l)["samples_per_s"] for l in open(sys.argv[1])][1:]
print(f"{sum(rates) / len(rates):.1f}")' "$1/metrics.jsonl"
}

"$sslab" train "$recipe" "${common[@]}" --set train.threads=$threads --out "$out/one" > /dev/null
one=$(rate "$out/one")
torchrun --nproc_per_node=$ranks --no_python --redirects 1 --tee 1 --master_addr=127.0.0.1 --master_port=$((29500 + RANDOM % 1000)) \
  "$sslab" train "$recipe" "${common[@]}" --set train.threads=$((threads / ranks > 0 ? threads / ranks : 1)) \
  --out "$out/many" > /dev/null 2>&1
many=$(rate "$out/many")
echo "recipe: $recipe ($steps steps)"
echo "1 process x $threads threads: $one samples/s"
echo "$ranks ranks x $((threads / ranks > 0 ? threads / ranks : 1)) threads (gloo): $many samples/s"
/usr/bin/python3 -c "import sys; print(f'ratio {sys.argv[1]} ranks / 1 process: {float(sys.argv[2]) / float(sys.argv[3]):.2f}')" "$ranks" "$many" "$one"
