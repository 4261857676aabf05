"""The video frame-prediction model in PyTorch Python, layer for layer the
same as sslab's video.encoder + video.frame_decoder + video.frame_prediction
(pixel MSE target, feedback = prediction), for the training-step benchmark."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(i, o, k, s=1):
    return nn.Conv2d(i, o, k, stride=s, padding=k // 2)


def groups_for(c):
    for g in (8, 4, 2):
        if c % g == 0:
            return g
    return 1


class ConvGruCell(nn.Module):
    def __init__(self, inp, hidden, kernel):
        super().__init__()
        self.gates = conv(inp + hidden, 2 * hidden, kernel)
        self.candidate = conv(inp + hidden, hidden, kernel)

    def forward(self, x, h):
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        cand = torch.tanh(self.candidate(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * cand


class VideoEncoder(nn.Module):
    def __init__(self, channels=1, width=32, hidden=64, downsample=2, layers=1, kernel=3, **_):
        super().__init__()
        mods, inp = [], channels
        for i in range(downsample):
            out = max(8, width >> (downsample - 1 - i))
            mods += [conv(inp, out, 3, 2), nn.GroupNorm(groups_for(out), out), nn.LeakyReLU(0.2)]
            inp = out
        mods += [conv(inp, width, 3), nn.LeakyReLU(0.2)]
        self.frame_net = nn.Sequential(*mods)
        self.cells = nn.ModuleList([ConvGruCell(width if l == 0 else hidden, hidden, kernel) for l in range(layers)])
        self.hidden, self.width, self.downsample = hidden, width, downsample

    def step(self, f, state):
        out, x = [], f
        for l, cell in enumerate(self.cells):
            h = torch.zeros(x.shape[0], self.hidden, x.shape[2], x.shape[3]) if state is None else state[l]
            x = cell(x, h)
            out.append(x)
        return out


class FrameDecoder(nn.Module):
    def __init__(self, inp, width, upsample, out_channels):
        super().__init__()
        mods, w = [conv(inp, width, 3), nn.LeakyReLU(0.2)], width
        for _ in range(upsample):
            o = max(8, w // 2)
            mods += [nn.Upsample(scale_factor=2, mode="nearest"), conv(w, o, 3), nn.LeakyReLU(0.2)]
            w = o
        mods += [conv(w, out_channels, 3)]
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        return self.net(x)


class FramePrediction(nn.Module):
    def __init__(self, enc_cfg, dec_width, k, n):
        super().__init__()
        self.encoder = VideoEncoder(**enc_cfg)
        e = self.encoder
        self.decoder = FrameDecoder(e.hidden + e.width, dec_width, e.downsample, enc_cfg.get("channels", 1))
        self.k, self.n = k, n

    def forward(self, clip):
        b, k, n = clip.shape[0], self.k, self.n
        f = self.encoder.frame_net(clip[:, :k].flatten(0, 1))
        f = f.view(b, k, *f.shape[1:])
        state = None
        for i in range(k):
            state = self.encoder.step(f[:, i], state)
        cur, logits = f[:, k - 1], []
        for j in range(n):
            if j > 0:
                cur = self.encoder.frame_net(logits[-1].clamp(0, 1))  # linear decoder: pixels = clamp
                state = self.encoder.step(cur, state)
            logits.append(self.decoder(torch.cat([state[-1], cur], 1)))
        return F.mse_loss(torch.stack(logits, 1), clip[:, k:k + n])
