#!/usr/bin/python3
"""sslab text benchmark, both ratios measured in one run:

1. Tokenisation: the text loader's tokenised samples/s (text.files get():
   SentencePiece encode + [CLS]/[SEP] + tensor, collated and padded into
   batches by sslab's Loader) against SentencePiece's own `spm_encode`
   (--output_format=id) on the same entries (one per line) with the same model.
2. Training step: `sslab train` (loader, MLM objective, backward, AdamW) with
   its online probe off, against the same model and step in PyTorch Python
   (tools/bench/mlm_reference.py) on the same LibTorch build, the same token
   ids (dumped by the loader benchmark), the recipe's batch size and threads.

  tools/bench/text_bench.py [RECIPE] [--steps N] [--build DIR] [--json]

Default recipe: recipes/text/mlm_fortunes.toml. Run with /usr/bin/python3
(Debian's python3-torch).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bench_alloc  # noqa: E402
import mlm_reference  # noqa: E402
from bench import load_recipe  # noqa: E402


def loader_side(build, recipe, tmp, workers):
    text, ids = os.path.join(tmp, "entries.txt"), os.path.join(tmp, "ids.txt")
    out = subprocess.run([os.path.join(build, "bin/text_loader_bench"), recipe, "--workers", str(workers),
                          "--epochs", "2", "--text", text, "--ids", ids], check=True, capture_output=True, text=True)
    model = re.search(r"text\.sentencepiece: \w+ (\S+\.model)", out.stderr).group(1)
    return json.loads(out.stdout), text, ids, model


def spm_side(model, text, repeats=2):
    times = []
    for _ in range(repeats):
        with open(text) as f:
            t0 = time.perf_counter()
            subprocess.run(["spm_encode", "--model", model, "--output_format=id"], stdin=f, stdout=subprocess.DEVNULL,
                           check=True)
            times.append(time.perf_counter() - t0)
    lines = sum(1 for _ in open(text))
    return {"entries": lines, "seconds": min(times), "samples_per_s": lines / min(times)}


def python_step(recipe, ids_file, vocab, steps, warmup, threads):
    enc, obj, train = recipe["encoders"]["text"], recipe["objectives"][0], recipe.get("train", {})
    seqs = [torch.tensor([int(t) for t in line.split()]) for line in open(ids_file)]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = mlm_reference.TextMlm(vocab, enc.get("max_length", 128), enc.get("dim", 128),
                                  enc.get("depth", 2), enc.get("heads", 4), enc.get("mlp_ratio", 4.0),
                                  mask_prob=obj.get("mask_prob", 0.15))
    opt = mlm_reference.make_optimizer(model, train.get("lr", 1e-3), train.get("weight_decay", 0.05),
                                       tuple(train.get("betas", [0.9, 0.95])))
    clip = train.get("grad_clip", 0.0)
    bs = train.get("batch_size", 256)
    gen = torch.Generator().manual_seed(0)

    def step():
        idx = torch.randint(0, len(seqs), (bs,), generator=gen).tolist()
        batch = [seqs[i] for i in idx]
        T = max(len(s) for s in batch)
        ids = torch.zeros(bs, T, dtype=torch.long)
        pad = torch.ones(bs, T, dtype=torch.bool)
        for i, s in enumerate(batch):
            ids[i, : len(s)] = s
            pad[i, : len(s)] = False
        loss = model(ids, pad)
        opt.zero_grad()
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"step_s": statistics.median(times), "batch": bs}


def sslab_step(sslab, recipe_path, steps, threads):
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        every = max(1, steps // 3)
        warmup = every
        total = warmup + 3 * every
        cmd = [sslab, "train", recipe_path, "--out", run, "--no-eval",
               "--set", f"train.steps={total}", "--set", "train.warmup_steps=0",
               "--set", "train.probe=false", "--set", f"train.threads={threads}",
               "--set", f"log.every_steps={every}", "--set", "log.progress=\"none\"",
               "--set", "log.tensorboard=false", "--set", f"checkpoint.every_steps={10 ** 9}"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lines = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
    return {"samples_per_s": statistics.median([l["samples_per_s"] for l in lines if l["step"] > warmup])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", nargs="?", default=os.path.join(ROOT, "recipes/text/mlm_fortunes.toml"))
    ap.add_argument("--steps", type=int, default=30, help="timed training steps per side (default 30)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--json", action="store_true")
    bench_alloc.add_argument(ap)
    args = ap.parse_args()
    python_alloc = bench_alloc.ensure(args.python_alloc)
    recipe = load_recipe(args.recipe)
    threads = recipe.get("train", {}).get("threads", 0) or os.cpu_count()
    sslab = os.path.join(args.build, "bin/sslab")
    with tempfile.TemporaryDirectory() as tmp:
        bench_alloc.build_target(args.build, "text_loader_bench")
        l1, text, ids, model = loader_side(args.build, args.recipe, tmp, 1)
        l2, _, _, _ = loader_side(args.build, args.recipe, tmp, 2)
        spm = spm_side(model, text)
        py = python_step(recipe, ids, l1["vocab_size"], args.steps, 3, threads)
        cc = sslab_step(sslab, args.recipe, args.steps, threads)
    bs = py["batch"]
    res = {
        "recipe": os.path.relpath(args.recipe, ROOT), "threads": threads, "batch_size": bs,
        "tokenise": {"spm_encode_samples_per_s": spm["samples_per_s"],
                     "sslab_tokenizer_1thread_samples_per_s": l1["encode_samples_per_s"],
                     "sslab_loader_1worker_samples_per_s": l1["loader_samples_per_s"],
                     "sslab_loader_2workers_samples_per_s": l2["loader_samples_per_s"],
                     "loader_1worker_vs_spm_encode": l1["loader_samples_per_s"] / spm["samples_per_s"],
                     "loader_2workers_vs_spm_encode": l2["loader_samples_per_s"] / spm["samples_per_s"],
                     "entries": spm["entries"]},
        "train_step": {"sslab_step_ms": bs / cc["samples_per_s"] * 1e3, "sslab_samples_per_s": cc["samples_per_s"],
                       "python_step_ms": py["step_s"] * 1e3, "python_samples_per_s": bs / py["step_s"],
                       "sslab_vs_python_speed": py["step_s"] / (bs / cc["samples_per_s"])},
    }
    if args.json:
        print(json.dumps(res, indent=2))
        return
    t, s = res["tokenise"], res["train_step"]
    print(f"{res['recipe']}: {t['entries']} training entries, batch {bs}, {threads} threads "
          f"(Python side on {python_alloc})")
    print(f"  tokenise  spm_encode {t['spm_encode_samples_per_s']:.0f}/s | sslab tokenizer (1 thread) "
          f"{t['sslab_tokenizer_1thread_samples_per_s']:.0f}/s | loader 1 worker "
          f"{t['sslab_loader_1worker_samples_per_s']:.0f}/s ({t['loader_1worker_vs_spm_encode']:.2f}x spm), 2 workers "
          f"{t['sslab_loader_2workers_samples_per_s']:.0f}/s ({t['loader_2workers_vs_spm_encode']:.2f}x spm)")
    print(f"  step      sslab {s['sslab_step_ms']:.1f} ms ({s['sslab_samples_per_s']:.0f} samples/s) | PyTorch Python "
          f"{s['python_step_ms']:.1f} ms ({s['python_samples_per_s']:.0f} samples/s) | sslab/python speed "
          f"{s['sslab_vs_python_speed']:.2f}x")


if __name__ == "__main__":
    main()
