"""How often do a dataset's recordings hold no key, and is the picture still when they do?

    python -m experiments.still_share recordings/ae/doom64_MAP01 recordings/ae/doom64_heldout_MAP04

A world learns "no key keeps the scene still" only from transitions recorded with no key held
whose picture did not change. Per dataset: the share of transitions with no key, the mean
absolute pixel change (frames in [0, 1]) of those and of the others, and the share of no-key
transitions that are still (mean change below `--still`). The no-key count alone is
`wm data inspect DIR --json`'s `no_key_frames`; what this adds is whether those frames are still.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from wm_jax.data.episode_store import EpisodeStore

STILL = 0.002


def transition_changes(frames_THWC, actions_TK):
    """(mean |change| of each transition [T-1] in [0, 1] units, whether no key was held [T-1])."""
    frames = frames_THWC.astype(np.float32) / 255.0
    change = np.abs(frames[1:] - frames[:-1]).mean(axis=(1, 2, 3))
    return change, np.asarray(actions_TK)[1:].sum(axis=-1) == 0


def summarize(changes, no_key, still: float = STILL) -> dict:
    none = changes[no_key]
    return {
        "transitions": int(changes.size),
        "no_key_share": float(no_key.mean()) if changes.size else float("nan"),
        "mean_change_no_key": float(none.mean()) if none.size else float("nan"),
        "mean_change_with_keys": float(changes[~no_key].mean()) if (~no_key).any() else float("nan"),
        "still_share_of_no_key": float((none < still).mean()) if none.size else float("nan"),
    }


def dataset_stats(path: str, episodes: int, still: float = STILL) -> dict:
    store = EpisodeStore(path)
    parts = [transition_changes(*store.read_clip(e, 0, int(store.lengths[e]))) for e in range(min(episodes, len(store)))]
    return summarize(np.concatenate([c for c, _ in parts]), np.concatenate([n for _, n in parts]), still)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="+", help="recorded dataset directories (`wm record ... --out DIR`)")
    parser.add_argument("--episodes", type=int, default=20, help="episodes read from each dataset (default 20)")
    parser.add_argument("--still", type=float, default=STILL, help=f"mean |change| below which a transition is still (default {STILL})")
    args = parser.parse_args(argv)
    for path in args.data:
        print(json.dumps({"data": path, **dataset_stats(path, args.episodes, args.still)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
