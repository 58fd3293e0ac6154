"""Projected GPU frames/s from FLOPs and bytes per frame (a roofline: the slower of the compute
and the memory bound), and the projection for the large named configurations, whose one frame
is also timed here. A projection, not a measurement."""

from __future__ import annotations

import jax
import numpy as np

from wm_jax import configs, info
from wm_jax import quantize as q8  # `quantize` is large_model_projection's keyword
from wm_jax.bench.inputs import randomized_params
from wm_jax.bench.latency import bench_step
from wm_jax.diffusion import SamplerConfig

# Peak dense throughput (no structured sparsity) with BF16 inputs and FP32 accumulation, and
# DRAM bandwidth, from the vendors' published specifications. Used only for the projection.
GPU_PEAKS = {
    "RTX 4090": {"bf16_flops": 165.2e12, "bytes_per_s": 1008e9, "source": "NVIDIA Ada (AD102) whitepaper: 165.2 TFLOPS BF16 dense w/ FP32 acc, 1008 GB/s GDDR6X"},
    "RTX 5090": {"bf16_flops": 209.5e12, "bytes_per_s": 1792e9, "source": "NVIDIA Blackwell (GB202) whitepaper: 209.5 TFLOPS BF16 dense w/ FP32 acc, 1792 GB/s GDDR7"},
    "H100 SXM": {"bf16_flops": 989.4e12, "bytes_per_s": 3350e9, "source": "NVIDIA H100 SXM5 datasheet: 989.4 TFLOPS BF16 dense, 3.35 TB/s HBM3"},
}


def roofline(flops: float, bytes_accessed: float, peaks: dict = GPU_PEAKS) -> dict:
    """Projected frames/s: min(compute bound, memory bound) per GPU. It assumes peak dense BF16
    throughput and full DRAM bandwidth are reached."""
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
    projection is given for both. With quantize="int8" the int8 weights are projected too
    (`int8_projection`)."""
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
        del params  # a large model's fp32 params need not outlive the int8 copy
        out["int8"] = int8_projection(config, sampler, qparams, cost, frames)
    return out


def int8_projection(config, sampler: SamplerConfig, qparams, cost: dict, frames: int) -> dict:
    """The int8 step timed here, and the bf16 projection with the weight traffic of int8 kernels
    (1 byte instead of bf16's 2, read once per model pass) taken off the bf16 bytes: the GPU
    case where XLA fuses the int8 -> bf16 convert into the matmul's operand, which the CPU
    backend does not do."""
    quantized = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(qparams, is_leaf=_is_int8) if _is_int8(x))
    passes = sampler.steps + 1  # guidance's two branches are one batch: one read of the weights per pass
    saved = passes * quantized * 1  # bytes: bf16 (2) -> int8 (1) per kernel element per pass
    return {
        "this_machine": bench_step(config, sampler, qparams, frames, make_step=q8.make_step)["step"],
        "quantized_elements": quantized,
        "weight_bytes_saved_per_frame_vs_bf16": saved,
        "projection_bf16_int8_weights": roofline(cost["flops"], cost["bytes_accessed"] / 2 - saved),
    }


def _is_int8(x) -> bool:
    return isinstance(x, q8.Int8Tensor)
