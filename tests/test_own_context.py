"""Training on the model's own frames (`OwnContext`): the context is the model's rollout, the
last frame stays real, and no gradient flows through the rollout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wm_jax import autoencoder, diffusion, rollout
from wm_jax.model import WorldModel
from wm_jax.train.world import OwnContextConfig, WorldTask, own_rollout


def _clip(config, b, t, seed=0):
    h, w = config.latent_size
    latents = jax.random.normal(jax.random.key(seed), (b, t, h, w, config.in_channels))
    actions = jax.random.bernoulli(jax.random.key(seed + 1), 0.3, (b, t, config.action_dim)).astype(jnp.float32)
    return latents, actions


def test_own_rollout_replaces_the_middle_frames_by_the_model_s_own_rollout(tiny_config, tiny_random_params):
    config = tiny_config.replace(max_frames=4)
    latents, actions = _clip(config, 1, 4)
    own = jax.jit(own_rollout, static_argnums=(0, 1))(config, 1, tiny_random_params, latents, actions, jax.random.key(3))
    np.testing.assert_array_equal(own[:, 0], latents[:, 0])
    np.testing.assert_array_equal(own[:, -1], latents[:, -1])
    sampler = diffusion.SamplerConfig(steps=1)
    rng_init, rng_roll = jax.random.split(jax.random.key(3))
    state = rollout.init_state(config, tiny_random_params, latents[:, :1], actions[:, :1], rng=rng_init, sampler=sampler)
    _, expected = rollout.rollout(tiny_random_params, state, actions[:, 1:-1], rng_roll, config=config, sampler=sampler)
    np.testing.assert_allclose(own[:, 1:-1], expected, atol=1e-5)
    assert float(jnp.abs(own[:, 1:-1] - latents[:, 1:-1]).mean()) > 0.1  # not the real frames



def test_own_rollout_can_replace_only_the_frames_just_before_the_last(tiny_config, tiny_random_params):
    config = tiny_config.replace(max_frames=4)
    latents, actions = _clip(config, 1, 4, seed=2)
    own = jax.jit(own_rollout, static_argnums=(0, 1, 6))(config, 1, tiny_random_params, latents, actions,
                                                          jax.random.key(3), 1)
    np.testing.assert_array_equal(own[:, :2], latents[:, :2])  # frames 0-1 real, frame 2 generated
    np.testing.assert_array_equal(own[:, -1], latents[:, -1])
    sampler = diffusion.SamplerConfig(steps=1)
    rng_init, rng_roll = jax.random.split(jax.random.key(3))
    state = rollout.init_state(config, tiny_random_params, latents[:, :2], actions[:, :2], rng=rng_init, sampler=sampler)
    _, expected = rollout.rollout(tiny_random_params, state, actions[:, 2:3], rng_roll, config=config, sampler=sampler)
    np.testing.assert_allclose(own[:, 2:3], expected, atol=1e-5)
    assert float(jnp.abs(own[:, 2] - latents[:, 2]).mean()) > 0.1

def _task(config, clips):
    return WorldTask(config, autoencoder.get_config("pixel_p2"), diffusion.NoiseConfig(), "world",
                     OwnContextConfig(clips=clips))


def test_no_gradient_flows_through_the_rollout_and_the_last_frame_is_trained(tiny_config, tiny_random_params):
    config = tiny_config.replace(max_frames=3)
    latents, actions = _clip(config, 2, 3, seed=5)
    rollout_sum = lambda params: own_rollout(config, 1, params, latents, actions, jax.random.key(3)).sum()
    zero_grads = jax.jit(jax.grad(rollout_sum))(tiny_random_params)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree_util.tree_leaves(zero_grads))

    task = _task(config, clips=1)
    null_K = jnp.asarray(config.action_space.null())

    def loss(params, latents):
        predict = lambda x, t, a, clean: WorldModel(config).apply({"params": params}, x, t, a, clean)
        return task._loss_with_own_context(predict, params, latents, actions, null_K, jax.random.key(11))[0]

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    value, grads = value_and_grad(tiny_random_params, latents)
    assert np.isfinite(float(value)) and any(float(jnp.abs(g).max()) > 0 for g in jax.tree_util.tree_leaves(grads))
    # The own-context clips' middle frames are replaced by the rollout: changing them changes nothing.
    changed = latents.at[:1, 1:-1].add(1.0)
    np.testing.assert_allclose(float(value_and_grad(tiny_random_params, changed)[0]), float(value), rtol=1e-6)
    # Their last frame is the target: changing it changes the loss.
    assert abs(float(value_and_grad(tiny_random_params, latents.at[:1, -1].add(1.0))[0]) - float(value)) > 1e-3


def test_own_context_refuses_more_clips_than_the_batch(tiny_config, tiny_random_params):
    config = tiny_config.replace(max_frames=4)
    latents, actions = _clip(config, 2, 4)
    task = _task(config, clips=3)
    with pytest.raises(ValueError, match="OwnContext.clips = 3 needs batches of at least 3 clips"):
        task._loss_with_own_context(None, tiny_random_params, latents, actions, None, jax.random.key(0))
    with pytest.raises(ValueError, match="clips >= 0"):
        OwnContextConfig(clips=-1)
    too_many = WorldTask(config, autoencoder.get_config("pixel_p2"), diffusion.NoiseConfig(), "world",
                         OwnContextConfig(clips=1, generated=3))
    with pytest.raises(ValueError, match="OwnContext.generated = 3 leaves no real first frame in clips of 4"):
        too_many._loss_with_own_context(None, tiny_random_params, latents, actions, None, jax.random.key(0))
