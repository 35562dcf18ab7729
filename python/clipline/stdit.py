"""The PyTorch twin of clipline's STDiT (``clipline train``'s model, written in burn): the same
blocks, parameters and initialisation, so step times compare like for like
(``benches/train.py``) and PyTorch users train the same model on clipline's data
(``examples/train_pytorch.py``).

``Stdit(cfg, channels, text_width)`` takes ``cfg`` with the ``[model]`` keys of a training
config (``hidden``, ``depth``, ``heads``, ``mlp_ratio``, ``patch``); ``forward(x, t, y, pad,
dropped)`` takes latents [B, C, T, H, W], timesteps [B] in [0, 1], caption embeddings [B, tokens,
width] with ``pad`` [B, tokens] true at padding, and ``dropped`` [B, 1, 1] (1 where the caption
is replaced by the learned null caption).
"""
import math
import tomllib

import torch
import torch.nn.functional as F
from torch import nn

DEFAULTS = {"hidden": 1152, "depth": 28, "heads": 16, "mlp_ratio": 4.0, "patch": [1, 2, 2]}


def model_config(path):
    """The ``[model]`` section of a training config over the defaults ``clipline train`` uses."""
    with open(path, "rb") as f:
        return {**DEFAULTS, **tomllib.load(f).get("model", {})}


MODULATIONS = 9


def sinusoid(positions, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = positions[:, None].float() * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], -1)


def positions(t, h, w, dim):
    quarter = dim // 2
    rows, cols, frames = sinusoid(torch.arange(h), quarter), sinusoid(torch.arange(w), dim - quarter), sinusoid(torch.arange(t), dim)
    spatial = torch.cat([rows[:, None, :].expand(h, w, quarter), cols[None, :, :].expand(h, w, dim - quarter)], -1).reshape(h * w, dim)
    return (spatial[None] + frames[:, None]).reshape(1, t * h * w, dim)


class Attention(nn.Module):
    def __init__(self, dim, context, heads):
        super().__init__()
        self.query, self.key_value, self.out, self.heads = nn.Linear(dim, dim), nn.Linear(context, 2 * dim), nn.Linear(dim, dim), heads

    def forward(self, x, context, pad=None):
        b, n, d = x.shape
        m, hd = context.shape[1], d // self.heads
        q = self.query(x).view(b, n, self.heads, hd).transpose(1, 2)
        k, v = self.key_value(context).chunk(2, -1)
        k, v = (t.reshape(b, m, self.heads, hd).transpose(1, 2) for t in (k, v))
        mask = None if pad is None else (~pad)[:, None, None, :]
        return self.out(F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, n, d))


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


class Block(nn.Module):
    def __init__(self, d, heads, mlp_ratio, text):
        super().__init__()
        self.norm_spatial, self.spatial = nn.LayerNorm(d), Attention(d, d, heads)
        self.norm_temporal, self.temporal = nn.LayerNorm(d), Attention(d, d, heads)
        self.norm_cross, self.cross = nn.LayerNorm(d), (Attention(d, d, heads) if text else None)
        self.norm_mlp, self.fc1, self.fc2 = nn.LayerNorm(d), nn.Linear(d, round(d * mlp_ratio)), nn.Linear(round(d * mlp_ratio), d)
        self.table = nn.Parameter(torch.zeros(MODULATIONS, d))

    def forward(self, x, grid, modulation, y=None, pad=None):
        t, hw = grid
        b, n, d = x.shape
        m = (modulation + self.table[None]).chunk(MODULATIONS, 1)
        h = modulate(self.norm_spatial(x), m[0], m[1]).reshape(b * t, hw, d)
        x = x + m[2] * self.spatial(h, h).reshape(b, n, d)
        h = modulate(self.norm_temporal(x), m[3], m[4]).reshape(b, t, hw, d).transpose(1, 2).reshape(b * hw, t, d)
        x = x + m[5] * self.temporal(h, h).reshape(b, hw, t, d).transpose(1, 2).reshape(b, n, d)
        if self.cross is not None and y is not None:
            x = x + self.cross(self.norm_cross(x), y, pad)
        h = modulate(self.norm_mlp(x), m[6], m[7])
        return x + m[8] * self.fc2(F.gelu(self.fc1(h)))


class Stdit(nn.Module):
    def __init__(self, cfg, channels, text_width):
        super().__init__()
        d, self.patch, self.channels, self.d = cfg["hidden"], cfg["patch"], channels, cfg["hidden"]
        p = math.prod(self.patch)
        self.proj = nn.Linear(channels * p, d)
        self.time_fc1, self.time_fc2 = nn.Linear(256, d), nn.Linear(d, d)
        self.time_modulation = nn.Linear(d, MODULATIONS * d)
        self.text_fc1, self.text_fc2 = (nn.Linear(text_width, d), nn.Linear(d, d)) if text_width else (None, None)
        self.null_text = nn.Parameter(torch.randn(1, d) * 0.02) if text_width else None
        self.blocks = nn.ModuleList(Block(d, cfg["heads"], cfg["mlp_ratio"], text_width) for _ in range(cfg["depth"]))
        self.final_norm, self.final_modulation = nn.LayerNorm(d), nn.Linear(d, 2 * d)
        self.final_table = nn.Parameter(torch.zeros(2, d))
        self.out = nn.Linear(d, channels * p)
        for zero in (self.time_modulation, self.final_modulation, self.out):
            nn.init.zeros_(zero.weight)
            nn.init.zeros_(zero.bias)

    def forward(self, x, t, y=None, pad=None, dropped=None):
        b, c, T, H, W = x.shape
        pt, ph, pw = self.patch
        gt, gh, gw = T // pt, H // ph, W // pw
        tokens = x.reshape(b, c, gt, pt, gh, ph, gw, pw).permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, gt * gh * gw, -1)
        x = self.proj(tokens) + positions(gt, gh, gw, self.d).to(x.device)
        c_emb = F.silu(self.time_fc2(F.silu(self.time_fc1(sinusoid(t * 1000, 256).to(x.device)))))
        modulation = self.time_modulation(c_emb).reshape(b, MODULATIONS, self.d)
        if y is not None and self.text_fc1 is not None:
            y = self.text_fc2(F.gelu(self.text_fc1(y)))
            y = y * (1 - dropped) + self.null_text[None] * dropped
        for block in self.blocks:
            x = block(x, (gt, gh * gw), modulation, y, pad)
        m = self.final_modulation(c_emb).reshape(b, 2, self.d) + self.final_table[None]
        x = self.out(modulate(self.final_norm(x), m[:, :1], m[:, 1:]))
        return x.reshape(b, gt, gh, gw, c, pt, ph, pw).permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(b, c, T, H, W)
