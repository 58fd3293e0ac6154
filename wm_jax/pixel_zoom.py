"""A world's zoom keys: the camera zooms the picture in pixels, and the world model carries on.

A bilinear zoom of the project's latents decodes to a blur within a few frames, and a world model
trained on them does not learn to zoom (BUILD_NOTES "Zoom (issue 19)"): the latent of a zoomed
picture is not the zoomed latent. A world whose bundle names zoom keys (world.json "zoom_keys":
{key: scale per frame}, "zoom_range": [min, max] scale from the start frame) therefore zooms the
camera itself, as `ModelConfig.key_moves` pans it: while such a key is held, the frame the new
one continues from (the cache's last latent, `KVCache.previous_Bhwc`) is replaced by the picture
zoomed about its centre (bilinear, in pixels, antialiased when it shrinks: `warp.antialiased`; what
a zoom out brings into view is the picture's mirror image, `warp.shift_and_zoom(fill="mirror")`),
encoded again. A `paint_uncovered_only` model then keeps that frame exactly (no pan key moves it),
which zoom keys require.

The camera is state (`ZoomState`), as in the recorder (`wm record image_pan`): its zoom level,
kept within `zoom_range` (a key at the limit does nothing), and the picture a run of zoom frames
started from (the anchor). Every frame of a run is that picture zoomed to the level reached, not
the frame before zoomed again: zooming in and back out returns the picture as it was, where
zooming each frame's decoded frame would blur it once per frame. A frame without a zoom key held
ends the run. A world that keeps its picture (`wm_jax.kept_pixels`) moves the same camera
(`Zoom.advance`) over the pixels it shows: the player sees the shown frame zoomed, not the
autoencoder's drawing of the zoomed latent.

Letters: B batch, H W C latent height, width, channels, K action entries.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from wm_jax import warp
from wm_jax.configs import ModelConfig

# Scales per frame a zoom key may have, and the widest range of the camera from the start frame.
SCALE_RANGE = (0.5, 2.0)
MAX_ZOOM = 16.0
# The recorder's camera: 7 levels of 1.1x each way from the start frame.
DEFAULT_RANGE = (1.1 ** -7, 1.1 ** 7)
# A key whose zoom the camera's limit cuts below this (in log scale) does nothing at all.
_LEAST_ZOOM = 1e-4


@struct.dataclass
class ZoomState:
    level_B: jnp.ndarray  # log scale of the view now against the start frame
    anchor_BHW3: jnp.ndarray  # the picture (pixels in [-1, 1]) the current run of zoom frames zooms
    anchor_level_B: jnp.ndarray  # the level the anchor was taken at
    anchored_B: jnp.ndarray  # bool: the last frame zoomed, so the anchor still is the picture


def zoom_problems(zoom_keys: Mapping[str, float], zoom_range, config: ModelConfig) -> list[str]:
    """Why a world's zoom keys and range do not fit its model (empty: they do)."""
    if not zoom_keys:
        return []
    problems = []
    moves = {k for k, *_ in config.key_moves}
    for key, scale in zoom_keys.items():
        if not config.action_space.knows(key):
            problems.append(f"zoom key {key!r} is not in the model's action space {config.action_keys}")
        if not (SCALE_RANGE[0] <= scale <= SCALE_RANGE[1] and scale != 1):
            problems.append(f"zoom key {key!r} has scale {scale!r} per frame; expected a number in "
                            f"[{SCALE_RANGE[0]}, {SCALE_RANGE[1]}] other than 1 (> 1 zooms in)")
        if key in moves:
            problems.append(f"zoom key {key!r} already moves the latent frame (ModelConfig.key_moves)")
    low, high = zoom_range
    if not (1 / MAX_ZOOM <= low <= 1 <= high <= MAX_ZOOM):
        problems.append(f"zoom_range {[low, high]} must hold 1 and lie within [{1 / MAX_ZOOM}, {MAX_ZOOM}]")
    if not config.paint_uncovered_only:
        problems.append("zoom keys need a model that keeps the moved frame where nothing is uncovered "
                        "(ModelConfig.paint_uncovered_only): this one would redraw the zoomed picture")
    if zoom_keys and config.still_region:
        problems.append(f"zoom keys zoom the whole picture, and this model keeps a still_region {config.still_region} "
                        "in place: a pixel zoom would move it")
    return problems


def log_scale_table(zoom_keys: Mapping[str, float], config: ModelConfig) -> np.ndarray:
    """[K]: each action entry's log zoom per frame; 0 for keys that do not zoom."""
    table = np.zeros((config.action_dim,), np.float32)
    for key, scale in zoom_keys.items():
        table[config.action_space.index(key)] = math.log(scale)
    return table


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: a static argument of jit
class Zoom:
    """A world's zoom keys through its autoencoder (encode / decode: frames in [-1, 1] <-> latents)."""

    log_scale_K: np.ndarray
    log_range: tuple[float, float]
    encode: Callable
    decode: Callable

    def empty_state(self, previous_BHWC) -> ZoomState:
        """The camera at the start frame (level 0, no run of zoom frames), for a rollout whose frame
        before is the latent previous_BHWC."""
        return start_state(jax.eval_shape(self.decode, previous_BHWC).shape)

    def advance(self, state: ZoomState, action_BK, fresh_anchor: Callable, seen: Callable, unchanged):
        """One frame of the camera: (the camera after this frame's keys, zooming_B, where zooming_B
        `seen(view)` of the view in pixels, the run's picture zoomed to the level reached, and
        `unchanged` elsewhere). fresh_anchor(): [B, H, W, C] the picture a run beginning at this
        frame zooms (called only when one begins); seen: what the caller makes of a view (the
        rollout encodes it). The rollout and the keeper (`kept_pixels`) move one camera this way."""
        requested_B = action_BK.astype(jnp.float32) @ jnp.asarray(self.log_scale_K)
        level_B = jnp.clip(state.level_B + requested_B, *self.log_range)
        zooming_B = jnp.abs(level_B - state.level_B) > _LEAST_ZOOM
        # A zoom key held at the limit leaves the picture and the run as they are.
        anchored_B = (requested_B != 0) & (zooming_B | state.anchored_B)

        def anchors(_):
            return jnp.where(state.anchored_B[:, None, None, None], state.anchor_BHW3, fresh_anchor())

        def zoomed(_):
            # Within a run (every frame anchored) no fresh anchor is needed.
            anchor_BHW3 = jax.lax.cond(jnp.all(state.anchored_B), lambda _: state.anchor_BHW3, anchors, None)
            anchor_level_B = jnp.where(state.anchored_B, state.anchor_level_B, state.level_B)
            return anchor_BHW3, anchor_level_B, seen(camera_view(anchor_BHW3, level_B - anchor_level_B)).astype(unchanged.dtype)

        # A frame without a zoom key pays for no anchor and no view.
        anchor_BHW3, anchor_level_B, view = jax.lax.cond(
            jnp.any(zooming_B), zoomed, lambda _: (state.anchor_BHW3, state.anchor_level_B, unchanged), None)
        where = lambda new, old: jnp.where(zooming_B.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
        state = ZoomState(where(level_B, state.level_B), where(anchor_BHW3, state.anchor_BHW3),
                          where(anchor_level_B, state.anchor_level_B), anchored_B)
        return state, zooming_B, where(view, unchanged)

    def __call__(self, state: ZoomState, previous_BHWC, action_BK) -> tuple[ZoomState, jnp.ndarray]:
        """(the camera after this frame's keys, the frame the new one continues from): the latent
        before, or where the camera zooms, its view encoded. A run's picture is the frame before
        decoded, as a world that redraws its frames showed it."""
        fresh = lambda: jnp.clip(self.decode(previous_BHWC), -1.0, 1.0)
        state, _, previous_BHWC = self.advance(state, action_BK, fresh, self.encode, previous_BHWC)
        return state, previous_BHWC


def camera_view(picture_BHWC, log_scale_B):
    """The camera's view of a picture zoomed by exp(log_scale) about its centre: bilinear,
    antialiased where it shrinks (`warp.antialiased`), the picture's mirror image beyond it."""
    no_shift_B2 = jnp.zeros((picture_BHWC.shape[0], 2), jnp.float32)
    return warp.shift_and_zoom(warp.antialiased(picture_BHWC, log_scale_B), no_shift_B2, log_scale_B, fill="mirror")


def start_state(anchor_shape) -> ZoomState:
    """The camera at the start frame (level 0, no run of zoom frames); its runs' pictures have
    anchor_shape [B, H, W, C]."""
    b = anchor_shape[0]
    return ZoomState(jnp.zeros((b,), jnp.float32), jnp.zeros(anchor_shape, jnp.float32), jnp.zeros((b,), jnp.float32),
                     jnp.zeros((b,), bool))


def make_zoom(zoom_keys: Mapping[str, float], zoom_range, config: ModelConfig, encode, decode) -> Zoom | None:
    """The camera of a world with zoom keys; None without any (its rollout runs exactly as before)."""
    if not zoom_keys:
        return None
    problems = zoom_problems(zoom_keys, zoom_range, config)
    if problems:
        raise ValueError("; ".join(problems))
    return Zoom(log_scale_table(zoom_keys, config), (math.log(zoom_range[0]), math.log(zoom_range[1])), encode, decode)
