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
import numpy as np

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


def attention(q_GSHE, k_GKHE, v_GKHE, mask=None, bias=None):
    """Softmax attention in fp32; mask and bias broadcastable to [G, H, S, K], mask True where allowed."""
    out = jax.nn.dot_product_attention(
        q_GSHE.astype(jnp.float32), k_GKHE.astype(jnp.float32), v_GKHE.astype(jnp.float32),
        bias=None if bias is None else bias.astype(jnp.float32), mask=mask, implementation="xla",
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


def neighbour_offsets(radius: int) -> list[tuple[int, int]]:
    """The (dy, dx) token offsets of a (2r+1)² neighbourhood, row-major; the centre is in the middle."""
    return [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def neighbours(x_BTNHE, grid: tuple[int, int], radius: int):
    """x at each token's neighbours: [B, T, N, S, H, E] (zeros off the grid), S = (2r+1)²."""
    gh, gw = grid
    x = x_BTNHE.reshape(*x_BTNHE.shape[:2], gh, gw, *x_BTNHE.shape[3:])
    padded = jnp.pad(x, [(0, 0), (0, 0), (radius, radius), (radius, radius), (0, 0), (0, 0)])
    shifted = [padded[:, :, radius + dy : radius + dy + gh, radius + dx : radius + dx + gw]
               for dy, dx in neighbour_offsets(radius)]
    return jnp.stack(shifted, axis=4).reshape(*x_BTNHE.shape[:3], len(shifted), *x_BTNHE.shape[3:])


def on_grid_NS(grid: tuple[int, int], radius: int) -> np.ndarray:
    """[N, S] True where token n's neighbour s lies on the grid."""
    gh, gw = grid
    rows, cols = np.divmod(np.arange(gh * gw), gw)
    return np.stack([(0 <= rows + dy) & (rows + dy < gh) & (0 <= cols + dx) & (cols + dx < gw)
                     for dy, dx in neighbour_offsets(radius)], axis=1)


def offset_index_NM(grid: tuple[int, int], radius: int) -> np.ndarray:
    """[N, N] which neighbour offset s token m is of token n (`neighbour_offsets` order), -1 if none."""
    gh, gw = grid
    rows, cols = np.divmod(np.arange(gh * gw), gw)
    dy, dx = rows[None, :] - rows[:, None], cols[None, :] - cols[:, None]
    near = (np.abs(dy) <= radius) & (np.abs(dx) <= radius)
    return np.where(near, (dy + radius) * (2 * radius + 1) + dx + radius, -1)


class TemporalBlock(nn.Module):
    """Each token attends causally to the same spatial location in earlier frames.

    Temporal RoPE over frame indices; attention span = the current frame plus `window`
    earlier ones. `__call__` runs a whole clip; `stream` runs one new frame against the cached
    keys and values of earlier frames (as `read_cache` prepares them), and returns the new
    frame's keys and values.

    With `neighbourhood` r > 0 a token attends, in each earlier frame, to the S = (2r+1)²
    places around it (its own frame: itself only). Each offset s adds a score
    bias[h, s] + q·e[s, h] / sqrt(E): a learned preference the query (which carries the
    frame's keys through adaLN) can steer. The bias starts at 0 for the centre and -4 for the
    others, so the block starts close to the same-place attention. Both are stored divided by
    OFFSET_GAIN: Adam moves a parameter by about the learning rate per step, and a bias must
    travel ~4 before an offset counts (500 steps at lr 5e-4 moved it 0.1).
    """

    OFFSET_GAIN = 16.0

    width: int
    num_heads: int
    mlp_hidden: Optional[int]  # None: attention only
    window: int
    qkv_bias: bool = True
    rope_theta: float = 10000.0
    dtype: jnp.dtype = jnp.float32
    neighbourhood: int = 0
    grid: tuple[int, int] = (0, 0)
    action_dim: int = 0  # > 0: the keys held add a score per (head, offset) (keys_steer_offsets)

    def setup(self):
        self.adaLN = Modulation(self.width, 6 if self.mlp_hidden else 3, self.dtype)
        self.attn = QKV(self.width, self.num_heads, self.qkv_bias, self.dtype)
        self.proj = _out_proj(self.width, self.dtype)
        if self.mlp_hidden:
            self.mlp = Mlp(self.width, self.mlp_hidden, self.dtype)
        self.freqs = rope.lang_frequencies(self.width // self.num_heads, self.rope_theta)
        if self.neighbourhood:
            count, centre = self._offsets()
            self.offset_bias = self.param(
                "offset_bias", lambda _, shape: jnp.full(shape, -4.0 / self.OFFSET_GAIN).at[:, centre].set(0.0),
                (self.num_heads, count),
            )
            self.offset_query = self.param(
                "offset_query", nn.initializers.zeros, (count, self.num_heads, self.width // self.num_heads)
            )
            if self.action_dim:
                self.offset_action = self.param("offset_action", nn.initializers.zeros,
                                                (self.action_dim, self.num_heads, count))

    def _offsets(self) -> tuple[int, int]:
        """(S, index of the centre offset) of the neighbourhood."""
        count = (2 * self.neighbourhood + 1) ** 2
        return count, count // 2

    def _project(self, x, modulation):
        shift, scale = modulation[0], modulation[1]
        return self.attn(modulate(layer_norm(x), shift, scale).astype(self.dtype))

    def _finish(self, x, out, modulation):
        x = x + modulation[2] * self.proj(out.reshape(x.shape[:-1] + (self.width,)))
        if self.mlp_hidden:
            shift_m, scale_m, gate_m = modulation[3:]
            x = x + gate_m * self.mlp(modulate(layer_norm(x), shift_m, scale_m).astype(self.dtype))
        return x

    def _offset_scores(self, q_HE, actions_K):
        """[..., H, S] the per-offset score of each (unrotated) query q [..., H, E] and the keys
        held, actions [..., K] (broadcast against q's leading axes)."""
        scale = 1.0 / np.sqrt(q_HE.shape[-1])
        steer = jnp.einsum("...he,she->...hs", q_HE.astype(jnp.float32), self.offset_query.astype(jnp.float32)) * scale
        if self.action_dim:
            steer = steer + jnp.einsum("...k,khs->...hs", actions_K.astype(jnp.float32), self.offset_action)
        return self.OFFSET_GAIN * (steer + self.offset_bias)

    def __call__(self, x_BTND, c_BTD, actions_BTK):
        """A whole clip: a frame reads the frames before it within the window, and itself."""
        b, t, n, _ = x_BTND.shape
        positions_T = jnp.arange(t)
        modulation = [m[:, :, None] for m in self.adaLN(c_BTD)]
        q, k, v = self._project(x_BTND, modulation)  # [B, T, N, H, E]
        theta_T = rope.angles(positions_T, self.freqs)[:, None, None]
        q_rotated, k = rope.rotate(q, theta_T), rope.rotate(k, theta_T)
        columns = lambda a: jnp.moveaxis(a, 2, 1).reshape(b * n, t, *a.shape[3:])
        age_TT = positions_T[:, None] - positions_T[None, :]
        earlier_TT = (age_TT > 0) & (age_TT <= self.window)
        same_TT = jnp.eye(t, dtype=bool)
        if not self.neighbourhood:
            out = attention(columns(q_rotated), columns(k), columns(v), (earlier_TT | same_TT)[None, None])
        else:
            r = self.neighbourhood
            count, centre = self._offsets()
            # Keys ordered (frame, offset): [B*N, T*S, H, E].
            around = lambda a: jnp.moveaxis(neighbours(a, self.grid, r), 2, 1).reshape(b * n, t * count, *a.shape[3:])
            on_grid = jnp.asarray(on_grid_NS(self.grid, r))
            s = jnp.arange(count)
            mask_NTTS = (earlier_TT[None, :, :, None] & on_grid[:, None, None, :]) | (
                same_TT[None, :, :, None] & (s == centre)[None, None, None, :]
            )
            mask = jnp.tile(mask_NTTS.reshape(n, t, t * count), (b, 1, 1))[:, None]
            actions_GTK = jnp.broadcast_to(actions_BTK[:, None], (b, n, *actions_BTK.shape[1:])).reshape(b * n, t, -1)
            scores_GHTS = jnp.swapaxes(self._offset_scores(columns(q), actions_GTK), 1, 2)
            bias = jnp.broadcast_to(scores_GHTS[:, :, :, None, :], (b * n, self.num_heads, t, t, count)).reshape(
                b * n, self.num_heads, t, t * count
            )
            out = attention(columns(q_rotated), around(k), around(v), mask, bias)
        out = jnp.moveaxis(out.reshape(b, n, t, *out.shape[2:]), 1, 2)
        return self._finish(x_BTND, out, modulation)

    def read_cache(self, k_BHNWE, v_BHNWE, offsets_W, valid_W):
        """The cache as `stream` reads it, keys rotated by their age. It does not change while a
        frame is denoised, so a rollout reads it once per frame, not once per denoising step.

        offsets_W: how many frames ago each slot was written. Returns keys and values
        [B, H, M, K, E] and mask [N, K] (True where a query token may read a cached key):
        without a neighbourhood each token reads its own column (M = N, K = W slots); with
        one, every token scores every cached token (M = 1, K = N·W, ordered (token, slot))
        and the neighbourhood is a mask, which XLA runs several times faster than gathering
        the (2r+1)² neighbours of every token. Both are views of the cache's own layout: no
        copy of the buffer but the rotation.
        """
        b, h, n, w, e = k_BHNWE.shape
        slot_ok_W = valid_W & (offsets_W <= self.window)
        # Cosines and sines of every age a read slot can have, a constant table, looked up per
        # slot: from angles computed in the graph, XLA fuses a cosine and a sine into the
        # rotation for every cached element, which made this read cost more than the attention.
        theta_AE = rope.angles(-np.arange(self.window + 1), self.freqs)
        age_W = jnp.where(slot_ok_W, offsets_W, 0)  # other slots are masked: any angle will do
        cos_WE, sin_WE = jnp.cos(theta_AE)[age_W], jnp.sin(theta_AE)[age_W]
        rotated_k = rope.rotate_by(k_BHNWE, cos_WE, sin_WE)
        if not self.neighbourhood:
            return rotated_k, v_BHNWE, jnp.broadcast_to(slot_ok_W, (n, w))
        flat = lambda a: a.reshape(b, h, 1, n * w, e)
        near_NN = jnp.asarray(offset_index_NM(self.grid, self.neighbourhood) >= 0)
        return flat(rotated_k), flat(v_BHNWE), (near_NN[:, :, None] & slot_ok_W[None, None, :]).reshape(n, n * w)

    def stream(self, x_BND, c_BD, actions_BK, cached_k_BHMKE, cached_v_BHMKE, cached_mask_NK):
        """One frame against the cache as `read_cache` returned it; the current frame sits at
        position 0 and each token sees only itself in it. Returns the new frame's output and
        its (unrotated) keys and values [B, N, H, E].

        x may hold R copies of the cache's batch, stacked (R, B) (guidance runs its conditional
        and null branches as one batch): they read the one cache, which is not copied. The
        queries are brought to the cache's (head, token) order, not the cache to theirs.
        """
        rb, n, _ = x_BND.shape
        b = cached_k_BHMKE.shape[0]
        modulation = [m[:, None] for m in self.adaLN(c_BD)]
        q, k, v = self._project(x_BND, modulation)  # [R·B, N, H, E]
        copies = lambda a: a.reshape(rb // b, b, *a.shape[1:]).astype(jnp.float32)
        # [B, H, N, R, E]: the cache's batch axes first, in its order, then the copies. XLA's CPU
        # dot takes operands whose batch axes lead in one order as they are; any other order
        # and it transposes the whole cache on every pass.
        cache_order = lambda a: jnp.transpose(copies(a), (1, 3, 2, 0, 4))
        q_RBNHE = copies(q)
        q_BHNRE, k_BHNRE, v_BHNRE = cache_order(q), cache_order(k), cache_order(v)
        cached_k, cached_v = cached_k_BHMKE.astype(jnp.float32), cached_v_BHMKE.astype(jnp.float32)
        scale = 1.0 / np.sqrt(q.shape[-1])
        if self.neighbourhood:  # M = 1: every token against every cached token
            cached = jnp.einsum("bhnre,bhke->bhnrk", q_BHNRE, cached_k[:, :, 0]) * scale
        else:  # M = N: each token against its own column
            cached = jnp.einsum("bhnre,bhnke->bhnrk", q_BHNRE, cached_k) * scale
        own = jnp.einsum("bhnre,bhnre->bhnr", q_BHNRE, k_BHNRE)[..., None] * scale
        if self.neighbourhood:
            count, centre = self._offsets()
            actions_RBNK = actions_BK.reshape(rb // b, b, 1, -1)
            offsets_BHNRS = jnp.transpose(self._offset_scores(q_RBNHE, actions_RBNK), (1, 3, 2, 0, 4))
            index_NM = offset_index_NM(self.grid, self.neighbourhood)
            one_hot_NMS = jnp.asarray(index_NM[..., None] == np.arange(count), jnp.float32)
            by_token = jnp.einsum("bhnrs,nms->bhnrm", offsets_BHNRS, one_hot_NMS)
            # Cached keys are ordered (token, slot): each token's bias repeats over its slots.
            cached = cached + jnp.repeat(by_token, cached.shape[-1] // n, axis=-1)
            own = own + offsets_BHNRS[..., centre:centre + 1]
        cached = jnp.where(cached_mask_NK[:, None], cached, -jnp.inf)
        weights = jax.nn.softmax(jnp.concatenate([cached, own], axis=-1), axis=-1)
        if self.neighbourhood:
            out = jnp.einsum("bhnrk,bhke->bhnre", weights[..., :-1], cached_v[:, :, 0])
        else:
            out = jnp.einsum("bhnrk,bhnke->bhnre", weights[..., :-1], cached_v)
        out_RBNHE = jnp.transpose(out + weights[..., -1:] * v_BHNRE, (3, 0, 2, 1, 4))
        return self._finish(x_BND, out_RBNHE.reshape(q.shape).astype(q.dtype), modulation), (k, v)


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
