"""Where a game draws a sprite fixed to the screen: the region a turn does not move.

    python -m experiments.still_region_probe --model wm_jax/worlds/doom/model \\
        --data recordings/ae/doom64_MAP01 recordings/ae/doom64_MAP02 recordings/ae/doom64_MAP03

For every recorded transition in which one key with a sideways `key_moves` entry is held alone,
each pixel is predicted two ways: the frame before unmoved, and the frame before shifted as the
key moves the camera. Where the unmoved frame predicts better under every such key (left and
right: a sprite dragged along errs on both sides of it, so only the sprite itself is common to
both), the game holds the picture still. Prints that region's bounding box (its largest connected
part, the strips a move uncovers left out) in pixels and, grown to whole latent pixels, as a
`ModelConfig.still_region` (top, left, bottom, right); `--out` writes the per-pixel maps as JSON;
`--mask-out` the sprite itself (that part, its holes filled) as the pixel rows a world's still
mask takes (`wm export-world --still-mask`, `wm_jax.kept_pixels`).
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from experiments.shift_probe import recorded_episodes
from wm_jax import model
from wm_jax.bundle import still_mask_rows
from wm_jax.data.episode_store import EpisodeStore


def still_better(stores, config, downscale: int) -> dict[str, np.ndarray]:
    """{key: [H, W] bool}: where the unmoved frame before beats the shifted one, per sideways key."""
    moves = {key: int(round(right * downscale)) for key, down, right, zoom in config.key_moves if right and not down and not zoom}
    if not moves:
        raise ValueError("the model's key_moves hold no sideways whole-pixel move to probe")
    index = {key: config.action_keys.index(key) for key in moves}
    sums = {key: [0.0, 0.0, 0] for key in moves}
    for store in tqdm(stores, desc="recordings", unit="store"):
        for frames, actions_TK in recorded_episodes(store):
            frames = frames.astype(np.float32)
            for t in range(1, len(frames)):  # actions[t] is the input that led to frame t
                held = np.flatnonzero(actions_TK[t] > 0.5)
                key = next((k for k, i in index.items() if list(held) == [i]), None)
                if key is None:
                    continue
                before, after, shift = frames[t - 1], frames[t], moves[key]
                shifted = np.roll(before, shift, axis=1)
                sums[key][0] += np.abs(after - before).mean(-1)
                sums[key][1] += np.abs(after - shifted).mean(-1)
                sums[key][2] += 1
    missing = [key for key, (_, _, n) in sums.items() if not n]
    if missing:
        raise ValueError(f"no transition holds {missing} alone in {[str(s.path) for s in stores]}")
    return {key: still < shifted for key, (still, shifted, _) in sums.items()}


def sprite(mask_HW: np.ndarray, border: int) -> np.ndarray:
    """[H, W] bool: the largest connected part of the mask, its holes filled, `border` columns on
    each side left out (what a move uncovers: there neither prediction holds)."""
    inner = mask_HW.copy()
    inner[:, :border] = inner[:, inner.shape[1] - border:] = False
    labels, count = ndimage.label(inner)
    if not count:
        raise ValueError("no pixel is predicted better unmoved under every key: nothing is fixed to the screen")
    largest = 1 + int(np.argmax(ndimage.sum(inner, labels, range(1, count + 1))))
    return ndimage.binary_fill_holes(labels == largest)


def bounding_box(sprite_HW: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the marked pixels."""
    rows, cols = np.nonzero(sprite_HW)
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a model directory (its config.json's key_moves and action_keys)")
    parser.add_argument("--data", nargs="+", required=True, help="recorded datasets (training maps)")
    parser.add_argument("--downscale", type=int, default=4, help="pixels per latent pixel (default 4)")
    parser.add_argument("--out", help="write the per-key maps and the box as JSON here")
    parser.add_argument("--mask-out", metavar="FILE", help="write the sprite's pixels here, one row a line, '#' marked "
                                                           "(for `wm export-world --still-mask`)")
    args = parser.parse_args(argv)
    config = model.config_from_dict(json.loads((pathlib.Path(args.model) / "config.json").read_text()))
    better = still_better([EpisodeStore(d) for d in args.data], config, args.downscale)
    common = np.logical_and.reduce(list(better.values()))
    border = max(abs(int(round(right * args.downscale))) for _, _, right, _ in config.key_moves)
    sprite_HW = sprite(common, border)
    top, left, bottom, right = bounding_box(sprite_HW)
    d = args.downscale
    latent = (top // d, left // d, -(-bottom // d), -(-right // d))
    print(f"held still under {sorted(better)}: pixels rows {top}-{bottom - 1}, columns {left}-{right - 1}")
    print(f"ModelConfig.still_region = {latent}  (latent pixels, grown to whole ones)")
    for row in still_mask_rows(common):
        print(row)
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps({"pixels": [top, left, bottom, right], "still_region": list(latent),
                                                      "maps": {k: v.astype(int).tolist() for k, v in better.items()}}))
    if args.mask_out:
        pathlib.Path(args.mask_out).write_text("\n".join(still_mask_rows(sprite_HW)) + "\n")
        print(f"wrote the sprite's {int(sprite_HW.sum())} pixels to {args.mask_out}")


if __name__ == "__main__":
    main()
