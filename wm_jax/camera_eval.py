"""Camera worlds (`wm eval --camera`): does a pan world move its view the pressed key's way, keep
what scrolled out of view, and zoom as the real frames do? Scored on held-out episodes, best
recorded by `wm record image_pan --script ...` (moves out and back from each photograph's
centre), with `wm_jax.motion`'s estimators on real and generated frames alike.

Letters: T frames of an episode, N transitions, H W frame size.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import actions as actions_lib
from wm_jax import evaluation, image_metrics, motion

ZOOM_TOLERANCE = 0.1  # a zoom is "the key's" when within 10% of the real frames' scale for that key
ZOOM_MIN = 1.02  # a key set zooms when its real frames' median scale is beyond 2% per frame


def zoom_by_key(keys_N, real_scale_N, generated_scale_N, direction_hit_N=None) -> dict:
    """Per key set (names joined with '+', "" for none): transitions, geometric-mean scale per
    frame of the real and the generated frames and, for key sets that zoom in the real frames
    (median scale beyond ZOOM_MIN either way), the share of transitions whose scale goes the
    key's way (at least half the key's real median zoom, in log scale) and the share that does
    so within ZOOM_TOLERANCE of that median; with direction_hit_N, the share of transitions whose
    phase-correlation direction is the real one (the pan keys' score)."""
    keys = np.asarray(keys_N)
    real, gen = np.log(np.asarray(real_scale_N, np.float64)), np.log(np.asarray(generated_scale_N, np.float64))
    report = {}
    for key in sorted(set(keys.tolist()), key=lambda k: (k == "", k)):
        m = keys == key
        row = {"transitions": int(m.sum()), "scale_real": float(np.exp(real[m].mean())), "scale_generated": float(np.exp(gen[m].mean()))}
        if direction_hit_N is not None:
            row["direction_accuracy"] = float(np.mean(np.asarray(direction_hit_N)[m]))
        reference = float(np.median(real[m]))
        if abs(reference) >= np.log(ZOOM_MIN):
            row["zooms"] = "in" if reference > 0 else "out"
            row["scale_key"] = float(np.exp(reference))
            for name, x in (("real", real[m]), ("generated", gen[m])):
                way = np.sign(x) == np.sign(reference)
                way &= np.abs(x) >= abs(reference) / 2
                close = np.abs(np.exp(x - reference) - 1) <= ZOOM_TOLERANCE
                row[f"zoom_way_{name}"] = float(np.mean(way))
                row[f"zoom_way_within_10pct_{name}"] = float(np.mean(way & close))
        report[key] = row
    return report


def camera_motion(dataset_dir: str, config, params, sampler, *, encode, decode, rng, progress: bool = True, zoom=None,
                  keeper=None) -> dict:
    """Pan worlds on held-out episodes (best: `wm record image_pan --script ...`, whose moves go
    out and back from each photograph's centre). Each episode is generated from its first real
    frame under its recorded keys.

    Direction: a generated transition matches when its phase-correlation direction is the real
    transition's (from the centre the camera never meets an edge, so that is the pressed key's).
    Revisit: wherever the real camera comes back to a view it showed earlier, at most
    `config.window - 1` frames before, the pixels that scrolled out of view in between and back
    in are compared with the real frame (PSNR) and with the model's own frame from before they
    left (did it keep what it showed?); beside them, the pixels at the farthest point that the
    earlier view did not show (the model can only invent those), the yardstick.
    Zoom (`e`/`q` in `image_pan`): `zoom_scale` of every real and generated transition, reported
    per key set beside the pan keys' direction accuracy (`per_key`, see `zoom_by_key`), and over
    all transitions of the key sets that zoom in the real frames (`zoom`).
    """
    from tqdm.auto import tqdm

    from wm_jax.data.episode_store import EpisodeStore

    store = EpisodeStore(dataset_dir)  # its actions are in the project's vocabulary (actions.DEFAULT)
    hits, moving_hits = [], []
    revisit_se, recall_se, fresh_se, revisits = [], [], [], []
    key_names, real_scales, gen_scales = [], [], []
    for episode in tqdm(range(len(store)), desc="camera motion", disable=not progress):
        frames, actions_TK = store.read_clip(episode, 0, int(store.lengths[episode]))
        real = np.asarray(motion.frames_as_float(frames))
        gen = evaluation.autoregressive_frames(params, jnp.asarray(real)[None], jnp.asarray(actions_TK)[None], jax.random.fold_in(rng, episode),
                                               config=config, sampler=sampler, encode=encode, decode=decode, zoom=zoom, keeper=keeper)[0]
        gen = np.concatenate([real[:1], np.clip(np.asarray(gen), -1, 1)])
        real_shifts = motion.phase_shift(real[:-1], real[1:])
        real_codes = motion.direction_code(real_shifts)
        gen_codes = motion.direction_code(motion.phase_shift(gen[:-1], gen[1:]))
        hits.extend(gen_codes == real_codes)
        moving_hits.extend((gen_codes == real_codes)[real_codes != motion.NO_MOTION])
        key_names.extend("+".join(actions_lib.DEFAULT.decode(a)) for a in np.asarray(actions_TK)[1:])
        real_scales.append(motion.zoom_scale(real[:-1], real[1:]))
        gen_scales.append(motion.zoom_scale(gen[:-1], gen[1:]))
        offsets = np.concatenate([[[0, 0]], np.cumsum(real_shifts, axis=0)])
        for t, s_ in _returns(real, offsets, config.window - 1):
            out_and_back, fresh_mask, farthest = _revisit_masks(offsets[s_:t + 1], real.shape[1:3])
            if out_and_back.any():
                revisit_se.append(((gen[t] - real[t]) ** 2)[out_and_back].mean())
                recall_se.append(((gen[t] - gen[s_]) ** 2)[out_and_back].mean())
                fresh_se.append(((gen[s_ + farthest] - real[s_ + farthest]) ** 2)[fresh_mask].mean())
                revisits.append({"episode": episode, "from": int(s_), "to": int(t), "pixels": int(out_and_back.sum())})
    per_key = zoom_by_key(key_names, np.concatenate(real_scales) if real_scales else [], np.concatenate(gen_scales) if gen_scales else [],
                          hits)
    zooming = {k: row for k, row in per_key.items() if "zooms" in row}
    count = sum(row["transitions"] for row in zooming.values())
    zoom = {"keys": sorted(zooming), "transitions": count}
    for field in ("zoom_way_real", "zoom_way_generated", "zoom_way_within_10pct_real", "zoom_way_within_10pct_generated"):
        zoom[field] = sum(row[field] * row["transitions"] for row in zooming.values()) / count if count else float("nan")

    return {
        "dataset": dataset_dir,
        "episodes": len(store),
        "transitions": len(hits),
        "moving_transitions": len(moving_hits),
        "direction_accuracy_moving": float(np.mean(moving_hits)) if moving_hits else float("nan"),
        "direction_accuracy_all": float(np.mean(hits)) if hits else float("nan"),
        "revisits": len(revisits),
        "revisit_psnr": _pooled_psnr(revisit_se),
        "revisit_psnr_vs_own_earlier_frame": _pooled_psnr(recall_se),
        "never_seen_psnr": _pooled_psnr(fresh_se),
        "revisit_examples": revisits[:8],
        "per_key": per_key,
        "zoom": zoom,
    }


def _pooled_psnr(squared_errors) -> float:
    """PSNR (range 2) of the mean of per-revisit mean squared errors; +inf for an exact match,
    nan when there was nothing to compare."""
    if not squared_errors:
        return float("nan")
    return float(image_metrics.psnr_from_mse(np.mean(squared_errors)))


def _returns(real, offsets_T2, max_gap: int):
    """(t, s) pairs: at frame t the real view is back where it was at frame s (same camera offset,
    same pixels), having moved away in between, with t - s <= max_gap; the nearest s per t."""
    for t in range(len(real)):
        for s_ in range(t - 2, max(-1, t - max_gap - 1), -1):
            back = (offsets_T2[t] == offsets_T2[s_]).all() and np.abs(real[t] - real[s_]).max() < 1e-6
            moved = (offsets_T2[s_ + 1:t] != offsets_T2[s_]).any()
            if back and moved:
                yield t, s_
                break


def _revisit_masks(offsets_T2, size):
    """For a stretch whose last view equals its first: (pixels of the last frame that were out of
    view at some frame in between, pixels of the farthest frame that the first view does not
    show, the farthest frame's index within the stretch). Offsets are cumulative phase shifts:
    a pixel (y, x) of one view is at (y + dy, x + dx) in a view offset by (dy, dx)."""
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w]
    start = offsets_T2[0]
    out_and_back = np.zeros((h, w), bool)
    for offset in offsets_T2[1:-1]:
        dy, dx = offset - start  # a pixel at (y, x) of the first view is at (y + dy, x + dx) then
        out_and_back |= ~((0 <= ys + dy) & (ys + dy < h) & (0 <= xs + dx) & (xs + dx < w))
    distances = np.abs(offsets_T2 - start).sum(-1)
    far = int(distances.argmax())
    dy, dx = offsets_T2[far] - start
    never_seen = ~((0 <= ys - dy) & (ys - dy < h) & (0 <= xs - dx) & (xs - dx < w))
    return out_and_back, never_seen, far
