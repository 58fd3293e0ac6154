"""The browser minute without a browser: a world's start image, one key held for N frames, the last
frame against the start image (sharpness and colour std ratios, as
`tests/test_play_browser.py::test_shipped_worlds_hold_together_for_a_minute` scores the page, whose
first generated frame, made before the key went down, is the start image itself).

    python -m experiments.held_minute --world pan --key right --frames 300 600 1200 --seeds 5

`--start-detail G` starts from the world's start image with its detail scaled by G (below 1 softer,
above 1 sharper; `clips.scaled_detail`, what `Data.retexture` does to training clips): a painter that
reads the picture's texture paints softer beside a softer picture, and its ratios stay where they were.

One rollout of the most frames per seed (a rollout's first frames do not depend on how many follow);
with several seeds, each seed's ratios and their median and range: one frame's ratios vary a lot
from one random stream to the next.
"""

from __future__ import annotations

import argparse

import numpy as np

from wm_jax import bundle, stability
from wm_jax.data.clips import scaled_detail
from wm_jax import world as world_lib


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="world bundle directory or shipped name")
    parser.add_argument("--key", default="right", help="the key held (default right)")
    parser.add_argument("--frames", type=int, nargs="+", default=[1200], help="frames held (default 1200: a minute at 20 fps)")
    parser.add_argument("--memory", type=int, default=None, help="override the world's memory (latent pixels)")
    parser.add_argument("--temperature", type=float, default=None, help="override the world's sampling temperature")
    parser.add_argument("--start-detail", type=float, default=1.0, metavar="G",
                        help="scale the start image's detail by G (1: as it is; clips.scaled_detail)")
    parser.add_argument("--seeds", type=int, default=1, help="rollouts, seeds 0..N-1 (default 1)")
    args = parser.parse_args(argv)
    world = world_lib.load_world(bundle.locate(args.world), memory=args.memory, temperature=args.temperature)
    start = None if args.start_detail == 1.0 else scaled_detail(world.start_image[None], args.start_detail)[0]
    ratios = {n: [] for n in args.frames}
    for seed in range(args.seeds):
        frames = world.rollout(start, [(args.key,)] * max(args.frames), seed=seed)
        for n in args.frames:
            stats = stability.colour_statistics(np.stack([frames[0], frames[n]]).astype(np.float32) / 127.5 - 1.0)
            ratios[n].append((stats["sharpness"][1] / stats["sharpness"][0], stats["std"][1] / stats["std"][0]))
            print(f"{args.world} {args.key}*{n} seed {seed}: sharpness {ratios[n][-1][0]:.3f}, std {ratios[n][-1][1]:.3f}", flush=True)
    if args.seeds > 1:
        for n, rows in ratios.items():
            sharp, std = np.asarray(rows).T
            print(f"{args.world} {args.key}*{n}, {args.seeds} seeds: sharpness median {np.median(sharp):.3f} "
                  f"({sharp.min():.3f}-{sharp.max():.3f}), std median {np.median(std):.3f} ({std.min():.3f}-{std.max():.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
