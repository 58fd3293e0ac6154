"""A PyTorch spatio-temporal DiT written from the public description of the open Oasis model
(Etched/Decart, "Oasis: A Universe in a Transformer"; open-oasis `dit.py`/`attention.py`): the
independent reference the Oasis conversion is tested against. Module names follow Oasis', so
`state_dict()` has the checkpoint's keys, including the rotary `freqs` tables that every block's
attention shares.

Written independently of wm_jax: RoPE rotates interleaved feature pairs as complex numbers
(x[2i] + i x[2i+1]) · e^{iθ}; attention is an explicit softmax with an explicit causal mask.

Layout: x [B, T, C, H, W] latents, t [B, T] noise levels (0..999), cond [B, T, A] actions.
Per block: spatial half (attention over the H·W tokens of each frame, axial RoPE with "pixel"
frequencies over positions in [-1, 1], rows' angles first, then columns'; MLP), then temporal
half (causal attention over frames at each location, RoPE with "lang" frequencies over frame
indices; MLP). Each half has its own adaLN-Zero modulation (6 vectors) of c = t_emb + A·cond.
"""

import math

import torch
from torch import nn


class Rotary(nn.Module):
    """Holds a frequency table as a non-trainable parameter (as Oasis' rotary modules do)."""

    def __init__(self, freqs):
        super().__init__()
        self.freqs = nn.Parameter(torch.as_tensor(freqs, dtype=torch.float32), requires_grad=False)


def pixel_freqs(dim, max_freq):
    return torch.linspace(1.0, max_freq / 2, dim // 2) * math.pi


def lang_freqs(dim, theta=10000.0):
    return theta ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)


def rotate_pairs(x, angles):
    """x: [..., E] (E even); angles: broadcastable to [..., E/2]; pair i = (x[2i], x[2i+1])."""
    z = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2).contiguous())
    z = z * torch.polar(torch.ones_like(angles), angles)
    return torch.view_as_real(z).reshape(x.shape)


def softmax_attention(q, k, v, mask=None):
    """q, k, v: [..., S, E]; mask [S, S] True where allowed."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1) @ v


class AxialAttention(nn.Module):
    def __init__(self, dim, heads, rotary, temporal):
        super().__init__()
        self.heads, self.temporal = heads, temporal
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        self.rotary_emb = rotary

    def forward(self, x):
        b, t, h, w, d = x.shape
        e = d // self.heads
        q, k, v = self.to_qkv(x).reshape(b, t, h, w, 3, self.heads, e).unbind(4)  # each [b,t,h,w,heads,e]
        freqs = self.rotary_emb.freqs
        if self.temporal:
            angles = torch.arange(t, dtype=torch.float32)[:, None] * freqs  # [t, e/2]
            angles = angles[:, None, None, None, :]  # [t, 1, 1, 1, e/2] against pairs [b, t, h, w, heads, e/2]
            q, k = rotate_pairs(q, angles), rotate_pairs(k, angles)
            # sequences over frames: [b, h, w, heads, t, e]
            q, k, v = (a.permute(0, 2, 3, 4, 1, 5) for a in (q, k, v))
            causal = torch.ones(t, t, dtype=torch.bool).tril()
            out = softmax_attention(q, k, v, causal).permute(0, 4, 1, 2, 3, 5)
        else:
            rows = torch.linspace(-1, 1, h)[:, None] * freqs  # [h, e/4]
            cols = torch.linspace(-1, 1, w)[:, None] * freqs  # [w, e/4]
            angles = torch.cat([rows[:, None, :].expand(h, w, -1), cols[None, :, :].expand(h, w, -1)], dim=-1)
            angles = angles[:, :, None, :]  # [h, w, 1, e/2]
            q, k = rotate_pairs(q, angles), rotate_pairs(k, angles)
            # sequences over the tokens of a frame: [b, t, heads, h*w, e]
            flat = lambda a: a.reshape(b, t, h * w, self.heads, e).transpose(2, 3)  # noqa: E731
            out = softmax_attention(flat(q), flat(k), flat(v)).transpose(2, 3).reshape(b, t, h, w, self.heads, e)
        return self.to_out(out.reshape(b, t, h, w, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(nn.functional.gelu(self.fc1(x), approximate="tanh"))


def _norm(x):
    return nn.functional.layer_norm(x, x.shape[-1:], eps=1e-6)


def _per_frame(v):
    """[B, T, D] -> [B, T, 1, 1, D], to broadcast over a frame's tokens."""
    return v[:, :, None, None, :]


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, spatial_rotary, temporal_rotary):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.s_attn = AxialAttention(dim, heads, spatial_rotary, temporal=False)
        self.s_mlp = Mlp(dim, hidden)
        self.s_adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.t_attn = AxialAttention(dim, heads, temporal_rotary, temporal=True)
        self.t_mlp = Mlp(dim, hidden)
        self.t_adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    @staticmethod
    def _half(x, c, attn, mlp, modulation):
        shift1, scale1, gate1, shift2, scale2, gate2 = (_per_frame(m) for m in modulation(c).chunk(6, dim=-1))
        x = x + gate1 * attn(_norm(x) * (1 + scale1) + shift1)
        return x + gate2 * mlp(_norm(x) * (1 + scale2) + shift2)

    def forward(self, x, c):
        x = self._half(x, c, self.s_attn, self.s_mlp, self.s_adaLN_modulation)
        return self._half(x, c, self.t_attn, self.t_mlp, self.t_adaLN_modulation)


class PatchEmbed(nn.Module):
    def __init__(self, patch, channels, dim):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)


class TimestepEmbedder(nn.Module):
    def __init__(self, dim, features=256):
        super().__init__()
        self.features = features
        self.mlp = nn.Sequential(nn.Linear(features, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t):
        half = self.features // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        args = t.float()[..., None] * freqs
        return self.mlp(torch.cat([args.cos(), args.sin()], dim=-1))


class FinalLayer(nn.Module):
    def __init__(self, dim, patch, channels):
        super().__init__()
        self.linear = nn.Linear(dim, patch * patch * channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x, c):
        shift, scale = (_per_frame(m) for m in self.adaLN_modulation(c).chunk(2, dim=-1))
        return self.linear(_norm(x) * (1 + scale) + shift)


class OasisDiT(nn.Module):
    def __init__(self, patch=2, channels=16, dim=1024, depth=16, heads=16, mlp_ratio=4.0, action_dim=25,
                 spatial_max_freq=256.0, temporal_theta=10000.0):
        super().__init__()
        self.patch, self.channels = patch, channels
        head_dim = dim // heads
        self.x_embedder = PatchEmbed(patch, channels, dim)
        self.t_embedder = TimestepEmbedder(dim)
        self.spatial_rotary_emb = Rotary(pixel_freqs(head_dim // 2, spatial_max_freq))
        self.temporal_rotary_emb = Rotary(lang_freqs(head_dim, temporal_theta))
        self.external_cond = nn.Linear(action_dim, dim)
        self.blocks = nn.ModuleList(
            [Block(dim, heads, mlp_ratio, self.spatial_rotary_emb, self.temporal_rotary_emb) for _ in range(depth)]
        )
        self.final_layer = FinalLayer(dim, patch, channels)

    def forward(self, x, t, cond):
        b, t_len, c, h, w = x.shape
        p = self.patch
        tokens = self.x_embedder.proj(x.reshape(b * t_len, c, h, w))  # [BT, D, h/p, w/p]
        tokens = tokens.permute(0, 2, 3, 1).reshape(b, t_len, h // p, w // p, -1)
        cond_vec = self.t_embedder(t) + self.external_cond(cond)  # [B, T, D]
        for block in self.blocks:
            tokens = block(tokens, cond_vec)
        out = self.final_layer(tokens, cond_vec)  # [B, T, h/p, w/p, p*p*C]
        out = out.reshape(b, t_len, h // p, w // p, p, p, self.channels)
        return out.permute(0, 1, 6, 2, 4, 3, 5).reshape(b, t_len, self.channels, h, w)
