"""PyTorch reference of the TAESD family, written from the public architecture description.

Used only by parity tests: real taef2 weights load into it with torch's own `load_state_dict`
(strict), and its outputs are what the converted JAX autoencoder must reproduce. Indices of
the Sequentials are the checkpoint's key names, so they follow the published layout:

  encoder: conv(3,w) | Block | 3 x [conv s2 no-bias | 3 x Block] | conv(w,c)
  decoder: Clamp | conv(c,w) | ReLU | 3 x [3 x Block | Upsample | conv no-bias] | Block | conv(w,3)

The FLUX.2 variant adds, to the deepest level's Blocks, `x = x + pool(x)` first, with
pool = conv1x1(w,4w, no bias), GroupNorm(4, 4w), ReLU, conv1x1(4w,w, no bias).
"""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(n_in: int, n_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, kernel_size=3, stride=stride, padding=1, bias=bias)


class TanhClamp(nn.Module):
    def forward(self, x):
        return 3.0 * torch.tanh(x / 3.0)


class RefBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int, midblock_gn: bool = False):
        super().__init__()
        self.conv = nn.Sequential(conv3x3(n_in, n_out), nn.ReLU(), conv3x3(n_out, n_out), nn.ReLU(), conv3x3(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()
        self.pool = None
        if midblock_gn:
            hidden = 4 * n_in
            self.pool = nn.Sequential(
                nn.Conv2d(n_in, hidden, 1, bias=False), nn.GroupNorm(4, hidden), nn.ReLU(), nn.Conv2d(hidden, n_in, 1, bias=False)
            )

    def forward(self, x):
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def ref_encoder(latent_channels: int, width: int = 64, levels: int = 3, blocks: int = 3, midblock_gn: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [conv3x3(3, width), RefBlock(width, width)]
    for level in range(1, levels + 1):
        layers.append(conv3x3(width, width, stride=2, bias=False))
        layers += [RefBlock(width, width, midblock_gn and level == levels) for _ in range(blocks)]
    layers.append(conv3x3(width, latent_channels))
    return nn.Sequential(*layers)


def ref_decoder(latent_channels: int, width: int = 64, levels: int = 3, blocks: int = 3, midblock_gn: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [TanhClamp(), conv3x3(latent_channels, width), nn.ReLU()]
    for level in range(levels, 0, -1):
        layers += [RefBlock(width, width, midblock_gn and level == levels) for _ in range(blocks)]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(width, width, bias=False)]
    layers += [RefBlock(width, width), conv3x3(width, 3)]
    return nn.Sequential(*layers)
