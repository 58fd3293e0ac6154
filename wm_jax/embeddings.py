"""Embeddings of the DiT reference: timesteps, fixed 2-D sin-cos positions, patches."""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

TIMESTEP_FEATURES = 256
# Imported DiT weights know timesteps on the 0..1000 scale; flow time t in [0, 1] is scaled so
# by default (SiT/REPA-style models feed t unscaled: ModelConfig.timestep_scale = 1).
TIMESTEP_SCALE = 1000.0


def timestep_features(t, dim: int = TIMESTEP_FEATURES, max_period: float = 10000.0) -> jnp.ndarray:
    """t: [...] -> [..., dim] sinusoidal features, cosines first (the DiT reference order)."""
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = jnp.asarray(t, jnp.float32)[..., None] * freqs
    features = jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
    if dim % 2:
        features = jnp.concatenate([features, jnp.zeros_like(features[..., :1])], axis=-1)
    return features


def _sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """positions: [M] -> [M, dim], sines first then cosines."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = positions.reshape(-1).astype(np.float64)[:, None] * omega[None]
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim: int, grid_h: int, grid_w: int) -> np.ndarray:
    """[grid_h * grid_w, dim] fixed position embedding, tokens in row-major order.

    As in the DiT reference, the first half of the features encodes the column index and the
    second half the row index.
    """
    rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
    return np.concatenate([_sincos_1d(dim // 2, cols), _sincos_1d(dim // 2, rows)], axis=1).astype(np.float32)


class TimestepEmbedder(nn.Module):
    """Flow time t in [0,1] -> [width] vector: sinusoidal features of scale·t, then an MLP."""

    width: int
    dtype: jnp.dtype = jnp.float32
    scale: float = TIMESTEP_SCALE

    @nn.compact
    def __call__(self, t):
        features = timestep_features(self.scale * t)
        dense = lambda name: nn.Dense(
            self.width, dtype=self.dtype, kernel_init=nn.initializers.normal(0.02), name=name
        )
        return dense("fc2")(nn.silu(dense("fc1")(features)))


class PatchEmbed(nn.Module):
    """[..., H, W, C] -> [..., (H/p)·(W/p), width]: a stride-p convolution, row-major tokens."""

    width: int
    patch_size: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        p = self.patch_size
        *lead, h, w, c = x.shape
        x = x.reshape(-1, h, w, c)
        # Xavier over the flattened patch, as the reference initialises its conv like a linear.
        x = nn.Conv(
            self.width, (p, p), strides=(p, p), padding="VALID", dtype=self.dtype,
            kernel_init=nn.initializers.xavier_uniform(in_axis=(0, 1, 2), out_axis=-1), name="proj",
        )(x)
        return x.reshape(*lead, (h // p) * (w // p), self.width)
