"""What a configuration costs: parameter breakdown, and FLOPs and bytes of one generated frame
from XLA's cost analysis of the compiled streaming step (no parameters are allocated)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from wm_jax import rollout
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig
from wm_jax.model import abstract_params, count_params, empty_cache

_GROUPS = {"embedding": ("patch_embed", "t_embed", "action_embed"), "final": ("final",)}


def parameter_breakdown(config: ModelConfig) -> dict[str, int]:
    params = abstract_params(config)
    group = lambda prefix: count_params({k: v for k, v in params.items() if k.startswith(prefix)})
    embedding = count_params({k: params[k] for k in _GROUPS["embedding"]})
    return {
        "total": count_params(params),
        "spatial": group("spatial_") + count_params(params["final"]),
        "temporal": group("temporal_"),
        "embedding": embedding,
    }


def compiled_step(config: ModelConfig, sampler: SamplerConfig = SamplerConfig(), batch: int = 1):
    """The streaming step, lowered and compiled for abstract inputs of this configuration."""
    h, w = config.latent_size
    params = abstract_params(config)
    state = jax.eval_shape(lambda: rollout.RolloutState(cache=empty_cache(config, batch)))
    action = jax.ShapeDtypeStruct((batch, config.action_dim), jnp.float32)
    rng = jax.eval_shape(lambda: jax.random.key(0))
    step = jax.jit(functools.partial(rollout.step, config=config, sampler=sampler), donate_argnums=(1,))
    return step.lower(params, state, action, rng).compile()


def compiled_cost(compiled) -> dict[str, float]:
    """FLOPs and bytes accessed by a compiled program, per XLA's cost analysis."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):  # older jax returns one dict per computation
        analysis = analysis[0]
    return {"flops": float(analysis.get("flops", 0.0)), "bytes_accessed": float(analysis.get("bytes accessed", 0.0))}


def frame_cost(config: ModelConfig, sampler: SamplerConfig = SamplerConfig()) -> dict[str, float]:
    """FLOPs and bytes accessed by one generated frame (batch 1), per XLA's cost analysis."""
    return compiled_cost(compiled_step(config, sampler))


def describe(config: ModelConfig, sampler: SamplerConfig = SamplerConfig(), with_cost: bool = True) -> dict:
    info = {
        "parameters": parameter_breakdown(config),
        "tokens_per_frame": config.tokens_per_frame,
        "latent_shape": [*config.latent_size, config.in_channels],
        "temporal_layers": len(config.temporal_layers),
        "window": config.window,
        "kv_cache_bytes_per_batch_element": empty_cache_bytes(config),
        "sampler_steps": sampler.steps,
    }
    if with_cost:
        info["frame"] = frame_cost(config, sampler)
    return info


def empty_cache_bytes(config: ModelConfig) -> int:
    cache = jax.eval_shape(lambda: empty_cache(config, 1))
    return int(sum(a.size * a.dtype.itemsize for a in jax.tree_util.tree_leaves(cache)))
