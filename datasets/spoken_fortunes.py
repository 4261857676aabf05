#!/usr/bin/env python3
"""Spoken sentences and their text, for audio <-> text (CLIP-style) training:
short English sentences cut from the `fortune` databases (fortunes-min /
fortune-mod), each spoken by espeak-ng with a seeded voice, speed and pitch.

  datasets/spoken_fortunes.py [--out data/spoken_fortunes] [--train 4000] [--test 1000]
                              [--voices 8] [--jobs 2] [--seed 0]

Writes, with pairs in the same order in the audio manifest and the text files
(the recipe pairs them by index with ssl.paired):
  OUT/wav/<split>/<n>.wav   16-bit mono 22,050 Hz (espeak-ng's rate)
  OUT/audio.tsv             path, speaker, split (train rows, then test rows)
  OUT/train.txt, test.txt   one sentence per line
Sentences: 5 to 12 words of plain ASCII, split at . ! ?, attribution lines
("-- Author") dropped, duplicates (ignoring case and punctuation) removed; a
seeded shuffle picks the train and test sentences, so no sentence is in both.
Deterministic for a seed. The default set (5,000 clips) takes about 3 minutes
with 2 processes. Needs espeak-ng and fortunes (apt-get install espeak-ng
fortunes-min; tools/setup.sh installs both).
"""
import argparse
import concurrent.futures
import os
import random
import re
import shutil
import subprocess
import sys

FORTUNE_DIR = "/usr/share/games/fortunes"
# English databases only (fortune-mod ships Italian, German, Spanish ones too).
ENGLISH = ["adams", "art", "computers", "cookie", "definitions", "drugs", "education", "ethnic", "food", "fortunes",
           "humorists", "kids", "law", "linux", "linuxcookie", "literature", "love", "magic", "medicine",
           "men-women", "miscellaneous", "news", "people", "pets", "platitudes", "politics", "riddles", "science",
           "songs-poems", "sports", "startrek", "wisdom", "work", "zippy"]
VOICES = ["en-us+m1", "en-us+f2", "en-gb+m3", "en-gb+f4", "en-gb-x-rp+m2", "en-us+m4", "en-029+f1", "en-gb-scotland+m5",
          "en-us-nyc+f3", "en-gb-x-gbclan+m6"]
PLAIN = re.compile(r"^[A-Za-z][A-Za-z ,'\-]*[.!?]$")


def entries(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    for entry in text.split("\n%\n"):
        lines = [l.strip() for l in entry.splitlines()]
        lines = [l for l in lines if l and not l.startswith("--") and not l.startswith("%")]
        yield " ".join(lines)


def sentences(files):
    seen = set()
    for path in files:
        for entry in entries(path):
            for s in re.split(r"(?<=[.!?])\s+", entry):
                s = re.sub(r"\s+", " ", s).strip()
                words = s.split()
                if not (5 <= len(words) <= 12) or not PLAIN.match(s) or "  " in s:
                    continue
                key = re.sub(r"[^a-z ]", "", s.lower())
                if key in seen:
                    continue
                seen.add(key)
                yield s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                                                   "spoken_fortunes"))
    ap.add_argument("--train", type=int, default=4000, help="training pairs")
    ap.add_argument("--test", type=int, default=1000, help="held-out pairs")
    ap.add_argument("--voices", type=int, default=8, help="espeak-ng voices (at most %d)" % len(VOICES))
    ap.add_argument("--jobs", type=int, default=2, help="espeak-ng processes in parallel")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    espeak = shutil.which("espeak-ng")
    if not espeak:
        sys.exit("spoken_fortunes.py: espeak-ng is not installed (apt-get install espeak-ng)")
    files = [os.path.join(FORTUNE_DIR, n) for n in ENGLISH if os.path.isfile(os.path.join(FORTUNE_DIR, n))]
    if not files:
        sys.exit("spoken_fortunes.py: no fortune files in %s (apt-get install fortunes-min)" % FORTUNE_DIR)
    if not 1 <= args.voices <= len(VOICES):
        sys.exit("spoken_fortunes.py: --voices must be 1..%d" % len(VOICES))
    pool = sorted(sentences(files))
    need = args.train + args.test
    if len(pool) < need:
        sys.exit("spoken_fortunes.py: only %d usable sentences in %d fortune files, %d asked for (--train + --test)"
                 % (len(pool), len(files), need))
    rng = random.Random(args.seed)
    rng.shuffle(pool)
    chosen = {"train": pool[: args.train], "test": pool[args.train: need]}
    voices = VOICES[: args.voices]
    jobs, rows = [], []
    for split in ("train", "test"):
        for n, text in enumerate(chosen[split]):
            voice = rng.choice(voices)
            speed, pitch = rng.randint(150, 185), rng.randint(35, 65)
            rel = os.path.join("wav", split, "%05d.wav" % n)
            jobs.append((os.path.join(args.out, rel), voice, speed, pitch, text))
            rows.append((rel, voice, split))
    os.makedirs(args.out, exist_ok=True)

    def speak(job):
        path, voice, speed, pitch, text = job
        if os.path.exists(path) and os.path.getsize(path) > 44:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        subprocess.run([espeak, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", tmp, "--", text], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.replace(tmp, path)

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        list(ex.map(speak, jobs))

    def write(name, lines):
        path = os.path.join(args.out, name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(l + "\n" for l in lines)
        os.replace(path + ".tmp", path)

    for split in ("train", "test"):
        write(split + ".txt", chosen[split])
    write("audio.tsv", ["path\tspeaker\tsplit"] + ["\t".join(r) for r in rows])
    print("spoken_fortunes: %d train + %d test pairs from %d usable sentences, %d voices -> %s" %
          (args.train, args.test, len(pool), len(voices), os.path.abspath(args.out)))


if __name__ == "__main__":
    main()
