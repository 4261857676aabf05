#!/usr/bin/env python3
"""Moving Fashion-MNIST as H.264 files: two Fashion-MNIST items bouncing in a
64x64 canvas for 20 frames (the Moving MNIST recipe of Srivastava et al. 2015
and OpenSTL: random start, random direction at 3.6 px/frame, reflection at
the edges, overlap = pixel-wise max), encoded in-process with libavcodec by
sslab-video-gen (built with the video plugin), one encoder per clip and no
external ffmpeg process.

  datasets/moving_fmnist.py [--out data/moving_fmnist] [--train 10000] [--test 2000]
                            [--seed 0] [--jobs 2] [--build build] [-- extra sslab-video-gen args]

Writes OUT/{train,test}/NNNNNN.mp4 and OUT/manifest.tsv (path, split, frames,
classes, sources) for video.clips. The split is fixed: train clips take their
items from the 60,000 Fashion-MNIST training images, test clips from the
10,000 test images. Deterministic: the same arguments give byte-identical
files. Needs dataset-fashion-mnist (apt-get install dataset-fashion-mnist)
and a build of sslab (tools/build.sh).
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "moving_fmnist"))
    ap.add_argument("--train", type=int, default=10000, help="training clips")
    ap.add_argument("--test", type=int, default=2000, help="test clips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="encoder threads")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="sslab build folder (holds bin/sslab-video-gen)")
    ap.add_argument("extra", nargs="*", help="more sslab-video-gen arguments (after --), e.g. --items 1 --codec libvpx-vp9")
    args = ap.parse_args()
    gen = os.path.join(args.build, "bin", "sslab-video-gen")
    if not os.access(gen, os.X_OK):
        sys.exit("moving_fmnist.py: %s is missing; build sslab first (tools/build.sh)" % gen)
    manifest = os.path.join(args.out, "manifest.tsv")
    stamp = os.path.join(args.out, "generator_args.txt")
    cmd = [gen, "--out", args.out, "--train", str(args.train), "--test", str(args.test), "--seed", str(args.seed)]
    cmd += args.extra
    # --jobs does not change the output (the files are byte-identical), so it is not part of the stamp.
    wanted = " ".join(cmd[3:]) + "\n"
    if os.path.exists(manifest) and os.path.exists(stamp) and open(stamp).read() == wanted:
        print("moving_fmnist.py: %s is up to date (delete it to regenerate)" % manifest)
        return
    rc = subprocess.call(cmd + ["--jobs", str(args.jobs)])
    if rc == 0:
        with open(stamp, "w") as f:
            f.write(wanted)
    sys.exit(rc)


if __name__ == "__main__":
    main()
