#!/usr/bin/python3
"""sslab video benchmark, measured in one run on the same cores:

1. Decoding: frames decoded (and converted to gray by swscale) per second by
   sslab's reader (build/bin/sslab-video-bench: open, demux, decode,
   swscale, one thread) next to `ffmpeg -benchmark` decoding the same files
   (concat demuxer, `-threads 1`, `-vf format=gray` / scale) to the null
   muxer, both pinned to the same core. Sets: Moving Fashion-MNIST clips
   (64x64 H.264, 20 frames each) and imageio's cockatoo.mp4 (1280x720 H.264,
   scaled to 320x180 by both sides).
2. Training step: `sslab train` of a video recipe (loader decoding the H.264
   clips in its threads, frame prediction, backward, AdamW) next to the same
   model and loss in PyTorch Python (tools/bench/video_reference.py) on the
   same LibTorch build, batch shape and threads; the Python side feeds
   random clips (no decoding).

  tools/bench/video_bench.py [--recipe recipes/video/frames_moving_fmnist.toml] [--files 500]
                             [--steps 12] [--build build] [--json]
"""
import argparse
import glob
import json
import os
import re
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
import video_reference  # noqa: E402

COCKATOO = "/usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4"


def sslab_decode(build, files, size, repeat, core):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(files) + "\n")
        listing = f.name
    cmd = ["taskset", "-c", core, os.path.join(build, "bin", "sslab-video-bench"), listing, "--repeat", str(repeat)]
    if size:
        cmd += ["--width", str(size[0]), "--height", str(size[1])]
    try:
        return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    finally:
        os.unlink(listing)


def ffmpeg_decode(files, size, repeat, core):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for p in files:
            f.write("file '%s'\n" % os.path.abspath(p))
        listing = f.name
    vf = "format=gray" if not size else "scale=%d:%d:flags=area,format=gray" % size
    cmd = ["taskset", "-c", core, "ffmpeg", "-hide_banner", "-nostdin", "-benchmark", "-threads", "1", "-f", "concat",
           "-safe", "0", "-i", listing, "-vf", vf, "-f", "null", "-"]
    best, frames = 1e30, 0
    try:
        for _ in range(repeat):
            err = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
            rtime = float(re.search(r"rtime=([0-9.]+)s", err).group(1))
            frames = int(re.findall(r"frame=\s*(\d+)", err)[-1])
            best = min(best, rtime)
    finally:
        os.unlink(listing)
    return {"frames": frames, "seconds": best, "frames_per_s": frames / best}


def python_side(recipe, steps, warmup, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    enc = dict(recipe["encoders"]["video"])
    enc.pop("type", None)
    dec = recipe["heads"]["decoder"]
    obj = recipe["objectives"][0]
    if obj.get("target", "pixels") != "pixels" or obj.get("loss", "mse") != "mse":
        raise SystemExit("the Python twin covers the pixel MSE target")
    k, n = obj.get("context_frames", 10), obj.get("predict_frames", 10)
    model = video_reference.FramePrediction(enc, dec.get("width", 64), k, n)
    train = recipe.get("train", {})
    opt = torch.optim.AdamW(model.parameters(), lr=train.get("lr", 1e-3), weight_decay=train.get("weight_decay", 0.05),
                            betas=tuple(train.get("betas", [0.9, 0.95])))
    data = recipe["data"]["train"]
    bs, t = train.get("batch_size", 256), data.get("frames", 20)
    side = 64
    clips = torch.rand(4, bs, t, enc.get("channels", 1), side, side)

    def step(i):
        loss = model(clips[i % 4])
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
    return {"step_s": statistics.median(times), "batch": bs, "frames": t}


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
    ap.add_argument("--recipe", default=os.path.join(ROOT, "recipes/video/frames_moving_fmnist.toml"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data/moving_fmnist"))
    ap.add_argument("--files", type=int, default=500, help="Moving Fashion-MNIST clips to decode")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12, help="timed training steps per side")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--core", default="0", help="core both decoders are pinned to")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--json", action="store_true")
    bench_alloc.add_argument(ap)
    args = ap.parse_args()
    python_alloc = bench_alloc.ensure(args.python_alloc)
    result = {"decode": {}}
    sets = {"moving_fmnist_h264_64x64": (sorted(glob.glob(os.path.join(args.data, "train/*.mp4")))[: args.files], None)}
    if os.path.exists(COCKATOO):
        sets["cockatoo_h264_1280x720_to_320x180"] = ([COCKATOO], (320, 180))
    for name, (files, size) in sets.items():
        if not files:
            print(f"note: no files for {name} (run datasets/moving_fmnist.py)", file=sys.stderr)
            continue
        bench_alloc.build_target(args.build, "sslab-video-bench")
        s = sslab_decode(args.build, files, size, args.repeat, args.core)
        f = ffmpeg_decode(files, size, args.repeat, args.core)
        result["decode"][name] = {"files": len(files), "sslab_frames": s["frames"], "ffmpeg_frames": f["frames"],
                                  "sslab_frames_per_s": s["frames_per_s"], "ffmpeg_frames_per_s": f["frames_per_s"],
                                  "sslab_over_ffmpeg": s["frames_per_s"] / f["frames_per_s"]}
    if not args.skip_train:
        with open(args.recipe, "rb") as fh:
            recipe = tomllib.load(fh)
        threads = args.threads or recipe.get("train", {}).get("threads", 0) or os.cpu_count()
        every = max(1, args.steps // 3)
        py = python_side(recipe, args.steps, 2, threads)
        cc = sslab_side(os.path.join(args.build, "bin", "sslab"), args.recipe, args.steps, every, threads)
        cc_step = py["batch"] / cc["samples_per_s"]
        result["train"] = {"recipe": os.path.relpath(args.recipe, ROOT), "threads": threads, "batch_size": py["batch"],
                           "frames": py["frames"], "sslab_step_ms": cc_step * 1e3,
                           "python_step_ms": py["step_s"] * 1e3, "sslab_speedup_vs_python": py["step_s"] / cc_step}
    result["python_allocator"] = python_alloc
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, d in result["decode"].items():
        print(f"decode {name}: {d['files']} files, sslab {d['sslab_frames']} frames at {d['sslab_frames_per_s']:.0f}/s, "
              f"ffmpeg -benchmark {d['ffmpeg_frames']} frames at {d['ffmpeg_frames_per_s']:.0f}/s: "
              f"sslab = {d['sslab_over_ffmpeg']:.2f} x ffmpeg")
    if "train" in result:
        t = result["train"]
        print(f"(Python side on {python_alloc})")
        print(f"train {t['recipe']}: batch {t['batch_size']} x {t['frames']} frames, {t['threads']} threads: "
              f"sslab {t['sslab_step_ms']:.0f} ms/step, PyTorch Python {t['python_step_ms']:.0f} ms/step, "
              f"sslab / python speed {t['sslab_speedup_vs_python']:.2f}x")


if __name__ == "__main__":
    main()
