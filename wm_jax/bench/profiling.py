"""Where the step's time goes: a jax.profiler trace of a few steps, the XLA ops that took the
most time per frame in it, and the op counts of the optimised HLO."""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import time

import jax

from wm_jax import info, rollout
from wm_jax.bench.inputs import context_latents, no_keys, randomized_params, step_keys
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig

# Matmul-like XLA ops (the CPU backend's dots, its YNNPACK / oneDNN calls, convolutions).
_MATMUL_OP_PREFIXES = ("dot", "ynn", "custom-call", "convolution")


def profile_step(config: ModelConfig, sampler: SamplerConfig, directory: str, frames: int = 20, top: int = 15) -> dict:
    """A jax.profiler trace of `frames` steps (TensorBoard / Perfetto can open `directory`), and
    from its Perfetto JSON the XLA ops that took the most time per frame, plus the optimised HLO's
    op counts: the answer to "where does the step's time go"."""
    params = randomized_params(config, jax.random.key(0))
    step = rollout.make_step(config, sampler)
    state = rollout.init_state(config, params, context_latents(config, config.window, jax.random.key(1)), rng=jax.random.key(2), sampler=sampler)
    action, keys = no_keys(config), step_keys(frames + 1)
    state, latent = step(params, state, action, keys[-1])  # compiled outside the trace
    latent.block_until_ready()
    start = time.perf_counter()
    with jax.profiler.trace(directory, create_perfetto_trace=True):
        for key in keys[:frames]:
            state, latent = step(params, state, action, key)
        latent.block_until_ready()
    wall = time.perf_counter() - start
    ops = traced_op_microseconds(directory)
    total_us = sum(ops.values()) / frames
    dot_us = sum(v for k, v in ops.items() if k.startswith(_MATMUL_OP_PREFIXES)) / frames
    hlo = info.compiled_step(config, sampler).as_text()
    return {"trace_dir": directory, "wall_ms_per_frame_under_trace": round(1e3 * wall / frames, 3),
            "xla_op_us_per_frame": round(total_us, 1), "matmul_op_us_per_frame": round(dot_us, 1),
            "top_ops_us_per_frame": {k: round(v / frames, 1) for k, v in ops.most_common(top)}, "hlo_ops": hlo_op_counts(hlo)}


def traced_op_microseconds(directory: str) -> collections.Counter:
    """Microseconds per XLA op name in the newest Perfetto trace under `directory` (empty if none)."""
    traces = sorted(glob.glob(os.path.join(directory, "**", "*.trace.json.gz"), recursive=True), key=os.path.getmtime)
    ops = collections.Counter()
    if not traces:
        return ops
    with gzip.open(traces[-1]) as f:
        events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    for e in events:
        name = e.get("name", "")
        # XLA's own ops (fusions, dots, loops); not Python frames or runtime wrappers.
        if e.get("ph") == "X" and not name.startswith(("$", "end:")) and "::" not in name and "Pjit" not in name and " " not in name:
            ops[name] += e.get("dur", 0)
    return ops


def hlo_op_counts(hlo_text: str) -> dict:
    """How many fusions, dots, convolutions, copies, transposes the optimised HLO holds."""
    counts = {}
    for op in ("fusion(", " dot(", " convolution(", " copy(", " transpose(", " custom-call("):
        counts[op.strip(" (")] = hlo_text.count(op)
    return counts
