#!/usr/bin/env python3
"""Text captions for Moving Fashion-MNIST clips, for video <-> text (CLIP-style)
training: one caption per clip naming the clip's items ("a sneaker and a
bag", "two items: a coat and a shirt", ...), in the manifest's order.

  datasets/moving_fmnist_captions.py [--data data/moving_fmnist] [--seed 0]

Reads DATA/manifest.tsv (written by datasets/moving_fmnist.py) and writes
DATA/captions_train.txt and DATA/captions_test.txt: line i is the caption of
the i-th clip of that split in the manifest, so `text.files` with
`order = "file"` and `video.clips` on the same split line up index by index
under `ssl.paired`. The template and the order in which the items are named
are drawn per clip from the seed (deterministic). A caption says only which
items a clip holds, not where or how they move: clips with the same pair of
classes share their possible captions, which bounds exact-pair retrieval
(see docs/ssl.md).
"""
import argparse
import csv
import os
import random
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# Fashion-MNIST classes 0..9, as a caption names them.
CLASSES = ["a t-shirt", "a pair of trousers", "a pullover", "a dress", "a coat", "a sandal", "a shirt", "a sneaker",
           "a bag", "an ankle boot"]
PLURALS = ["t-shirts", "pairs of trousers", "pullovers", "dresses", "coats", "sandals", "shirts", "sneakers", "bags",
           "ankle boots"]
TEMPLATES = [
    "{a} and {b}",
    "{a} moving with {b}",
    "two items: {a} and {b}",
    "{a} next to {b}",
    "{a} bouncing around with {b}",
]
SAME = [
    "two {p}",
    "two items, both {p}",
    "a pair of moving {p}",
]


def caption(classes, rng):
    names = [CLASSES[c] for c in classes]
    if len(names) == 1:
        return names[0]
    if len(names) == 2 and classes[0] == classes[1]:
        return rng.choice(SAME).format(p=PLURALS[classes[0]])
    rng.shuffle(names)
    if len(names) == 2:
        return rng.choice(TEMPLATES).format(a=names[0], b=names[1])
    return "items: " + ", ".join(names)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "moving_fmnist"),
                    help="folder holding manifest.tsv (datasets/moving_fmnist.py --out)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    manifest = os.path.join(args.data, "manifest.tsv")
    if not os.path.exists(manifest):
        sys.exit("moving_fmnist_captions.py: %s is missing; run datasets/moving_fmnist.py first" % manifest)
    out = {"train": [], "test": []}
    with open(manifest, newline="") as f:
        rows = csv.DictReader(f, delimiter="\t")
        for field in ("split", "classes"):
            if field not in (rows.fieldnames or []):
                sys.exit("moving_fmnist_captions.py: %s has no '%s' column" % (manifest, field))
        for line, row in enumerate(rows, start=2):
            split = row["split"]
            if split not in out:
                sys.exit("moving_fmnist_captions.py: %s:%d: split '%s' is not train or test" % (manifest, line, split))
            try:
                classes = [int(c) for c in row["classes"].split(",") if c != ""]
            except ValueError:
                sys.exit("moving_fmnist_captions.py: %s:%d: bad classes '%s'" % (manifest, line, row["classes"]))
            if not classes or any(c < 0 or c >= len(CLASSES) for c in classes):
                sys.exit("moving_fmnist_captions.py: %s:%d: classes '%s' outside 0..9" % (manifest, line, row["classes"]))
            rng = random.Random("%d/%s/%d" % (args.seed, split, len(out[split])))
            out[split].append(caption(classes, rng))
    for split, lines in out.items():
        path = os.path.join(args.data, "captions_%s.txt" % split)
        with open(path + ".tmp", "w") as f:
            f.write("".join(l + "\n" for l in lines))
        os.replace(path + ".tmp", path)
        print("moving_fmnist_captions.py: %d captions -> %s" % (len(lines), path))


if __name__ == "__main__":
    main()
