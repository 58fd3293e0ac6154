"""Does the streaming step's cost follow the window (the cache's size)? Issue 20, item 1.

Builds one model shape at several windows (random params, the window's cache full), compiles
each `rollout.make_step`, then times the steps interleaved round-robin in one process, so a
shared, noisy machine disturbs every window alike; prints each window's median ms per frame
and its ratio to the first window's, and the load average before and after.

    nice -n 10 .venv/bin/python benchmarks/window_cost.py                 # Oasis 500M shape, depth 2
    nice -n 10 .venv/bin/python benchmarks/window_cost.py --depth 16      # the whole 500M shape (slow)
    nice -n 10 .venv/bin/python benchmarks/window_cost.py --hlo DIR       # also the optimised HLO per window
    nice -n 10 .venv/bin/python benchmarks/window_cost.py --profile DIR   # also XLA's top ops per window
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

from wm_jax import rollout
from wm_jax.bench.inputs import context_latents, no_keys, randomized_params
from wm_jax.bench.profiling import profile_step
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig
from wm_jax.machine import load_average


def oasis_shape(depth: int, window: int) -> ModelConfig:
    """The converted Oasis 500M configuration (`conversion/layouts/oasis.py`), `depth` blocks."""
    return ModelConfig(
        latent_size=(18, 32), in_channels=16, patch_size=2, width=1024, depth=depth, num_heads=16,
        mlp_ratio=4.0, pos_embed=False, spatial_rope=True, temporal_every=1, temporal_mlp=True,
        temporal_rope_theta=10000.0, prediction="v_prediction", noise_schedule="sigmoid",
        window=window, max_frames=window + 1,
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--windows", default="4,32")
    parser.add_argument("--steps", type=int, default=1, help="denoising steps (DDIM)")
    parser.add_argument("--frames", type=int, default=6, help="timed frames per window")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--hlo", default=None, help="write each window's optimised HLO here")
    parser.add_argument("--profile", default=None,
                        help="also trace 4 frames per window into DIR/wW (wm_jax.bench.profiling.profile_step, as `wm bench --profile`)")
    args = parser.parse_args(argv)
    sampler = SamplerConfig(steps=args.steps)
    windows = [int(w) for w in args.windows.split(",")]
    load_start = load_average()
    runs = {}
    # The window sets no parameter's shape: one set of params serves every window.
    params = randomized_params(oasis_shape(args.depth, windows[0]).replace(width=args.width), jax.random.key(0))
    for w in windows:
        config = oasis_shape(args.depth, w).replace(width=args.width)
        context = context_latents(config, w, jax.random.key(1))
        state = rollout.init_state(config, params, context, rng=jax.random.key(2), sampler=sampler)
        step = rollout.make_step(config, sampler)
        if args.hlo:
            os.makedirs(args.hlo, exist_ok=True)
            text = step.lower(params, state, no_keys(config), jax.random.key(3)).compile().as_text()
            with open(os.path.join(args.hlo, f"step_w{w}.txt"), "w") as f:
                f.write(text)
        for i in range(2):  # compile, then the committed-arrays call
            state, latent = step(params, state, no_keys(config), jax.random.key(10 + i))
            latent.block_until_ready()
        runs[w] = {"config": config, "params": params, "state": state, "step": step, "times": []}
    for i in range(args.frames):
        for run in runs.values():
            start = time.perf_counter()
            run["state"], latent = run["step"](run["params"], run["state"], no_keys(run["config"]), jax.random.key(100 + i))
            latent.block_until_ready()
            run["times"].append(time.perf_counter() - start)
    first = float(np.median(runs[windows[0]]["times"]))
    report = {
        "shape": f"oasis 500M, depth {args.depth}, width {args.width}", "denoising_steps": args.steps,
        "load_average_start": load_start, "load_average_end": load_average(),
        "ms_per_frame": {w: round(1e3 * float(np.median(r["times"])), 1) for w, r in runs.items()},
        "ratio_to_first": {w: round(float(np.median(r["times"])) / first, 3) for w, r in runs.items()},
        # The fastest frame: what the step costs when other processes interfere least.
        "ms_min": {w: round(1e3 * min(r["times"]), 1) for w, r in runs.items()},
        "ratio_of_min_to_first": {w: round(min(r["times"]) / min(runs[windows[0]]["times"]), 3) for w, r in runs.items()},
    }
    if args.profile:
        report["profile"] = {w: profile_step(r["config"], sampler, os.path.join(args.profile, f"w{w}"), frames=4, top=12)
                             for w, r in runs.items()}
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
