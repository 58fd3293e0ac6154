"""DDPM ancestral sampling (DiT's sample.py): with β' = 1 - ᾱ/ᾱ_prev,
x_prev = β'√ᾱ_prev/(1-ᾱ)·x̂_0 + (1-ᾱ_prev)√(1-β')/(1-ᾱ)·x + exp(½ log σ²)·z (no z at the last step)."""

import math

import jax.numpy as jnp

NAME = "ddpm"
FAMILY = "ddpm"
OPTIONS = ()


def stochastic(config) -> bool:
    return True


def log_variance(objective, out, abar: float, abar_prev: float):
    """log σ² of an ancestral step from ᾱ to ᾱ_prev, as guided-diffusion's respaced process sets
    it: β' = 1 - ᾱ/ᾱ_prev; learned sigma interpolates between log β' and the log posterior
    variance β'(1 - ᾱ_prev)/(1 - ᾱ) by (v + 1)/2, v the model's [..., C:2C]; otherwise log β'
    (its "fixed large" variance, DiT's choice without learned sigma)."""
    beta = 1.0 - abar / abar_prev
    if not objective.learned_sigma:
        return math.log(beta)
    c = out.shape[-1] // 2
    frac = (out[..., c:] + 1.0) / 2.0
    return frac * math.log(beta) + (1.0 - frac) * math.log(beta * (1.0 - abar_prev) / (1.0 - abar))


def step(state, config, objective):
    abar, abar_prev = state.abar, state.abar_prev
    beta = 1.0 - abar / abar_prev
    x = beta * math.sqrt(abar_prev) / (1.0 - abar) * state.x0 + (1.0 - abar_prev) * math.sqrt(1.0 - beta) / (1.0 - abar) * state.x
    if state.z is not None:
        x = x + jnp.exp(0.5 * log_variance(objective, state.out, abar, abar_prev)) * state.z
    return x
