#!/usr/bin/python3
"""sslab audio benchmark, measured in one run:

1. Decoding: audio seconds decoded per wall second by sslab's reader
   (libsndfile decode + mono mixdown + libswresample to 16 kHz) next to
   libsndfile's raw read rate (decode only) on the same files, and the same
   reader through its resample cache once filled (build/bin/sslab-audio-bench).
2. Training step: `sslab train` of a CPC recipe (loader, objective, backward,
   AdamW) next to the same model and loss in PyTorch Python
   (tools/bench/cpc_reference.py) on the same LibTorch build, same batch
   shape and threads. The Python side feeds random waves of the recipe's crop
   length (no data loading); the sslab side loads real clips in its loader
   threads on the same cores.

  tools/bench/audio_bench.py [--recipe recipes/audio/cpc_fillets.toml] [--files N]
                             [--steps N] [--build build] [--json]
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bench_alloc  # noqa: E402
import cpc_reference  # noqa: E402


def decode_side(build, files, repeat):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(files) + "\n")
        listing = f.name
    # The resample cache (data.<split>.resample_cache) in a fresh folder: the
    # bench fills it untimed, then times reads from it (every epoch after the first).
    cache = tempfile.mkdtemp(prefix="sslab-resample-cache-")
    try:
        out = subprocess.run([os.path.join(build, "bin", "sslab-audio-bench"), listing, "--rate", "16000",
                              "--repeat", str(repeat), "--cache", cache], check=True, capture_output=True,
                             text=True).stdout
    finally:
        os.unlink(listing)
        subprocess.run(["rm", "-rf", cache], check=False)
    return json.loads(out)


def crop_samples(recipe):
    for t in recipe.get("transforms", {}).get("audio.wave", []):
        if t.get("type") == "audio.random_crop":
            return int(round(t.get("seconds", 1.0) * t.get("sample_rate", 16000)))
    raise SystemExit("the recipe needs an audio.random_crop transform (fixed training crops) to be benchmarked")


def python_side(recipe, steps, warmup, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    enc = dict(next(iter(recipe["encoders"].values())))
    if enc.get("context", "gru") != "gru" or enc.get("features", "wave") != "wave":
        raise SystemExit("the Python twin covers wave input with a GRU context")
    obj = recipe["objectives"][0]
    if obj.get("negatives_from", "batch") != "batch":
        raise SystemExit("the Python twin draws negatives from the batch")
    channels, context_dim = enc.get("channels", 256), enc.get("context_dim", 256)
    model = cpc_reference.Cpc(cpc_reference.CpcEncoder(**enc), context_dim, channels,
                              obj.get("prediction_steps", 12), obj.get("negatives", 16))
    train = recipe.get("train", {})
    opt = torch.optim.AdamW(model.parameters(), lr=train.get("lr", 1e-3), weight_decay=train.get("weight_decay", 0.05),
                            betas=tuple(train.get("betas", [0.9, 0.95])))
    bs, s = train.get("batch_size", 256), crop_samples(recipe)
    waves = torch.randn(8, bs, s)

    def step(i):
        loss = model(waves[i % 8])
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(warmup):
        step(i)
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - t0)
    return {"step_s": statistics.median(times), "batch": bs, "samples": s}


def sslab_side(sslab, recipe_path, steps, warmup, threads):
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        every = max(1, steps // 3)
        total = warmup + 3 * every
        cmd = [sslab, "train", recipe_path, "--out", run, "--no-eval",
               "--set", f"train.steps={total}", "--set", "train.warmup_steps=0",
               "--set", "train.probe=false", "--set", f"train.threads={threads}",
               "--set", f"log.every_steps={every}", "--set", "log.progress=\"none\"",
               "--set", "log.tensorboard=false", "--set", f"checkpoint.every_steps={10 ** 9}"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        lines = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
    rates = [l["samples_per_s"] for l in lines if l["step"] > warmup]
    return {"samples_per_s": statistics.median(rates)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=os.path.join(ROOT, "recipes/audio/cpc_fillets.toml"))
    ap.add_argument("--files", type=int, default=300, help="clips of each set to decode")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=15, help="timed training steps per side")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--json", action="store_true")
    bench_alloc.add_argument(ap)
    args = ap.parse_args()
    python_alloc = bench_alloc.ensure(args.python_alloc)
    result = {"decode": {}}
    sets = {
        "fillets_cs_ogg_vorbis_22k": sorted(glob.glob("/usr/share/games/fillets-ng/sound/*/cs/*.ogg")),
        "spoken_words_wav_22k": sorted(glob.glob(os.path.join(ROOT, "data/spoken_words/wav/*/*.wav"))),
    }
    for name, files in sets.items():
        if files:
            bench_alloc.build_target(args.build, "sslab-audio-bench")
            result["decode"][name] = decode_side(args.build, files[: args.files], args.repeat)
    with open(args.recipe, "rb") as f:
        recipe = tomllib.load(f)
    threads = args.threads or recipe.get("train", {}).get("threads", 0) or os.cpu_count()
    every = max(1, args.steps // 3)
    py = python_side(recipe, args.steps, 3, threads)
    cc = sslab_side(os.path.join(args.build, "bin", "sslab"), args.recipe, args.steps, every, threads)
    cc_step = py["batch"] / cc["samples_per_s"]
    result["train"] = {"recipe": os.path.relpath(args.recipe, ROOT), "threads": threads, "batch_size": py["batch"],
                       "crop_samples": py["samples"], "sslab_step_ms": cc_step * 1e3,
                       "python_step_ms": py["step_s"] * 1e3, "sslab_speedup_vs_python": py["step_s"] / cc_step}
    result["python_allocator"] = python_alloc
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, d in result["decode"].items():
        print(f"decode {name}: {d['files']} files, {d['audio_seconds']:.0f} s of audio; raw libsndfile "
              f"{d['raw_read_audio_s_per_s']:.0f} audio-s/s, sslab reader (mono + 16 kHz) "
              f"{d['sslab_read_audio_s_per_s']:.0f} audio-s/s = {d['sslab_over_raw']:.2f} x raw; through the "
              f"resample cache {d['cached_read_audio_s_per_s']:.0f} audio-s/s = {d['cached_over_raw']:.2f} x raw")
    t = result["train"]
    print(f"(Python side on {python_alloc})")
    print(f"train {t['recipe']}: batch {t['batch_size']} x {t['crop_samples']} samples, {t['threads']} threads: "
          f"sslab {t['sslab_step_ms']:.0f} ms/step, PyTorch Python {t['python_step_ms']:.0f} ms/step, "
          f"sslab / python speed {t['sslab_speedup_vs_python']:.2f}x")


if __name__ == "__main__":
    main()
