"""How each key moves the picture in a world's recordings: the table `ModelConfig.key_moves` takes.

    python -m experiments.key_moves --data recordings/ae/doom64_MAP01 recordings/ae/doom64_MAP02 \\
        --autoencoder artifacts/ae_doom_pan64/autoencoder

For every key held alone in at least `--min-pairs` recorded transitions it encodes up to `--pairs`
(frame before, frame after) pairs and searches the whole-latent-pixel shift and the zoom that best
map each onto the other: the shift most pairs pick, and the median zoom on top of it
(`wm_jax.warp.best_move`). A shift that lowers the error against no move by less than
`--min-gain`, or a zoom that lowers it against the shift alone by less, is dropped. Prints one row
per key and the gin line.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from tqdm import tqdm

from experiments.shift_probe import recorded_episodes
from wm_jax import actions, autoencoder, warp
from wm_jax.data.episode_store import EpisodeStore


def single_key_pairs(stores, pairs: int) -> dict[str, tuple[list, list]]:
    """key -> (frames before, frames after) of transitions made with that key alone that changed
    the picture (uint8)."""
    found: dict[str, tuple[list, list]] = {}
    for store in stores:
        for frames, actions_TK in recorded_episodes(store):
            for t in range(1, len(frames)):  # actions[t] is the input that led to frame t
                held = actions.DEFAULT.decode(actions_TK[t])
                if len(held) != 1 or np.array_equal(frames[t - 1], frames[t]):
                    continue  # several keys, or a key that did nothing (the pan camera at an edge)
                before, after = found.setdefault(held[0], ([], []))
                if len(before) < pairs:
                    before.append(frames[t - 1])
                    after.append(frames[t])
    return found


def measure(data, autoencoder_dir: str, pairs: int, min_pairs: int, max_shift: int) -> list[dict]:
    config, variables = autoencoder.load(autoencoder_dir)
    encode = lambda frames: autoencoder.encode(variables, np.stack(frames).astype(np.float32) / 127.5 - 1.0, config)
    rows = []
    for key, (before, after) in tqdm(sorted(single_key_pairs([EpisodeStore(d) for d in data], pairs).items()), desc="keys"):
        if len(before) < min_pairs:
            continue
        move = warp.best_move(encode(before), encode(after), max_shift=max_shift)
        rows.append({"key": key, "pairs": len(before), **move})
    return rows


def chosen_move(row, min_gain: float):
    """(down, right, log_zoom), or None. Each part must earn its keep: the shift must lower the
    error against no move by `min_gain`, the zoom the error against the shift alone by as much (a
    zoom resamples: a little blur every frame)."""
    keep_zoom = row["log_zoom"] != 0.0 and row["error"] < (1.0 - min_gain) * row["shift_error"]
    keep_shift = (row["down"], row["right"]) != (0.0, 0.0) and row["shift_error"] < (1.0 - min_gain) * row["copy_error"]
    if not (keep_zoom or keep_shift):
        return None
    down, right = (row["down"], row["right"]) if keep_shift else (0.0, 0.0)
    return down, right, row["log_zoom"] if keep_zoom else 0.0


def gin_line(rows, min_gain: float) -> str:
    moves = [(r["key"], *move) for r in rows if (move := chosen_move(r, min_gain)) is not None]
    return "ModelConfig.key_moves = (" + ", ".join(f"('{k}', {d:g}, {r:g}, {z:g})" for k, d, r, z in moves) + ",)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="recorded datasets (episode stores)")
    parser.add_argument("--autoencoder", required=True, help="the autoencoder whose latents the world model sees")
    parser.add_argument("--pairs", type=int, default=256, help="transitions measured per key (default 256)")
    parser.add_argument("--min-pairs", type=int, default=16, help="keys held alone less often get no move (default 16)")
    parser.add_argument("--max-shift", type=int, default=4, help="largest shift searched, latent pixels (default 4)")
    parser.add_argument("--min-gain", type=float, default=0.05,
                        help="a move must lower the error against no move by this share (default 0.05)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows = measure(args.data, args.autoencoder, args.pairs, args.min_pairs, args.max_shift)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['key']:>8}  pairs {r['pairs']:4d}  down {r['down']:+.0f}  right {r['right']:+.0f}  "
                  f"({r['shift_share']:.0%} of pairs)  log-zoom {r['log_zoom']:+.3f}  error: move {r['error']:.4f}, "
                  f"shift alone {r['shift_error']:.4f}, no move {r['copy_error']:.4f}")
    print(gin_line(rows, args.min_gain))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
