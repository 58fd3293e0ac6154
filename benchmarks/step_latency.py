"""Per-frame latency of the KV-cache `step` against the recompute-everything baseline, and the
compile time of `step` (run twice: the second process should hit JAX's persistent cache).

    JAX_COMPILATION_CACHE_DIR=.cache/jax .venv/bin/python benchmarks/step_latency.py --config tiny

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time

os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "jax"))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from wm_jax import configs, rollout  # noqa: E402
from wm_jax.diffusion import SamplerConfig  # noqa: E402
from wm_jax.model import init_params  # noqa: E402


def _time_frames(step, params, state, action, frames):
    times = []
    for i in range(frames):
        start = time.perf_counter()
        state, latent = step(params, state, action, jax.random.key(i))
        latent.block_until_ready()
        times.append(time.perf_counter() - start)
    return np.asarray(times[1:])  # the first call includes compilation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--frames", type=int, default=50)
    args = parser.parse_args()
    config = configs.get_config(args.config)
    sampler = SamplerConfig(steps=args.steps)
    params = init_params(config, jax.random.key(0))
    h, w = config.latent_size
    context = jax.random.normal(jax.random.key(1), (1, config.window, h, w, config.in_channels))
    action = jax.numpy.zeros((1, config.action_dim))

    step = rollout.make_step(config, sampler)
    state = rollout.init_state(config, params, context, rng=jax.random.key(2), sampler=sampler)
    start = time.perf_counter()
    compiled = step.lower(params, state, action, jax.random.key(0)).compile()
    compile_seconds = time.perf_counter() - start
    del compiled
    cached = _time_frames(step, params, state, action, args.frames)

    recompute = jax.jit(functools.partial(rollout.recompute_step, config=config, sampler=sampler), donate_argnums=(1,))
    window_state = rollout.init_window_state(config, context)
    baseline = _time_frames(recompute, params, window_state, action, args.frames)
    print(json.dumps({
        "config": args.config, "denoising_steps": args.steps, "window": config.window,
        "backend": jax.default_backend(), "devices": jax.device_count(),
        "step_compile_seconds": round(compile_seconds, 3),
        "cached_step_ms_p50": round(1e3 * float(np.median(cached)), 3),
        "cached_step_ms_p95": round(1e3 * float(np.percentile(cached, 95)), 3),
        "recompute_step_ms_p50": round(1e3 * float(np.median(baseline)), 3),
        "speedup_of_cache": round(float(np.median(baseline) / np.median(cached)), 2),
    }))


if __name__ == "__main__":
    main()
