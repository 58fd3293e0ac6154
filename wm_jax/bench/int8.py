"""Weight-only int8 against fp32 on the same model: checkpoint and params size, step latency,
and how far the int8 rollout drifts from the fp32 one from the same context, actions and noise.

Letters: B batch, T frames, H W C latent height, width, channels, K action entries.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable

import jax
import jax.numpy as jnp

from wm_jax import model, quantize, rollout
from wm_jax.bench.inputs import context_latents
from wm_jax.bench.latency import bench_step
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig
from wm_jax.image_metrics import psnr


def compare_int8(config: ModelConfig, sampler: SamplerConfig, params, frames: int, rollout_frames: int = 16,
                 decode: Callable | None = None) -> dict:
    """int8 weights against fp32: checkpoint size, step latency, and the PSNR between the two
    rollouts from the same context, actions and noise (latents, and decoded frames if `decode`)."""
    qparams = quantize.quantize(params)
    fp32_bytes, int8_bytes = checkpoint_bytes(config, params, qparams)
    fp32_step = bench_step(config, sampler, params, frames)["step"]
    int8_step = bench_step(config, sampler, qparams, frames, make_step=quantize.make_step)["step"]
    fp32_BTHWC, int8_BTHWC = paired_rollouts(config, sampler, params, qparams, rollout_frames)
    data_range = float(jnp.max(fp32_BTHWC) - jnp.min(fp32_BTHWC))
    psnr_BT = psnr(int8_BTHWC, fp32_BTHWC, data_range=data_range)
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
        "psnr_latents_db": float(psnr_BT.mean()),
        "psnr_latents_per_frame_db": [round(float(x), 2) for x in psnr_BT[0]],
        "latent_data_range": data_range,
        "velocity_relative_error": velocity_relative_error(config, params, qparams),
    }
    if decode is not None:
        a, b = decode(fp32_BTHWC), decode(int8_BTHWC)
        out["psnr_frames_db"] = float(psnr(jnp.clip(b, -1, 1), jnp.clip(a, -1, 1), data_range=2.0).mean())
    return out


def checkpoint_bytes(config: ModelConfig, params, qparams) -> tuple[int, int]:
    """(fp32, int8) bytes on disk of the model saved both ways."""
    with tempfile.TemporaryDirectory(prefix="wm_bench_ckpt_") as tmp:
        model.save(os.path.join(tmp, "fp32"), config, params)
        quantize.save(os.path.join(tmp, "int8"), config, qparams)
        return quantize.directory_bytes(os.path.join(tmp, "fp32")), quantize.directory_bytes(os.path.join(tmp, "int8"))


def paired_rollouts(config: ModelConfig, sampler: SamplerConfig, params, qparams, frames: int):
    """([1, T, H, W, C] fp32 latents, the same from int8 weights): the same context, actions
    (some keys pressed) and noise keys, so their difference is the quantisation's alone."""
    context = context_latents(config, config.window, jax.random.key(1))
    actions_BTK = jnp.zeros((1, frames, config.action_dim)).at[:, ::3, 0].set(1.0)
    fp32_state = rollout.init_state(config, params, context, rng=jax.random.key(2), sampler=sampler)
    int8_state = quantize.init_state(config, qparams, context, rng=jax.random.key(2), sampler=sampler)
    _, fp32_BTHWC = rollout.make_rollout(config, sampler)(params, fp32_state, actions_BTK, jax.random.key(3))
    _, int8_BTHWC = quantize.make_rollout(config, sampler)(qparams, int8_state, actions_BTK, jax.random.key(3))
    return fp32_BTHWC, int8_BTHWC


def velocity_relative_error(config: ModelConfig, params, qparams) -> float:
    """||v_int8 - v_fp32|| / ||v_fp32|| of one full-clip model pass on the same noisy input: scale
    free, so it does not flatter an untrained model whose velocities are small."""
    t = min(config.max_frames, config.window + 1)
    x_BTHWC = context_latents(config, t, jax.random.key(7))
    t_BT = jnp.full((1, t), 0.5)
    a_BTK = jnp.zeros((1, t, config.action_dim))
    apply = jax.jit(lambda p: model.WorldModel(config).apply({"params": p}, x_BTHWC, t_BT, a_BTK))
    v32, v8 = apply(params), apply(quantize.dequantize(qparams))
    return float(jnp.linalg.norm(v8 - v32) / jnp.linalg.norm(v32))
