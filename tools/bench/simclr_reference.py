"""SimCLR with the vision.cnn encoder, written in PyTorch Python: the twin of
recipes/vision/simclr_fmnist.toml that tools/bench/bench.py times against
`sslab train` on the same LibTorch build.

The model is the same as sslab's: a 3x3 stem (+ 2x2 max pool with
stem_pool), one stage of ResNet basic blocks per entry of `channels` (each
after the first halving the resolution), mean or 2x2-grid pooling, an MLP
projector (Linear -> BatchNorm -> ReLU ... -> Linear) and NT-Xent over the
other 2N - 2 views, under AdamW. The two views are made the way a PyTorch
user would make them on a batch: one random resized crop per image through
affine_grid + grid_sample, a random flip, brightness/contrast jitter with
probability p, then normalisation; in the training thread, as part of the
step (sslab makes them per sample on its loader threads).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv3x3(cin, cout, stride):
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout, 1), nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class Cnn(nn.Module):
    def __init__(self, channels=(32, 64, 128), blocks=1, stem_pool=False, pool="mean", channels_in=1,
                 channels_last=True):
        super().__init__()
        stem = [conv3x3(channels_in, channels[0], 1), nn.BatchNorm2d(channels[0]), nn.ReLU()]
        if stem_pool:
            stem.append(nn.MaxPool2d(2))
        self.stem = nn.Sequential(*stem)
        layers, cin = [], channels[0]
        for s, c in enumerate(channels):
            for b in range(blocks):
                layers.append(BasicBlock(cin, c, 2 if s > 0 and b == 0 else 1))
                cin = c
        self.stages = nn.Sequential(*layers)
        self.pool = pool
        self.channels_last = channels_last
        self.embed_dim = channels[-1] * (4 if pool == "grid" else 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x):
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        m = self.stages(self.stem(x))
        return F.adaptive_avg_pool2d(m, 2).flatten(1) if self.pool == "grid" else m.mean((2, 3))


def mlp(din, hidden, dout):
    layers = []
    for h in hidden:
        layers += [nn.Linear(din, h), nn.BatchNorm1d(h), nn.ReLU()]
        din = h
    layers.append(nn.Linear(din, dout))
    return nn.Sequential(*layers)


def nt_xent(z1, z2, temperature):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


class Views:
    """Batched SimCLR views of [B, 1, H, W] images in [0, 1]."""

    def __init__(self, size=28, scale=(0.25, 1.0), ratio=(3 / 4, 4 / 3), brightness=0.4, contrast=0.4, p=0.8,
                 mean=0.2860, std=0.3530):
        self.size, self.scale, self.ratio = size, scale, ratio
        self.brightness, self.contrast, self.p = brightness, contrast, p
        self.mean, self.std = mean, std

    def __call__(self, x):
        b, dev = x.shape[0], x.device
        area = torch.empty(b, device=dev).uniform_(*self.scale)
        logr = torch.empty(b, device=dev).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]))
        aspect = logr.exp()
        # Crop width and height as fractions of the image (at most all of it).
        w = (area * aspect).sqrt().clamp(max=1.0)
        h = (area / aspect).sqrt().clamp(max=1.0)
        cx = (torch.rand(b, device=dev) * (1 - w) + w / 2) * 2 - 1
        cy = (torch.rand(b, device=dev) * (1 - h) + h / 2) * 2 - 1
        flip = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0)
        theta = torch.zeros(b, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
        theta[:, 1, 1], theta[:, 1, 2] = h, cy
        grid = F.affine_grid(theta, [b, x.shape[1], self.size, self.size], align_corners=False)
        v = F.grid_sample(x, grid, mode="bilinear", align_corners=False)
        jitter = (torch.rand(b, device=dev) < self.p).float().view(b, 1, 1, 1)
        bf = torch.empty(b, 1, 1, 1, device=dev).uniform_(1 - self.brightness, 1 + self.brightness)
        cf = torch.empty(b, 1, 1, 1, device=dev).uniform_(1 - self.contrast, 1 + self.contrast)
        j = (v * bf).clamp(0, 1)
        mu = j.mean((1, 2, 3), keepdim=True)
        j = ((j - mu) * cf + mu).clamp(0, 1)
        v = jitter * j + (1 - jitter) * v
        return (v - self.mean) / self.std


class SimClr(nn.Module):
    def __init__(self, encoder, hidden=(512,), out_dim=128, temperature=0.5, views=None):
        super().__init__()
        self.encoder = encoder
        self.proj = mlp(encoder.embed_dim, hidden, out_dim)
        self.temperature = temperature
        self.views = views or Views()

    def forward(self, x):
        with torch.no_grad():
            v1, v2 = self.views(x), self.views(x)
        # One forward per view, as sslab's ssl.infonce (batch norm per view).
        return nt_xent(self.proj(self.encoder(v1)), self.proj(self.encoder(v2)), self.temperature)
