#!/usr/bin/python3
"""sslab benchmark: step time, samples/s and model FLOP/s of a recipe's
training step in sslab (C++), next to the same model and step written in
PyTorch Python on the same LibTorch build, measured in one run.

  tools/bench/bench.py [RECIPE ...] [--steps N] [--threads T] [--sslab PATH]
                       [--device cuda --precision bf16 --peak-tflops 989]

Default recipe: recipes/vision/mae_fmnist.toml. Supported models: vision.vit
encoders trained with vision.mae (the Python twin is tools/bench/mae_reference.py),
and vision.cnn encoders trained with ssl.infonce, i.e. SimCLR (the twin is
tools/bench/simclr_reference.py; it makes its two views batched, in the step,
where sslab makes them per sample on its loader threads).
Model FLOPs per step are counted once by torch.profiler (with_flops) on the
Python twin (forward + backward matrix products); the same count divides
each side's step time. Both sides use the recipe's batch size and
train.threads intra-op threads, read Fashion-MNIST, and run AdamW. The
sslab side is `sslab train` itself (loader, objectives, backward, optimizer)
with its online probe off; its figures come from metrics.jsonl.

On a GPU (--device cuda) both sides keep the model on the device, copy each
batch there, optionally run the forward under bf16 autocast (--precision
bf16), and the Python side synchronises before reading the clock. With
--peak-tflops the report adds model FLOP utilisation (MFU): achieved model
FLOP/s over the card's dense peak (H100/H200 SXM bf16: 989).
"""
import argparse
import contextlib
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bench_alloc  # noqa: E402
import mae_reference  # noqa: E402
import simclr_reference  # noqa: E402


def load_recipe(path):
    with open(path, "rb") as f:
        r = tomllib.load(f)
    if "base" in r:
        base = load_recipe(os.path.join(os.path.dirname(path), r.pop("base")))
        def merge(a, b):
            for k, v in b.items():
                a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
            return a
        r = merge(base, r)
    return r


def fmnist_images(root):
    path = os.path.join(root, "train-images-idx3-ubyte.gz")
    with gzip.open(path, "rb") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return torch.from_numpy(data.reshape(-1, 1, 28, 28).copy())


def simclr_model(recipe, enc, obj):
    """The Python twin of a vision.cnn + ssl.infonce (SimCLR) recipe."""
    cnn = simclr_reference.Cnn(channels=tuple(enc.get("channels", [32, 64, 128])), blocks=enc.get("blocks", 1),
                               stem_pool=enc.get("stem_pool", False), pool=enc.get("pool", "mean"),
                               channels_in=enc.get("channels_in", 1), channels_last=enc.get("channels_last", True))
    proj = recipe.get("heads", {}).get(obj.get("projector", ""), {})
    crop = next((t for t in recipe.get("transforms", {}).get("image@*", []) if t.get("type") == "vision.random_resized_crop"), {})
    jit = next((t for t in recipe.get("transforms", {}).get("image@*", []) if t.get("type") == "vision.color_jitter"), {})
    views = simclr_reference.Views(size=crop.get("size", 28), scale=tuple(crop.get("scale", [0.08, 1.0])),
                                   brightness=jit.get("brightness", 0.4), contrast=jit.get("contrast", 0.4),
                                   p=jit.get("p", 0.8))
    return simclr_reference.SimClr(cnn, hidden=tuple(proj.get("hidden", [2048])), out_dim=proj.get("out_dim", 128),
                                   temperature=obj.get("temperature", 0.2), views=views)


def python_side(recipe, steps, warmup, threads, device="cpu", precision="fp32", data_root=None):
    enc = recipe["encoders"]["image"] if "image" in recipe.get("encoders", {}) else next(iter(recipe["encoders"].values()))
    obj = recipe["objectives"][0]
    train = recipe.get("train", {})
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    lr, wd = train.get("lr", 1e-3), train.get("weight_decay", 0.05)
    betas = tuple(train.get("betas", [0.9, 0.95]))
    if enc.get("type") == "vision.cnn" and obj.get("type") == "ssl.infonce":
        model = simclr_model(recipe, enc, obj)
        make_opt = lambda: torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd, betas=betas)
    elif enc.get("type", "vision.vit") == "vision.vit" and obj.get("type", "vision.mae") == "vision.mae":
        keys = ["image_size", "patch_size", "channels", "dim", "depth", "heads", "mlp_ratio"]
        model = mae_reference.Mae(**{k: enc[k] for k in keys if k in enc},
                                  **{k: obj[k] for k in ["mask_ratio", "decoder_dim", "decoder_depth", "decoder_heads",
                                                         "decoder_mlp_ratio", "norm_pix_loss"] if k in obj})
        make_opt = lambda: mae_reference.make_optimizer(model, lr, wd, betas)
    else:
        raise SystemExit(f"bench.py: no Python twin for encoder {enc.get('type')!r} with objective {obj.get('type')!r} "
                         "(supported: vision.vit + vision.mae, vision.cnn + ssl.infonce)")
    images = fmnist_images(data_root or recipe["data"]["train"].get("root", "/usr/share/datasets/fashion-mnist"))
    bs = train.get("batch_size", 256)
    gen = torch.Generator().manual_seed(0)
    cuda = device.startswith("cuda")
    model.to(device)
    opt = make_opt()  # on the moved parameters
    if cuda:
        images = images.pin_memory()

    def step():
        idx = torch.randint(0, images.shape[0], (bs,), generator=gen)
        x = images[idx].to(device, non_blocking=True).float() / 255.0
        with (torch.autocast("cuda", dtype=torch.bfloat16) if cuda and precision == "bf16"
              else contextlib.nullcontext()):
            loss = model(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(warmup):
        step()
    with torch.profiler.profile(with_flops=True) as prof:
        step()
    flops = sum(e.flops for e in prof.key_averages() if e.flops)
    times = []
    sync()
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return {"step_s": statistics.median(times), "batch": bs, "flops": flops}


def sslab_side(sslab, recipe_path, steps, warmup, threads, extra=()):
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        every = max(1, steps // 3)
        total = warmup + 3 * every
        cmd = [sslab, "train", recipe_path, "--out", run, "--no-eval",
               "--set", f"train.steps={total}", "--set", f"train.warmup_steps=0",
               "--set", "train.probe=false", "--set", f"train.threads={threads}",
               "--set", f"log.every_steps={every}", "--set", "log.progress=\"none\"",
               "--set", "log.tensorboard=false", "--set", "log.monitors=false", "--set", "log.images=false",
               "--set", f"checkpoint.every_steps={10 ** 9}", *extra]
        if warmup % every:
            raise SystemExit("internal: warmup must be a multiple of the log interval")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        lines = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
    rates = [l["samples_per_s"] for l in lines if l["step"] > warmup]
    return {"samples_per_s": statistics.median(rates)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipes", nargs="*", default=[os.path.join(ROOT, "recipes/vision/mae_fmnist.toml")])
    ap.add_argument("--steps", type=int, default=30, help="timed steps per side (default 30)")
    ap.add_argument("--threads", type=int, default=0, help="threads (default: the recipe's train.threads, else cores)")
    ap.add_argument("--sslab", default=os.path.join(ROOT, "build/bin/sslab"))
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="bf16: autocast on CUDA")
    ap.add_argument("--data-root", default=None, help="Fashion-MNIST folder (default: the recipe's)")
    ap.add_argument("--peak-tflops", type=float, default=0.0,
                    help="the device's dense peak TFLOP/s; adds MFU to the report")
    bench_alloc.add_argument(ap)
    args = ap.parse_args()
    python_alloc = bench_alloc.ensure(args.python_alloc)
    results = []
    for path in args.recipes:
        recipe = load_recipe(path)
        threads = args.threads or recipe.get("train", {}).get("threads", 0) or os.cpu_count()
        every = max(1, args.steps // 3)
        warmup = every
        py = python_side(recipe, args.steps, 3, threads, args.device, args.precision, args.data_root)
        extra = ["--set", f"train.device=\"{args.device}\"", "--set", f"train.precision=\"{args.precision}\""]
        if args.data_root:
            extra += ["--set", f"data.train.root=\"{args.data_root}\"", "--set", f"data.test.root=\"{args.data_root}\""]
        cc = sslab_side(args.sslab, path, args.steps, warmup, threads, extra)
        bs = py["batch"]
        cc_step = bs / cc["samples_per_s"]
        row = {"recipe": os.path.relpath(path, ROOT), "threads": threads, "batch_size": bs,
               "model_gflop_per_step": py["flops"] / 1e9,
               "sslab": {"step_ms": cc_step * 1e3, "samples_per_s": cc["samples_per_s"],
                         "gflop_per_s": py["flops"] / cc_step / 1e9},
               "pytorch_python": {"step_ms": py["step_s"] * 1e3, "samples_per_s": bs / py["step_s"],
                                  "gflop_per_s": py["flops"] / py["step_s"] / 1e9},
               "speedup_vs_python": py["step_s"] / cc_step}
        row["python_allocator"] = python_alloc
        row["device"] = args.device
        row["precision"] = args.precision
        if args.peak_tflops:
            for side in ("sslab", "pytorch_python"):
                row[side]["mfu"] = row[side]["gflop_per_s"] / (args.peak_tflops * 1e3)
        results.append(row)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(f"{r['recipe']}  {r['device']} {r['precision']}, batch {r['batch_size']}, {r['threads']} threads, "
              f"{r['model_gflop_per_step']:.2f} GFLOP/step (fwd+bwd matmuls)")
        print(f"  {'':16} {'step ms':>10} {'samples/s':>10} {'GFLOP/s':>9}")
        for side in ("sslab", "pytorch_python"):
            s = r[side]
            mfu = f"  MFU {100 * s['mfu']:.1f}%" if "mfu" in s else ""
            print(f"  {side:16} {s['step_ms']:10.1f} {s['samples_per_s']:10.1f} {s['gflop_per_s']:9.2f}{mfu}")
        print(f"  sslab / python speed: {r['speedup_vs_python']:.2f}x  (Python side on {python_alloc})")


if __name__ == "__main__":
    main()
