"""DDIM with eta: σ = eta·√((1-ᾱ_prev)/(1-ᾱ))·√(1-ᾱ/ᾱ_prev),
x_prev = √ᾱ_prev·x̂_0 + √(1-ᾱ_prev-σ²)·ε̂ + σ·z. eta 0: deterministic DDIM (Oasis' sampler);
eta 1: the DDPM posterior's variance at each step."""

import math

NAME = "ddim"
FAMILY = "ddpm"
OPTIONS = ("eta",)


def stochastic(config) -> bool:
    return config.eta > 0


def step(state, config, objective):
    abar, abar_prev = state.abar, state.abar_prev
    sigma = config.eta * math.sqrt((1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev))
    x = math.sqrt(abar_prev) * state.x0 + math.sqrt(max(1.0 - abar_prev - sigma**2, 0.0)) * state.eps
    if state.z is not None:
        x = x + sigma * state.z
    return x
