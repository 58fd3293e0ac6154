"""How long calls take: median and percentile latency of a call blocked until its result is
ready, and this machine's achievable matmul rate (the yardstick for the step's utilisation)."""

from __future__ import annotations

import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

# XLA's CPU backend reaches very different rates on different shapes (on the development box
# [512,4096]@[4096,4096] runs at twice the rate of a 2048 cube), so the peak is the best of a few
# shapes, including ones the large models' steps contain ([256 tokens, 1024] @ [1024, 4096]).
MATMUL_SHAPES = ((2048, 2048, 2048), (1024, 1024, 4096), (512, 4096, 4096), (256, 1024, 4096))


def time_calls(call: Callable[[int], object], n: int, warmup: int = 2) -> np.ndarray:
    """Seconds per call of call(i) (its result blocked until ready), after `warmup` untimed calls.
    Two by default: the first compiles for the uncommitted initial state, and the second may
    compile again for the committed arrays the first returned (jit keys on committedness)."""
    for i in range(warmup):
        jax.block_until_ready(call(i))
    times = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        jax.block_until_ready(call(warmup + i))
        times[i] = time.perf_counter() - start
    return times


def summarize(seconds: np.ndarray) -> dict:
    """Latency percentiles in milliseconds, and frames per second from the median."""
    ms = 1e3 * np.asarray(seconds)
    p50 = float(np.percentile(ms, 50))
    return {
        "ms_p50": round(p50, 3),
        "ms_p95": round(float(np.percentile(ms, 95)), 3),
        "ms_p99": round(float(np.percentile(ms, 99)), 3),
        "ms_mean": round(float(ms.mean()), 3),
        "fps": round(1e3 / p50, 2),
        "n": int(ms.size),
    }


def matmul_peak(shapes=MATMUL_SHAPES, dtype=jnp.float32, repeats: int = 6) -> dict:
    """This machine's achievable matmul FLOP/s: the best of `repeats` runs of [m,k] @ [k,n] over
    `shapes`; every shape's best and median rate are reported too."""
    by_shape = {}
    matmul = jax.jit(jnp.matmul)
    for m, k, n in shapes:
        a = jax.random.normal(jax.random.key(0), (m, k), dtype)
        b = jax.random.normal(jax.random.key(1), (k, n), dtype)
        seconds = time_calls(lambda i: matmul(a, b), repeats, warmup=2)
        flops = 2.0 * m * k * n
        by_shape[f"{m}x{k}x{n}"] = {"best": flops / float(seconds.min()), "median": flops / float(np.median(seconds))}
    best = max(by_shape, key=lambda key: by_shape[key]["best"])
    return {"dtype": jnp.dtype(dtype).name, "flops_per_s": by_shape[best]["best"], "best_shape": best, "by_shape": by_shape}
