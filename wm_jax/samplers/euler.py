"""Euler: x_s = x_t + (s - t)·v(x_t, t), one model pass a step (the project's own sampler)."""

NAME = "euler"
FAMILY = "flow"
OPTIONS = ()


def stochastic(config) -> bool:
    return False


def step(velocity_fn, x, t, s, z, config):
    return x + (s - t) * velocity_fn(x, t)
