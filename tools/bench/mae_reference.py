"""The MAE model and training step of sslab's vision plugin, written in PyTorch
Python, for the benchmark (tools/bench/bench.py). Same architecture, same
shapes, same optimizer: patch embedding as a linear map of flattened patches,
fixed 2-D sin-cos positions, pre-norm blocks (LayerNorm eps 1e-6, qkv with
bias, GELU MLP), a light decoder with a mask token, norm-pix MSE on masked
patches, AdamW with decoupled weight decay on matrices only."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def sincos_2d(dim, grid):
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1, 1).double() * omega.reshape(1, -1)
        return torch.cat([out.sin(), out.cos()], 1)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return torch.cat([one_d(dim // 2, xs), one_d(dim // 2, ys)], 1).float()


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        H = self.heads
        q, k, v = self.qkv(x).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        attn = torch.softmax((q * (D // H) ** -0.5) @ k.transpose(-2, -1), -1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        hidden = int(round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Stack(nn.Module):
    def __init__(self, dim, depth, heads, mlp_ratio):
        super().__init__()
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.norm(x)


def patchify(images, p):
    B, C, H, W = images.shape
    h, w = H // p, W // p
    return images.reshape(B, C, h, p, w, p).permute(0, 2, 4, 3, 5, 1).reshape(B, h * w, p * p * C)


class Mae(nn.Module):
    def __init__(self, image_size=28, patch_size=4, channels=1, dim=192, depth=6, heads=3, mlp_ratio=4.0,
                 mask_ratio=0.75, decoder_dim=128, decoder_depth=2, decoder_heads=4, decoder_mlp_ratio=4.0,
                 norm_pix_loss=True):
        super().__init__()
        self.p, self.c, self.dim, self.dd = patch_size, channels, dim, decoder_dim
        grid = image_size // patch_size
        self.n = grid * grid
        self.keep = int(round(self.n * (1 - mask_ratio)))
        self.norm_pix = norm_pix_loss
        self.patch_embed = nn.Linear(channels * patch_size * patch_size, dim)
        self.register_buffer("pos", sincos_2d(dim, grid).unsqueeze(0))
        self.encoder = Stack(dim, depth, heads, mlp_ratio)
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim).normal_(0, 0.02))
        self.register_buffer("decoder_pos", sincos_2d(decoder_dim, grid).unsqueeze(0))
        self.decoder = Stack(decoder_dim, decoder_depth, decoder_heads, decoder_mlp_ratio)
        self.decoder_pred = nn.Linear(decoder_dim, patch_size * patch_size * channels)

    def forward(self, images):
        B = images.shape[0]
        g = int(math.isqrt(self.n))
        p, C = self.p, self.c
        # Patches in the convolution's (C, p, q) order, as the C++ patch embedding.
        flat = images.reshape(B, C, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(B, self.n, C * p * p)
        x = self.patch_embed(flat) + self.pos
        noise = torch.rand(B, self.n, device=images.device)
        ids_shuffle = torch.argsort(noise, 1)
        ids_restore = torch.argsort(ids_shuffle, 1)
        ids_keep = ids_shuffle[:, : self.keep]
        x = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, self.dim))
        latent = self.encoder(x)
        y = self.decoder_embed(latent)
        y = torch.cat([y, self.mask_token.expand(B, self.n - self.keep, self.dd)], 1)
        y = torch.gather(y, 1, ids_restore.unsqueeze(-1).expand(-1, -1, self.dd))
        pred = self.decoder_pred(self.decoder(y + self.decoder_pos))
        target = patchify(images, p)
        if self.norm_pix:
            mean = target.mean(-1, keepdim=True)
            var = target.var(-1, keepdim=True)
            target = (target - mean) / (var + 1e-6) ** 0.5
        mask = (ids_restore >= self.keep).float()
        return (((pred - target) ** 2).mean(-1) * mask).sum() / mask.sum()


def make_optimizer(model, lr, weight_decay, betas):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas)
