"""What a world's zoom keys cost a played frame (`wm_jax.pixel_zoom`): `World.step` timed with no
key, with a pan key, and with zoom keys that zoom every frame (e and q alternating, so the camera
never stops at its range), interleaved round by round so that the shared machine's load falls on
all three alike.

    .venv/bin/python benchmarks/zoom_cost.py --world pan --frames 200

Prints one line per key pattern (median ms per frame, frames/s, and the ratio to no key), the
load average before and after, and writes --out as JSON when given.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

from wm_jax.bench.timing import summarize
from wm_jax.world import load_world
from wm_jax import bundle

PATTERNS = {"no key": [()], "pan (left)": [("left",)], "zoom (e, q alternating)": [("e",), ("q",)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", default="pan", help="a world bundle with zoom keys (name or directory)")
    parser.add_argument("--frames", type=int, default=200, help="timed frames per pattern (default 200)")
    parser.add_argument("--out", default=None, metavar="FILE.json")
    args = parser.parse_args()

    world = load_world(bundle.locate(args.world))
    if not world.info.zoom_keys:
        raise SystemExit(f"world {args.world!r} has no zoom keys (world.json 'zoom_keys')")
    load_before = os.getloadavg()
    states = {name: world.start(seed=0) for name in PATTERNS}
    seconds = {name: [] for name in PATTERNS}
    for i in range(args.frames + 3):  # the first 3 rounds compile and warm up
        for name, keys in PATTERNS.items():
            t0 = time.perf_counter()
            states[name], frame = world.step(states[name], keys[i % len(keys)])
            jax.block_until_ready(frame)
            if i >= 3:
                seconds[name].append(time.perf_counter() - t0)
    report = {"world": args.world, "frames": args.frames, "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "cpu_count": os.cpu_count(), "patterns": {name: summarize(np.asarray(s)) for name, s in seconds.items()}}
    base = report["patterns"]["no key"]["ms_p50"]
    for name, row in report["patterns"].items():
        row["ratio_to_no_key"] = round(row["ms_p50"] / base, 3)
        print(f"{name:<26} {row['ms_p50']:7.2f} ms  {1e3 / row['ms_p50']:6.1f} frames/s  x{row['ratio_to_no_key']:.2f}")
    print(f"load average before {load_before}, after {report['load_average_after']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
