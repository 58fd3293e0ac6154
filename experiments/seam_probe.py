"""Where a world that keeps its picture is sharp: the painted interior, the given pixels, or the seam.

    python -m experiments.seam_probe --world doom --key left --frames 26

Plays the world's start image with one key held (`World.step`, as the page does) and, for each
frame, splits its squared Laplacian (the sharpness `stability.colour_statistics` averages) by the
keeper's painted mask: painted pixels, given pixels, and the pixels on either side of a seam
between them, beside the start image's. A painter matched to the picture (`kept_pixels
.matched_to_picture`) leaves its interior at the start's; what is left over is the seam (session 26).
"""

from __future__ import annotations

import argparse

import numpy as np

from wm_jax import bundle, image_metrics, stability
from wm_jax import world as world_lib


def laplacian_squared(x_HW3: np.ndarray) -> np.ndarray:
    """[H - 2, W - 2]: the squared Laplacian (`image_metrics.laplacian`), averaged over channels."""
    return np.square(np.asarray(image_metrics.laplacian(x_HW3))).mean(axis=-1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="world bundle directory or shipped name")
    parser.add_argument("--key", default="left", help="the key held (default left)")
    parser.add_argument("--frames", type=int, default=26, help="frames held (default 26: doom's circle)")
    parser.add_argument("--match-picture", action=argparse.BooleanOptionalAction, default=None,
                        help="painted parts with the start picture's contrast and grain, or not (default: the world's)")
    args = parser.parse_args(argv)
    world = world_lib.load_world(bundle.locate(args.world), match_picture=args.match_picture)
    state = world.start(seed=0)
    start = np.asarray(state.kept.pixels_BHW3[0])
    start_sharpness = stability.colour_statistics(start[None])["sharpness"][0]
    print(f"start: squared Laplacian {laplacian_squared(start).mean():.4f}")
    for n in range(1, args.frames + 1):
        state, _ = world.step(state, (args.key,))
        pixels = np.asarray(state.kept.pixels_BHW3[0])
        painted = (np.asarray(state.kept.painted_BHW1[0, :, :, 0]) > 0)[1:-1, 1:-1]
        seam = np.zeros_like(painted)
        change = painted[:, 1:] != painted[:, :-1]
        seam[:, 1:] |= change
        seam[:, :-1] |= change
        lap2 = laplacian_squared(pixels)
        part = lambda mask: f"{lap2[mask].mean():.4f}" if mask.any() else "-"
        ratio = stability.colour_statistics(pixels[None])["sharpness"][0] / start_sharpness
        print(f"frame {n}: sharpness {ratio:.2f} x the start's; painted share {painted.mean():.2f}; squared Laplacian "
              f"painted {part(painted & ~seam)}, given {part(~painted & ~seam)}, seam {part(seam)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
