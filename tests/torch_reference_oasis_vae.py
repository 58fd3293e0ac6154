"""A PyTorch ViT autoencoder written from the public description of the open Oasis model's VAE
(open-oasis `vae.py`, "ViT-VAE-L/20": an AutoencoderKL of ViT blocks): the independent reference
the `oasis-vae` conversion is tested against. Module names follow Oasis', so `state_dict()` has
the checkpoint's keys (patch_embed.proj, encoder.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2},
enc_norm, quant_conv, post_quant_conv, decoder.N.*, dec_norm, predictor).

Written independently of wm_jax: RoPE rotates interleaved pairs as complex numbers; attention is
an explicit softmax; the decoder's patches are put back with F.fold (channel-major patch vectors).

Layout: images [B, 3, H, W] in [-1, 1]; `encode` -> the posterior mean [B, h*w, c] (tokens
row-major, as Oasis returns them); `decode` takes [B, h*w, c] -> [B, 3, H, W].
Blocks are pre-norm (LayerNorm eps 1e-6), exact GELU MLP; axial RoPE with head_dim/8 "pixel"
frequencies linspace(1, h*w/2)·π over positions linspace(-1, 1), rows' angles then columns',
rotating the first head_dim/2 features.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-6


def axial_angles(h, w, head_dim):
    """[h*w, head_dim/4] angles, one per rotated pair: row angles for pairs 0..n-1, column angles after."""
    n = head_dim // 8
    freqs = torch.linspace(1.0, h * w / 2, n, dtype=torch.float64) * math.pi
    rows = torch.linspace(-1, 1, h, dtype=torch.float64)[:, None, None] * freqs  # [h, 1, n]
    cols = torch.linspace(-1, 1, w, dtype=torch.float64)[None, :, None] * freqs  # [1, w, n]
    return torch.cat([rows.expand(h, w, n), cols.expand(h, w, n)], dim=-1).reshape(h * w, 2 * n).float()


def rotate(x, angles):
    """x: [B, heads, S, E]; rotate the first 2·angles.shape[-1] features pairwise by angles [S, P]."""
    p = angles.shape[-1]
    head, tail = x[..., : 2 * p], x[..., 2 * p:]
    z = torch.view_as_complex(head.float().reshape(*head.shape[:-1], p, 2).contiguous())
    z = z * torch.polar(torch.ones_like(angles), angles)
    return torch.cat([torch.view_as_real(z).reshape(head.shape), tail], dim=-1)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, dim, heads, grid):
        super().__init__()
        self.heads, self.grid = heads, grid
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, s, d = x.shape
        e = d // self.heads
        q, k, v = (t.reshape(b, s, self.heads, e).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        angles = axial_angles(*self.grid, e)
        q, k = rotate(q, angles), rotate(k, angles)
        weights = (q @ k.transpose(-1, -2) / math.sqrt(e)).softmax(dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, s, d))


class Block(nn.Module):
    def __init__(self, dim, heads, grid, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=EPS)
        self.attn = Attention(dim, heads, grid)
        self.norm2 = nn.LayerNorm(dim, eps=EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, h*w, D], row-major tokens


class OasisViTVAE(nn.Module):
    def __init__(self, latent_dim, height, width, patch, enc_dim, enc_depth, enc_heads, dec_dim, dec_depth, dec_heads,
                 mlp_ratio=4.0):
        super().__init__()
        self.height, self.width, self.patch, self.latent_dim = height, width, patch, latent_dim
        grid = (height // patch, width // patch)
        self.patch_embed = PatchEmbed(patch, enc_dim)
        self.encoder = nn.ModuleList([Block(enc_dim, enc_heads, grid, mlp_ratio) for _ in range(enc_depth)])
        self.enc_norm = nn.LayerNorm(enc_dim, eps=EPS)
        self.quant_conv = nn.Linear(enc_dim, 2 * latent_dim)  # mean | logvar
        self.post_quant_conv = nn.Linear(latent_dim, dec_dim)
        self.decoder = nn.ModuleList([Block(dec_dim, dec_heads, grid, mlp_ratio) for _ in range(dec_depth)])
        self.dec_norm = nn.LayerNorm(dec_dim, eps=EPS)
        self.predictor = nn.Linear(dec_dim, 3 * patch * patch)

    def encode(self, images):
        x = self.patch_embed(images)
        for block in self.encoder:
            x = block(x)
        return self.quant_conv(self.enc_norm(x))[..., : self.latent_dim]  # the posterior's mean (its mode)

    def decode(self, z):
        x = self.post_quant_conv(z)
        for block in self.decoder:
            x = block(x)
        patches = self.predictor(self.dec_norm(x))  # [B, h*w, 3*p*p], channel-major within a patch
        return F.fold(patches.transpose(1, 2), (self.height, self.width), kernel_size=self.patch, stride=self.patch)
