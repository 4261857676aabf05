"""A small, strict reader and writer of the safetensors format, in plain Python
(the `safetensors` package is not needed).

Format: an 8-byte little-endian header length N, N bytes of JSON
({"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
"__metadata__": {...}}), then the tensors' bytes.
"""

import json
import struct

import torch

DTYPES = {
    "F64": (torch.float64, 8), "F32": (torch.float32, 4), "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2), "I64": (torch.int64, 8), "I32": (torch.int32, 4),
    "I16": (torch.int16, 2), "I8": (torch.int8, 1), "U8": (torch.uint8, 1), "BOOL": (torch.bool, 1),
}
NAMES = {t: (name, size) for name, (t, size) in DTYPES.items()}
MAX_HEADER = 100_000_000


class SafetensorsError(ValueError):
    pass


def parse_header(data, name="<bytes>"):
    """(header dict, metadata dict, byte offset of the data) after checking
    the header length, every entry and that the entries tile the data."""
    if len(data) < 8:
        raise SafetensorsError(f"{name}: {len(data)} bytes, fewer than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER or n > len(data) - 8:
        raise SafetensorsError(f"{name}: header length {n} does not fit the file ({len(data)} bytes)")
    header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    if not isinstance(header, dict):
        raise SafetensorsError(f"{name}: the header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    buffer = len(data) - 8 - n
    spans = []
    for key, entry in header.items():
        if entry.get("dtype") not in DTYPES:
            raise SafetensorsError(f"{name}: tensor {key!r} has an unknown dtype {entry.get('dtype')!r}")
        shape = entry.get("shape")
        begin, end = entry.get("data_offsets", (None, None))
        if not isinstance(shape, list) or any(not isinstance(d, int) or d < 0 for d in shape):
            raise SafetensorsError(f"{name}: tensor {key!r} has a bad shape {shape!r}")
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= buffer):
            raise SafetensorsError(f"{name}: tensor {key!r} has offsets {begin}, {end} outside the data ({buffer} bytes)")
        count = 1
        for d in shape:
            count *= d
        if count * DTYPES[entry["dtype"]][1] != end - begin:
            raise SafetensorsError(f"{name}: tensor {key!r}: shape {shape} of {entry['dtype']} does not fill {end - begin} bytes")
        spans.append((begin, end, key))
    at = 0
    for begin, end, key in sorted(spans):
        if begin != at:
            raise SafetensorsError(f"{name}: tensor {key!r} starts at {begin}, not at {at} (a hole or an overlap)")
        at = end
    if at != buffer:
        raise SafetensorsError(f"{name}: the tensors cover {at} of the {buffer} data bytes")
    return header, metadata, 8 + n


def load(path):
    """{name: tensor} and the metadata of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    header, metadata, start = parse_header(data, path)
    tensors = {}
    for key, entry in header.items():
        dtype, _ = DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        raw = bytearray(data[start + begin:start + end])
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[key] = t.reshape(entry["shape"]).clone()
    return tensors, metadata


def save(path, tensors, metadata=None):
    """Writes {name: tensor} (CPU, any layout) as a safetensors file."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for key, t in tensors.items():
        t = t.detach().cpu().contiguous()
        name, _ = NAMES[t.dtype]
        blob = t.flatten().view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[key] = {"dtype": name, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
