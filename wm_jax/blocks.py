"""Transformer blocks: the DiT spatial block, the temporal block, the final layer.

Letters in shape suffixes: B batch, T frames, N tokens per frame, D width, H heads,
E head dim, W cache slots, G a batch of independent sequences (frames or token columns).

Every residual branch is gated by adaLN-Zero: the modulation's projection starts at zero, so a
freshly added block is exactly the identity. That is what makes an image DiT with temporal
blocks added generate exactly as the image model did, before any training.
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from wm_jax import rope

LAYER_NORM_EPS = 1e-6


def layer_norm(x):
    """LayerNorm without affine parameters, in fp32 whatever the compute dtype."""
    x = x.astype(jnp.float32)
    mean = x.mean(axis=-1, keepdims=True)
    var = jnp.square(x - mean).mean(axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + LAYER_NORM_EPS)


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


def attention(q_GSHE, k_GKHE, v_GKHE, mask=None):
    """Softmax attention in fp32; mask broadcastable to [G, H, S, K], True where allowed."""
    out = jax.nn.dot_product_attention(
        q_GSHE.astype(jnp.float32), k_GKHE.astype(jnp.float32), v_GKHE.astype(jnp.float32),
        mask=mask, implementation="xla",
    )
    return out.astype(q_GSHE.dtype)


class Modulation(nn.Module):
    """c_...D -> `chunks` vectors of width D (shift, scale, gate, ...), zero at initialisation."""

    width: int
    chunks: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, c):
        out = nn.Dense(self.chunks * self.width, dtype=self.dtype, kernel_init=nn.initializers.zeros, name="linear")(
            nn.silu(c)
        )
        return jnp.split(out, self.chunks, axis=-1)


class Mlp(nn.Module):
    width: int
    hidden: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        dense = lambda features, name: nn.Dense(
            features, dtype=self.dtype, kernel_init=nn.initializers.xavier_uniform(), name=name
        )
        return dense(self.width, "fc2")(nn.gelu(dense(self.hidden, "fc1")(x), approximate=True))


class QKV(nn.Module):
    """x_...ND -> q, k, v each [..., N, H, E] from one fused projection."""

    width: int
    num_heads: int
    use_bias: bool
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        qkv = nn.Dense(
            3 * self.width, use_bias=self.use_bias, dtype=self.dtype,
            kernel_init=nn.initializers.xavier_uniform(), name="qkv",
        )(x)
        qkv = qkv.reshape(*x.shape[:-1], 3, self.num_heads, self.width // self.num_heads)
        return qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]


def _out_proj(width, dtype, name=None):
    return nn.Dense(width, dtype=dtype, kernel_init=nn.initializers.xavier_uniform(), name=name)


class SpatialBlock(nn.Module):
    """The DiT block: attention among the tokens of one frame, then an MLP, both adaLN-Zero."""

    width: int
    num_heads: int
    mlp_hidden: int
    qkv_bias: bool = True
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x_GND, c_GD, rope_NE: Optional[jnp.ndarray] = None):
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = Modulation(self.width, 6, self.dtype, name="adaLN")(
            c_GD[:, None]
        )
        h = modulate(layer_norm(x_GND), shift_a, scale_a).astype(self.dtype)
        q, k, v = QKV(self.width, self.num_heads, self.qkv_bias, self.dtype, name="attn")(h)
        if rope_NE is not None:
            q, k = rope.rotate(q, rope_NE[:, None]), rope.rotate(k, rope_NE[:, None])
        out = attention(q, k, v).reshape(x_GND.shape[:-1] + (self.width,))
        x_GND = x_GND + gate_a * _out_proj(self.width, self.dtype, name="proj")(out)
        h = modulate(layer_norm(x_GND), shift_m, scale_m).astype(self.dtype)
        return x_GND + gate_m * Mlp(self.width, self.mlp_hidden, self.dtype, name="mlp")(h)


class TemporalBlock(nn.Module):
    """Each token attends causally to the same spatial location in earlier frames.

    Temporal RoPE over frame indices; attention span = the current frame plus `window`
    earlier ones. `__call__` runs a whole clip; `stream` runs one new frame against a cache of
    unrotated keys and values of earlier frames, and returns the new frame's keys and values.
    """

    width: int
    num_heads: int
    mlp_hidden: Optional[int]  # None: attention only
    window: int
    qkv_bias: bool = True
    rope_theta: float = 10000.0
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.adaLN = Modulation(self.width, 6 if self.mlp_hidden else 3, self.dtype)
        self.attn = QKV(self.width, self.num_heads, self.qkv_bias, self.dtype)
        self.proj = _out_proj(self.width, self.dtype)
        if self.mlp_hidden:
            self.mlp = Mlp(self.width, self.mlp_hidden, self.dtype)
        self.freqs = rope.lang_frequencies(self.width // self.num_heads, self.rope_theta)

    def _project(self, x, modulation):
        shift, scale = modulation[0], modulation[1]
        return self.attn(modulate(layer_norm(x), shift, scale).astype(self.dtype))

    def _finish(self, x, out, modulation):
        x = x + modulation[2] * self.proj(out.reshape(x.shape[:-1] + (self.width,)))
        if self.mlp_hidden:
            shift_m, scale_m, gate_m = modulation[3:]
            x = x + gate_m * self.mlp(modulate(layer_norm(x), shift_m, scale_m).astype(self.dtype))
        return x

    def __call__(self, x_BTND, c_BTD):
        b, t, n, _ = x_BTND.shape
        modulation = [m[:, :, None] for m in self.adaLN(c_BTD)]
        q, k, v = self._project(x_BTND, modulation)  # [B, T, N, H, E]
        theta_T = rope.angles(jnp.arange(t), self.freqs)[:, None, None]
        q, k = rope.rotate(q, theta_T), rope.rotate(k, theta_T)
        columns = lambda a: a.transpose(0, 2, 1, 3, 4).reshape(b * n, t, *a.shape[3:])
        i, j = jnp.arange(t)[:, None], jnp.arange(t)[None, :]
        mask_TT = (j <= i) & (i - j <= self.window)
        out = attention(columns(q), columns(k), columns(v), mask_TT[None, None])
        out = out.reshape(b, n, t, *out.shape[2:]).transpose(0, 2, 1, 3, 4)
        return self._finish(x_BTND, out, modulation)

    def stream(self, x_BND, c_BD, k_BWNHE, v_BWNHE, offsets_W, valid_W):
        """One frame against the cache; offsets_W = how many frames ago each slot was written."""
        b, n, _ = x_BND.shape
        w = k_BWNHE.shape[1]
        modulation = [m[:, None] for m in self.adaLN(c_BD)]
        q, k, v = self._project(x_BND, modulation)  # [B, N, H, E]; the current frame sits at position 0
        theta_W = rope.angles(-offsets_W, self.freqs)[None, :, None, None]
        keys = jnp.concatenate([rope.rotate(k_BWNHE, theta_W), k[:, None]], axis=1)
        values = jnp.concatenate([v_BWNHE, v[:, None]], axis=1)
        columns = lambda a: a.transpose(0, 2, 1, 3, 4).reshape(b * n, w + 1, *a.shape[3:])
        mask = jnp.concatenate([valid_W & (offsets_W <= self.window), jnp.ones((1,), bool)])
        out = attention(q.reshape(b * n, 1, *q.shape[2:]), columns(keys), columns(values), mask[None, None, None])
        out = out.reshape(b, n, *out.shape[2:])
        return self._finish(x_BND, out, modulation), (k, v)


class FinalLayer(nn.Module):
    """adaLN (shift, scale), then a zero-initialised projection to patch_size² · channels."""

    width: int
    patch_size: int
    out_channels: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x_GND, c_GD):
        shift, scale = Modulation(self.width, 2, self.dtype, name="adaLN")(c_GD[:, None])
        h = modulate(layer_norm(x_GND), shift, scale).astype(self.dtype)
        p = self.patch_size
        return nn.Dense(p * p * self.out_channels, dtype=self.dtype, kernel_init=nn.initializers.zeros, name="linear")(h)
