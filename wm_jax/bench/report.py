"""Everything `wm bench` measures, assembled into one JSON-ready report: the model under test,
then the sections (matmul peak, step latency and cost, compile times, sweeps, int8, GPU
projections) in the order they are measured, between two readings of the load average."""

from __future__ import annotations

from typing import Callable

import jax
from tqdm.auto import tqdm

from wm_jax import configs, model
from wm_jax.bench.compile_time import compile_times
from wm_jax.bench.cost import step_cost, utilisation
from wm_jax.bench.decoder import decoder_for
from wm_jax.bench.inputs import randomized_params
from wm_jax.bench.int8 import compare_int8
from wm_jax.bench.latency import bench_recompute, bench_step, cache_speedup, sweep
from wm_jax.bench.roofline import GPU_PEAKS, large_model_projection
from wm_jax.bench.timing import MATMUL_SHAPES, matmul_peak
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig
from wm_jax.machine import load_average, machine, peak_rss_bytes
from wm_jax.bundle import check_objective_recorded

RANDOMIZED_SOURCE = "randomized_params (untrained, zero-init leaves filled with N(0, 0.02^2))"


def run(config_name: str, sampler: SamplerConfig, frames: int = 50, *, sweep_windows=(2, 4, 8, 16), sweep_latent_sizes=(8, 16, 32),
        sweep_steps=(1, 2, 4, 8), with_decode: bool = True, with_compile: bool = True, quantize: str | None = None,
        roofline_configs=(), autoencoder_dir: str | None = None, checkpoint: str | None = None, matmul_shapes=MATMUL_SHAPES,
        compute_dtype: str | None = None, progress: bool = True) -> dict:
    """Everything `wm bench` measures, as one JSON-ready dict. With `checkpoint` (a model
    directory) its config and trained params are used; otherwise `config_name` with
    `randomized_params` (same cost; the int8 quality figures then describe an untrained model)."""
    if quantize not in (None, "int8"):  # refused before minutes of measuring, not after
        raise ValueError(f"unknown quantisation {quantize!r}; known: int8")
    config, params = model_under_test(config_name, checkpoint, compute_dtype)
    total = 5 + len(sweep_windows) + len(sweep_latent_sizes) + len(sweep_steps) + len(roofline_configs) + (1 if quantize else 0)
    bar = tqdm(total=total, desc="wm bench", disable=not progress)
    report = header(f"{config_name} ({checkpoint})" if checkpoint else config_name, config, sampler, frames)
    report["params_source"] = checkpoint or RANDOMIZED_SOURCE
    report["matmul_peak"] = matmul_peak(matmul_shapes)
    bar.update(1)
    decode, report["decode_with"] = decoder_for(config, autoencoder_dir) if with_decode else (None, None)
    report.update(step_figures(config, sampler, params, frames, decode, report["matmul_peak"], bar))
    report["compile"] = compile_times(config, sampler) if with_compile else {"cold_s": None, "persistent_cache_s": None}
    bar.update(1)
    report["sweep"] = sweep(config, sampler, frames, windows=sweep_windows, latent_sizes=sweep_latent_sizes, steps=sweep_steps,
                            progress=bar, params=params)
    if quantize == "int8":
        report["int8"] = compare_int8(config, sampler, params, frames, decode=decode)
        bar.update(1)
    report["roofline"] = []
    for name in roofline_configs:
        report["roofline"].append(large_model_projection(name, sampler, quantize=quantize, compute_dtype=compute_dtype))
        bar.update(1)
    report.update(footer())
    bar.close()
    return report


def model_under_test(config_name: str, checkpoint: str | None, compute_dtype: str | None) -> tuple[ModelConfig, dict]:
    """(config, params): a trained checkpoint's, or the named configuration's with `randomized_params`;
    `compute_dtype` overrides either's matmul dtype."""
    overrides = {"compute_dtype": compute_dtype} if compute_dtype else {}
    if not checkpoint:
        config = configs.get_config(config_name, **overrides)
        return config, randomized_params(config, jax.random.key(0))
    check_objective_recorded(checkpoint)
    config, params = model.load(checkpoint)
    return config.replace(**overrides), params


def header(label: str, config: ModelConfig, sampler: SamplerConfig, frames: int) -> dict:
    """What was measured, on what, and how busy the machine was at the start."""
    return {"config": label, "compute_dtype": config.compute_dtype, "denoising_steps": sampler.steps, "guidance": sampler.guidance,
            "window": config.window, "tokens_per_frame": config.tokens_per_frame, "latent_shape": [*config.latent_size, config.in_channels],
            "frames_timed": frames, "machine": machine(), "load_average_start": load_average()}


def step_figures(config: ModelConfig, sampler: SamplerConfig, params, frames: int, decode: Callable | None, peak: dict, bar=None) -> dict:
    """The step's latency (with decoding if `decode`), the recompute baseline and the cache's
    speedup over it, the step's cost and memory from its compile, and its utilisation of `peak`."""
    tick = bar.update if bar is not None else (lambda n: None)
    out = {"step": bench_step(config, sampler, params, frames, decode=decode)}
    tick(1)
    out["recompute"] = bench_recompute(config, sampler, params, frames)
    out["cache_speedup"] = cache_speedup(out["recompute"], out["step"]["step"])
    tick(1)
    cost, out["memory"] = step_cost(config, sampler)
    out["frame_cost"] = cost
    out["utilisation"] = utilisation(cost["flops"], out["step"]["step"], peak)
    tick(1)
    return out


def footer() -> dict:
    """The GPU peaks the projections used, the process's peak memory and the load at the end."""
    return {"gpu_peaks_used": GPU_PEAKS, "peak_rss_bytes": peak_rss_bytes(), "load_average_end": load_average()}
