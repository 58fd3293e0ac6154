"""A global shift-and-zoom of latent frames, and how to measure one from recorded transitions.

`ModelConfig.key_moves` models predict the clean frame as the previous frame *moved the way the
keys move the camera* plus a change: a turn or a pan is then one exact resampling instead of a
picture the network redraws (and blurs) every frame, and no key is the identity, exactly.

The map is separable (a shift per axis and one zoom about the centre), so it is two small
interpolation matrices per frame: out[i, j] = Σ R_y[i, h] · x[h, w] · R_x[j, w], bilinear. What a
move brings in from beyond the frame is filled by the border repeated (`fill="edge"`) or by the
frame's mirror image (`fill="mirror"`, reflected about the border as scipy's mode "reflect").
A whole-pixel shift without a zoom copies pixels exactly. A still mask ([H, W] bool, `still_HW`)
stays where it is: a sprite fixed to the screen, as a game's weapon is, does not move with the
camera, and what was behind it comes into view as a move carries the scene past it. A model holds
a box still (`ModelConfig.still_region`, `region_mask`); a world's keeper of pixels may hold the
sprite's own pixels (world.json "still_mask", `wm_jax.kept_pixels`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def source_positions(size: int, shift_B, log_scale_B):
    """[B, size]: the input position output pixel i reads, c + (i - c) / s - shift (c the centre,
    s = exp(log_scale)): a positive shift moves the content towards higher indices, s > 1
    magnifies it. Outside [0, size - 1]: content the move brings in from beyond the frame."""
    centre = (size - 1) / 2
    out_N = jnp.arange(size, dtype=jnp.float32)
    return centre + (out_N - centre) * jnp.exp(-log_scale_B)[:, None] - shift_B[:, None]


FILLS = ("edge", "mirror")


def _reflected(src_BN, size: int):
    """Positions outside the frame mapped onto its mirror images (period 2·size, each image
    reflected about the half-pixel beyond the border: ... b a | a b ... y z | z y ...)."""
    folded = jnp.mod(src_BN + 0.5, 2.0 * size)
    return jnp.where(folded < size, folded, 2.0 * size - folded) - 0.5


def interpolation_matrix(size: int, shift_B, log_scale_B, fill: str = "edge"):
    """[B, size, size]: row i holds the weights output pixel i takes from each input pixel
    (bilinear at `source_positions`; beyond the frame as `fill` says)."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    src_BN = source_positions(size, shift_B, log_scale_B)
    if fill == "mirror":
        src_BN = _reflected(src_BN, size)
    src_BN = jnp.clip(src_BN, 0.0, size - 1.0)
    low_BN = jnp.clip(jnp.floor(src_BN), 0, size - 2)
    frac_BN = src_BN - low_BN
    low = jax.nn.one_hot(low_BN.astype(jnp.int32), size, dtype=jnp.float32)
    high = jax.nn.one_hot(low_BN.astype(jnp.int32) + 1, size, dtype=jnp.float32)
    return (1.0 - frac_BN)[..., None] * low + frac_BN[..., None] * high


Region = tuple[int, int, int, int]  # (top, left, bottom, right): rows top..bottom-1, columns left..right-1


def region_mask(height: int, width: int, region: Region | tuple = ()) -> np.ndarray | None:
    """[H, W] bool: True inside `region`; None for no region (nothing held still)."""
    if not region:
        return None
    top, left, bottom, right = region
    mask = np.zeros((height, width), bool)
    mask[top:bottom, left:right] = True
    return mask


def shift_and_zoom(x_BHWC, shift_B2, log_scale_B, fill: str = "edge", still_HW: np.ndarray | None = None):
    """x moved by shift_B2 = (down, right) latent pixels and zoomed by exp(log_scale) about its
    centre; what comes in from beyond the frame as `fill` says ("edge" or "mirror"); x itself
    where `still_HW`."""
    h, w = x_BHWC.shape[1:3]
    rows_BHH = interpolation_matrix(h, shift_B2[:, 0], log_scale_B, fill)
    cols_BWW = interpolation_matrix(w, shift_B2[:, 1], log_scale_B, fill)
    moved = jnp.einsum("bih,bhwc,bjw->bijc", rows_BHH, x_BHWC.astype(jnp.float32), cols_BWW)
    if still_HW is None:
        return moved
    return jnp.where(np.asarray(still_HW, bool)[:, :, None], x_BHWC.astype(jnp.float32), moved)


def uncovered(height: int, width: int, shift_B2, log_scale_B, margin: int = 1, still_HW: np.ndarray | None = None):
    """[B, H, W, 1] float: 1 where the move brings in content from beyond the frame (the strip a
    pan uncovers, the ring a zoom out does) or, outside `still_HW`, from behind it (what its
    pixels hid: they did not move), grown by `margin` pixels into the frame; 0 elsewhere and
    where `still_HW`. No move: all 0."""
    def outside(size, shift_B):
        src_BN = source_positions(size, shift_B, log_scale_B)
        return (src_BN < 0) | (src_BN > size - 1)

    mask_BHW = outside(height, shift_B2[:, 0])[:, :, None] | outside(width, shift_B2[:, 1])[:, None, :]
    if still_HW is not None:
        # an output pixel whose bilinear source takes any weight from a still pixel shows what it hid
        rows_BHH = interpolation_matrix(height, shift_B2[:, 0], log_scale_B)
        cols_BWW = interpolation_matrix(width, shift_B2[:, 1], log_scale_B)
        still = jnp.asarray(still_HW, jnp.float32)
        mask_BHW = mask_BHW | (jnp.einsum("bih,hw,bjw->bij", rows_BHH, still, cols_BWW) > 0)
    mask_BHW = mask_BHW.astype(jnp.float32)
    if margin:
        window = (1, 2 * margin + 1, 2 * margin + 1)
        mask_BHW = jax.lax.reduce_window(mask_BHW, 0.0, jax.lax.max, window, (1, 1, 1), "SAME")
    if still_HW is not None:
        mask_BHW = jnp.where(np.asarray(still_HW, bool), 0.0, mask_BHW)
    return mask_BHW[..., None]


def antialiased(x_BHWC, log_scale_B):
    """x blurred for a zoom out by s = exp(log_scale) < 1, as a resampler that shrinks a picture
    averages its pixels (PIL's, `wm record image_pan`'s camera): a Gaussian of sigma
    sqrt(1/s^2 - 1) / 2 pixels, none at s = 1, which takes out the detail finer than the shrunk
    frame's pixels. Unchanged where s >= 1. Without it a zoom out aliases: at 1.1^-7 it is 1.79x as
    sharp as the recorder's own view of it (BUILD_NOTES session 27)."""
    sigma_B = jnp.sqrt(jnp.maximum(jnp.exp(-2.0 * log_scale_B) - 1.0, 0.0)) / 2.0

    def matrix(n):
        d = (jnp.arange(n)[:, None] - jnp.arange(n)[None]).astype(jnp.float32)
        k = jnp.exp(-0.5 * jnp.square(d[None] / jnp.maximum(sigma_B, 1e-3)[:, None, None]))
        return k / k.sum(-1, keepdims=True)

    return jnp.einsum("bih,bhwc,bjw->bijc", matrix(x_BHWC.shape[1]), x_BHWC.astype(jnp.float32), matrix(x_BHWC.shape[2]))


def gaussian_blur(x_NHWC, sigma: float):
    def matrix(n):
        k = np.exp(-0.5 * ((np.arange(n)[:, None] - np.arange(n)[None]) / sigma) ** 2)
        return jnp.asarray(k / k.sum(1, keepdims=True), jnp.float32)

    return jnp.einsum("ih,nhwc,jw->nijc", matrix(x_NHWC.shape[1]), x_NHWC, matrix(x_NHWC.shape[2]))


def best_move(previous_NHWC, next_NHWC, max_shift: int = 4, log_zooms=None, sigma: float = 1.0) -> dict:
    """The whole-pixel shift most transitions agree on, and the median zoom on top of it, mapping
    `previous` onto `next`.

    Each pair's best move is searched exhaustively (shifts in [-max_shift, max_shift]², zooms in
    `log_zooms`). The shift is a vote among the pairs' best unzoomed moves, not one least-squares
    fit: a recording mixes full moves with blocked ones (a camera at an edge), and a fit averages
    them. The zoom is the median of the pairs' best zooms at that shift. Both sides are compared
    blurred by a Gaussian of `sigma` latent pixels: a zoom resamples, which blurs, and unblurred
    least squares would pick a zoom for its blur alone. Searched, not descended: the error is
    bumpy in the shift.

    Returns {"down", "right", "shift_share", "log_zoom", "shift_error", "error", "copy_error"}:
    the shift and the share of pairs that voted for it, the zoom, and the mean squared error
    (blurred) of the shift alone, of the shift with the zoom and of no move."""
    log_zooms = np.linspace(-0.2, 0.2, 41) if log_zooms is None else np.asarray(log_zooms, np.float32)
    shifts = np.arange(-max_shift, max_shift + 1, dtype=np.float32)
    grid = np.stack(np.meshgrid(shifts, shifts, log_zooms, indexing="ij"), -1).reshape(-1, 3).astype(np.float32)
    previous = jnp.asarray(previous_NHWC, jnp.float32)
    target = gaussian_blur(jnp.asarray(next_NHWC, jnp.float32), sigma)
    n = previous.shape[0]

    def errors_N(move):
        moved = shift_and_zoom(previous, jnp.broadcast_to(move[:2], (n, 2)), jnp.broadcast_to(move[2], (n,)))
        return jnp.mean((gaussian_blur(moved, sigma) - target) ** 2, axis=(1, 2, 3))

    errors_MN = np.asarray(jax.jit(lambda moves: jax.lax.map(errors_N, moves))(jnp.asarray(grid)))
    unzoomed = np.flatnonzero(grid[:, 2] == 0.0)
    picks, counts = np.unique(unzoomed[np.argmin(errors_MN[unzoomed], axis=0)], return_counts=True)
    shift_move = int(picks[np.argmax(counts)])
    down, right = (float(v) for v in grid[shift_move, :2])
    same_shift = np.flatnonzero((grid[:, 0] == down) & (grid[:, 1] == right))
    log_zoom = float(np.median(grid[same_shift[np.argmin(errors_MN[same_shift], axis=0)], 2]))
    zoomed = same_shift[np.argmin(np.abs(grid[same_shift, 2] - log_zoom))]
    return {"down": down, "right": right, "shift_share": float(counts.max() / n), "log_zoom": round(float(grid[zoomed, 2]), 4),
            "shift_error": float(errors_MN[shift_move].mean()), "error": float(errors_MN[zoomed].mean()),
            "copy_error": float(np.asarray(errors_N(jnp.zeros(3))).mean())}
