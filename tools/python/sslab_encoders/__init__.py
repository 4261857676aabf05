"""Encoders trained by sslab, in plain PyTorch: no sslab needed at run time.

    import sys; sys.path.insert(0, "tools/python")     # or copy the folder anywhere
    import sslab_encoders
    encoder = sslab_encoders.load("runs/my-run/export", "image")   # after `sslab export runs/my-run`
    z = encoder(images)                                             # [B, embed_dim], as sslab embeds them

`load` reads sslab_export.json, rebuilds the encoder from its resolved
settings (vision.vit, vision.cnn, text.transformer, audio.cpc_encoder) and
loads the weights (safetensors or torch format) with strict=True. The module
is in eval mode; `encoder.embed(batch)` takes a dict of sslab batch tensors
(the input key, "<input>.mask", "<input>.length").
"""

import json
import os

import torch

from . import models, safetensors

__all__ = ["load", "load_weights", "read_export", "models", "safetensors", "SUPPORTED"]

SUPPORTED = ("vision.vit", "vision.cnn", "text.transformer", "audio.cpc_encoder")


def read_export(folder):
    """The parsed sslab_export.json of an `sslab export` folder."""
    path = os.path.join(folder, "sslab_export.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{folder}: no sslab_export.json (run `sslab export RUN --out {folder}` first)")
    with open(path) as f:
        index = json.load(f)
    if index.get("format") != "sslab-export":
        raise ValueError(f"{path}: not an sslab export (format {index.get('format')!r})")
    if index.get("format_version", 0) > 1:
        raise ValueError(f"{path}: export format {index['format_version']} is newer than this loader (1)")
    return index


def load_weights(folder, component):
    """{name: tensor} of a component ("encoders.<name>" or "heads.<name>")."""
    entry = read_export(folder)["components"][component]
    path = os.path.join(folder, entry["file"])
    if path.endswith(".safetensors"):
        return safetensors.load(path)[0]
    return torch.load(path, map_location="cpu")


def build(entry, weights):
    """An untrained module for one component entry of sslab_export.json."""
    s, kind = entry["settings"], entry["type"]
    if kind == "vision.vit":
        return models.Vit(s)
    if kind == "vision.cnn":
        return models.Cnn(s)
    if kind == "text.transformer":
        return models.TextTransformer(s, weights["token_embed.weight"].shape[0])
    if kind == "audio.cpc_encoder":
        return models.CpcEncoder(s)
    raise NotImplementedError(f"no Python twin for {kind!r} (supported: {', '.join(SUPPORTED)}); "
                              "the weights are still readable with load_weights()")


class _Batch:
    """Feeds an sslab batch dict to a twin the way the C++ encoder reads it."""

    def __init__(self, module, kind, key):
        self.module, self.kind, self.key = module, kind, key

    def __call__(self, batch):
        x = batch[self.key]
        if self.kind == "text.transformer":
            return self.module(x, batch.get(self.key + ".mask"))
        if self.kind == "audio.cpc_encoder":
            return self.module(x, batch.get(self.key + ".length"))
        return self.module(x)


def load(folder, name):
    """The encoder `name` of an `sslab export` folder, weights loaded, in eval mode."""
    index = read_export(folder)
    component = name if name.startswith(("encoders.", "heads.")) else "encoders." + name
    if component not in index["components"]:
        raise KeyError(f"{folder}: no {component} (it has: {', '.join(index['components'])})")
    entry = index["components"][component]
    weights = load_weights(folder, component)
    module = build(entry, weights)
    module.load_state_dict(weights, strict=True)
    module.eval()
    module.sslab = entry
    module.embed = _Batch(module, entry["type"], entry.get("input", ""))
    return module
