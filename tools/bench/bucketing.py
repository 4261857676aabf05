#!/usr/bin/env python3
"""Length bucketing against plain shuffled batches, on one recipe.

Trains RECIPE for --steps steps with train.bucket_key unset and set, in
alternating rounds (the machine's speed drifts between minutes), and prints
per round and as medians: the padded share of the key's batches, real
(unpadded) elements per second, samples per second and seconds per step, from
each run's metrics.jsonl (the first logged interval, which holds start-up, is
left out).

  tools/bench/bucketing.py recipes/text/mlm_fortunes.toml --key text.ids
  tools/bench/bucketing.py RECIPE --key audio.wave --set train.max_tokens=...

Run it alone on the machine: other work on the same cores makes both sides
slower by different amounts.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(sslab, recipe, out, steps, every, key, extra):
    args = [sslab, "train", recipe, "--out", out, "--no-eval", "--set", f"train.steps={steps}",
            "--set", f"log.every_steps={every}", "--set", "log.progress=none", "--set", "log.monitors=false",
            "--set", "checkpoint.every_steps=0"]
    if key:
        args += ["--set", f"train.bucket_key={key}"]
    for s in extra:
        args += ["--set", s]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    lines = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))][1:]
    key_name = key or ARGS.key
    pad = statistics.mean(l[f"padding/{key_name}"] for l in lines)
    per_s = statistics.median(l[f"{key_name}/per_s"] for l in lines)
    samples = statistics.median(l["samples_per_s"] for l in lines)
    return pad, per_s, samples


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe")
    p.add_argument("--key", required=True, help="the variable-length batch key (text.ids, audio.wave)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--every", type=int, default=25, help="log interval (steps)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--set", action="append", default=[], help="an override for both sides")
    p.add_argument("--sslab", default=os.path.join(ROOT, "build", "bin", "sslab"))
    ARGS = p.parse_args()
    rows = {"plain": [], "bucketed": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(ARGS.rounds):
            for side in ("plain", "bucketed"):
                out = os.path.join(tmp, f"{side}{r}")
                pad, per_s, samples = run(ARGS.sslab, ARGS.recipe, out, ARGS.steps, ARGS.every,
                                          ARGS.key if side == "bucketed" else "", ARGS.set)
                rows[side].append((pad, per_s, samples))
                print(f"round {r + 1} {side:9s} padded {pad:6.1%}  {ARGS.key}/s {per_s:10.0f}  "
                      f"samples/s {samples:7.1f}", flush=True)
    med = {s: [statistics.median(x[i] for x in v) for i in range(3)] for s, v in rows.items()}
    ratios = [b[1] / a[1] for a, b in zip(rows["plain"], rows["bucketed"])]
    print(f"\nmedians: padded {med['plain'][0]:.1%} -> {med['bucketed'][0]:.1%}; "
          f"{ARGS.key}/s {med['plain'][1]:.0f} -> {med['bucketed'][1]:.0f}; "
          f"samples/s {med['plain'][2]:.1f} -> {med['bucketed'][2]:.1f}; "
          f"useful-rate ratio per round {', '.join(f'{x:.2f}' for x in ratios)} "
          f"(median {statistics.median(ratios):.2f}x)")


if __name__ == "__main__":
    sys.exit(main())
