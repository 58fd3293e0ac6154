"""What a new frame reads of earlier ones: a preallocated ring buffer of the last W frames'
temporal-attention keys and values per layer, and the last frame's input latent (which
`ModelConfig.previous_frame_input` models feed to the new frame's patch embedding).

Letters: L temporal layers, B batch, H heads, N tokens per frame, W slots, E head dim,
h w c latent height, width, channels.

Keys are stored before RoPE; the reader rotates them by their age (see `wm_jax.rope`), so the
positions the model sees never grow with the length of a rollout. Writing a frame overwrites
the oldest slot: memory is constant however long the rollout runs.

Each layer's keys and values are a buffer of their own, laid out [B, H, N, W, E], the order in
which temporal attention reads them (`TemporalBlock.stream`: one small matmul per head and token
over the W slots, or one per head over all N·W cached tokens with a neighbourhood), so attention
reads them where they lie. Stored slot-major in one [L, B, W, N, H, E] buffer, every frame paid a
transposing copy of the whole cache before attention could read it (and a slice of a stacked
buffer is a copy too), a cost that follows the window's size, not how full it is (issue 20).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class KVCache:
    k_BHNWE: tuple[jnp.ndarray, ...]  # one [B, H, N, W, E] buffer per temporal layer
    v_BHNWE: tuple[jnp.ndarray, ...]
    frame_W: jnp.ndarray  # int32: index of the frame held by each slot, -1 when empty
    count: jnp.ndarray  # int32 scalar: frames written so far = index of the next frame
    previous_Bhwc: jnp.ndarray  # the input latent of the last frame written; zeros before any

    @property
    def window(self) -> int:
        return self.frame_W.shape[0]

    @property
    def write_slot(self) -> jnp.ndarray:
        return self.count % self.window

    def offsets(self) -> tuple[jnp.ndarray, jnp.ndarray]:
        """For the frame about to be generated: (how many frames ago each slot was written, valid)."""
        return self.count - self.frame_W, self.frame_W >= 0

    def write(self, k_LBNHE, v_LBNHE, latent_Bhwc) -> "KVCache":
        """Append one frame's keys and values [L, B, N, H, E] (and its input latent), evicting
        the oldest."""
        slot = self.write_slot
        put = lambda buffers, new_LBNHE: tuple(
            buffer.at[:, :, :, slot].set(jnp.swapaxes(new_BNHE, 1, 2).astype(buffer.dtype))
            for buffer, new_BNHE in zip(buffers, new_LBNHE))
        return KVCache(
            k_BHNWE=put(self.k_BHNWE, k_LBNHE),
            v_BHNWE=put(self.v_BHNWE, v_LBNHE),
            frame_W=self.frame_W.at[slot].set(self.count),
            count=self.count + 1,
            previous_Bhwc=latent_Bhwc.astype(self.previous_Bhwc.dtype),
        )

    @property
    def nbytes(self) -> int:
        return sum(int(a.size) * a.dtype.itemsize for a in jax.tree_util.tree_leaves(self))


def empty(layers: int, batch: int, window: int, tokens: int, heads: int, head_dim: int,
          latent_hwc: tuple[int, int, int], dtype=jnp.float32) -> KVCache:
    shape = (batch, heads, tokens, window, head_dim)
    return KVCache(
        k_BHNWE=tuple(jnp.zeros(shape, dtype) for _ in range(layers)),
        v_BHNWE=tuple(jnp.zeros(shape, dtype) for _ in range(layers)),
        frame_W=jnp.full((window,), -1, jnp.int32),
        count=jnp.zeros((), jnp.int32),
        previous_Bhwc=jnp.zeros((batch, *latent_hwc), jnp.float32),
    )
