"""The browser minute without a browser: a world's start image, one key held for N frames, the last
frame against the start image (sharpness and colour std ratios, as
`tests/test_play_browser.py::test_shipped_worlds_hold_together_for_a_minute` scores the page, whose
first generated frame, made before the key went down, is the start image itself).

    python -m experiments.held_minute --world pan --key right --frames 300 600 1200 --seeds 5

`--start-image PATH --start-scale S` starts from the centre view of a picture scaled so that its short
side is S frames, as `wm record image_pan --photo-scale S` shows pictures (1: the picture whole, as a
world shows a start picture; 3: the pan recordings' scale). `--start-detail G` scales the start
image's detail by G (below 1 softer, above 1 sharper; `scaled_detail`): a painter that reads the
picture's texture paints softer beside a softer picture, and its ratios stay where they were.

One rollout of the most frames per seed (a rollout's first frames do not depend on how many follow);
with several seeds, each seed's ratios and their median and range: one frame's ratios vary a lot
from one random stream to the next.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageFilter

from wm_jax import bundle, images, stability
from wm_jax import world as world_lib
from wm_jax.datasets.sources.image_pan import scaled_photo


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="world bundle directory or shipped name")
    parser.add_argument("--key", default="right", help="the key held (default right)")
    parser.add_argument("--frames", type=int, nargs="+", default=[1200], help="frames held (default 1200: a minute at 20 fps)")
    parser.add_argument("--memory", type=int, default=None, help="override the world's memory (latent pixels)")
    parser.add_argument("--temperature", type=float, default=None, help="override the world's sampling temperature")
    parser.add_argument("--start-image", help="a picture file to start from (default: the world's start image)")
    parser.add_argument("--start-scale", type=float, default=None, metavar="S",
                        help="with --start-image: its short side scaled to S frames, the centre view (default: fitted whole)")
    parser.add_argument("--start-detail", type=float, default=1.0, metavar="G",
                        help="scale the start image's detail by G (1: as it is; scaled_detail)")
    parser.add_argument("--match-picture", action=argparse.BooleanOptionalAction, default=None,
                        help="painted parts with the start picture's contrast and grain, or not (default: the world's)")
    parser.add_argument("--seeds", type=int, default=1, help="rollouts, seeds 0..N-1 (default 1)")
    args = parser.parse_args(argv)
    if args.start_scale is not None and args.start_image is None:
        parser.error("--start-scale scales the picture --start-image names: give one")
    world = world_lib.load_world(bundle.locate(args.world), memory=args.memory, temperature=args.temperature,
                                 match_picture=args.match_picture)
    start = world.start_image if args.start_image is None else picture_view(args.start_image, args.start_scale, world)
    if args.start_detail != 1.0:
        start = scaled_detail(start[None], args.start_detail)[0]
    ratios = {n: [] for n in args.frames}
    for seed in range(args.seeds):
        frames = world.rollout(start, [(args.key,)] * max(args.frames), seed=seed)
        for n in args.frames:
            stats = _statistics(np.stack([frames[0], frames[n]]))
            ratios[n].append((stats["sharpness"][1] / stats["sharpness"][0], stats["std"][1] / stats["std"][0]))
            print(f"{args.world} {args.key}*{n} seed {seed}: sharpness {ratios[n][-1][0]:.3f}, std {ratios[n][-1][1]:.3f}", flush=True)
    print(f"start sharpness {float(_statistics(start[None])['sharpness'][0]):.4f}")
    if args.seeds > 1:
        for n, rows in ratios.items():
            sharp, std = np.asarray(rows).T
            print(f"{args.world} {args.key}*{n}, {args.seeds} seeds: sharpness median {np.median(sharp):.3f} "
                  f"({sharp.min():.3f}-{sharp.max():.3f}), std median {np.median(std):.3f} ({std.min():.3f}-{std.max():.3f})")
    return 0


def _statistics(frames_NHW3: np.ndarray) -> dict[str, np.ndarray]:
    return stability.colour_statistics(frames_NHW3.astype(np.float32) / 127.5 - 1.0)


def scaled_detail(frames_THW3: np.ndarray, gain: float, sigma: float = 1.0) -> np.ndarray:
    """uint8 frames with their detail (each frame less its Gaussian blur of `sigma` pixels) scaled
    by `gain`: below 1 softer, above 1 sharper (the Laplacian's variance by about gain squared)."""
    blurred = np.stack([np.asarray(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(sigma)), np.float32)
                        for frame in frames_THW3])
    scaled = blurred + np.float32(gain) * (frames_THW3.astype(np.float32) - blurred)
    return np.clip(scaled + 0.5, 0, 255).astype(np.uint8)


def picture_view(path: str, scale: float | None, world) -> np.ndarray:
    """The centre view of the picture at `path` with its short side `scale` frames (as the pan
    recorder scales pictures, `scaled_photo`); None: the picture fitted whole, as the world would show it."""
    picture = images.read(path)
    height, width = world.resolution
    if scale is None:
        return world.fit(picture)
    scaled = scaled_photo(picture, scale, (height, width))
    top, left = (scaled.shape[0] - height) // 2, (scaled.shape[1] - width) // 2
    return scaled[top : top + height, left : left + width]


if __name__ == "__main__":
    raise SystemExit(main())
