"""Heun: the Euler step's velocity averaged with the velocity where it lands, two model passes a
step; the last step (s = 0, where an x_0 model's velocity is undefined) is a plain Euler step."""

NAME = "heun"
FAMILY = "flow"
OPTIONS = ()


def stochastic(config) -> bool:
    return False


def step(velocity_fn, x, t, s, z, config):
    v = velocity_fn(x, t)
    if s > 0:
        v = 0.5 * (v + velocity_fn(x + (s - t) * v, s))
    return x + (s - t) * v
