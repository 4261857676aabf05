"""Plain-PyTorch twins of sslab's first-party encoders. Each takes the settings
that `sslab export` writes (sslab_export.json, "settings") and has the same
state-dict names as the C++ module, so the exported weights load with
strict=True and the forward pass gives the embeddings sslab computes."""

import math

import torch
import torch.nn.functional as F
from torch import nn


# ---------------------------------------------------------------- shared blocks (sslab/nn/transformer.h)

class Attention(nn.Module):
    def __init__(self, dim, heads, qkv_bias=True):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, key_padding_mask=None):
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).view(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q * (1.0 / math.sqrt(d // h)), k.transpose(-2, -1))
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask.bool().reshape(b, 1, 1, t), -1.0e30)
        out = torch.matmul(torch.softmax(scores, -1), v)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0, eps=1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = FeedForward(dim, int(round(dim * mlp_ratio)))

    def forward(self, x, key_padding_mask=None):
        x = x + self.attn(self.norm1(x), key_padding_mask)
        return x + self.mlp(self.norm2(x))


def sincos_2d(dim, grid, cls_token):
    """MAE's fixed 2-D sin-cos table [grid*grid (+1), dim] (sslab/nn/embedding.h)."""
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1, 1).double() * omega.reshape(1, -1)
        return torch.cat([torch.sin(out), torch.cos(out)], 1)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    table = torch.cat([one_d(dim // 2, xs), one_d(dim // 2, ys)], 1).float()
    if cls_token:
        table = torch.cat([torch.zeros(1, dim), table], 0)
    return table


# ---------------------------------------------------------------- vision.vit

class Vit(nn.Module):
    """images [B, C, H, W] -> [B, dim] (pool "mean"/"cls") or [B, 4 dim] ("grid")."""

    def __init__(self, s):
        super().__init__()
        self.pool = s.get("pool", "mean")
        self.dim, self.patch = s["dim"], s["patch_size"]
        self.grid = s["image_size"] // s["patch_size"]
        cls = bool(s.get("cls_token", False)) or self.pool == "cls"
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(s["channels"], s["dim"], s["patch_size"], stride=s["patch_size"])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, s["dim"])) if cls else None
        self.register_buffer("pos_embed", sincos_2d(s["dim"], self.grid, cls).unsqueeze(0))
        self.blocks = nn.ModuleList(Block(s["dim"], s["heads"], s.get("mlp_ratio", 4.0)) for _ in range(s["depth"]))
        self.norm = nn.LayerNorm(s["dim"], eps=1e-6)

    def forward_tokens(self, images):
        x = self.patch_embed.proj(images.float()).flatten(2).transpose(1, 2)
        n = x.shape[1]
        if self.cls_token is not None:
            x = x + self.pos_embed[:, 1:1 + n]
            cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], 1, self.dim)
            x = torch.cat([cls, x], 1)
        else:
            x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, images):
        tokens = self.forward_tokens(images)
        if self.pool == "cls":
            return tokens[:, 0]
        patches = tokens[:, 1:] if self.cls_token is not None else tokens
        if self.pool == "grid":
            b, _, d = patches.shape
            grid = patches.transpose(1, 2).reshape(b, d, self.grid, self.grid)
            return F.adaptive_avg_pool2d(grid, (2, 2)).reshape(b, d * 4)
        return patches.mean(1)


# ---------------------------------------------------------------- vision.cnn

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class Cnn(nn.Module):
    """images [B, C, H, W] in [0, 1] -> [B, channels[-1]] (pool "mean") or 4x that ("grid")."""

    def __init__(self, s):
        super().__init__()
        ch = s["channels"]
        self.pool, self.size = s.get("pool", "mean"), s.get("input_size", 0)
        mean, std = s.get("input_mean", []), s.get("input_std", [])
        self.mean = torch.tensor(mean, dtype=torch.float64).float().view(1, -1, 1, 1) if mean else None
        self.std = torch.tensor(std, dtype=torch.float64).float().view(1, -1, 1, 1) if std else None
        stem = [nn.Conv2d(s.get("channels_in", 1), ch[0], 3, 1, 1, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU()]
        if s.get("stem_pool", False):
            stem.append(nn.MaxPool2d(2, 2))
        self.stem = nn.Sequential(*stem)
        stages, cin = [], ch[0]
        for i, c in enumerate(ch):
            for b in range(s.get("blocks", 1)):
                stages.append(BasicBlock(cin, c, 2 if i > 0 and b == 0 else 1))
                cin = c
        self.stages = nn.Sequential(*stages)

    def forward(self, images):
        x = images.float()
        if self.size > 0 and (x.shape[2] != self.size or x.shape[3] != self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        m = self.stages(self.stem(x))
        if self.pool == "grid":
            return F.adaptive_avg_pool2d(m, (2, 2)).flatten(1)
        return m.mean((2, 3))


# ---------------------------------------------------------------- text.transformer

class TextTransformer(nn.Module):
    """ids [B, T] int64 and mask [B, T] (true: a real token; None: all real) -> [B, dim]."""

    def __init__(self, s, vocab_size):
        super().__init__()
        self.pool = s.get("pool", "mean")
        self.token_embed = nn.Embedding(vocab_size, s["dim"])
        self.pos_embed = nn.Module()
        self.pos_embed.weight = nn.Parameter(torch.zeros(s["max_length"], s["dim"]))
        self.blocks = nn.ModuleList(Block(s["dim"], s["heads"], s.get("mlp_ratio", 4.0)) for _ in range(s["depth"]))
        self.norm = nn.LayerNorm(s["dim"], eps=1e-6)

    def forward(self, ids, mask=None):
        pad = None if mask is None else ~mask.bool()
        x = self.token_embed(ids.long()) + self.pos_embed.weight[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, pad)
        x = self.norm(x)
        if self.pool == "cls":
            return x[:, 0]
        if pad is None:
            return x.mean(1)
        keep = (~pad).to(x.dtype).unsqueeze(-1)
        return (x * keep).sum(1) / keep.sum(1).clamp_min(1.0)


# ---------------------------------------------------------------- audio.cpc_encoder

def mel_filterbank(n_fft, n_mels, sample_rate, f_min, f_max):
    """HTK triangular filters [n_fft/2+1, n_mels] (modalities/audio/transforms.cpp)."""
    def hz_to_mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)
    bins = n_fft // 2 + 1
    freqs = torch.linspace(0, sample_rate / 2.0, bins, dtype=torch.float64)
    mels = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
    pts = 700.0 * (torch.pow(10.0, mels / 2595.0) - 1.0)
    diff = pts[1:] - pts[:-1]
    slopes = pts.unsqueeze(0) - freqs.unsqueeze(1)
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    return torch.clamp_min(torch.minimum(down, up), 0.0).float()


class CpcEncoder(nn.Module):
    """wave [B, S] and lengths [B] (None: all real) -> [B, D] (pool context, latent or both)."""

    def __init__(self, s):
        super().__init__()
        self.s = s
        self.wave = s.get("features", "wave") == "wave"
        self.hop = 1
        for st in s["strides"]:
            self.hop *= st
        layers = len(s["kernels"]) if self.wave else 3
        cin = 1 if self.wave else s["n_mels"]
        for i in range(layers):
            conv = (nn.Conv1d(cin, s["channels"], s["kernels"][i], s["strides"][i], s["paddings"][i]) if self.wave
                    else nn.Conv1d(cin, s["channels"], 1))
            setattr(self, f"conv{i}", conv)
            setattr(self, f"norm{i}", nn.LayerNorm(s["channels"]))
            cin = s["channels"]
        self.layers = layers
        if not self.wave:
            self.n_fft = max(400, self.hop * 2)
            self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
            self.register_buffer("filters", mel_filterbank(self.n_fft, s["n_mels"], 16000, 0.0, 8000.0), persistent=False)
        if s.get("context", "gru") == "gru":
            self.gru = nn.GRU(s["channels"], s["context_dim"], s.get("context_layers", 1), batch_first=True)
        else:
            self.context_in = nn.Linear(s["channels"], s["context_dim"])
            layer = nn.TransformerEncoderLayer(s["context_dim"], s["heads"], 2 * s["context_dim"], dropout=0.0)
            self.transformer = nn.TransformerEncoder(layer, s.get("context_layers", 1), enable_nested_tensor=False)

    def output_length(self, n):
        if not self.wave:
            return 0 if n <= 0 else 1 + n // self.hop
        for k, st, p in zip(self.s["kernels"], self.s["strides"], self.s["paddings"]):
            if n + 2 * p < k:
                return 0
            n = (n + 2 * p - k) // st + 1
        return n

    def logmel(self, x):
        need = self.n_fft // 2 + 1
        frames = 1 + x.shape[-1] // self.hop
        if x.shape[-1] < need:
            x = F.pad(x, (0, need - x.shape[-1]))
        spec = torch.stft(x, self.n_fft, self.hop, self.n_fft, self.window, center=True, pad_mode="reflect",
                          normalized=False, onesided=True, return_complex=True)
        power = torch.real(spec * torch.conj(spec))
        mel = torch.matmul(power.transpose(-1, -2), self.filters)
        return torch.log(mel[..., :frames, :] + 1e-6)

    def context(self, z):
        if hasattr(self, "gru"):
            return self.gru(z)[0]
        t, d = z.shape[1], self.s["context_dim"]
        pos = torch.arange(t, dtype=torch.float32).unsqueeze(1)
        freq = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)
        pe = torch.zeros(t, d)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
        h = self.context_in(z) + pe.unsqueeze(0)
        mask = torch.full((t, t), float("-inf")).triu(1)
        return self.transformer(h.transpose(0, 1), mask).transpose(0, 1)

    def forward(self, wave, lengths=None):
        b, s = wave.shape
        length = torch.full((b,), s, dtype=torch.int64) if lengths is None else lengths.long().cpu()
        x = wave.float()
        real = torch.arange(s).unsqueeze(0) < length.unsqueeze(1)
        if self.s.get("normalize_wave", True):
            m = real.float()
            count = m.sum(1, keepdim=True).clamp_min(1.0)
            mean = (x * m).sum(1, keepdim=True) / count
            var = ((x - mean).pow(2) * m).sum(1, keepdim=True) / count
            x = (x - mean) / torch.sqrt(var + 1e-8)
        x = x * real.to(x.dtype)
        layer_len = length.clone()
        if self.wave:
            x = x.unsqueeze(1)
        else:
            x = self.logmel(x).transpose(1, 2)
            layer_len = torch.where(length > 0, 1 + torch.div(length, self.hop, rounding_mode="floor"),
                                    torch.zeros_like(length)).clamp_max(x.shape[2])
        for i in range(self.layers):
            x = getattr(self, f"conv{i}")(x)
            x = torch.relu(getattr(self, f"norm{i}")(x.transpose(1, 2))).transpose(1, 2)
            if self.wave:
                k, st, p = self.s["kernels"][i], self.s["strides"][i], self.s["paddings"][i]
                layer_len = torch.where(layer_len + 2 * p < k, torch.zeros_like(layer_len),
                                        torch.div(layer_len + 2 * p - k, st, rounding_mode="floor") + 1)
            keep = torch.arange(x.shape[2]).unsqueeze(0) < layer_len.unsqueeze(1)
            x = x * keep.unsqueeze(1).to(x.dtype)
        z = x.transpose(1, 2).contiguous()
        t = z.shape[1]
        frames = torch.tensor([min(t, self.output_length(int(n))) for n in length], dtype=torch.int64)
        c = self.context(z)
        keep = (torch.arange(t).unsqueeze(0) < frames.unsqueeze(1)).to(z.dtype).unsqueeze(-1)

        def mean(v):
            return (v * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        pool = self.s.get("pool", "context")
        if pool == "latent":
            return mean(z)
        if pool == "both":
            return torch.cat([mean(z), mean(c)], 1)
        return mean(c)
