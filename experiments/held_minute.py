"""The browser minute without a browser: a world's start image, one key held for N frames, the last
frame against the first generated one (sharpness and colour std ratios, as
`tests/test_play_browser.py::test_shipped_worlds_hold_together_for_a_minute` scores the page).

    python -m experiments.held_minute --world pan --key right --frames 300 600 1200
"""

from __future__ import annotations

import argparse

import numpy as np

from wm_jax import bundle, stability
from wm_jax import world as world_lib


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="world bundle directory or shipped name")
    parser.add_argument("--key", default="right", help="the key held (default right)")
    parser.add_argument("--frames", type=int, nargs="+", default=[1200], help="frames held (default 1200: a minute at 20 fps)")
    parser.add_argument("--memory", type=int, default=None, help="override the world's memory (latent pixels)")
    parser.add_argument("--temperature", type=float, default=None, help="override the world's sampling temperature")
    args = parser.parse_args(argv)
    world = world_lib.load_world(bundle.locate(args.world), memory=args.memory, temperature=args.temperature)
    for n in args.frames:
        frames = world.rollout(None, [(args.key,)] * n, seed=0)
        stats = stability.colour_statistics(np.stack([frames[1], frames[-1]]).astype(np.float32) / 127.5 - 1.0)
        print(f"{args.world} {args.key}*{n}: sharpness {stats['sharpness'][1] / stats['sharpness'][0]:.3f}, "
              f"std {stats['std'][1] / stats['std'][0]:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
