"""What a pan world's zoom keys should show: ways of zooming the start picture against the recorder's
own zoomed views (the zoom script's held-out episodes, `wm record image_pan --script 'e*7 q*7 q*7
e*7 ...'`, commands in experiments/worlds/pan/training/COMMANDS.md).

    python -m experiments.zoom_truth --world pan --data recordings/pan64_v4_zoom_script \\
        --stability-data recordings/pan64_v4_heldout

Zoom in (frames 1-7 of each episode, `e` held, against frame 0): the world's way before session 27
(the start picture through the autoencoder, zoomed, encoded and decoded again, the painted parts'
matching applied to the whole frame), the start picture zoomed in pixels (`warp.shift_and_zoom`, the
way the world's keeper shows it now), and that matched to the picture. Zoom out beyond the start
view (frames 15-21 against frame 14, the start view again): the pixels shrunk plainly, and
antialiased first (`warp.antialiased`). Each: LPIPS against the true view, and sharpness (the
Laplacian's variance, as the stability suite measures it) against the true view's and against the
pooled held-out frames the stability suite compares every script with. Last, the stability suite's
own zoom in: its start frames (`--starts`) zoomed 1.1^7 in pixels, the true view of a held `e` on
this recorder, against those pooled frames (BUILD_NOTES session 27).
"""

from __future__ import annotations

import argparse
import math

import jax.numpy as jnp
import numpy as np

from wm_jax import autoencoder, bundle, image_metrics, kept_pixels, pixel_zoom, stability, warp
from wm_jax import world as world_lib
from wm_jax.data.episode_store import EpisodeStore

STEP = math.log(1.1)  # the recorder's zoom a frame
IN_FRAMES, OUT_START, OUT_FRAMES = range(1, 8), 14, range(15, 22)


def sharpness(frames_BHW3) -> np.ndarray:
    return np.asarray(stability.colour_statistics(np.asarray(frames_BHW3))["sharpness"])


def zoomed(frames_BHW3, log_scale: float, antialias: bool = True):
    """The camera's view (`pixel_zoom.camera_view`), or without antialiasing plain bilinear sampling."""
    b = frames_BHW3.shape[0]
    log_scale_B = jnp.full((b,), log_scale, jnp.float32)
    if antialias:
        return pixel_zoom.camera_view(frames_BHW3, log_scale_B)
    return warp.shift_and_zoom(frames_BHW3, jnp.zeros((b, 2)), log_scale_B, fill="mirror")


def matched_to(frames_BHW3, picture_BHW3):
    """The frames, every pixel counted as painted, matched to the picture as the keeper matches painted parts."""
    everywhere = jnp.ones(frames_BHW3.shape[:-1] + (1,), jnp.float32)
    return kept_pixels.matched_to_picture(frames_BHW3, everywhere, kept_pixels.picture_statistics(picture_BHW3))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", default="pan", help="world bundle directory or shipped name (its autoencoder)")
    parser.add_argument("--data", required=True, help="the zoom script's held-out recording")
    parser.add_argument("--stability-data", required=True, help="the stability suite's held-out recording")
    parser.add_argument("--starts", type=int, default=3, help="the stability suite's start frames (default 3, as COMMANDS.md)")
    args = parser.parse_args(argv)

    world = world_lib.load_world(bundle.locate(args.world))
    codec = lambda x: jnp.clip(autoencoder.decode(world.ae_variables, autoencoder.encode(world.ae_variables, x, world.ae_config),
                                                  world.ae_config), -1.0, 1.0)
    store = EpisodeStore(args.data)
    if min(store.lengths) < OUT_FRAMES[-1] + 1:
        raise SystemExit(f"{args.data}: episodes of {min(store.lengths)} frames; the zoom script's need {OUT_FRAMES[-1] + 1}")
    real = np.stack([np.asarray(store.read_clip(i, 0, OUT_FRAMES[-1] + 1)[0], np.float32) / 127.5 - 1.0 for i in range(len(store))])
    held = stability.read_held_out([args.stability_data], starts=args.starts, frames=1)
    pooled = float(np.mean(sharpness(held.reference)))
    start = jnp.asarray(real[:, 0])
    matched = lambda x: matched_to(x, start)
    ways_in = {"decoded, matched (before)": lambda k: matched(codec(zoomed(codec(start), k * STEP))),
               "pixels zoomed (now)": lambda k: zoomed(start, k * STEP),
               "pixels zoomed, matched": lambda k: matched(zoomed(start, k * STEP))}
    out_start = jnp.asarray(real[:, OUT_START])
    ways_out = {"pixels shrunk": lambda k: zoomed(out_start, -k * STEP, antialias=False),
                "pixels shrunk, antialiased (now)": lambda k: zoomed(out_start, -k * STEP)}
    print(f"{len(store)} episodes; sharpness x true view / x pooled held-out frames; LPIPS against the true view")
    for title, ways, frames in (("zoom in 1.1^k", ways_in, IN_FRAMES), ("zoom out 1.1^-k", ways_out, OUT_FRAMES)):
        truth_row = "  ".join(f"{k}: x{float(np.mean(sharpness(real[:, t]))) / pooled:.2f}" for k, t in enumerate(frames, 1))
        print(f"{title}, the true view      {truth_row}")
        for name, way in ways.items():
            cells = []
            for k, t in enumerate(frames, 1):
                shown, truth = way(k), jnp.asarray(real[:, t])
                lp = float(np.mean(np.asarray(image_metrics.lpips(shown, truth))))
                ratio = float(np.median(sharpness(shown) / np.maximum(sharpness(truth), 1e-12)))
                cells.append(f"{k}: {lp:.3f} x{ratio:.2f}/x{float(np.mean(sharpness(shown))) / pooled:.2f}")
            print(f"  {name:32s} " + "  ".join(cells))
    starts = jnp.asarray(held.starts)
    held_in = sharpness(zoomed(starts, 7 * STEP)) / pooled
    print(f"the stability suite's zoom in (its {args.starts} starts at 1.1^7 in pixels, the true view of a held e): "
          f"x{held_in.mean():.2f} ({held_in.min():.2f}-{held_in.max():.2f}) of the pooled frames' sharpness; "
          f"matched x{float(np.mean(sharpness(matched_to(zoomed(starts, 7 * STEP), starts)))) / pooled:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
