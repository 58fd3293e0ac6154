"""What a world remembers of the picture its moves carried out of view.

A `paint_uncovered_only` world pans or turns by moving the frame before and painting the strip the
move uncovers; without memory a strip that comes back into view is painted again, differently (pan's
held-out revisits: 15 dB against the world's own earlier frame). With `SamplerConfig.memory` the
rollout keeps a canvas around the view, `margin` pixels beyond each edge, moved with every frame as
the keys move the picture: what a move uncovers is taken from the canvas where it has been seen
(`recalled`), and painted only where it has not. The canvas works in any pixel grid: the rollout keeps
one of latents, a keeper (`kept_pixels`) one of the pixels it showed, with the same moves scaled.

A move carries the canvas by whole pixels, exactly (anything else resamples, and resampling every
frame blurs); what falls off its far edge is forgotten, and a zoom forgets everything but the view (a
flat canvas cannot say where zoomed content was). A still mask (`still_hw`: a sprite fixed to the
screen, `wm_jax.warp`) is never written: the canvas keeps the scene it hides.

Letters: B batch, H W the canvas's height and width, h w the view's, C channels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class Canvas:
    content_BHWC: jnp.ndarray  # the view sits at [margin : margin + h, margin : margin + w]
    known_BHW1: jnp.ndarray  # 1 where the content has been seen, 0 where it never was
    margin: int = struct.field(pytree_node=False)
    wraps: bool = struct.field(pytree_node=False, default=False)  # columns close into a circle

    def view(self, h: int, w: int) -> tuple[jnp.ndarray, jnp.ndarray]:
        """(content [B, h, w, C], known [B, h, w, 1]) where the view is now."""
        m = self.margin
        return self.content_BHWC[:, m : m + h, m : m + w], self.known_BHW1[:, m : m + h, m : m + w]


def start(view_BhwC, margin: int, still_hw: np.ndarray | None = None, wraps: bool = False) -> Canvas:
    """A canvas that has seen only the view (but where `still_hw`)."""
    b, h, w, c = view_BhwC.shape
    canvas = Canvas(jnp.zeros((b, h + 2 * margin, w + 2 * margin, c), jnp.float32),
                    jnp.zeros((b, h + 2 * margin, w + 2 * margin, 1), jnp.float32), margin, wraps)
    return remembered(canvas, view_BhwC, still_hw)


def moved(canvas: Canvas, shift_B2, forget_B) -> Canvas:
    """The canvas carried by shift_B2 = (down, right) whole pixels (as `warp.shift_and_zoom` moves a
    frame); what comes in beyond its edges is unknown, and so is everything where forget_B."""
    shift_B2 = jnp.round(shift_B2).astype(jnp.int32)
    height, width = canvas.known_BHW1.shape[1:3]

    def carry(x_HWC, shift_2):
        return jnp.roll(x_HWC, (shift_2[0], shift_2[1]), axis=(0, 1))

    content = jax.vmap(carry)(canvas.content_BHWC, shift_B2)
    rows_BH = jnp.arange(height)[None] - shift_B2[:, :1]  # the row each output row came from
    cols_BW = jnp.arange(width)[None] - shift_B2[:, 1:]
    cols_inside_BW = ((cols_BW >= 0) & (cols_BW < width)) | canvas.wraps
    inside_BHW = ((rows_BH >= 0) & (rows_BH < height))[:, :, None] & cols_inside_BW[:, None, :]
    keep_BHW = inside_BHW & ~jnp.asarray(forget_B, bool)[:, None, None]
    known = jax.vmap(carry)(canvas.known_BHW1, shift_B2) * keep_BHW[..., None]
    return canvas.replace(content_BHWC=content, known_BHW1=known)


def carried(canvas: Canvas, view_BhwC, shift_B2, forget_B, uncovered_Bhw1, still_hw: np.ndarray | None = None):
    """One frame's memory: (the view with what its move uncovered recalled where seen, the canvas
    moved by the move and holding that view)."""
    canvas = moved(canvas, shift_B2, forget_B)
    view_BhwC = recalled(canvas, view_BhwC, uncovered_Bhw1)
    return view_BhwC, remembered(canvas, view_BhwC, still_hw)


def recalled(canvas: Canvas, view_BhwC, where_Bhw1):
    """The view with the canvas's content wherever `where` (what a move uncovered) and it is known."""
    content, known = canvas.view(*view_BhwC.shape[1:3])
    use = (where_Bhw1 > 0) & (known > 0)
    return jnp.where(use, content.astype(view_BhwC.dtype), view_BhwC)


def remembered(canvas: Canvas, view_BhwC, still_hw: np.ndarray | None = None) -> Canvas:
    """The canvas with the view written where it is now, except where `still_hw`."""
    h, w = view_BhwC.shape[1:3]
    m = canvas.margin
    content, known = view_BhwC.astype(jnp.float32), jnp.ones(view_BhwC.shape[:3] + (1,), jnp.float32)
    if still_hw is not None:
        old_content, old_known = canvas.view(h, w)
        still = np.asarray(still_hw, bool)[None, :, :, None]
        content, known = jnp.where(still, old_content, content), jnp.where(still, old_known, known)
    return canvas.replace(content_BHWC=canvas.content_BHWC.at[:, m : m + h, m : m + w].set(content),
                          known_BHW1=canvas.known_BHW1.at[:, m : m + h, m : m + w].set(known))
