"""Weight-only int8 quantisation with per-output-channel scales, for inference, in XLA only.

    qparams = quantize(params)                       # a params transform: same tree, big kernels int8
    step = make_step(config, sampler)                # like rollout.make_step, takes qparams
    state, latent = step(qparams, state, action, rng)
    save(DIR, config, qparams); config, qparams = load(DIR)   # ~4x smaller checkpoint

A kernel `w` of shape [..., out] becomes `Int8Tensor(values=int8 [..., out], scale=float32 [out])`
with `w ≈ values * scale`, scale = max|w| over every axis but the last (the output channel) / 127,
symmetric, no zero point. Each element's error is at most scale/2 of its channel.

Why a params transform and not a model change: `dequantize` runs *inside* the jitted step, so
the weights stay int8 in device memory and in the checkpoint, and XLA sees the int8 -> compute
dtype convert next to the matmul that consumes it (on GPU it fuses the convert into the dot's
operand; on CPU it materialises the dequantised kernel once per call, see BUILD_NOTES "Measure").
No Flax module needs to know. Biases, norms and small tensors stay in float.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from wm_jax import rollout
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig

FORMAT = "wm_jax.int8.v1"
# Tensors smaller than this stay float: the savings are nil and the scale overhead is not.
MIN_ELEMENTS = 4096
# Keys under which an Int8Tensor is stored in a checkpoint (plain dicts are what orbax writes).
_VALUES_KEY, _SCALE_KEY = "__int8_values__", "__int8_scale__"


@struct.dataclass
class Int8Tensor:
    values: jnp.ndarray  # int8 [..., out]
    scale: jnp.ndarray  # float32 [out]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def dequantize(self, dtype=jnp.float32) -> jnp.ndarray:
        return (self.values.astype(jnp.float32) * self.scale).astype(dtype)


def quantize_tensor(w_IO) -> Int8Tensor:
    """w: [..., out] float -> Int8Tensor with one scale per output channel (last axis)."""
    w = jnp.asarray(w_IO, jnp.float32)
    if w.ndim < 2:
        raise ValueError(f"per-channel int8 needs a kernel with >= 2 axes, got shape {w.shape}")
    amax_O = jnp.max(jnp.abs(w), axis=tuple(range(w.ndim - 1)))
    # An all-zero channel (adaLN-Zero projections at init) gets scale 1 so it dequantises to 0.
    scale_O = jnp.where(amax_O > 0, amax_O / 127.0, 1.0)
    values = jnp.clip(jnp.round(w / scale_O), -127, 127).astype(jnp.int8)
    return Int8Tensor(values=values, scale=scale_O.astype(jnp.float32))


def _is_kernel(path, leaf, min_elements: int) -> bool:
    name = getattr(path[-1], "key", None) if path else None
    return name == "kernel" and leaf.ndim >= 2 and int(np.prod(leaf.shape)) >= min_elements


def quantize(params, min_elements: int = MIN_ELEMENTS):
    """The params tree with every kernel of >= min_elements entries replaced by an Int8Tensor."""
    quantize_jit = jax.jit(quantize_tensor)
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: quantize_jit(leaf) if _is_kernel(path, leaf, min_elements) else leaf, params
    )


def _is_int8(x) -> bool:
    return isinstance(x, Int8Tensor)


def dequantize(qparams, dtype=jnp.float32):
    """Back to a plain params tree; call it inside jit so the convert fuses with its consumers."""
    return jax.tree_util.tree_map(lambda x: x.dequantize(dtype) if _is_int8(x) else x, qparams, is_leaf=_is_int8)


def is_quantized(tree) -> bool:
    return any(_is_int8(x) for x in jax.tree_util.tree_leaves(tree, is_leaf=_is_int8))


def nbytes(tree) -> int:
    """Bytes of all arrays in a (possibly quantised) params tree."""
    return int(sum(int(np.prod(a.shape)) * a.dtype.itemsize for a in jax.tree_util.tree_leaves(tree)))


def dequantizing(fn):
    """fn(params, *args) -> fn'(qparams, *args) that dequantises inside the caller's jit."""

    @functools.wraps(fn)
    def wrapped(qparams, *args, **kwargs):
        return fn(dequantize(qparams), *args, **kwargs)

    return wrapped


def make_step(config: ModelConfig, sampler: SamplerConfig = SamplerConfig(), zoom=None):
    """`rollout.step` for int8 params, jit-compiled once, state donated (same signature)."""
    step = functools.partial(rollout.step, config=config, sampler=sampler, zoom=zoom)
    return jax.jit(dequantizing(step), donate_argnums=(1,))


def make_rollout(config: ModelConfig, sampler: SamplerConfig = SamplerConfig(), zoom=None):
    """`rollout.rollout` (a lax.scan) for int8 params; dequantised once, outside the scan."""
    scan = functools.partial(rollout.rollout, config=config, sampler=sampler, zoom=zoom)
    return jax.jit(dequantizing(scan), donate_argnums=(1,))


def init_state(config: ModelConfig, qparams, context_BTHWC, actions_BTK=None, *, rng, sampler=SamplerConfig(), zoom=None):
    """`rollout.init_state` for int8 params (the prefill is a one-off: dequantise eagerly)."""
    return rollout.init_state(config, dequantize(qparams), context_BTHWC, actions_BTK, rng=rng, sampler=sampler, zoom=zoom)


# Checkpoint I/O: the model directory layout of `wm_jax.model.save`, plus quantization.json.
def _to_storable(qparams):
    return jax.tree_util.tree_map(
        lambda x: {_VALUES_KEY: x.values, _SCALE_KEY: x.scale} if _is_int8(x) else x, qparams, is_leaf=_is_int8
    )


def _from_stored(tree):
    if isinstance(tree, dict):
        if set(tree) == {_VALUES_KEY, _SCALE_KEY}:
            return Int8Tensor(values=jnp.asarray(tree[_VALUES_KEY], jnp.int8), scale=jnp.asarray(tree[_SCALE_KEY], jnp.float32))
        return {k: _from_stored(v) for k, v in tree.items()}
    return jnp.asarray(tree)


def save(path: str, config: ModelConfig, qparams) -> None:
    import orbax.checkpoint as ocp

    from wm_jax.model import config_to_dict

    path = os.path.abspath(path)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config_to_dict(config), f, indent=2)
    with open(os.path.join(path, "quantization.json"), "w") as f:
        json.dump({"format": FORMAT, "scheme": "weight-only int8, symmetric, per output channel"}, f, indent=2)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(os.path.join(path, "params"), _to_storable(qparams), force=True)


def is_quantized_checkpoint(path: str) -> bool:
    return os.path.exists(os.path.join(path, "quantization.json"))


def load(path: str) -> tuple[ModelConfig, Any]:
    """(config, qparams) from a directory written by `save`."""
    import orbax.checkpoint as ocp

    from wm_jax.model import config_from_dict

    path = os.path.abspath(path)
    if not is_quantized_checkpoint(path):
        raise FileNotFoundError(f"{path}/quantization.json not found: not an int8 wm_jax model directory")
    with open(os.path.join(path, "config.json")) as f:
        config = config_from_dict(json.load(f))
    with ocp.StandardCheckpointer() as checkpointer:
        stored = checkpointer.restore(os.path.join(path, "params"))
    return config, _from_stored(stored)


def directory_bytes(path: str) -> int:
    """Bytes on disk of every file under path (a checkpoint's size)."""
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
