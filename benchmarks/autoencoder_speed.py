"""Encode / decode time per frame of wm_jax autoencoders on this machine.

  .venv/bin/python benchmarks/autoencoder_speed.py --configs taef2 tiny_f4c8 --sizes 64 128

Batch 1 (play decodes one frame at a time), jit-compiled, 3 warm-up calls, then the median of
--reps timed calls, each blocked until ready. Weights are random: speed does not depend on them.
Prints one line per (config, size) and the machine's core count and load, since other
processes on a 2-core machine change the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp

from wm_jax import autoencoder as ae


def _median_ms(fn, *args, reps: int) -> float:
    for _ in range(3):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["taef2", "tiny_f4c8"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 128])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    print(f"# {os.cpu_count()} cores, {platform.processor() or platform.machine()}, jax {jax.__version__} "
          f"on {jax.devices()[0].platform}, load avg {os.getloadavg()[0]:.2f}, batch {args.batch}")
    print(f"{'config':<12} {'size':>7} {'params':>9} {'encode ms/frame':>16} {'decode ms/frame':>16}")
    for name in args.configs:
        cfg = ae.get_config(name)
        variables = ae.init(cfg, jax.random.PRNGKey(0))
        n_params = sum(x.size for x in jax.tree_util.tree_leaves(variables["params"]))
        for size in args.sizes:
            frames = jax.random.uniform(jax.random.PRNGKey(1), (args.batch, size, size, 3), jnp.float32, -1, 1)
            latents = ae.encode(variables, frames, cfg)
            enc = _median_ms(ae.encode, variables, frames, cfg, reps=args.reps) / args.batch
            dec = _median_ms(ae.decode, variables, latents, cfg, reps=args.reps) / args.batch
            print(f"{name:<12} {size:>3}x{size:<3} {n_params:>9} {enc:>16.2f} {dec:>16.2f}")


if __name__ == "__main__":
    main()
