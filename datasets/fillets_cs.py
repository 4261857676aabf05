#!/usr/bin/env python3
"""Manifest of the real Czech speech in fillets-ng-data-cs (Fish Fillets NG
voice-over): /usr/share/games/fillets-ng/sound/<level>/cs/<level>-<speaker>-<id>.ogg,
Ogg Vorbis 22,050 Hz mono. The speaker label is the second dash-separated
field of the file name ("m" small fish, "v" big fish, ...); speakers with
fewer than --min-clips clips are left out. No split column: audio.manifest
holds out a seeded, speaker-stratified share (recipe keys test_fraction,
split_seed).

  datasets/fillets_cs.py [--out data/fillets_cs] [--min-clips 20]

Writes OUT/manifest.tsv (path, speaker, level) pointing at the installed
files (apt-get install fillets-ng-data-cs).
"""
import argparse
import collections
import glob
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                                                   "fillets_cs"))
    ap.add_argument("--root", default="/usr/share/games/fillets-ng/sound")
    ap.add_argument("--min-clips", type=int, default=20)
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.root, "*", "cs", "*.ogg")))
    if not files:
        sys.exit("fillets_cs.py: no clips under %s/*/cs (apt-get install fillets-ng-data-cs)" % args.root)
    rows = []
    for path in files:
        parts = os.path.splitext(os.path.basename(path))[0].split("-")
        if len(parts) < 3 or not parts[1]:
            continue  # no speaker field (e.g. help20.ogg)
        level = os.path.basename(os.path.dirname(os.path.dirname(path)))
        rows.append((path, parts[1], level))
    counts = collections.Counter(r[1] for r in rows)
    keep = {s for s, n in counts.items() if n >= args.min_clips}
    rows = [r for r in rows if r[1] in keep]
    os.makedirs(args.out, exist_ok=True)
    manifest = os.path.join(args.out, "manifest.tsv")
    with open(manifest + ".tmp", "w") as f:
        f.write("path\tspeaker\tlevel\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    os.replace(manifest + ".tmp", manifest)
    print("fillets_cs: %d clips of %d speakers (%s) -> %s" %
          (len(rows), len(keep), ", ".join("%s %d" % (s, counts[s]) for s in sorted(keep, key=lambda s: -counts[s])),
           manifest))


if __name__ == "__main__":
    main()
