"""The frames a world that keeps its picture shows: pixels kept, only what comes into view decoded.

A `ModelConfig.paint_uncovered_only` model makes each frame as the frame before moved the way the
keys held move the camera (whole latent pixels), plus a painted strip where the move uncovers the
picture; with no key it is the frame before, exactly. Its latents keep the picture, but decoding
them draws the whole picture through the autoencoder again every frame, so what the player sees
is the autoencoder's reconstruction of it, never the picture: held-out photographs lose their
detail (pan's start pictures: 22.6 dB, 0.44x the real sharpness) and a frame that did not change
scores ~33 dB against itself (BUILD_NOTES session 16, `experiments.copy_ceiling`).

So such a world shows the pixels it was given for as long as it keeps them: the frame shown
before, shifted by the same move in pixels (a whole-pixel shift copies pixels exactly), and the
decoded frame wherever the model has painted: what a move uncovered, now or in an earlier frame
(a mask carried along with the pixels, `KeptFrame.painted`). Painted parts are shown as decoding
draws them in the whole frame, so strips painted in different frames meet without a seam. The
latent rollout is unchanged; only the way its latents become the frames shown. A world's zoom keys
(`wm_jax.pixel_zoom`) zoom the camera in pixels: the keeper moves the same camera over the pixels it
shows (`Keeper.zoom`), so a zoom frame shows the frame the run of zoom frames began from, zoomed to
the level reached (resampled once from that frame, never frame after frame), given pixels as given
(and what a zoom out brings into view as their mirror image, the rollout's fill) and painted ones
decoded. So does a camera that zooms a
photograph at the world's resolution (`wm record image_pan`'s e and q): against its zoomed views a
zoom in of the given picture is exact. A zoom the model makes in its latents (a zoom in `key_moves`)
is decoded whole, and counts as painted from then on.

With `SamplerConfig.memory` the keeper also keeps a canvas of the pixels it showed around the
view (`wm_jax.memory`), as the rollout keeps one of latents: what a move brings back into view is
shown as it was shown before, given pixels as given, painted ones as painted.

A model that holds a box still (`ModelConfig.still_region`: a game's weapon) keeps that box of
its latents as the rollout began, so decoding it never shows the scene a turn carries past. The
keeper holds still only the sprite's own pixels (a world's still mask, world.json "still_mask",
found by `experiments.still_region_probe`; the box itself without one): in the rest of the box it
shows the scene's pixels moved as everywhere else, recalled from memory where the sprite hid them
and, where never seen, the pixel shown there before (never the box's stale decoding).

A keeper that matches the picture (world.json "match_picture", `Keeper.match_picture`) shows the
painted parts with the given picture's contrast and grain, as a compositor matches an inserted
element to the plate: each colour channel's spread about the painted parts' mean raised to the
picture's (never lowered), then the painted parts' detail (the frame less its Gaussian blur of
`DETAIL_SIGMA` pixels) scaled to the picture's detail energy, each gain clipped to its range; then
the painted pixels beside a given one are blurred (`FEATHER_PX`, `feathered`), so that the seam
between them is not a hard edge. The picture is the frame the world was given (a start image; in
teacher forcing each real frame before), measured once outside the still sprite and carried with
the frame (`PictureStatistics`). The small painters paint one texture of one contrast whatever the
picture (BUILD_NOTES session 25) and the autoencoder draws it softer still; the rule gives the
painted parts the picture's statistics, not its content.

Frames in [-1, 1]. Letters: B batch, T frames, H W pixel height and width, h w c latent ones,
K action entries.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from wm_jax import memory, model, pixel_zoom, warp
from wm_jax.configs import ModelConfig


# Matching the picture (`Keeper.match_picture`): the blur whose residue is a frame's detail, and the
# range each gain is clipped to, so that a nearly flat picture or painted part is not blown up.
# Contrast is only raised: a dark start frame (doom's held-out starts have 0.61x a real frame's colour
# spread) would otherwise flatten what is painted beside it below real frames' (BUILD_NOTES session 26).
DETAIL_SIGMA = 1.0
CONTRAST_GAIN_RANGE = (1.0, 2.0)
DETAIL_GAIN_RANGE = (1.0 / 3.0, 3.0)
# The painted pixels this close to a given one are blurred: the seam where the picture meets what is
# painted beside it is otherwise a hard edge, 5-14x as sharp as either side (doom, session 26).
FEATHER_PX = 2


@struct.dataclass
class PictureStatistics:
    """What the painted parts are matched to: the given picture's statistics outside the still sprite."""

    std_B3: jnp.ndarray  # each colour channel's standard deviation
    detail_B: jnp.ndarray  # mean squared detail (`detail`) per pixel and channel


@struct.dataclass
class KeptFrame:
    pixels_BHW3: jnp.ndarray  # the frame shown last
    painted_BHW1: jnp.ndarray  # 1 where it shows what the model painted, 0 where the pixels it was given
    # With the keeper's memory: pixels and painted mask around the view, channels 0-2 and 3.
    canvas: "memory.Canvas | None" = None
    # With a keeper that matches the picture: the given picture's statistics.
    picture: "PictureStatistics | None" = None
    # With a world's zoom keys: the camera over the shown pixels; its runs zoom pixels and painted mask.
    camera: "pixel_zoom.ZoomState | None" = None


def given(frames_BHW3, keeper: "Keeper | None" = None) -> KeptFrame:
    """A frame the world was given (a start image, a real frame): nothing painted; with a keeper
    that remembers (`Keeper.memory`), the canvas has seen it; with one that matches the picture
    (`Keeper.match_picture`), its statistics are measured; with zoom keys, the camera is at its start."""
    pixels = jnp.asarray(frames_BHW3, jnp.float32)
    kept = KeptFrame(pixels, jnp.zeros(pixels.shape[:-1] + (1,), jnp.float32))
    if keeper is not None and keeper.match_picture:
        kept = kept.replace(picture=picture_statistics(pixels, keeper.still_HW))
    if keeper is not None and keeper.zoom is not None:
        kept = kept.replace(camera=pixel_zoom.start_state(pixels.shape[:-1] + (4,)))
    if keeper is None or not keeper.memory:
        return kept
    return kept.replace(canvas=memory.start(_stacked(kept), keeper.memory, keeper.still_HW, keeper.memory_wraps))


def detail(x_BHW3):
    """The frame less its Gaussian blur of `DETAIL_SIGMA` pixels: its finest texture and edges."""
    return x_BHW3 - warp.gaussian_blur(x_BHW3, DETAIL_SIGMA)


def _masked_mean(x_BHWC, mask_BHW1):
    """Per example and channel: the mean of x where the mask is 1 -> [B, C] (0 where nothing is)."""
    return jnp.sum(x_BHWC * mask_BHW1, axis=(1, 2)) / jnp.maximum(jnp.sum(mask_BHW1, axis=(1, 2)), 1.0)


def picture_statistics(pixels_BHW3, still_HW: np.ndarray | None = None) -> PictureStatistics:
    """The statistics of a given picture that painted parts are matched to, outside the still sprite."""
    mask = jnp.ones(pixels_BHW3.shape[:-1] + (1,), jnp.float32)
    if still_HW is not None:
        mask = mask * jnp.asarray(~np.asarray(still_HW, bool), jnp.float32)[None, :, :, None]
    mean_B3 = _masked_mean(pixels_BHW3, mask)
    std_B3 = jnp.sqrt(_masked_mean(jnp.square(pixels_BHW3 - mean_B3[:, None, None]), mask))
    return PictureStatistics(std_B3, jnp.mean(_masked_mean(jnp.square(detail(pixels_BHW3)), mask), axis=-1))


def matched_to_picture(decoded_BHW3, painted_BHW1, picture: PictureStatistics):
    """The decoded frame with its painted parts given the picture's contrast, then its grain: each
    channel's spread about the painted parts' mean, then their detail energy, scaled towards the
    picture's (gains clipped to CONTRAST_GAIN_RANGE, DETAIL_GAIN_RANGE). The gains are measured on
    the painted parts alone; the whole frame is returned changed, and the caller shows it only there."""
    tiny = 1e-6
    mean_B3 = _masked_mean(decoded_BHW3, painted_BHW1)[:, None, None]
    std_B3 = jnp.sqrt(_masked_mean(jnp.square(decoded_BHW3 - mean_B3), painted_BHW1))
    contrast_B3 = jnp.clip(picture.std_B3 / (std_B3 + tiny), *CONTRAST_GAIN_RANGE)
    x = mean_B3 + (decoded_BHW3 - mean_B3) * contrast_B3[:, None, None]
    detail_BHW3 = detail(x)
    energy_B = jnp.mean(_masked_mean(jnp.square(detail_BHW3), painted_BHW1), axis=-1)
    gain_B = jnp.clip(jnp.sqrt(picture.detail_B / (energy_B + tiny)), *DETAIL_GAIN_RANGE)
    return jnp.clip(x + (gain_B[:, None, None, None] - 1.0) * detail_BHW3, -1.0, 1.0)


def feathered(pixels_BHW3, painted_BHW1):
    """The frame with its painted pixels within FEATHER_PX of a given one blurred (`DETAIL_SIGMA`),
    so the seam between what was given and what was painted is not a hard edge; given pixels stay."""
    r = 2 * FEATHER_PX + 1
    near_given = jax.lax.reduce_window(1.0 - painted_BHW1, 0.0, jax.lax.max, (1, r, r, 1), (1, 1, 1, 1), "SAME")
    return jnp.where((painted_BHW1 * near_given) > 0, warp.gaussian_blur(pixels_BHW3, DETAIL_SIGMA), pixels_BHW3)


def _stacked(kept: KeptFrame):
    return jnp.concatenate([kept.pixels_BHW3, kept.painted_BHW1], axis=-1)


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: a static argument of jit
class Keeper:
    shift_K2: np.ndarray  # (down, right) in pixels that each action entry moves the picture
    zooms_K: np.ndarray  # 1.0 for the action entries that zoom the latent frame (`key_moves`)
    decode: Callable  # latents [B, h, w, c] -> frames [B, H, W, 3]
    memory: int = 0  # pixels beyond each edge of the view remembered (`SamplerConfig.memory` x downscale)
    memory_wraps: bool = False  # the remembered columns close into a circle (`SamplerConfig.memory_wraps`)
    still_HW: np.ndarray | None = None  # pixels kept where they are: a sprite fixed to the screen
    stale_HW: np.ndarray | None = None  # pixels whose latents the model holds still around a finer still_HW
    match_picture: bool = False  # painted parts shown with the given picture's contrast and grain
    zoom: "pixel_zoom.Zoom | None" = None  # the world's zoom keys: the camera zooms the pixels shown

    def show(self, kept: KeptFrame, latent_Bhwc, action_BK) -> KeptFrame:
        """The frame shown after `latent`: the kept pixels moved, the painted parts decoded."""
        decoded = jnp.clip(self.decode(latent_Bhwc), -1.0, 1.0)
        kept, camera_zooming_B = self._zoomed(kept, action_BK)
        action = action_BK.astype(jnp.float32)
        shift_B2 = action @ jnp.asarray(self.shift_K2)
        no_zoom_B = jnp.zeros(shift_B2.shape[:1], jnp.float32)
        move = lambda x: warp.shift_and_zoom(x, shift_B2, no_zoom_B, "mirror", self.still_HW)
        uncovered = warp.uncovered(*kept.pixels_BHW3.shape[1:3], shift_B2, no_zoom_B, margin=0, still_HW=self.still_HW)
        latent_zoomed_B = (action @ jnp.asarray(self.zooms_K)) > 0
        zoomed_B111 = latent_zoomed_B[:, None, None, None]
        painted = jnp.maximum(jnp.maximum(move(kept.painted_BHW1), uncovered), zoomed_B111.astype(jnp.float32))
        painted = jnp.where(painted > 0.5, 1.0, 0.0)  # a whole-pixel move keeps the mask binary; rounding guards it
        moved = move(kept.pixels_BHW3)
        if self.match_picture:
            if kept.picture is None:
                raise ValueError("a keeper that matches the picture needs the given picture's statistics: make the "
                                 "kept frame with kept_pixels.given(frames, keeper)")
            decoded = matched_to_picture(decoded, painted, kept.picture)
        pixels = jnp.where(painted > 0, decoded, moved)
        if self.stale_HW is not None:
            behind_sprite = (self.stale_HW & ~self.still_HW)[None, :, :, None]
            pixels = jnp.where(behind_sprite & ~zoomed_B111, jnp.where(uncovered > 0, kept.pixels_BHW3, moved), pixels)
        if self.match_picture and FEATHER_PX:
            pixels = feathered(pixels, painted)
        shown = KeptFrame(pixels, painted, picture=kept.picture, camera=kept.camera)
        if kept.canvas is None:
            return shown
        forget_B = latent_zoomed_B if camera_zooming_B is None else latent_zoomed_B | camera_zooming_B
        recalled, canvas = memory.carried(kept.canvas, _stacked(shown), shift_B2, forget_B, uncovered, self.still_HW)
        return KeptFrame(recalled[..., :3], recalled[..., 3:], canvas, kept.picture, kept.camera)

    def _zoomed(self, kept: KeptFrame, action_BK) -> tuple[KeptFrame, jnp.ndarray | None]:
        """(the kept frame as this frame's zoom keys show it, where the camera zooms; None without
        zoom keys). Where it zooms: the run's frame zoomed, pixels and painted mask; painted is every
        pixel that takes most of its weight from painted ones (a zoom out's antialiasing spreads the
        mask thinly far beyond them). What a zoom out brings into view is the frame's mirror image in
        pixels, kept as given: the rollout fills it with the same mirror and the model paints nothing
        there (zoom keys are not `key_moves`), so decoding and matching it would only blur and tint it."""
        if self.zoom is None:
            return kept, None
        if kept.camera is None:
            raise ValueError("a keeper with zoom keys needs the camera: make the kept frame with kept_pixels.given(frames, keeper)")
        stacked = _stacked(kept)
        camera, zooming_B, view = self.zoom.advance(kept.camera, action_BK, lambda: stacked, lambda v: v, stacked)
        painted = jnp.where(view[..., 3:] > 0.5, 1.0, 0.0)
        zooming_B111 = zooming_B[:, None, None, None]
        return kept.replace(pixels_BHW3=view[..., :3], painted_BHW1=jnp.where(zooming_B111, painted, kept.painted_BHW1),
                            camera=camera), zooming_B

    def frames(self, kept: KeptFrame, latents_BThwc, actions_BTK) -> tuple[KeptFrame, jnp.ndarray]:
        """(the last frame kept, [B, T, H, W, 3] the frames shown) for a rollout's latents."""
        def body(kept, inputs):
            kept = self.show(kept, *inputs)
            return kept, kept.pixels_BHW3

        kept, frames_TBHW3 = jax.lax.scan(body, kept, (jnp.swapaxes(latents_BThwc, 0, 1), jnp.swapaxes(actions_BTK, 0, 1)))
        return kept, jnp.swapaxes(frames_TBHW3, 0, 1)


def make_keeper(config: ModelConfig, downscale: int, decode, zoom: "pixel_zoom.Zoom | None" = None,
                memory: int = 0, still_mask: np.ndarray | None = None, memory_wraps: bool = False,
                match_picture: bool = False) -> Keeper | None:
    """The keeper of a `paint_uncovered_only` model whose keys' moves are whole pixels; None for any
    other model (its frames are its latents decoded). downscale: pixels per latent pixel; zoom: the
    world's zoom keys (`pixel_zoom.make_zoom`), whose camera the keeper moves over its pixels; memory:
    latent pixels beyond each edge of the view remembered (`SamplerConfig.memory`, in a circle where
    `memory_wraps`); still_mask: [H, W] bool, the pixels of the sprite inside the model's
    still_region (default: all of it); match_picture: painted parts shown with the given picture's
    contrast and grain (`matched_to_picture`)."""
    if not config.paint_uncovered_only:
        return None
    moves_K3 = model.key_move_table(config)
    shift_K2 = moves_K3[:, :2] * downscale
    if not np.allclose(shift_K2, np.round(shift_K2)):
        return None  # a fractional shift resamples: keeping the pixels would blur them frame after frame
    zooms_K = (moves_K3[:, 2] != 0).astype(np.float32)
    box_HW = still_box(config, downscale)
    still_HW, stale_HW = box_HW, None
    if still_mask is not None:
        problems = still_mask_problems(still_mask, box_HW)
        if problems:
            raise ValueError("still_mask: " + "; ".join(problems))
        still_HW, stale_HW = np.asarray(still_mask, bool), box_HW
    return Keeper(np.round(shift_K2).astype(np.float32), zooms_K, decode, memory * downscale, memory_wraps, still_HW, stale_HW,
                  match_picture, zoom)


def still_box(config: ModelConfig, downscale: int) -> np.ndarray | None:
    """[H, W] bool: the model's `still_region` in pixels (downscale: pixels per latent pixel), or None."""
    h, w = config.latent_size
    return warp.region_mask(h * downscale, w * downscale, tuple(v * downscale for v in config.still_region))


def still_mask_problems(still_mask, box_HW: np.ndarray | None) -> list[str]:
    """Why a sprite's pixel mask does not fit a model's still box (in pixels; None: the model holds
    none) (empty: it fits). The keeper shows the box's other pixels moved, so the mask must lie in it."""
    if box_HW is None:
        return ["the model holds no still_region, so no sprite stays put for a still mask to outline"]
    mask = np.asarray(still_mask)
    if mask.shape != box_HW.shape:
        return [f"{mask.shape[0] if mask.ndim else 0}x{mask.shape[1] if mask.ndim > 1 else 0} pixels, "
                f"the world's frames are {box_HW.shape[0]}x{box_HW.shape[1]}"]
    if not mask.any():
        return ["no pixel is marked"]
    outside = np.argwhere(mask & ~box_HW)
    if len(outside):
        return [f"{len(outside)} marked pixels lie outside the model's still_region (first at row {outside[0][0]}, "
                f"column {outside[0][1]}): the model moves its latents there"]
    return []


def shown_frames(keeper: Keeper | None, decode, kept: KeptFrame, latents_BThwc, actions_BTK) -> tuple[KeptFrame, jnp.ndarray]:
    """A rollout's latents as the frames the player sees: (the last frame kept, frames [B, T, H, W, 3]),
    decoded, or kept (`Keeper.frames`) from the frame before them. actions[:, t] is the input that
    led to latents[:, t]."""
    if keeper is None:
        frames = decode(latents_BThwc)
        return given(frames[:, -1]), frames
    return keeper.frames(kept, latents_BThwc, actions_BTK)


def shown_after_each(keeper: Keeper | None, decode, before_BTHW3, latents_BThwc, actions_BTK):
    """Each latent as the frame shown after its own frame before, a given one (teacher forcing:
    the real frames) -> [B, T, H, W, 3]."""
    if keeper is None:
        return decode(latents_BThwc)
    b, t = latents_BThwc.shape[:2]
    flat = lambda x: jnp.reshape(x, (b * t,) + tuple(x.shape[2:]))
    shown = keeper.show(given(flat(jnp.asarray(before_BTHW3, jnp.float32)), keeper), flat(latents_BThwc), flat(actions_BTK)).pixels_BHW3
    return shown.reshape((b, t) + shown.shape[1:])
