"""Rectified flow: schedule, loss and sampler."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wm_jax import diffusion
from wm_jax.diffusion import NoiseConfig, SamplerConfig


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("steps", [1, 3, 8])
def test_sampler_follows_a_straight_path_exactly(method, steps):
    """For the true velocity of a single-point data set, (x_t - x0) / t, any step count lands on x0."""
    x0 = jax.random.normal(jax.random.key(0), (2, 4, 4, 3))
    noise = jax.random.normal(jax.random.key(1), x0.shape)
    out = diffusion.sample(lambda x, t: (x - x0) / t, noise, SamplerConfig(steps=steps, method=method))
    np.testing.assert_allclose(np.asarray(out), np.asarray(x0), atol=1e-5)


def test_add_noise_and_velocity_are_consistent():
    x0 = jnp.ones((1, 2, 2, 2, 1))
    noise = -jnp.ones_like(x0)
    t = jnp.array([[0.0, 1.0]])
    x_t = diffusion.add_noise(x0, noise, t)
    np.testing.assert_array_equal(np.asarray(x_t[0, 0]), 1.0)
    np.testing.assert_array_equal(np.asarray(x_t[0, 1]), -1.0)
    np.testing.assert_array_equal(np.asarray(diffusion.velocity(x0, noise)), -2.0)


def test_noise_levels_per_frame_with_an_inference_case_share():
    config = NoiseConfig(context_share=0.5, context_noise_max=0.1)
    t = diffusion.sample_noise_levels(jax.random.key(0), 4000, 6, config)
    assert t.shape == (4000, 6) and float(t.min()) >= 0 and float(t.max()) <= 1
    context_case = (t[:, :-1] <= 0.1).all(axis=1)
    assert 0.45 < float(context_case.mean()) < 0.56  # a few logit-normal clips fall below 0.1 too
    assert float(jnp.std(t[:, -1])) > 0.15  # the last frame keeps its own independent level
    assert float(jnp.corrcoef(t[:, 0], t[:, 1])[0, 1]) < 0.7


def test_uniform_share_reaches_the_pure_noise_end():
    near_one = lambda config: float((diffusion.sample_noise_levels(jax.random.key(0), 4000, 4, config) > 0.95).mean())
    assert near_one(NoiseConfig(context_share=0.0)) < 0.01  # logit-normal(0, 1): P(t > 0.95) ~ 0.2%
    assert 0.02 < near_one(NoiseConfig(context_share=0.0, uniform_share=0.5)) < 0.035  # half of a uniform 5%


def test_loss_masks_padding_and_drops_actions():
    latents = jax.random.normal(jax.random.key(0), (2, 3, 4, 4, 2))
    actions = jnp.ones((2, 3, 5))
    seen = {}

    def predict(x_t, t, a, clean):
        seen["actions"] = a
        return jnp.zeros_like(x_t).at[:, 2].set(1e3)  # a huge error on the last frame only

    mask = jnp.array([[1, 1, 0], [1, 1, 0]])
    config = NoiseConfig(action_dropout=0.5)
    null = jnp.zeros((5,))
    masked, per_frame = diffusion.forcing_loss(predict, latents, actions, jax.random.key(1), config, null, mask)
    unmasked, _ = diffusion.forcing_loss(predict, latents, actions, jax.random.key(1), config, null)
    assert per_frame.shape == (2, 3)
    assert float(masked) < 10 < float(unmasked)
    dropped = (seen["actions"] == 0).all(-1)
    assert 0 < int(dropped.sum()) < 6


def test_without_context_loss_one_frame_of_an_inference_case_clip_is_trained():
    """context_loss=False: each generation-case clip trains one frame, at a drawn position in
    [1, T-1] (never the first, which has no context), at a drawn level; a huge error anywhere
    else counts for nothing. With context_share 0 every frame still counts."""
    latents = jnp.zeros((64, 4, 2, 2, 1))
    actions = jnp.zeros((64, 4, 5))
    null = jnp.zeros((5,))
    generation = NoiseConfig(context_share=1.0, context_loss=False)
    _, is_context = diffusion.noise_levels_and_context(jax.random.key(0), 64, 4, generation)
    targets = np.argmin(np.asarray(is_context), axis=1)
    assert (np.asarray(is_context).sum(1) == 3).all() and set(targets) == {1, 2, 3}
    per_frame = lambda predict, config: np.asarray(diffusion.forcing_loss(predict, latents, actions, jax.random.key(1), config, null)[1])
    first_wrong = lambda x_t, t, a, clean: jnp.zeros_like(x_t).at[:, 0].set(1e3)
    assert float(diffusion.forcing_loss(first_wrong, latents, actions, jax.random.key(1), generation, null)[0]) < 10
    assert per_frame(first_wrong, NoiseConfig(context_share=0.0, context_loss=False))[:, 0].min() > 1e5


def test_x0_loss_is_the_velocity_loss_of_the_same_guess():
    """An x0 prediction and the velocity it implies, v = (x_t - x0)/t, score the same per frame
    wherever t is above the floor; below it the x0 loss is weighted by the floor instead."""
    latents = jax.random.normal(jax.random.key(0), (4, 6, 4, 4, 2))
    actions, null = jnp.zeros((4, 6, 3)), jnp.zeros((3,))
    config = NoiseConfig(context_share=0.5, context_noise_max=0.1)
    seen = {}
    guess_v = lambda x_t: 0.3 * x_t + 0.1  # any function of the input

    def predict_v(x_t, t, a, clean):
        seen["t"] = t
        return guess_v(x_t)

    predict_x0 = lambda x_t, t, a, clean: x_t - t[..., None, None, None] * guess_v(x_t)
    _, per_v = diffusion.forcing_loss(predict_v, latents, actions, jax.random.key(1), config, null)
    _, per_x0 = diffusion.forcing_loss(predict_x0, latents, actions, jax.random.key(1), config, null, prediction="x0_residual")
    above = np.asarray(seen["t"]) >= diffusion.X0_MIN_LEVEL
    assert 0 < above.sum() < above.size  # both regimes drawn
    np.testing.assert_allclose(np.asarray(per_x0)[above], np.asarray(per_v)[above], rtol=1e-4)
    t_below = np.asarray(seen["t"])[~above]
    scale = np.square(t_below / diffusion.X0_MIN_LEVEL)
    np.testing.assert_allclose(np.asarray(per_x0)[~above], np.asarray(per_v)[~above] * scale, rtol=1e-3)


def test_an_x0_floor_of_one_weighs_every_level_alike():
    """NoiseConfig.x0_min_level = 1: the x0 loss is the plain mean squared error of x0 at every level."""
    latents = jax.random.normal(jax.random.key(2), (3, 5, 4, 4, 2))
    actions, null = jnp.zeros((3, 5, 3)), jnp.zeros((3,))
    predict_x0 = lambda x_t, t, a, clean: 0.5 * x_t
    config = NoiseConfig(x0_min_level=1.0, action_dropout=0.0)
    _, per_frame = diffusion.forcing_loss(predict_x0, latents, actions, jax.random.key(3), config, null, prediction="x0_residual")
    t_BT, _ = diffusion.noise_levels_and_context(jax.random.split(jax.random.key(3), 3)[0], 3, 5, config)
    noise = jax.random.normal(jax.random.split(jax.random.key(3), 3)[1], latents.shape)
    x_t = diffusion.add_noise(latents, noise, t_BT)
    expected = jnp.mean(jnp.square(0.5 * x_t - latents), axis=(-3, -2, -1))
    np.testing.assert_allclose(np.asarray(per_frame), np.asarray(expected), rtol=1e-5)
    with pytest.raises(ValueError, match="x0_min_level"):
        NoiseConfig(x0_min_level=0.0)


def test_sampler_config_refuses_nonsense():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        SamplerConfig(steps=0)
    with pytest.raises(ValueError, match="method"):
        SamplerConfig(method="rk4")
