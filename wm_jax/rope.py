"""Rotary position embeddings (RoPE), interleaved-pair convention.

Features (x[2i], x[2i+1]) are rotated together by angle position * freq[i], the convention
of the open Oasis model, so its weights need no permutation. Temporal RoPE uses "lang"
frequencies over frame indices; spatial RoPE is axial, "pixel" frequencies over positions in
[-1, 1] along each image axis, half of the head's features for each axis.

Only differences of temporal positions reach the attention scores, which is what lets the
KV cache store unrotated keys and rotate them by their offset from the current frame: the
positions the model sees are bounded by the window however long a rollout runs.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def lang_frequencies(dim: int, theta: float = 10000.0) -> np.ndarray:
    """[dim // 2] frequencies theta^(-2i/dim)."""
    return 1.0 / theta ** (np.arange(0, dim, 2)[: dim // 2].astype(np.float64) / dim)


def pixel_frequencies(dim: int, max_freq: float = 256.0) -> np.ndarray:
    """[dim // 2] frequencies evenly spaced in [pi, pi * max_freq / 2]."""
    return np.linspace(1.0, max_freq / 2, dim // 2) * np.pi


def angles(positions, freqs) -> jnp.ndarray:
    """positions: [...]; freqs: [F] -> [..., 2F], each angle repeated for its feature pair."""
    theta = jnp.asarray(positions, jnp.float32)[..., None] * jnp.asarray(freqs, jnp.float32)
    return jnp.repeat(theta, 2, axis=-1)


def axial_angles(height: int, width: int, head_dim: int, max_freq: float = 256.0) -> np.ndarray:
    """[height * width, head_dim] angles: first half from the row, second half from the column.

    Tokens are in row-major order, as patch embedding produces them.
    """
    freqs = pixel_frequencies(head_dim // 2, max_freq)
    # numpy throughout: a constant table, built at trace time without creating tracers
    along = lambda n: np.repeat(np.linspace(-1, 1, n)[:, None] * freqs, 2, axis=-1)
    rows = np.repeat(along(height)[:, None], width, axis=1)
    cols = np.repeat(along(width)[None, :], height, axis=0)
    return np.concatenate([rows, cols], axis=-1).reshape(height * width, head_dim).astype(np.float32)


def rotate(x, theta) -> jnp.ndarray:
    """Rotate the first theta.shape[-1] features of x by theta; the rest pass through.

    x: [..., D]; theta: broadcastable to [..., R] with R <= D and R even.
    """
    rotated = theta.shape[-1]
    x_rot, x_pass = x[..., :rotated], x[..., rotated:]
    pairs = x_rot.reshape(*x_rot.shape[:-1], rotated // 2, 2)
    half_turn = jnp.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(x_rot.shape)
    theta = theta.astype(jnp.float32)
    out = x_rot.astype(jnp.float32) * jnp.cos(theta) + half_turn.astype(jnp.float32) * jnp.sin(theta)
    return jnp.concatenate([out.astype(x.dtype), x_pass], axis=-1)


def rotate_by(x, cos, sin) -> jnp.ndarray:
    """`rotate` with the angles' cosines and sines given, all of x's features rotated: a reader
    that rotates many features by few angles (the KV cache: N·H tokens per slot, one angle per
    slot and feature) computes the tables once, instead of a cosine and a sine per element.

    x: [..., D]; cos, sin: broadcastable to x.
    """
    pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    half_turn = jnp.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(x.shape)
    return (x.astype(jnp.float32) * cos + half_turn.astype(jnp.float32) * sin).astype(x.dtype)
