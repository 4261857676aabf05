#!/usr/bin/env python3
"""Synthetic spoken words with espeak-ng: a fixed vocabulary spoken by many
voices (English accents x voice variants). Labels: word, speaker (= accent +
variant), accent. Each (speaker, word) pair is spoken in several renditions
(seeded speed and pitch); the first ones are training utterances, the rest
test utterances, so train and test share speakers and words but no utterance.

  datasets/spoken_words.py [--out data/spoken_words] [--jobs 2] [--seed 0]

Writes OUT/wav/<speaker>/<word>-<n>.wav (16-bit mono 22,050 Hz) and
OUT/manifest.tsv (path, speaker, word, accent, split) for audio.manifest.
Deterministic: espeak-ng is, and the renditions come from --seed. The default
set (40 speakers x 10 words x 6 renditions = 2,400 clips) takes about a
minute with 2 processes. Needs only espeak-ng (apt-get install espeak-ng).
"""
import argparse
import concurrent.futures
import os
import random
import shutil
import subprocess
import sys

ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
           "en-us-nyc"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
            "croak", "whisper", "Andy", "Annie", "Denis", "Gene", "Michael", "Mike", "aunty", "boris", "david",
            "edward", "grandpa", "john", "linda", "max", "norbert", "paul", "quincy", "rob", "steph", "travis"]
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                                                   "spoken_words"))
    ap.add_argument("--accents", type=int, default=8, help="English accents (at most %d)" % len(ACCENTS))
    ap.add_argument("--variants", type=int, default=5, help="voice variants per accent (seeded choice)")
    ap.add_argument("--words", type=int, default=10, help="vocabulary size (at most %d)" % len(WORDS))
    ap.add_argument("--renditions", type=int, default=6, help="utterances per (speaker, word)")
    ap.add_argument("--test-renditions", type=int, default=2, help="of which held out for test")
    ap.add_argument("--jobs", type=int, default=2, help="espeak-ng processes in parallel")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    espeak = shutil.which("espeak-ng")
    if not espeak:
        sys.exit("spoken_words.py: espeak-ng is not installed (apt-get install espeak-ng)")
    if not (0 < args.test_renditions < args.renditions):
        sys.exit("spoken_words.py: need 0 < --test-renditions < --renditions")
    voices_dir = "/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v"
    variants = [v for v in VARIANTS if not os.path.isdir(voices_dir) or os.path.exists(os.path.join(voices_dir, v))]
    rng = random.Random(args.seed)
    accents = ACCENTS[: args.accents]
    words = WORDS[: args.words]
    jobs = []  # (path, voice, speed, pitch, word)
    rows = []
    for accent in accents:
        for variant in rng.sample(variants, args.variants):
            speaker = "%s+%s" % (accent, variant)
            for word in words:
                for n in range(args.renditions):
                    speed = rng.randint(140, 190)
                    pitch = rng.randint(35, 65)
                    rel = os.path.join("wav", speaker, "%s-%d.wav" % (word, n))
                    split = "test" if n >= args.renditions - args.test_renditions else "train"
                    jobs.append((os.path.join(args.out, rel), speaker, speed, pitch, word))
                    rows.append((rel, speaker, word, accent, split))
    os.makedirs(args.out, exist_ok=True)

    def speak(job):
        path, voice, speed, pitch, word = job
        if os.path.exists(path) and os.path.getsize(path) > 44:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        subprocess.run([espeak, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", tmp, word], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.replace(tmp, path)

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(speak, jobs))
    manifest = os.path.join(args.out, "manifest.tsv")
    with open(manifest + ".tmp", "w") as f:
        f.write("path\tspeaker\tword\taccent\tsplit\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    os.replace(manifest + ".tmp", manifest)
    n_test = sum(1 for r in rows if r[4] == "test")
    print("spoken_words: %d clips (%d train, %d test), %d speakers, %d words -> %s" %
          (len(rows), len(rows) - n_test, n_test, len(accents) * args.variants, len(words), manifest))


if __name__ == "__main__":
    main()
