"""The text encoder and masked-LM training step of sslab's text plugin,
written in PyTorch Python, for the benchmark (tools/bench/text_bench.py).
Same architecture and shapes: token embedding + learned positions,
pre-norm blocks (LayerNorm eps 1e-6, qkv with bias, GELU MLP) with a key
padding mask, final LayerNorm, BERT masking (15%; 80/10/10), a head
dense -> GELU -> LayerNorm(eps 1e-12) -> tied embedding^T + bias evaluated
on the chosen positions only, AdamW with decoupled weight decay on matrices
only, gradient clipping as the recipe says."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mae_reference import Block  # the same pre-norm block as the vision twin


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, pad):
        B, T, D = x.shape
        H = self.heads
        q, k, v = self.qkv(x).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        scores = (q * (D // H) ** -0.5) @ k.transpose(-2, -1)
        if pad is not None:
            scores = scores.masked_fill(pad.view(B, 1, 1, T), torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, -1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, T, D))


class MaskedBlock(Block):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__(dim, heads, mlp_ratio)
        self.attn = Attention(dim, heads)

    def forward(self, x, pad):
        x = x + self.attn(self.norm1(x), pad)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class TextMlm(nn.Module):
    def __init__(self, vocab_size, max_length=128, dim=128, depth=2, heads=4, mlp_ratio=4.0, specials=(0, 1, 2, 3, 4),
                 mask_id=4, mask_prob=0.15):
        super().__init__()
        self.token_embed = nn.Embedding(vocab_size, dim)
        nn.init.trunc_normal_(self.token_embed.weight, std=0.02, a=-0.04, b=0.04)
        self.pos_embed = nn.Parameter(torch.zeros(max_length, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-0.04, b=0.04)
        self.blocks = nn.ModuleList([MaskedBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.transform = nn.Linear(dim, dim)
        self.transform_norm = nn.LayerNorm(dim, eps=1e-12)
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))
        self.register_buffer("specials", torch.tensor(specials))
        self.register_buffer("ordinary", torch.tensor([i for i in range(vocab_size) if i not in specials]))
        self.mask_id = mask_id
        self.mask_prob = mask_prob

    def encode(self, ids, pad):
        x = self.token_embed(ids) + self.pos_embed[: ids.shape[1]]
        for b in self.blocks:
            x = b(x, pad)
        return self.norm(x)

    def forward(self, ids, pad):
        protected = torch.isin(ids, self.specials) | pad
        u_select, u_kind = torch.rand(ids.shape), torch.rand(ids.shape)
        pick = torch.randint(self.ordinary.numel(), ids.shape)
        selected = (u_select < self.mask_prob) & ~protected
        to_mask = selected & (u_kind < 0.8)
        to_random = selected & (u_kind >= 0.8) & (u_kind < 0.9)
        inputs = torch.where(to_mask, torch.full_like(ids, self.mask_id),
                             torch.where(to_random, self.ordinary[pick], ids))
        tokens = self.encode(inputs, pad).reshape(-1, self.norm.normalized_shape[0])
        idx = selected.reshape(-1).nonzero().squeeze(1)
        h = self.transform_norm(F.gelu(self.transform(tokens.index_select(0, idx))))
        logits = h @ self.token_embed.weight.t() + self.output_bias
        return F.cross_entropy(logits, ids.reshape(-1).index_select(0, idx))


def make_optimizer(model, lr, weight_decay, betas):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas)
