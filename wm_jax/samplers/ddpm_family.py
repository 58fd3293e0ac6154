"""The DDPM family: samplers of a DDPM ε- or v-prediction objective over its discrete steps.

The loop visits `spacing.ddpm_timesteps` from pure noise; the last step lands on x̂_0. At each
it reads the model once and hands the sampler a `Step`; step(state: Step, config, objective) ->
x at ᾱ_prev. The coefficients are float64 numbers at trace time, constants in the compiled graph.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax

from wm_jax.samplers.spacing import ddpm_timesteps

NAME = "ddpm"
DEFAULT = "ddim"  # Oasis' own; deterministic at eta 0, and good at the few steps a frame affords


class Step(NamedTuple):
    """One step from ᾱ to ᾱ_prev (1 after the last step) as a DDPM-family sampler sees it."""

    x: Any  # x at ᾱ, [..., H, W, C]
    x0: Any  # x̂_0
    eps: Any  # ε̂
    out: Any  # the model's readout (`diffusion.readout`): with a learned variance in [..., C:2C]
    abar: float
    abar_prev: float
    z: Any  # this step's noise (stochastic samplers, not the last step), else None


def check(objective, config) -> None:
    if config.steps > objective.diffusion_steps:
        raise ValueError(f"{config.steps} sampler steps for {objective.describe()}: at most {objective.diffusion_steps}")


def predicted_x0_eps(objective, out, x_t, abar: float):
    """(x̂_0, ε̂) from a DDPM-family readout at a step whose ᾱ is abar."""
    c = x_t.shape[-1]
    pred = out[..., :c]
    a, s = math.sqrt(abar), math.sqrt(1.0 - abar)  # Python floats: weakly typed, x stays fp32
    if objective.prediction == "epsilon":
        return (x_t - s * pred) / a, pred
    return a * x_t - s * pred, s * x_t + a * pred


def run(sampler, model_fn, noise, config, objective, rng):
    """Denoise `noise` over config.steps of the objective's training steps. model_fn(x, t) -> the
    readout at level t = i/N (a Python float)."""
    stochastic = sampler.stochastic(config)
    n = objective.diffusion_steps
    abar_all = objective.alphas_cumprod()
    indices = ddpm_timesteps(n, config.steps, config.spacing)
    x = noise
    for k, i in enumerate(indices):
        last = k + 1 == len(indices)
        abar, abar_prev = float(abar_all[i]), 1.0 if last else float(abar_all[indices[k + 1]])
        out = model_fn(x, float(i) / n)
        x0, eps = predicted_x0_eps(objective, out, x, abar)
        z = jax.random.normal(jax.random.fold_in(rng, k), x.shape, x.dtype) if stochastic and not last else None
        x = sampler.step(Step(x, x0, eps, out, abar, abar_prev, z), config, objective)
    return x
