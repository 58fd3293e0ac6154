"""What remembering the picture around the view (`SamplerConfig.memory`, `wm_jax.memory`) adds to
a world's frame.

    .venv/bin/python benchmarks/memory_cost.py --world doom --world pan --memory 32

For each world, batch 1, jit: the whole played frame (`World.step`: the model's step with the
latent canvas, decoding, the keeper with its pixel canvas, uint8) with a turn/pan key held, the
world loaded without memory and with `--memory` latent pixels of it; the two are timed in turns
(`--rounds` rounds of `--frames` calls each), so a change in the machine's load falls on both.
Reported: the median frame time of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wm_jax import bundle  # noqa: E402
from wm_jax import world as world_lib  # noqa: E402


def player(name: str, memory: int, key: str):
    """A function that plays one frame of the world with `key` held and returns how long it took."""
    world = world_lib.load_world(bundle.locate(name), memory=memory)
    state = [world.start(seed=0)]
    pressed = {key}

    def play() -> float:
        begin = time.perf_counter()
        state[0], _ = world.step(state[0], pressed)  # returns a numpy frame: the work is done
        return time.perf_counter() - begin

    play()  # compile
    return play


def measure(name: str, memory: int, key: str, frames: int, rounds: int) -> dict:
    plays = {"without": player(name, 0, key), "with": player(name, memory, key)}
    times = {label: [] for label in plays}
    for _ in range(rounds):
        for label, play in plays.items():
            times[label].extend(play() for _ in range(frames))
    ms = {label: 1000.0 * float(np.median(t)) for label, t in times.items()}
    return {"world": name, "key": key, "memory": memory, "frames": frames * rounds,
            "step_ms_without": round(ms["without"], 3), "step_ms_with": round(ms["with"], 3),
            "ratio": round(ms["with"] / ms["without"], 4), "frames_per_s_with": round(1000.0 / ms["with"], 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", action="append", required=True, help="a shipped world's name or a bundle directory (repeatable)")
    parser.add_argument("--memory", type=int, default=32, help="latent pixels remembered beyond each edge (default 32)")
    parser.add_argument("--key", default="left", help="the key held while timing (default left)")
    parser.add_argument("--frames", type=int, default=50, help="calls per round and world (default 50)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, alternating without and with memory (default 4)")
    args = parser.parse_args(argv)
    rows = [measure(name, args.memory, args.key, args.frames, args.rounds) for name in args.world]
    print(json.dumps({"load_average": os.getloadavg(), "devices": str(jax.devices()), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
