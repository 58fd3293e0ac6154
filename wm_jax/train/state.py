"""The train state and the optimiser: AdamW with linear warmup + cosine decay, global-norm
gradient clipping, and an exponential moving average of the params. Pure functions only."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    learning_rate: float = 3e-4
    warmup_steps: int = 1000
    decay_steps: int | None = None  # None: the run's num_steps
    end_learning_rate_ratio: float = 0.1
    b1: float = 0.9
    b2: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.01
    grad_clip: float = 1.0  # max global gradient norm; 0 disables
    ema_decay: float = 0.999


@struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: updates applied so far
    params: Any
    ema_params: Any
    opt_state: Any


def schedule(config: OptimizerConfig, num_steps: int) -> optax.Schedule:
    decay = config.decay_steps or num_steps
    warmup = min(config.warmup_steps, max(decay - 1, 0))
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=config.learning_rate, warmup_steps=warmup,
        decay_steps=max(decay, warmup + 1), end_value=config.learning_rate * config.end_learning_rate_ratio,
    )


def make_optimizer(config: OptimizerConfig, num_steps: int) -> optax.GradientTransformation:
    adamw = optax.adamw(
        schedule(config, num_steps), b1=config.b1, b2=config.b2, eps=config.eps,
        weight_decay=config.weight_decay, mask=_decay_mask,
    )
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), adamw) if config.grad_clip > 0 else adamw


def _decay_mask(params):
    # Weight decay on matrices only: decaying biases and norms pulls them to zero for no gain.
    return jax.tree_util.tree_map(lambda x: x.ndim >= 2, params)


def init_state(params, optimizer: optax.GradientTransformation) -> TrainState:
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, ema_params=params,
                      opt_state=optimizer.init(params))


def apply_gradients(state: TrainState, grads, optimizer: optax.GradientTransformation, ema_decay: float) -> TrainState:
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # Warm-up: early on the average covers only the steps taken so far, so the EMA params are not
    # dominated by the random init for the first ~1/(1-decay) steps.
    step = state.step.astype(jnp.float32)
    decay = jnp.minimum(ema_decay, (1.0 + step) / (10.0 + step))
    ema = jax.tree_util.tree_map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema_params, params)
    return TrainState(step=state.step + 1, params=params, ema_params=ema, opt_state=opt_state)


def step_rng(seed: int, step) -> jax.Array:
    """The step's randomness depends only on (seed, step), so a resumed run draws the same noise."""
    return jax.random.fold_in(jax.random.key(seed), step)


LossFn = Callable[..., tuple[jax.Array, dict]]


def train_step(state: TrainState, batch, aux, *, loss_fn: LossFn, optimizer, ema_decay: float, seed: int):
    """One update: (new state, metrics). loss_fn(params, batch, aux, rng) -> (loss, metrics)."""
    rng = step_rng(seed, state.step)
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, aux, rng)
    new_state = apply_gradients(state, grads, optimizer, ema_decay)
    metrics = {**metrics, "loss": loss, "grad_norm": optax.global_norm(grads)}
    return new_state, metrics
