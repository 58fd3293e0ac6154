"""What a played frame costs in several world bundles, timed in turns (e.g. one world with and
without a change to its bundle: a still mask, a sampler field).

    .venv/bin/python benchmarks/frame_cost.py --world /tmp/doom_box --world doom

For each bundle, batch 1, jit: the whole played frame (`World.step`: the model's step, decoding,
the keeper, uint8) with a key held; the bundles are timed in turns (`--rounds` rounds of
`--frames` calls each), so a change in the machine's load falls on all. Reported: each one's
median frame time and its ratio to the first's.
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import numpy as np
from memory_cost import player


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", action="append", required=True, help="a shipped world's name or a bundle directory (repeat: two or more)")
    parser.add_argument("--key", default="left", help="the key held while timing (default left)")
    parser.add_argument("--frames", type=int, default=50, help="calls per round and bundle (default 50)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, the bundles in turn (default 4)")
    args = parser.parse_args(argv)
    if len(args.world) < 2:
        parser.error("give two or more --world bundles to compare")
    plays = [player(name, None, args.key) for name in args.world]
    times = [[] for _ in plays]
    for _ in range(args.rounds):
        for t, play in zip(times, plays):
            t.extend(play() for _ in range(args.frames))
    ms = [1000.0 * float(np.median(t)) for t in times]
    rows = [{"world": name, "step_ms": round(m, 3), "ratio_to_first": round(m / ms[0], 4), "frames_per_s": round(1000.0 / m, 1)}
            for name, m in zip(args.world, ms)]
    print(json.dumps({"load_average": os.getloadavg(), "devices": str(jax.devices()), "key": args.key,
                      "frames": args.frames * args.rounds, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
