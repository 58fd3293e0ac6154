"""What the streaming step costs on this machine, measured: the library behind `wm bench`.

Every function returns plain dicts of numbers (JSON-ready); `run` assembles the report that
`wm bench` prints as JSON and as a markdown table. Wall-clock figures are medians and
percentiles over many frames after a warm-up call, each call blocked until its result is
ready. The machine's load average is recorded at the start and the end of a run: on a shared
box the figures are only as quiet as the machine was.

Letters: B batch, T frames, H W C latent height, width, channels, K action entries.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import info, rollout
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig
from wm_jax.model import init_params

# Peak dense throughput (no structured sparsity) with BF16 inputs and FP32 accumulation, and
# DRAM bandwidth, from the vendors' published specifications. Used only for the projection.
GPU_PEAKS = {
    "RTX 4090": {"bf16_flops": 165.2e12, "bytes_per_s": 1008e9, "source": "NVIDIA Ada (AD102) whitepaper: 165.2 TFLOPS BF16 dense w/ FP32 acc, 1008 GB/s GDDR6X"},
    "RTX 5090": {"bf16_flops": 209.5e12, "bytes_per_s": 1792e9, "source": "NVIDIA Blackwell (GB202) whitepaper: 209.5 TFLOPS BF16 dense w/ FP32 acc, 1792 GB/s GDDR7"},
    "H100 SXM": {"bf16_flops": 989.4e12, "bytes_per_s": 3350e9, "source": "NVIDIA H100 SXM5 datasheet: 989.4 TFLOPS BF16 dense, 3.35 TB/s HBM3"},
}


# ----------------------------------------------------------------------------- machine


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def load_average() -> list[float]:
    """os.getloadavg(): other processes on a 2-core box disturb every timing, so it is recorded."""
    return [round(x, 2) for x in os.getloadavg()]


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def rss_bytes() -> int:
    """Current resident memory of this process (for flat-memory checks over long rollouts)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ----------------------------------------------------------------------------- timing


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


# XLA's CPU backend reaches very different rates on different shapes (on the development box
# [512,4096]@[4096,4096] runs at twice the rate of a 2048 cube), so the peak is the best of a few
# shapes, including ones the large models' steps contain ([256 tokens, 1024] @ [1024, 4096]).
MATMUL_SHAPES = ((2048, 2048, 2048), (1024, 1024, 4096), (512, 4096, 4096), (256, 1024, 4096))


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


# ----------------------------------------------------------------------------- inputs


def randomized_params(config: ModelConfig, rng, std: float = 0.02):
    """Fresh params with the zero-initialised leaves (adaLN-Zero, final layer, action embedding)
    filled with N(0, std²): an untrained model whose every block computes something, so timings
    and int8-vs-fp32 comparisons are not flattered by zeros."""
    params = init_params(config, rng)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.fold_in(rng, 1), len(leaves))
    fill = lambda leaf, key: jnp.where(leaf == 0, std * jax.random.normal(key, leaf.shape, leaf.dtype), leaf)
    return jax.tree_util.tree_unflatten(treedef, [fill(leaf, key) for leaf, key in zip(leaves, keys)])


def context_latents(config: ModelConfig, frames: int, rng, batch: int = 1):
    """[B, frames, h, w, c] standard-normal latents (the scale the model's latents are normalised to)."""
    h, w = config.latent_size
    return jax.random.normal(rng, (batch, frames, h, w, config.in_channels))


def no_keys(config: ModelConfig, batch: int = 1):
    """[B, K] the "no keys" action."""
    return jnp.zeros((batch, config.action_dim), jnp.float32)


# ----------------------------------------------------------------------------- the step


def bench_step(config: ModelConfig, sampler: SamplerConfig, params, frames: int, *, make_step=rollout.make_step,
               decode: Callable | None = None) -> dict:
    """Latency of the KV-cache step with the window full; with `decode` (latent_BHWC -> frame),
    also of step + decode, and of the decode alone."""
    step = make_step(config, sampler)
    init = rollout.init_state if make_step is rollout.make_step else _quantized_init_state
    state = init(config, params, context_latents(config, config.window, jax.random.key(1)), rng=jax.random.key(2), sampler=sampler)
    action = no_keys(config)
    holder = {"state": state, "latent": None}
    keys = _keys(frames + 2)  # made before timing: creating a key is a dispatch of its own

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


def _keys(n: int) -> list:
    return [jax.random.key(i) for i in range(n)]


def _quantized_init_state(config, qparams, context, *, rng, sampler):
    from wm_jax import quantize

    return quantize.init_state(config, qparams, context, rng=rng, sampler=sampler)


def bench_recompute(config: ModelConfig, sampler: SamplerConfig, params, frames: int) -> dict:
    """Latency of the no-cache baseline (the whole window re-run for every denoising pass)."""
    step = jax.jit(functools.partial(rollout.recompute_step, config=config, sampler=sampler), donate_argnums=(1,))
    holder = {"state": rollout.init_window_state(config, context_latents(config, config.window, jax.random.key(1)))}
    action, keys = no_keys(config), _keys(frames + 2)

    def call(i):
        holder["state"], latent = step(params, holder["state"], action, keys[i])
        return latent

    return summarize(time_calls(call, frames))


def step_cost(config: ModelConfig, sampler: SamplerConfig) -> tuple[dict, dict]:
    """(FLOPs and bytes per frame, memory) from one compile of the step (batch 1): XLA's cost
    analysis, XLA's buffer assignment, and the KV-cache and params sizes."""
    compiled = info.compiled_step(config, sampler)
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):  # older jax returns one dict per computation
        analysis = analysis[0]
    cost = {"flops": float(analysis.get("flops", 0.0)), "bytes_accessed": float(analysis.get("bytes accessed", 0.0))}
    buffers = compiled.memory_analysis()
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes", "alias_size_in_bytes", "generated_code_size_in_bytes")
    memory = {f: int(getattr(buffers, f, 0) or 0) for f in fields} if buffers is not None else {}
    memory["kv_cache_bytes"] = info.empty_cache_bytes(config)
    memory["params_bytes"] = int(sum(a.size * a.dtype.itemsize for a in jax.tree_util.tree_leaves(info.abstract_params(config))))
    return cost, memory


# ----------------------------------------------------------------------------- compile time

_COMPILE_SNIPPET = """
import json, sys, time
from wm_jax import configs, info
from wm_jax.diffusion import SamplerConfig
config = configs.ModelConfig(**json.loads(sys.argv[1]))
start = time.perf_counter()
info.compiled_step(config, SamplerConfig(**json.loads(sys.argv[2])))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def compile_times(config: ModelConfig, sampler: SamplerConfig) -> dict:
    """Seconds to lower + compile the step in a fresh process, twice, sharing a fresh persistent
    compilation cache: the first is cold, the second reads JAX's persistent cache."""
    import dataclasses

    from wm_jax.model import config_to_dict

    with tempfile.TemporaryDirectory(prefix="wm_bench_jaxcache_") as cache_dir:
        env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache_dir, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
        args = [json.dumps(config_to_dict(config)), json.dumps(dataclasses.asdict(sampler))]
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET, *args], env=env, capture_output=True, text=True, check=False)
            if out.returncode:
                raise RuntimeError(f"compile-time subprocess failed:\n{out.stderr[-2000:]}")
            runs.append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
        cache_files = sum(len(files) for _, _, files in os.walk(cache_dir))
    return {"cold_s": round(runs[0], 3), "persistent_cache_s": round(runs[1], 3), "cache_entries": cache_files}


# ----------------------------------------------------------------------------- sweeps


def sweep(config: ModelConfig, sampler: SamplerConfig, frames: int, *, windows=(), latent_sizes=(), steps=(),
          with_recompute: bool = True, progress=None) -> dict:
    """Step latency (p50) as one knob changes, the others as in `config`/`sampler`. Along the
    window axis, the no-cache baseline too (its cost grows with the window, the cache's barely)."""
    out = {"window": [], "latent_size": [], "denoising_steps": []}
    jobs = [("window", w) for w in windows] + [("latent_size", s) for s in latent_sizes] + [("denoising_steps", n) for n in steps]
    for knob, value in jobs:
        cfg, smp = config, sampler
        if knob == "window":
            cfg = config.replace(window=value, max_frames=max(config.max_frames, value + 1))
        elif knob == "latent_size":
            cfg = config.replace(latent_size=(value, value))
        else:
            smp = SamplerConfig(**{**sampler.__dict__, "steps": value})
        params = randomized_params(cfg, jax.random.key(0))
        row = {knob: value, "tokens_per_frame": cfg.tokens_per_frame, "step": bench_step(cfg, smp, params, frames)["step"]}
        if knob == "window" and with_recompute:
            row["recompute"] = bench_recompute(cfg, smp, params, frames)
            row["cache_speedup"] = round(row["recompute"]["ms_p50"] / row["step"]["ms_p50"], 2)
        out[knob].append(row)
        if progress is not None:
            progress.update(1)
    return out


# ----------------------------------------------------------------------------- roofline


def roofline(flops: float, bytes_accessed: float, peaks: dict = GPU_PEAKS) -> dict:
    """Projected frames/s: min(compute bound, memory bound) per GPU. A projection, not a
    measurement: it assumes peak dense BF16 throughput and full DRAM bandwidth are reached."""
    out = {}
    for name, peak in peaks.items():
        compute_fps = peak["bf16_flops"] / flops
        memory_fps = peak["bytes_per_s"] / bytes_accessed
        out[name] = {
            "compute_bound_fps": round(compute_fps, 1),
            "memory_bound_fps": round(memory_fps, 1),
            "roofline_fps": round(min(compute_fps, memory_fps), 1),
            "bound": "compute" if compute_fps < memory_fps else "memory",
            "peak_bf16_flops": peak["bf16_flops"],
            "peak_bytes_per_s": peak["bytes_per_s"],
        }
    return out


def large_model_projection(name: str, sampler: SamplerConfig, frames: int = 2, quantize: str | None = None,
                           compute_dtype: str | None = None) -> dict:
    """One named (large) configuration: FLOPs and bytes per frame from XLA's cost analysis,
    one generated frame timed on this machine, and the GPU roofline projection.

    Bytes are those of the fp32 graph compiled here; a bf16 deployment moves about half, so the
    projection is given for both. With quantize="int8" the int8 step is timed here too, and the
    projection is repeated with the weight traffic of int8 kernels (1 byte instead of bf16's 2,
    read once per model pass) taken off the bf16 bytes: the GPU case where XLA fuses the
    int8 -> bf16 convert into the matmul's operand, which the CPU backend does not do."""
    from wm_jax import configs
    from wm_jax import quantize as q8

    config = configs.get_config(name, **({"compute_dtype": compute_dtype} if compute_dtype else {}))
    cost = info.frame_cost(config, sampler)
    params = randomized_params(config, jax.random.key(0))
    timing = bench_step(config, sampler, params, frames)["step"]
    out = {
        "config": name,
        "compute_dtype": config.compute_dtype,
        "latent_shape": [*config.latent_size, config.in_channels],
        "resolution_note": "32x32x32 latents = 256x256 frames with an 8x autoencoder (decode not included)",
        "tokens_per_frame": config.tokens_per_frame,
        "denoising_steps": sampler.steps,
        "flops_per_frame": cost["flops"],
        "bytes_per_frame_fp32": cost["bytes_accessed"],
        "arithmetic_intensity_fp32": round(cost["flops"] / cost["bytes_accessed"], 1),
        "this_machine": timing,
        "this_machine_flops_per_s": cost["flops"] / (timing["ms_p50"] / 1e3),
        "projection_fp32_bytes": roofline(cost["flops"], cost["bytes_accessed"]),
        "projection_bf16_bytes": roofline(cost["flops"], cost["bytes_accessed"] / 2),
    }
    if quantize == "int8":
        qparams = q8.quantize(params)
        del params
        quantized = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(qparams, is_leaf=lambda x: isinstance(x, q8.Int8Tensor))
                        if isinstance(x, q8.Int8Tensor))
        passes = sampler.steps + 1  # guidance's two branches are one batch: one read of the weights per pass
        saved = passes * quantized * 1  # bytes: bf16 (2) -> int8 (1) per kernel element per pass
        out["int8"] = {
            "this_machine": bench_step(config, sampler, qparams, frames, make_step=q8.make_step)["step"],
            "quantized_elements": quantized,
            "weight_bytes_saved_per_frame_vs_bf16": saved,
            "projection_bf16_int8_weights": roofline(cost["flops"], cost["bytes_accessed"] / 2 - saved),
        }
    return out


# ----------------------------------------------------------------------------- profile


def profile_step(config: ModelConfig, sampler: SamplerConfig, directory: str, frames: int = 20, top: int = 15) -> dict:
    """A jax.profiler trace of `frames` steps (TensorBoard / Perfetto can open `directory`), and
    from its Perfetto JSON the XLA ops that took the most time per frame, plus the optimised HLO's
    op counts: the answer to "where does the step's time go"."""
    import collections
    import glob
    import gzip

    params = randomized_params(config, jax.random.key(0))
    step = rollout.make_step(config, sampler)
    state = rollout.init_state(config, params, context_latents(config, config.window, jax.random.key(1)), rng=jax.random.key(2), sampler=sampler)
    action, keys = no_keys(config), [jax.random.key(i) for i in range(frames + 1)]
    state, latent = step(params, state, action, keys[-1])
    latent.block_until_ready()
    start = time.perf_counter()
    with jax.profiler.trace(directory, create_perfetto_trace=True):
        for key in keys[:frames]:
            state, latent = step(params, state, action, key)
        latent.block_until_ready()
    wall = time.perf_counter() - start
    traces = sorted(glob.glob(os.path.join(directory, "**", "*.trace.json.gz"), recursive=True), key=os.path.getmtime)
    ops = collections.Counter()
    if traces:
        with gzip.open(traces[-1]) as f:
            events = json.load(f)
        events = events["traceEvents"] if isinstance(events, dict) else events
        for e in events:
            name = e.get("name", "")
            # XLA's own ops (fusions, dots, loops); not Python frames or runtime wrappers.
            if e.get("ph") == "X" and not name.startswith(("$", "end:")) and "::" not in name and "Pjit" not in name and " " not in name:
                ops[name] += e.get("dur", 0)
    per_frame = {k: round(v / frames, 1) for k, v in ops.most_common(top)}
    total_us = sum(ops.values()) / frames
    dot_us = sum(v for k, v in ops.items() if k.startswith(("dot", "ynn", "custom-call", "convolution"))) / frames
    hlo = info.compiled_step(config, sampler).as_text()
    return {"trace_dir": directory, "wall_ms_per_frame_under_trace": round(1e3 * wall / frames, 3),
            "xla_op_us_per_frame": round(total_us, 1), "matmul_op_us_per_frame": round(dot_us, 1),
            "top_ops_us_per_frame": per_frame, "hlo_ops": hlo_op_counts(hlo)}


def hlo_op_counts(hlo_text: str) -> dict:
    """How many fusions, dots, convolutions, copies, transposes the optimised HLO holds."""
    counts = {}
    for op in ("fusion(", " dot(", " convolution(", " copy(", " transpose(", " custom-call("):
        counts[op.strip(" (")] = hlo_text.count(op)
    return counts


# ----------------------------------------------------------------------------- report


def markdown(report: dict) -> str:
    """The report's headline figures as markdown tables."""
    lines = [f"### wm bench: `{report['config']}` ({report.get('compute_dtype', 'float32')}), {report['denoising_steps']} denoising steps, guidance {report.get('guidance', 1.0)}, window {report['window']}",
             "", f"load average at start / end: {report['load_average_start']} / {report['load_average_end']}", "",
             "| what | p50 ms | p95 ms | p99 ms | fps |", "|---|---|---|---|---|"]
    rows = [("step (KV cache)", report["step"]["step"]), ("recompute baseline", report["recompute"])]
    for key, label in (("decode", "decode only"), ("step_and_decode", "step + decode")):
        if key in report["step"]:
            rows.append((label, report["step"][key]))
    if "int8" in report:
        rows.append(("step, int8 weights", report["int8"]["step"]))
    for label, s in rows:
        lines.append(f"| {label} | {s['ms_p50']} | {s['ms_p95']} | {s['ms_p99']} | {s['fps']} |")
    lines += ["", f"cache speedup over recompute: **{report['cache_speedup']}x**; "
              f"compile cold {report['compile']['cold_s']} s, from persistent cache {report['compile']['persistent_cache_s']} s; "
              f"process peak RSS (whole run) {report['peak_rss_bytes'] / 2**20:.0f} MiB; KV cache {report['memory']['kv_cache_bytes']:,} B; "
              f"XLA temp {report['memory'].get('temp_size_in_bytes', 0):,} B",
              f"achieved {report['utilisation']['step_flops_per_s'] / 1e9:.2f} GFLOP/s vs measured matmul peak "
              f"{report['utilisation']['matmul_peak_flops_per_s'] / 1e9:.1f} GFLOP/s ({report['matmul_peak']['best_shape']}): utilisation {100 * report['utilisation']['fraction']:.1f}%"]
    if report.get("sweep"):
        lines += ["", "| knob | value | tokens/frame | step p50 ms | recompute p50 ms | speedup |", "|---|---|---|---|---|---|"]
        for knob, rows_ in report["sweep"].items():
            for r in rows_:
                rec = r.get("recompute", {}).get("ms_p50", "")
                lines.append(f"| {knob} | {r[knob]} | {r['tokens_per_frame']} | {r['step']['ms_p50']} | {rec} | {r.get('cache_speedup', '')} |")
    if "int8" in report:
        q = report["int8"]
        lines += ["", f"int8: checkpoint {q['checkpoint_bytes_int8']:,} B vs fp32 {q['checkpoint_bytes_fp32']:,} B "
                  f"({q['checkpoint_ratio']:.2f}x smaller); step p50 {q['step']['ms_p50']} ms vs fp32 {q['step_fp32']['ms_p50']} ms "
                  f"(speedup {q['speedup']}x); PSNR int8 vs fp32 rollout over {q['rollout_frames']} frames: "
                  f"latents {q['psnr_latents_db']:.1f} dB, one-pass velocity relative error {q['velocity_relative_error']:.2e}" + (f", decoded frames {q['psnr_frames_db']:.1f} dB" if "psnr_frames_db" in q else "")]
    for proj in report.get("roofline", []):
        lines += ["", f"**{proj['config']}** ({proj.get('compute_dtype', 'float32')}, {proj['latent_shape']} latents, {proj['denoising_steps']} steps + 1 cache pass): "
                  f"{proj['flops_per_frame'] / 1e9:.1f} GFLOP, {proj['bytes_per_frame_fp32'] / 1e9:.2f} GB (fp32) per frame; "
                  f"this CPU: {proj['this_machine']['ms_p50'] / 1e3:.2f} s/frame = {proj['this_machine_flops_per_s'] / 1e9:.0f} GFLOP/s "
                  f"({100 * proj['this_machine_flops_per_s'] / report['matmul_peak']['flops_per_s']:.0f}% of the matmul peak). Projection (not measured):", "",
                  "| GPU | peak BF16 TFLOP/s | GB/s | fps compute-bound | fps memory-bound (fp32 / bf16 bytes) | roofline fps (bf16) |",
                  "|---|---|---|---|---|---|"]
        for gpu, p in proj["projection_bf16_bytes"].items():
            p32 = proj["projection_fp32_bytes"][gpu]
            lines.append(f"| {gpu} | {p['peak_bf16_flops'] / 1e12:.1f} | {p['peak_bytes_per_s'] / 1e9:.0f} | {p['compute_bound_fps']} | "
                         f"{p32['memory_bound_fps']} / {p['memory_bound_fps']} | {p['roofline_fps']} ({p['bound']}) |")
        if "int8" in proj:
            q = proj["int8"]
            fps = ", ".join(f"{gpu} {p['roofline_fps']} ({p['bound']})" for gpu, p in q["projection_bf16_int8_weights"].items())
            lines += ["", f"int8 weights: this CPU {q['this_machine']['ms_p50'] / 1e3:.2f} s/frame (fp32 {proj['this_machine']['ms_p50'] / 1e3:.2f} s); "
                      f"projection with bf16 activations + int8 weights (-{q['weight_bytes_saved_per_frame_vs_bf16'] / 1e9:.2f} GB/frame): {fps}"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- int8


def compare_int8(config: ModelConfig, sampler: SamplerConfig, params, frames: int, rollout_frames: int = 16,
                 decode: Callable | None = None) -> dict:
    """int8 weights against fp32: checkpoint size, step latency, and the PSNR between the two
    rollouts from the same context, actions and noise (latents, and decoded frames if `decode`)."""
    from wm_jax import evaluation, model, quantize

    qparams = quantize.quantize(params)
    with tempfile.TemporaryDirectory(prefix="wm_bench_ckpt_") as tmp:
        model.save(os.path.join(tmp, "fp32"), config, params)
        quantize.save(os.path.join(tmp, "int8"), config, qparams)
        fp32_bytes = quantize.directory_bytes(os.path.join(tmp, "fp32"))
        int8_bytes = quantize.directory_bytes(os.path.join(tmp, "int8"))
    fp32_step = bench_step(config, sampler, params, frames)["step"]
    int8_step = bench_step(config, sampler, qparams, frames, make_step=quantize.make_step)["step"]

    context = context_latents(config, config.window, jax.random.key(1))
    actions_BTK = jnp.zeros((1, rollout_frames, config.action_dim)).at[:, ::3, 0].set(1.0)  # some keys pressed
    run_fp32 = rollout.make_rollout(config, sampler)
    run_int8 = quantize.make_rollout(config, sampler)
    _, fp32_BTHWC = run_fp32(params, rollout.init_state(config, params, context, rng=jax.random.key(2), sampler=sampler), actions_BTK, jax.random.key(3))
    _, int8_BTHWC = run_int8(qparams, quantize.init_state(config, qparams, context, rng=jax.random.key(2), sampler=sampler), actions_BTK, jax.random.key(3))
    data_range = float(jnp.max(fp32_BTHWC) - jnp.min(fp32_BTHWC))
    out = {
        "checkpoint_bytes_fp32": fp32_bytes,
        "checkpoint_bytes_int8": int8_bytes,
        "checkpoint_ratio": round(fp32_bytes / int8_bytes, 3),
        "params_bytes_fp32": quantize.nbytes(params),
        "params_bytes_int8": quantize.nbytes(qparams),
        "step_fp32": fp32_step,
        "step": int8_step,
        "speedup": round(fp32_step["ms_p50"] / int8_step["ms_p50"], 3),
        "rollout_frames": rollout_frames,
        "psnr_latents_db": float(evaluation.psnr(int8_BTHWC, fp32_BTHWC, data_range=data_range).mean()),
        "psnr_latents_per_frame_db": [round(float(x), 2) for x in evaluation.psnr(int8_BTHWC, fp32_BTHWC, data_range=data_range)[0]],
        "latent_data_range": data_range,
        "velocity_relative_error": velocity_relative_error(config, params, qparams),
    }
    if decode is not None:
        a, b = decode(fp32_BTHWC), decode(int8_BTHWC)
        out["psnr_frames_db"] = float(evaluation.psnr(jnp.clip(b, -1, 1), jnp.clip(a, -1, 1), data_range=2.0).mean())
    return out


def velocity_relative_error(config: ModelConfig, params, qparams) -> float:
    """||v_int8 - v_fp32|| / ||v_fp32|| of one full-clip model pass on the same noisy input: scale
    free, so it does not flatter an untrained model whose velocities are small."""
    from wm_jax import quantize
    from wm_jax.model import WorldModel

    t = min(config.max_frames, config.window + 1)
    x = context_latents(config, t, jax.random.key(7))
    t_BT = jnp.full((1, t), 0.5)
    a = jnp.zeros((1, t, config.action_dim))
    apply = jax.jit(lambda p: WorldModel(config).apply({"params": p}, x, t_BT, a))
    v32, v8 = apply(params), apply(quantize.dequantize(qparams))
    return float(jnp.linalg.norm(v8 - v32) / jnp.linalg.norm(v32))


# ----------------------------------------------------------------------------- the whole run


def decoder_for(config: ModelConfig, autoencoder_dir: str | None = None):
    """(decode fn latent -> frame, description). A trained autoencoder from `autoencoder_dir` if
    given; else a randomly initialised TAESD-family decoder with the model's latent channels
    (the decode cost depends on the architecture, not on the weights)."""
    from wm_jax import autoencoder as ae

    if autoencoder_dir:
        ae_config, variables = ae.load(autoencoder_dir)
        source = f"loaded from {autoencoder_dir}"
    else:
        named = {4: "taesd", 16: "taef1", 32: "taef2"}
        name = named.get(config.in_channels)
        ae_config = ae.get_config(name) if name else ae.get_config("taesd", latent_channels=config.in_channels)
        variables = ae.init(ae_config, jax.random.key(0))
        source = f"random-init {name or 'taesd-like'} (c={config.in_channels}, f={ae_config.downscale})"
    if ae_config.latent_channels != config.in_channels:
        raise ValueError(f"autoencoder has {ae_config.latent_channels} latent channels, the model {config.in_channels}")
    h, w = config.latent_size
    desc = {"autoencoder": source, "frame_size": [h * ae_config.downscale, w * ae_config.downscale]}
    return (lambda latent: ae.decode(variables, latent, ae_config)), desc


def run(config_name: str, sampler: SamplerConfig, frames: int = 50, *, sweep_windows=(2, 4, 8, 16), sweep_latent_sizes=(8, 16, 32),
        sweep_steps=(1, 2, 4, 8), with_decode: bool = True, with_compile: bool = True, quantize: str | None = None,
        roofline_configs=(), autoencoder_dir: str | None = None, checkpoint: str | None = None, matmul_shapes=MATMUL_SHAPES,
        compute_dtype: str | None = None, progress: bool = True) -> dict:
    """Everything `wm bench` measures, as one JSON-ready dict. With `checkpoint` (a model
    directory) its config and trained params are used; otherwise `config_name` with
    `randomized_params` (same cost; the int8 quality figures then describe an untrained model)."""
    from tqdm.auto import tqdm

    from wm_jax import configs, model

    overrides = {"compute_dtype": compute_dtype} if compute_dtype else {}
    if checkpoint:
        from wm_jax.bundle import check_objective_recorded

        check_objective_recorded(checkpoint)
        config, params = model.load(checkpoint)
        config, config_name = config.replace(**overrides), f"{config_name} ({checkpoint})"
    else:
        config = configs.get_config(config_name, **overrides)
        params = randomized_params(config, jax.random.key(0))
    total = 5 + len(sweep_windows) + len(sweep_latent_sizes) + len(sweep_steps) + len(roofline_configs) + (1 if quantize else 0)
    bar = tqdm(total=total, desc="wm bench", disable=not progress)
    report = {"config": config_name, "compute_dtype": config.compute_dtype, "denoising_steps": sampler.steps, "guidance": sampler.guidance,
              "window": config.window, "tokens_per_frame": config.tokens_per_frame, "latent_shape": [*config.latent_size, config.in_channels],
              "frames_timed": frames, "machine": machine(), "load_average_start": load_average()}
    report["params_source"] = checkpoint or "randomized_params (untrained, zero-init leaves filled with N(0, 0.02^2))"
    report["matmul_peak"] = matmul_peak(matmul_shapes)
    bar.update(1)
    decode, decode_info = decoder_for(config, autoencoder_dir) if with_decode else (None, None)
    report["decode_with"] = decode_info
    report["step"] = bench_step(config, sampler, params, frames, decode=decode)
    bar.update(1)
    report["recompute"] = bench_recompute(config, sampler, params, frames)
    report["cache_speedup"] = round(report["recompute"]["ms_p50"] / report["step"]["step"]["ms_p50"], 2)
    bar.update(1)
    cost, report["memory"] = step_cost(config, sampler)
    achieved = cost["flops"] / (report["step"]["step"]["ms_p50"] / 1e3)
    report["frame_cost"] = cost
    report["utilisation"] = {"step_flops_per_s": achieved, "matmul_peak_flops_per_s": report["matmul_peak"]["flops_per_s"],
                             "fraction": achieved / report["matmul_peak"]["flops_per_s"]}
    bar.update(1)
    report["compile"] = compile_times(config, sampler) if with_compile else {"cold_s": None, "persistent_cache_s": None}
    bar.update(1)
    report["sweep"] = sweep(config, sampler, frames, windows=sweep_windows, latent_sizes=sweep_latent_sizes, steps=sweep_steps, progress=bar)
    if quantize == "int8":
        report["int8"] = compare_int8(config, sampler, params, frames, decode=decode)
        bar.update(1)
    elif quantize is not None:
        raise ValueError(f"unknown quantisation {quantize!r}; known: int8")
    report["roofline"] = []
    for name in roofline_configs:
        report["roofline"].append(large_model_projection(name, sampler, quantize=quantize, compute_dtype=compute_dtype))
        bar.update(1)
    report["gpu_peaks_used"] = GPU_PEAKS
    report["peak_rss_bytes"] = peak_rss_bytes()
    report["load_average_end"] = load_average()
    bar.close()
    return report
