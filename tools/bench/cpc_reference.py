"""CPC in PyTorch Python: the same model and loss as sslab's audio.cpc_encoder
+ audio.cpc (strided convolutions with channel LayerNorm and ReLU, GRU
context, one linear predictor per step, InfoNCE with negatives drawn from the
batch's frames). Used by tools/bench/audio_bench.py to time the training
step against sslab on the same LibTorch build."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class CpcEncoder(nn.Module):
    def __init__(self, channels=256, context_dim=256, context_layers=1, kernels=(10, 8, 4, 4, 4),
                 strides=(5, 4, 2, 2, 2), paddings=(3, 2, 1, 1, 1), normalize_wave=True, **_):
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        cin = 1
        for k, s, p in zip(kernels, strides, paddings):
            self.convs.append(nn.Conv1d(cin, channels, k, stride=s, padding=p))
            self.norms.append(nn.LayerNorm(channels))
            cin = channels
        self.gru = nn.GRU(channels, context_dim, num_layers=context_layers, batch_first=True)
        self.normalize_wave = normalize_wave

    def forward(self, wave):  # [B,S] -> z [B,T,C], c [B,T,D]
        x = wave
        if self.normalize_wave:
            x = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-8)
        x = x.unsqueeze(1)
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x).transpose(1, 2))).transpose(1, 2)
        z = x.transpose(1, 2).contiguous()
        c, _ = self.gru(z)
        return z, c


class Cpc(nn.Module):
    def __init__(self, encoder, context_dim, channels, prediction_steps=12, negatives=16, **_):
        super().__init__()
        self.encoder = encoder
        self.negatives = negatives
        self.predictors = nn.ModuleList(nn.Linear(context_dim, channels) for _ in range(prediction_steps))

    def forward(self, wave):
        z, c = self.encoder(wave)
        b, t, ch = z.shape
        zf = z.reshape(b * t, ch)
        losses = []
        for k, pred_k in enumerate(self.predictors, start=1):
            tk = t - k
            if tk <= 0:
                break
            pred = pred_k(c[:, :tk])
            pos = z[:, k:]
            idx = torch.randint(b * t, (b, tk, self.negatives))
            neg = zf.index_select(0, idx.flatten()).view(b, tk, self.negatives, ch)
            pos_logit = (pred * pos).sum(-1, keepdim=True)
            neg_logit = torch.matmul(neg, pred.unsqueeze(-1)).squeeze(-1)
            pos_rows = (torch.arange(b).unsqueeze(1) * t + torch.arange(k, t).unsqueeze(0)).unsqueeze(-1)
            neg_logit = neg_logit.masked_fill(idx == pos_rows, float("-inf"))
            logits = torch.cat([pos_logit, neg_logit], -1)
            losses.append((torch.logsumexp(logits, -1) - pos_logit.squeeze(-1)).mean())
        return torch.stack(losses).mean()
