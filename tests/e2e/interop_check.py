#!/usr/bin/python3
"""The Python side of tests/e2e/interop_test.cpp, run with Debian's
python3-torch and numpy only (no sslab):

  interop_check.py encoders RUN_DIR...   rebuild each run's encoder from its
      export (RUN/export: safetensors, RUN/export_pt: torch format) with
      tools/python/sslab_encoders, feed it the inputs `sslab embed
      --with-inputs` stored (RUN/emb.safetensors) and compare with sslab's
      embeddings; also read every safetensors file with an independent
      parser and check the two formats hold the same tensors.
  interop_check.py knn TRAIN.npy TEST.npy K ACCURACY   a reference kNN
      (cosine similarity, k neighbours, majority vote, ties to the larger
      summed similarity) on `sslab embed` output must give sslab's figure.
"""

import json
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "python"))

TOLERANCE = 1e-5


def independent_safetensors_check(path):
    """Parses a safetensors file from the published format description alone
    (not with sslab_encoders.safetensors): header length, JSON, dtype sizes,
    offsets in bounds and contiguous."""
    sizes = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    assert 8 + n <= len(data), f"{path}: header length {n} past the end"
    assert n % 8 == 0, f"{path}: header length {n} not padded to 8"
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    spans = []
    for name, e in header.items():
        count = 1
        for d in e["shape"]:
            count *= d
        begin, end = e["data_offsets"]
        assert end - begin == count * sizes[e["dtype"]], f"{path}: {name}: offsets do not match shape x dtype"
        spans.append((begin, end))
    spans.sort()
    at = 0
    for begin, end in spans:
        assert begin == at, f"{path}: offsets not contiguous at {begin}"
        at = end
    assert at == len(data) - 8 - n, f"{path}: the data has {len(data) - 8 - n} bytes, the tensors {at}"
    return len(header)


def check_encoders(runs):
    import torch
    import sslab_encoders
    from sslab_encoders import safetensors
    worst = 0.0
    for run in runs:
        export, export_pt = os.path.join(run, "export"), os.path.join(run, "export_pt")
        index = sslab_encoders.read_export(export)
        for component, entry in index["components"].items():
            n = independent_safetensors_check(os.path.join(export, entry["file"]))
            a = sslab_encoders.load_weights(export, component)
            b = sslab_encoders.load_weights(export_pt, component)
            assert n == len(a) == len(b) and set(a) == set(b), f"{run}: {component}: the formats hold different tensors"
            for k in a:
                assert torch.equal(a[k], b[k]), f"{run}: {component}: {k} differs between the formats"
        emb, meta = safetensors.load(os.path.join(run, "emb.safetensors"))
        name = meta["sslab.encoder"]
        batch = {k[len("inputs."):]: v for k, v in emb.items() if k.startswith("inputs.")}
        want = emb["embeddings"]
        for folder in (export, export_pt):
            encoder = sslab_encoders.load(folder, name)
            with torch.no_grad():
                got = encoder.embed(batch)
            assert got.shape == want.shape, f"{run}: shape {tuple(got.shape)} vs sslab's {tuple(want.shape)}"
            err = ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()
            worst = max(worst, err)
            print(f"{index['components']['encoders.' + name]['type']:18s} {os.path.basename(folder):10s} "
                  f"{tuple(want.shape)} max relative error {err:.2e}")
            assert err <= TOLERANCE, f"{run}: {name}: relative error {err:.3g} above {TOLERANCE}"
    print(f"all encoders match sslab (worst relative error {worst:.2e})")


def check_knn(train_file, test_file, k, accuracy):
    import numpy as np
    stem = lambda f: f[:-len(".npy")]
    xtr, xte = np.load(train_file).astype(np.float64), np.load(test_file).astype(np.float64)
    ytr, yte = np.load(stem(train_file) + ".label.npy"), np.load(stem(test_file) + ".label.npy")
    assert np.array_equal(np.load(stem(test_file) + ".index.npy"), np.arange(len(xte)))
    xtr /= np.maximum(np.linalg.norm(xtr, axis=1, keepdims=True), 1e-12)
    xte /= np.maximum(np.linalg.norm(xte, axis=1, keepdims=True), 1e-12)
    k = min(k, len(xtr))
    classes = int(max(ytr.max(), yte.max())) + 1
    sim = xte @ xtr.T
    correct = 0
    for i in range(len(xte)):
        nn = np.argsort(-sim[i], kind="stable")[:k]
        votes = np.bincount(ytr[nn], minlength=classes).astype(np.float64)
        votes += np.bincount(ytr[nn], weights=sim[i, nn], minlength=classes) / (k + 1.0)
        correct += int(np.argmax(votes) == yte[i])
    ours = correct / len(xte)
    print(f"reference kNN (k={k}) on {len(xtr)} + {len(xte)} embeddings: {ours:.6f}; sslab eval: {accuracy:.6f}")
    # A neighbour tied at the k-th place may be ordered differently: at most one sample.
    assert abs(ours - accuracy) <= 1.0 / len(xte) + 1e-9, "the kNN figures differ"


if __name__ == "__main__":
    if sys.argv[1] == "encoders":
        check_encoders(sys.argv[2:])
    elif sys.argv[1] == "knn":
        check_knn(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        sys.exit(f"unknown check {sys.argv[1]!r}")
