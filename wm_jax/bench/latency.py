"""Latency of the streaming step with the window full: the KV-cache step (fp32 or int8 weights,
with or without decoding), the recompute-everything baseline, and either one as a single knob
(window, latent size, denoising steps) changes."""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax

from wm_jax import quantize, rollout
from wm_jax.bench.inputs import context_latents, no_keys, randomized_params, step_keys
from wm_jax.bench.timing import summarize, time_calls
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig


def bench_step(config: ModelConfig, sampler: SamplerConfig, params, frames: int, *, make_step=rollout.make_step,
               decode: Callable | None = None) -> dict:
    """Latency of the KV-cache step with the window full; with `decode` (latent_BHWC -> frame),
    also of step + decode, and of the decode alone. `make_step=quantize.make_step` times int8
    params (`quantize.quantize(params)`)."""
    step = _jitted_step(make_step, config, sampler)
    init = quantize.init_state if make_step is quantize.make_step else rollout.init_state
    state = init(config, params, context_latents(config, config.window, jax.random.key(1)), rng=jax.random.key(2), sampler=sampler)
    action = no_keys(config)
    holder = {"state": state, "latent": None}
    keys = step_keys(frames + 2)

    def call(i):
        holder["state"], holder["latent"] = step(params, holder["state"], action, keys[i])
        return holder["latent"]

    result = {"step": summarize(time_calls(call, frames))}
    if decode is not None:
        latent = holder["latent"]
        result["decode"] = summarize(time_calls(lambda i: decode(latent), frames))

        def call_decoded(i):
            holder["state"], latent = step(params, holder["state"], action, keys[i])
            return decode(latent)

        result["step_and_decode"] = summarize(time_calls(call_decoded, frames))
    return result


def bench_recompute(config: ModelConfig, sampler: SamplerConfig, params, frames: int) -> dict:
    """Latency of the no-cache baseline (the whole window re-run for every denoising pass)."""
    step = _jitted_recompute(config, sampler)
    holder = {"state": rollout.init_window_state(config, context_latents(config, config.window, jax.random.key(1)))}
    action, keys = no_keys(config), step_keys(frames + 2)

    def call(i):
        holder["state"], latent = step(params, holder["state"], action, keys[i])
        return latent

    return summarize(time_calls(call, frames))


# One jitted function per (configuration, sampler), kept for the process: a second timing of the
# same step (int8's fp32 reference, a sweep row equal to the base) reuses its compiled programs.
@functools.lru_cache(maxsize=None)
def _jitted_step(make_step: Callable, config: ModelConfig, sampler: SamplerConfig):
    return make_step(config, sampler)


@functools.lru_cache(maxsize=None)
def _jitted_recompute(config: ModelConfig, sampler: SamplerConfig):
    return jax.jit(functools.partial(rollout.recompute_step, config=config, sampler=sampler), donate_argnums=(1,))


def cache_speedup(recompute: dict, step: dict) -> float:
    """How many times faster the cached step's median is than the recompute baseline's."""
    return round(recompute["ms_p50"] / step["ms_p50"], 2)


def sweep(config: ModelConfig, sampler: SamplerConfig, frames: int, *, windows=(), latent_sizes=(), steps=(),
          with_recompute: bool = True, progress=None, params=None) -> dict:
    """Step latency (p50) as one knob changes, the others as in `config`/`sampler`. Along the
    window axis, the no-cache baseline too (its cost grows with the window, the cache's barely).
    Rows whose configuration is `config` itself (the steps knob, or a value equal to the
    config's own) run on `params` if given; the others on `randomized_params` of theirs."""
    out = {"window": [], "latent_size": [], "denoising_steps": []}
    jobs = [("window", w) for w in windows] + [("latent_size", s) for s in latent_sizes] + [("denoising_steps", n) for n in steps]
    for knob, value in jobs:
        cfg, smp = turned(config, sampler, knob, value)
        row_params = params if params is not None and cfg == config else randomized_params(cfg, jax.random.key(0))
        row = {knob: value, "tokens_per_frame": cfg.tokens_per_frame, "step": bench_step(cfg, smp, row_params, frames)["step"]}
        if knob == "window" and with_recompute:
            row["recompute"] = bench_recompute(cfg, smp, row_params, frames)
            row["cache_speedup"] = cache_speedup(row["recompute"], row["step"])
        out[knob].append(row)
        if progress is not None:
            progress.update(1)
    return out


def turned(config: ModelConfig, sampler: SamplerConfig, knob: str, value: int) -> tuple[ModelConfig, SamplerConfig]:
    """(config, sampler) with one sweep knob set to `value`."""
    if knob == "window":
        return config.replace(window=value, max_frames=max(config.max_frames, value + 1)), sampler
    if knob == "latent_size":
        return config.replace(latent_size=(value, value)), sampler
    return config, dataclasses.replace(sampler, steps=value)
