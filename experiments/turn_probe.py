"""Does a first-person world turn the way its turn keys say? Real against generated, in pixels.

    python -m experiments.turn_probe --world wm_jax/worlds/doom --data recordings/ae/doom64_heldout_MAP04

For every recorded transition made with one held key of `--keys` it measures how far the picture
slid sideways; then it plays each key for `--frames` frames from `--starts` recorded frames (and
the world's start image) and measures the same on the generated frames. A turn slides the
picture (ViZDoom at 64x64: ~9 px a frame; left slides it right, so positive), walking barely
does. A world that copies its last frame scores ~0 for every key.

The slide is the horizontal shift that best aligns the middle rows of consecutive frames (least
squares over whole-pixel shifts). Phase correlation, which `wm eval` uses for pans, reads doom
turns as "no motion": the weapon sprite and the floor/ceiling bands do not move with the view.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from experiments.shift_probe import recorded_episodes
from wm_jax import actions, bundle, keyscript
from wm_jax import world as world_lib
from wm_jax.data.episode_store import EpisodeStore

KEYS = ("left", "right", "w")


def horizontal_shift(prev_HWC, next_HWC, max_shift: int = 16) -> int:
    """The whole-pixel shift s minimising the squared difference of next[:, x + s] and prev[:, x]
    over the middle half of the rows (positive: the picture slid right)."""
    h, w = prev_HWC.shape[:2]
    rows = slice(h // 4, h - h // 4)
    a, b = prev_HWC[rows].astype(np.float32), next_HWC[rows].astype(np.float32)
    errors = [np.mean(np.square(b[:, s:] - a[:, : w - s])) if s >= 0 else np.mean(np.square(b[:, : w + s] - a[:, -s:]))
              for s in range(-max_shift, max_shift + 1)]
    return int(np.argmin(errors)) - max_shift


def _summary(shifts) -> dict:
    shifts = np.asarray(shifts, np.float32)
    if not len(shifts):
        return {"transitions": 0, "mean_px": None, "same_sign_as_mean": None}
    return {"transitions": int(len(shifts)), "mean_px": round(float(shifts.mean()), 2),
            "same_sign_as_mean": round(float(np.mean(np.sign(shifts) == np.sign(shifts.mean()))), 3)}


def recorded_shifts(store: EpisodeStore, keys=KEYS) -> dict:
    """{key: summary of the slides of recorded transitions made with that key alone}."""
    per_key = {k: [] for k in keys}
    for frames, actions_TK in recorded_episodes(store):
        for t in range(1, len(frames)):  # actions[t] is the input that led to frame t
            held = actions.DEFAULT.decode(actions_TK[t])
            if len(held) == 1 and held[0] in per_key:
                per_key[held[0]].append(horizontal_shift(frames[t - 1], frames[t]))
    return {k: _summary(v) for k, v in per_key.items()}


def generated_shifts(world, starts, keys=KEYS, frames: int = 8) -> dict:
    """{key: summary of the slides of `frames`-frame rollouts holding that key, from each start}."""
    per_key = {}
    for key in keys:
        shifts = []
        for seed, image in enumerate(starts):
            rolled = world.rollout(image, keyscript.parse(f"{key}*{frames}"), seed=seed)
            shifts += [horizontal_shift(rolled[t], rolled[t + 1]) for t in range(len(rolled) - 1)]
        per_key[key] = _summary(shifts)
    return per_key


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="world bundle directory or shipped name")
    parser.add_argument("--data", required=True, help="held-out recording (wm record doom --out DIR)")
    parser.add_argument("--starts", type=int, default=4, help="recorded start frames, one per episode (default 4)")
    parser.add_argument("--frames", type=int, default=8, help="frames each key is held (default 8)")
    args = parser.parse_args(argv)
    world = world_lib.load_world(bundle.locate(args.world))
    store = EpisodeStore(args.data)
    episodes = range(min(args.starts, len(store.lengths)))
    starts = [store.read_clip(e, min(10, int(store.lengths[e]) - 1), 1)[0][0] for e in episodes] + [None]
    print(json.dumps({"real": recorded_shifts(store), "generated": generated_shifts(world, starts, frames=args.frames)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
