"""What a pan world that keeps every pixel it has shown scores autoregressively with a fixed fill.

    python -m experiments.fill_ceiling --world wm_jax/worlds/pan --data recordings/pan64_v4_heldout

A `paint_uncovered_only` world with memory shows, at horizon h, the start frame moved by the keys
held since, recalled wherever the camera has been, and painted only where it never was. This plays
the recorded keys of held-out clips with that machinery in pixels (`wm_jax.memory`, the world's
own key moves scaled to pixels) and replaces the painter by a fixed fill of what was never seen:

  mirror   the view's mirror image about the edge it moved past (the world's fill before painting)
  edge     the view's border pixels repeated
  mean     the view's mean colour
  blur     the mirror fill blurred (a Gaussian of 4 px)
  quilt    the columns beside the best-matching place in the view copied (a patch-copying fill)
  elsewhere  the real frame of another clip of the same episode at the same horizon: the same
           picture or map, recorded, somewhere else (a painter with the truth's own texture,
           palette and grain that does not know what lies beyond the edge; no seam matching)
  truth    the real frame itself (an oracle: the best any painter could do; what it still loses
           against the truth is the world's moves, memory and still sprite, not its painting)

and scores each against the real frames (LPIPS, AlexNet, and PSNR) at every horizon, beside
copy-first (the start frame, `wm eval`'s baseline). No model and no autoencoder: what any world
with this memory could score if its painter drew exactly that fill. If no fill beats copy-first
at long horizons, the painter is not what loses there: the never-seen area is.

`--walk-zoom Z` also walks: the forward key (w) zooms the frame before in by exp(Z) about its
centre and back (s) out, as a doom that moved with its walking keys would (a zoom resamples the
whole frame and forgets the canvas), to ask what a world that walks could gain over one that
turns only.

`--first-move F` moves a move key's first frame after a frame without one by F x its move, as Doom
turns (7.03 degrees on a turn's first frame, 12.30 on the second, then 14.06): what a world that
turned as the game does on a turn's first frame would gain (session 24: 0.001-0.008 LPIPS).
"""

from __future__ import annotations

import argparse
import json

import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from wm_jax import image_metrics, kept_pixels, memory, model, warp
from wm_jax import world as world_lib
from wm_jax.data.episode_store import EpisodeStore

FILLS = ("mirror", "edge", "mean", "blur", "quilt", "elsewhere", "truth")
DONOR_FILLS = ("elsewhere", "truth")  # fills that paint a given frame: `rollout`'s donors
QUILT_BOUNDARY = 4  # pixels beside the strip a quilt's source must match


def quilted_right(view_HWC, strip: int, still_HW=None):
    """The view with its last `strip` columns copied from the columns that follow the place whose
    `QUILT_BOUNDARY` columns best match the ones beside the strip (least squares); sources that
    would copy a still sprite are skipped."""
    h, w = view_HWC.shape[:2]
    k = QUILT_BOUNDARY
    beside = view_HWC[:, w - strip - k : w - strip]
    best, best_cost = None, np.inf
    for c in range(0, w - strip - k - strip + 1):
        if still_HW is not None and still_HW[:, c + k : c + k + strip].any():
            continue
        cost = float(np.mean(np.square(view_HWC[:, c : c + k] - beside)))
        if cost < best_cost:
            best, best_cost = c, cost
    out = view_HWC.copy()
    if best is not None:
        out[:, w - strip :] = view_HWC[:, best + k : best + k + strip]
    return out


def quilted(view_BHWC, shift_B2, still_HW=None):
    """`quilted_right` for each example's move, whatever its direction: (down, right) in pixels."""
    out = np.array(view_BHWC, np.float32)
    shift = np.round(np.asarray(shift_B2)).astype(int)
    for i, (down, right) in enumerate(shift):
        for amount, axis in ((right, 1), (down, 0)):
            if amount == 0:
                continue
            x, still = out[i], still_HW
            if axis == 0:
                x, still = np.swapaxes(x, 0, 1), None if still is None else still.T
            if amount > 0:  # the strip comes in at the start: mirror it to the end
                x, still = x[:, ::-1], None if still is None else still[:, ::-1]
            x = quilted_right(np.ascontiguousarray(x), abs(amount), still)
            if amount > 0:
                x = x[:, ::-1]
            out[i] = np.swapaxes(x, 0, 1) if axis == 0 else x
    return jnp.asarray(out)


def filled(previous_BHWC, shift_B2, log_zoom_B, fill: str, still_HW, donor_BHWC=None):
    """The frame before moved by shift_B2 and zoomed by exp(log_zoom), what the move brings in
    filled as `fill` says (the donor fills: the donor frame where the move brings anything in)."""
    if fill in DONOR_FILLS:
        return donor_BHWC
    if fill == "mean":
        return jnp.broadcast_to(jnp.mean(previous_BHWC, axis=(1, 2), keepdims=True), previous_BHWC.shape)
    moved = warp.shift_and_zoom(previous_BHWC, shift_B2, log_zoom_B, "edge" if fill == "edge" else "mirror", still_HW)
    if fill == "quilt":
        return quilted(moved, shift_B2, still_HW)
    return warp.gaussian_blur(moved, 4.0) if fill == "blur" else moved


def rollout(frames_BTHWC, actions_BTK, moves_K2, margin: int, fill: str, still_HW=None, zooms_K=None, first_move=1.0,
            donors_BTHWC=None):
    """[B, T, H, W, C]: the start frame carried by the recorded keys, with memory and `fill`;
    where `still_HW` (a sprite fixed to the screen) it stays as it was in the start frame;
    zooms_K: each action entry's log zoom a frame (a zoom forgets the canvas); donors_BTHWC: the
    frames a donor fill paints with."""
    if (fill in DONOR_FILLS) != (donors_BTHWC is not None):
        raise ValueError(f"the fills {DONOR_FILLS}, and they alone, take donor frames")
    b, t, h, w, _ = frames_BTHWC.shape
    canvas = memory.start(frames_BTHWC[:, 0], margin, still_HW)
    still = np.zeros((1, h, w, 1), bool) if still_HW is None else np.asarray(still_HW, bool)[None, :, :, None]
    out = [frames_BTHWC[:, 0]]
    for i in range(1, t):
        moving_before = jnp.any(actions_BTK[:, i - 1] @ jnp.abs(moves_K2) != 0, axis=-1)
        shift_B2 = (actions_BTK[:, i] @ moves_K2) * jnp.where(moving_before, 1.0, first_move)[:, None]
        log_zoom_B = jnp.zeros((b,)) if zooms_K is None else actions_BTK[:, i] @ jnp.asarray(zooms_K, jnp.float32)
        canvas = memory.moved(canvas, shift_B2, log_zoom_B != 0)
        seen, known = canvas.view(h, w)
        donor = None if donors_BTHWC is None else donors_BTHWC[:, i]
        view = jnp.where(known > 0, seen, filled(out[-1], shift_B2, log_zoom_B, fill, still_HW, donor))
        view = jnp.where(still, out[-1], view)
        canvas = memory.remembered(canvas, view, still_HW)
        out.append(view)
    return jnp.stack(out, axis=1)


def sibling_clips(lengths, clip_len: int, stride: int) -> np.ndarray:
    """For each clip `EpisodeStore.clips_in_order` takes, the index of the next clip of the same episode
    (cyclically); an episode of one clip has none, and the call refuses it."""
    episode_of = np.concatenate([np.full(len(range(0, n - clip_len + 1, stride)), e) for e, n in enumerate(lengths)])
    siblings = np.empty(len(episode_of), int)
    for e in np.unique(episode_of):
        members = np.flatnonzero(episode_of == e)
        if len(members) < 2:
            raise ValueError(f"episode {e} gives one clip of {clip_len} frames: the elsewhere fill needs two clips of an episode")
        siblings[members] = np.roll(members, -1)
    return siblings


def held_out_clips(data_dirs, clip_len: int, clips: int, with_donors: bool):
    """(frames uint8 [B, T, H, W, 3], actions [B, T, K], the elsewhere fill's donor frames or None):
    the first `clips` clips of each dataset, together."""
    frames, actions, donors = [], [], []
    for data in data_dirs:
        store = EpisodeStore(data)
        every_clip, every_action = store.clips_in_order(clip_len, stride=clip_len)
        frames.append(every_clip[:clips])
        actions.append(every_action[:clips])
        if with_donors:
            donors.append(every_clip[sibling_clips(store.lengths, clip_len, clip_len)[:clips]])
    return np.concatenate(frames), np.concatenate(actions), np.concatenate(donors) if with_donors else None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", required=True, help="a pan world bundle: its key moves")
    parser.add_argument("--data", required=True, nargs="+", help="held-out recorded datasets (their clips scored together)")
    parser.add_argument("--clips", type=int, default=96, help="clips of each dataset")
    parser.add_argument("--clip-len", type=int, default=17)
    parser.add_argument("--memory", type=int, default=32, help="latent pixels remembered beyond each edge")
    parser.add_argument("--walk-zoom", type=float, default=0.0, metavar="Z",
                        help="w zooms in by exp(Z) a frame, s out (default 0: walking keys do nothing)")
    parser.add_argument("--first-move", type=float, default=1.0, metavar="F",
                        help="a move key's first frame after none moves F x its move (Doom turns slowly at first)")
    parser.add_argument("--fills", nargs="+", choices=FILLS, default=list(FILLS), help="the fills to score (default all)")
    parser.add_argument("--out", help="JSON file for the per-horizon figures")
    args = parser.parse_args(argv)

    world = world_lib.load_world(args.world)
    frames_u8, actions, donors_u8 = held_out_clips(args.data, args.clip_len, args.clips, "elsewhere" in args.fills)
    scale = frames_u8.shape[2] // world.config.latent_size[0]
    moves_K2 = jnp.asarray(model.key_move_table(world.config)[:, :2] * scale)
    # what the world's keeper holds still: the sprite it outlines, else the model's whole still box
    keeper = kept_pixels.make_keeper(world.config, scale, None, still_mask=world.info.still_mask_array())
    if keeper is None:
        raise ValueError(f"{args.world}: its model redraws its frames; this probe plays a world that keeps its pixels")
    still_HW = keeper.still_HW
    zooms_K = np.zeros(len(world.config.action_keys), np.float32)
    for key, sign in (("w", 1.0), ("s", -1.0)):
        if args.walk_zoom and world.config.action_space.knows(key):
            zooms_K[world.config.action_space.index(key)] = sign * args.walk_zoom
    frames = jnp.asarray(frames_u8, jnp.float32) / 127.5 - 1.0
    truth = frames[:, 1:]
    predictions = {"copy_first": jnp.broadcast_to(frames[:, :1], truth.shape)}
    for fill in tqdm(args.fills, desc="fills"):
        donors = frames if fill == "truth" else None
        if fill == "elsewhere":
            donors = jnp.asarray(donors_u8, jnp.float32) / 127.5 - 1.0
        predictions[fill] = rollout(frames, jnp.asarray(actions, jnp.float32), moves_K2, args.memory * scale, fill, still_HW,
                                    zooms_K, args.first_move, donors)[:, 1:]

    n, t = truth.shape[:2]
    flat = lambda x: x.reshape(n * t, *x.shape[2:])
    result = {}
    for name, pred in predictions.items():
        lp = np.concatenate([np.asarray(image_metrics.lpips(flat(pred)[i:i + 256], flat(truth)[i:i + 256]))
                             for i in range(0, n * t, 256)]).reshape(n, t)
        ps = np.asarray(image_metrics.capped_psnr(flat(pred), flat(truth))).reshape(n, t)
        result[name] = {"lpips": lp.mean(0).tolist(), "psnr": ps.mean(0).tolist()}
        print(f"{name:10s} LPIPS h=1,4,8,12,16: " + " ".join(f"{lp.mean(0)[h - 1]:.3f}" for h in (1, 4, 8, 12, 16)))
    for name in args.fills:
        below = [h + 1 for h in range(t) if result[name]["lpips"][h] < result["copy_first"]["lpips"][h]]
        print(f"{name:10s} below copy-first at h = {below}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"data": args.data, "clips": int(n), "horizons": int(t), "memory": args.memory, "walk_zoom": args.walk_zoom, **result}, f, indent=1)


if __name__ == "__main__":
    main()
