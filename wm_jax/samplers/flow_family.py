"""The flow family: samplers of rectified flow, integrating the velocity from t = 1 to t = 0.

A flow sampler's step: step(velocity_fn, x, t, s, z, config) -> x at level s, from x at level t
(t > s, Python floats on `spacing.timesteps`); velocity_fn(x, level) -> v with x's shape; z: this
step's noise when the sampler is stochastic and s > 0, else None.
"""

from __future__ import annotations

import jax

from wm_jax.samplers.spacing import timesteps

NAME = "flow"
DEFAULT = "euler"  # the project's own


def check(objective, config) -> None:
    """Flow takes any number of steps."""


def run(sampler, velocity_fn, noise, config, objective, rng):
    """Integrate `noise` from t = 1 to t = 0 over config.steps equal steps.

    A Python loop over the few steps: it unrolls at trace time, so XLA sees one fused graph.
    """
    stochastic = sampler.stochastic(config)
    levels = timesteps(config.steps)
    x = noise
    for k, (t, s) in enumerate(zip(levels[:-1], levels[1:])):
        z = jax.random.normal(jax.random.fold_in(rng, k), x.shape, x.dtype) if stochastic and s > 0 else None
        x = sampler.step(velocity_fn, x, t, s, z, config)
    return x
