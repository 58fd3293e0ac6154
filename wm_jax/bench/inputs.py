"""What the benchmarks feed the model: untrained params whose every block computes something,
standard-normal context latents, the "no keys" action, and the per-frame noise keys.

Letters: B batch, T frames, H W C latent height, width, channels, K action entries.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from wm_jax.configs import ModelConfig
from wm_jax.model import init_params


def randomized_params(config: ModelConfig, rng, std: float = 0.02):
    """Fresh params with the zero-initialised leaves (adaLN-Zero, final layer, action embedding)
    filled with N(0, std²): an untrained model whose every block computes something, so timings
    and int8-vs-fp32 comparisons are not flattered by zeros."""
    return _fill_zeros(init_params(config, rng), rng, std)


# One compiled program for the whole tree: filled leaf by leaf eagerly, every leaf shape compiled
# its own few small kernels (seconds for the tiny model), too small for the persistent cache.
# The fresh params are donated: a large model's filled copy takes their place, not a second one.
@functools.partial(jax.jit, static_argnames=("std",), donate_argnames=("params",))
def _fill_zeros(params, rng, std: float):
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.fold_in(rng, 1), len(leaves))
    fill = lambda leaf, key: jnp.where(leaf == 0, std * jax.random.normal(key, leaf.shape, leaf.dtype), leaf)
    return jax.tree_util.tree_unflatten(treedef, [fill(leaf, key) for leaf, key in zip(leaves, keys)])


def context_latents(config: ModelConfig, frames: int, rng, batch: int = 1):
    """[B, frames, h, w, c] standard-normal latents (the scale the model's latents are normalised to)."""
    h, w = config.latent_size
    return jax.random.normal(rng, (batch, frames, h, w, config.in_channels))


def no_keys(config: ModelConfig, batch: int = 1):
    """[B, K] the "no keys" action."""
    return jnp.zeros((batch, config.action_dim), jnp.float32)


def step_keys(n: int) -> list:
    """n noise keys, made before timing starts: creating a key is a dispatch of its own."""
    return [jax.random.key(i) for i in range(n)]
