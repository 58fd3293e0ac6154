"""Rectified flow with diffusion forcing: the noise schedule, the training loss, the sampler.

x_t = (1 - t)·x_0 + t·ε with t in [0, 1] (t = 1 is pure noise), one t per frame. The sampler
integrates the velocity v = ε - x_0: an Euler step from t to s is x_s = x_t + (s - t)·v. A model
predicts either v directly or x_0 (`PREDICTIONS`, read from `ModelConfig.prediction`), whose
velocity is v = (x_t - x_0)/t; the loss is the same velocity loss for both, written for x_0 as
|x̂_0 - x_0|² / t², with t floored at `X0_MIN_LEVEL` so nearly clean frames do not dominate.

Letters: B batch, T frames, H W C latent height, width, channels, K action entries.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


PREDICTIONS = ("velocity", "x0_residual")
# Below this level an x_0 error is weighted as at this level. The velocity loss weights it by
# 1/t², 400x at t = 0.05 (JiT's floor): the nearly clean context frames diffusion forcing trains
# on then outweigh the noisy frames that sampling reads (t >= 0.5 at 2 steps) by two orders of
# magnitude, and the first proxy run spent its updates copying clean inputs through.
X0_MIN_LEVEL = 0.25


def to_velocity(output, x_t, t, prediction: str):
    """The model's output (its first C channels) as a velocity; t: [...] broadcast over H, W, C."""
    if prediction == "velocity":
        return output
    return (x_t - output) / jnp.asarray(t, output.dtype)[..., None, None, None]


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
    """How training draws noise levels; defaults follow the diffusion-forcing recipe."""

    logit_normal_mean: float = 0.0
    logit_normal_std: float = 1.0
    # Share of frames whose level is uniform in [0, 1] instead: logit-normal levels almost never
    # come near t = 1, where sampling starts and the context alone must say what comes next.
    uniform_share: float = 0.0
    # Share of clips whose earlier frames are clean or lightly noised and only the last frame is
    # noisy at an independent level: exactly what generation meets.
    context_share: float = 0.25
    context_noise_max: float = 0.1
    # Share of frames whose action is replaced by the null action, for guidance.
    action_dropout: float = 0.1
    # Train every frame in the generation case (`WorldModel.teacher_forced`): a second copy of
    # the clip at context levels in [0, context_noise_max] is what each frame reads, as the cache
    # holds it in generation. Twice the tokens a step; frames after the first are trained, where
    # diffusion forcing trains the generation case on one frame of a context_share clip.
    teacher_forcing: bool = False

    def __post_init__(self):
        if self.teacher_forcing and self.context_share:
            raise ValueError("NoiseConfig.teacher_forcing trains every frame on a clean-ish context already; "
                             f"set context_share = 0 (got {self.context_share})")


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    steps: int = 4
    method: str = "euler"  # or "heun"
    # Noise level at which a finished frame's keys and values are written into the cache.
    context_noise: float = 0.0
    # Action guidance: 1.0 is plain conditional sampling; >1 extrapolates away from the null action.
    guidance: float = 1.0
    # Guidance only at denoising steps that start at a noise level >= this (0: every step). The
    # keys decide the coarse picture at high noise; extrapolating at low noise too sharpens and
    # saturates, and frame after frame that compounds (issue 15).
    guidance_min_level: float = 0.0

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"sampler steps must be >= 1, got {self.steps}")
        if self.method not in ("euler", "heun"):
            raise ValueError(f"sampler method must be 'euler' or 'heun', got {self.method!r}")
        if not 0.0 <= self.guidance_min_level <= 1.0:
            raise ValueError(f"guidance_min_level must be in [0, 1], got {self.guidance_min_level}")
        if not 0.0 <= self.context_noise < 1.0:
            raise ValueError(f"context_noise must be in [0, 1), got {self.context_noise}")


def add_noise(x0, noise, t):
    """x0, noise: [..., H, W, C]; t: [...] -> x_t."""
    t = t[..., None, None, None]
    return (1.0 - t) * x0 + t * noise


def velocity(x0, noise):
    return noise - x0


def sample_noise_levels(rng, batch: int, frames: int, config: NoiseConfig) -> jnp.ndarray:
    """[B, T] noise levels: independent logit-normal (or uniform) per frame, some clips in the
    inference case."""
    rng_level, rng_case, rng_context = jax.random.split(rng, 3)
    normal = jax.random.normal(rng_level, (batch, frames))
    t_BT = jax.nn.sigmoid(config.logit_normal_mean + config.logit_normal_std * normal)
    if config.uniform_share > 0:  # a static float: the default draws exactly what it drew before
        rng_uniform, rng_which = jax.random.split(jax.random.fold_in(rng_level, 1))
        uniform_BT = jax.random.uniform(rng_uniform, (batch, frames))
        t_BT = jnp.where(jax.random.bernoulli(rng_which, config.uniform_share, (batch, frames)), uniform_BT, t_BT)
    context_BT = jax.random.uniform(rng_context, (batch, frames), maxval=config.context_noise_max)
    is_inference_case_B = jax.random.bernoulli(rng_case, config.context_share, (batch,))
    earlier_T = jnp.arange(frames) < frames - 1
    return jnp.where(is_inference_case_B[:, None] & earlier_T[None], context_BT, t_BT)


def drop_actions(rng, actions_BTK, null_K, rate: float):
    keep_BT = jax.random.bernoulli(rng, 1.0 - rate, actions_BTK.shape[:2])
    return jnp.where(keep_BT[..., None], actions_BTK, jnp.asarray(null_K, actions_BTK.dtype))


def context_frames(rng, latents_BTHWC, max_level: float):
    """(x, t): the clip lightly noised, each frame at a level uniform in [0, max_level], as
    generation writes finished frames into the cache (at `SamplerConfig.context_noise`)."""
    rng_level, rng_noise = jax.random.split(rng)
    t_BT = jax.random.uniform(rng_level, latents_BTHWC.shape[:2], maxval=max_level)
    noise = jax.random.normal(rng_noise, latents_BTHWC.shape, latents_BTHWC.dtype)
    return add_noise(latents_BTHWC, noise, t_BT), t_BT


def forcing_loss(predict: Callable, latents_BTHWC, actions_BTK, rng, config: NoiseConfig, null_K, mask_BT=None,
                 prediction: str = "velocity"):
    """Diffusion-forcing loss; returns (scalar loss, per-frame loss [B, T]).

    predict(x_t, t, actions[, (context_x, context_t)]) -> model output [B, T, H, W, C_out]
    (the context only with `config.teacher_forcing`); the first C channels are
    the velocity or x_0 (`prediction`) (C_out = 2C when a model also predicts sigma, which this
    loss does not train).
    mask_BT: 1 for real frames, 0 for padding.
    """
    b, t = latents_BTHWC.shape[:2]
    rng_t, rng_noise, rng_drop = jax.random.split(rng, 3)
    t_BT = sample_noise_levels(rng_t, b, t, config)
    noise = jax.random.normal(rng_noise, latents_BTHWC.shape, latents_BTHWC.dtype)
    x_t = add_noise(latents_BTHWC, noise, t_BT)
    actions_BTK = drop_actions(rng_drop, actions_BTK, null_K, config.action_dropout)
    channels = latents_BTHWC.shape[-1]
    mask_BT = jnp.ones((b, t)) if mask_BT is None else mask_BT
    if config.teacher_forcing:
        context = context_frames(jax.random.fold_in(rng, 1), latents_BTHWC, config.context_noise_max)
        output = predict(x_t, t_BT, actions_BTK, context)[..., :channels]
        mask_BT = mask_BT * (jnp.arange(t) > 0)  # generation never makes a frame without context
    else:
        output = predict(x_t, t_BT, actions_BTK)[..., :channels]
    if prediction == "velocity":
        per_frame_BT = jnp.mean(jnp.square(output - velocity(latents_BTHWC, noise)), axis=(-3, -2, -1))
    else:
        error_BT = jnp.mean(jnp.square(output - latents_BTHWC), axis=(-3, -2, -1))
        per_frame_BT = error_BT / jnp.square(jnp.maximum(t_BT, X0_MIN_LEVEL))
    mask_BT = mask_BT.astype(per_frame_BT.dtype)
    loss = jnp.sum(per_frame_BT * mask_BT) / jnp.maximum(jnp.sum(mask_BT), 1.0)
    return loss, per_frame_BT


def timesteps(steps: int) -> np.ndarray:
    """[steps + 1] noise levels from 1 (noise) to 0 (clean)."""
    return np.linspace(1.0, 0.0, steps + 1, dtype=np.float32)


def sample(velocity_fn: Callable, noise, config: SamplerConfig):
    """Integrate from t = 1 to t = 0. velocity_fn(x, t_scalar) -> v with x's shape.

    A Python loop over the few steps: it unrolls at trace time, so XLA sees one fused graph.
    """
    levels = timesteps(config.steps)
    x = noise
    for t, s in zip(levels[:-1], levels[1:]):
        v = velocity_fn(x, t)
        if config.method == "heun" and s > 0:
            v = 0.5 * (v + velocity_fn(x + (s - t) * v, s))
        x = x + (s - t) * v
    return x
