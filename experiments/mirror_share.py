"""How often what a pan uncovers is the mirror image of the view: is the mirror fill's low LPIPS
(`experiments.fill_ceiling`) the truth being a reflection, or LPIPS preferring a reflection?

    python -m experiments.mirror_share --world wm_jax/worlds/pan --data recordings/pan64_v4_heldout recordings/pan64_v4_train_s0

For every recorded transition whose keys shift the picture (a world's whole-pixel key moves, no
zoom) and which the shift explains outside the uncovered strip (mean error under 0.02 of the [-1, 1]
range there: not a camera stopped at the recorder's limit), the strip of the frame before moved with
the mirror fill (`warp.shift_and_zoom`, "mirror") against the real strip: mean absolute error in
0-255 steps, its median and the shares under 2 (the reflection, up to rounding) and under 8.
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np

from experiments.shift_probe import recorded_episodes
from wm_jax import bundle, model, warp
from wm_jax import world as world_lib
from wm_jax.data.episode_store import EpisodeStore


def strip_errors(episodes, moves_K3: np.ndarray, downscale: int, limit: int = 3000) -> np.ndarray:
    """Mean absolute error (0-255) of the mirror fill over each shifted transition's uncovered strip."""
    errors = []
    for frames_u8, actions_TK in episodes:
        frames = frames_u8.astype(np.float32) / 127.5 - 1.0
        h, w = frames.shape[1:3]
        for t in range(1, len(frames)):  # actions[t] is the input that led to frame t
            move = actions_TK[t] @ moves_K3
            if not move[:2].any() or move[2]:
                continue
            shift = jnp.asarray(move[None, :2] * downscale, jnp.float32)
            moved = np.asarray(warp.shift_and_zoom(jnp.asarray(frames[t - 1][None]), shift, jnp.zeros((1,)), "mirror"))[0]
            strip = np.asarray(warp.uncovered(h, w, shift, jnp.zeros((1,)), margin=0))[0, ..., 0] > 0
            if np.abs(moved[~strip] - frames[t][~strip]).mean() > 0.02:
                continue
            errors.append(127.5 * float(np.abs(moved[strip] - frames[t][strip]).mean()))
            if len(errors) >= limit:
                return np.asarray(errors)
    return np.asarray(errors)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="a world bundle or shipped name: its key moves and scale")
    parser.add_argument("--data", nargs="+", required=True, help="recorded datasets")
    parser.add_argument("--limit", type=int, default=3000, help="transitions measured per dataset (default 3000)")
    args = parser.parse_args(argv)
    world = world_lib.load_world(bundle.locate(args.world))
    moves_K3 = model.key_move_table(world.config)
    for data in args.data:
        errors = strip_errors(recorded_episodes(EpisodeStore(data)), moves_K3, world.ae_config.downscale, args.limit)
        if not len(errors):
            raise ValueError(f"{data}: no transition shifts the picture by the world's key moves")
        print(f"{data}: {len(errors)} transitions, strip error median {np.median(errors):.1f} / 255, "
              f"under 2: {(errors < 2).mean():.1%}, under 8: {(errors < 8).mean():.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
