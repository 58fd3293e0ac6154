"""What showing the kept pixels (`wm_jax.kept_pixels`) adds to a world's frame.

    .venv/bin/python benchmarks/kept_pixels_cost.py --world doom --world pan [--no-match-picture]

For each world, batch 1, jit, median over `--frames` calls after warm-up, one run: the whole
played frame (`World.step`: the model's step, decoding, the keeper, uint8) with a turn/pan key
held, and the keeper's own work alone (`Keeper.show`, as the world plays it: decoding the frame,
whole-pixel shifts of the kept frame, its mask and its memory, and, with world.json
"match_picture", the painted parts matched to the start picture) beside plain decoding, so the
keeper's share is (show - decode) / step. `--no-match-picture` times the worlds without matching.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wm_jax import autoencoder, bundle, kept_pixels  # noqa: E402
from wm_jax import world as world_lib  # noqa: E402


def median_ms(fn, frames: int) -> float:
    fn()  # compile
    times = []
    for _ in range(frames):
        begin = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - begin)
    return 1000.0 * float(np.median(times))


def measure(name: str, frames: int, key: str, match_picture: bool | None = None) -> dict:
    world = world_lib.load_world(bundle.locate(name), match_picture=match_picture)
    keeper = world_lib.make_keeper(world.display, world.config, world.ae_config, world.ae_variables, world.info.sampler)
    if keeper is None:
        raise ValueError(f"world {name!r} has no keeper: its model does not keep its picture")
    state = [world.start(seed=0)]

    def play():
        state[0], frame = world.step(state[0], {key})
        return frame

    kept = kept_pixels.given(jnp.asarray(world.start_image, jnp.float32)[None] / 127.5 - 1.0, keeper)
    latent = jnp.asarray(np.asarray(state[0].rollout.cache.previous_Bhwc))  # a copy: stepping donates the state
    action = jnp.asarray(world.action({key}))[None]
    show = jax.jit(lambda k, z, a: keeper.show(k, z, a).pixels_BHW3)
    decode = jax.jit(lambda z: autoencoder.decode(world.ae_variables, z, world.ae_config))
    step_ms = median_ms(play, frames)
    show_ms = median_ms(lambda: show(kept, latent, action), frames)
    decode_ms = median_ms(lambda: decode(latent), frames)
    return {"world": name, "key": key, "match_picture": world.info.match_picture, "frames": frames,
            "step_ms": round(step_ms, 3), "show_ms": round(show_ms, 3), "decode_ms": round(decode_ms, 3), "keeper_share_of_step": round((show_ms - decode_ms) / step_ms, 4),
            "frames_per_s": round(1000.0 / step_ms, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", action="append", required=True, help="a shipped world's name or a bundle directory (repeatable)")
    parser.add_argument("--key", default="left", help="the key held while timing (default left)")
    parser.add_argument("--frames", type=int, default=200, help="timed calls per figure (default 200)")
    parser.add_argument("--match-picture", action=argparse.BooleanOptionalAction, default=None,
                        help="painted parts matched to the start picture, or not (default: each world's own)")
    args = parser.parse_args(argv)
    rows = [measure(name, args.frames, args.key, args.match_picture) for name in args.world]
    print(json.dumps({"load_average": os.getloadavg(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
