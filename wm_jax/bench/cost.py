"""What one generated frame costs, read from one compile of the step (batch 1) rather than timed:
XLA's FLOPs and bytes accessed, XLA's buffer assignment, and the KV-cache and params sizes."""

from __future__ import annotations

import jax

from wm_jax import info
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig

_BUFFER_FIELDS = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes", "alias_size_in_bytes", "generated_code_size_in_bytes")


def step_cost(config: ModelConfig, sampler: SamplerConfig) -> tuple[dict, dict]:
    """(FLOPs and bytes per frame, memory) of the compiled step."""
    compiled = info.compiled_step(config, sampler)
    return info.compiled_cost(compiled), step_memory(config, compiled)


def step_memory(config: ModelConfig, compiled) -> dict:
    """XLA's buffer sizes for the compiled step, the empty KV cache's bytes and the params' bytes."""
    buffers = compiled.memory_analysis()
    memory = {f: int(getattr(buffers, f, 0) or 0) for f in _BUFFER_FIELDS} if buffers is not None else {}
    memory["kv_cache_bytes"] = info.empty_cache_bytes(config)
    memory["params_bytes"] = int(sum(a.size * a.dtype.itemsize for a in jax.tree_util.tree_leaves(info.abstract_params(config))))
    return memory


def utilisation(flops_per_frame: float, step: dict, matmul_peak: dict) -> dict:
    """The step's achieved FLOP/s (FLOPs per frame over the median latency) against the matmul peak."""
    achieved = flops_per_frame / (step["ms_p50"] / 1e3)
    return {"step_flops_per_s": achieved, "matmul_peak_flops_per_s": matmul_peak["flops_per_s"],
            "fraction": achieved / matmul_peak["flops_per_s"]}
