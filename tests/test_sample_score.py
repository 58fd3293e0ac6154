"""Training the frame generated from noise to be a sample (`SampleScore`): the energy score is a
proper scoring rule (least for samples of the truth's distribution, not for its mean), and the
training term runs the same context twice with only the last frame's noise redrawn."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import randomize

from wm_jax import autoencoder, diffusion
from wm_jax.model import WorldModel, init_params
from wm_jax.train.world import SampleScoreConfig, WorldTask, energy_score


def test_energy_score_prefers_samples_to_the_mean():
    """y ~ N(0, 1) per element: two independent samples of that distribution score better than
    the mean (0) twice, which squared error would prefer; and its value matches the definition."""
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(4000, 64))
    samples_a, samples_b = rng.normal(size=truth.shape), rng.normal(size=truth.shape)
    mean = np.zeros_like(truth)
    assert energy_score(samples_a, samples_b, truth).mean() < energy_score(mean, mean, truth).mean() - 0.1
    assert np.mean((mean - truth) ** 2) < np.mean((samples_a - truth) ** 2)  # what the squared error prefers
    a, b, y = (rng.normal(size=(3, 5, 2)) for _ in range(3))
    rms = lambda x: np.sqrt(np.mean(x ** 2, axis=(1, 2)))
    np.testing.assert_allclose(energy_score(a, b, y), 0.5 * (rms(a - y) + rms(b - y) - rms(a - b)), rtol=1e-5)


def _task(config, clips, weight=1.0):
    return WorldTask(config, autoencoder.get_config("pixel_p2"), diffusion.NoiseConfig(context_noise_max=0.2), "world",
                     sample_score=SampleScoreConfig(clips=clips, weight=weight))


def test_the_sample_score_reruns_the_context_with_only_the_last_frame_redrawn(tiny_config):
    config = tiny_config.replace(max_frames=3, prediction="x0_residual")
    h, w = config.latent_size
    latents = jax.random.normal(jax.random.key(0), (3, 3, h, w, config.in_channels))
    actions = jnp.zeros((3, 3, config.action_dim))
    calls = []

    def predict(x, t, a, clean):
        calls.append((x, t))
        return x  # a model whose x0 is its input: the last frame's prediction is its noise

    score = _task(config, clips=2)._sample_scores(predict, latents, actions, jax.random.key(1))["energy_score"]
    (x, t), = calls
    assert x.shape[0] == 4 and np.all(np.asarray(t[:, -1]) == 1.0) and np.all(np.asarray(t[:, :-1]) <= 0.2)
    np.testing.assert_array_equal(x[:2, :-1], x[2:, :-1])  # the same context twice
    assert float(jnp.abs(x[:2, -1] - x[2:, -1]).mean()) > 0.5  # two draws of the last frame's noise
    np.testing.assert_allclose(score, jnp.mean(energy_score(x[:2, -1], x[2:, -1], latents[:2, -1])), rtol=1e-6)


def test_the_sample_score_adds_to_the_loss_and_trains_the_model(tiny_config):
    config = tiny_config.replace(max_frames=3, prediction="x0_residual", in_channels=12, depth=1, width=32)  # pixel_p2 latents
    params = randomize(init_params(config, jax.random.key(0)), jax.random.key(1))
    h, w = config.latent_size
    batch = {"frames": jax.random.randint(jax.random.key(0), (2, 3, 2 * h, 2 * w, 3), 0, 256).astype(jnp.uint8),
             "actions": jnp.zeros((2, 3, config.action_dim))}
    ae = autoencoder.init(autoencoder.get_config("pixel_p2"), jax.random.key(0))

    aux = _task(config, clips=2).aux(ae)
    losses = jax.jit(lambda p: (_task(config, clips=0).loss(p, batch, aux, jax.random.key(2))[0],
                                _task(config, clips=2, weight=0.5).loss(p, batch, aux, jax.random.key(2))))
    plain, (with_score, metrics) = losses(params)
    np.testing.assert_allclose(with_score, plain + 0.5 * metrics["energy_score"], rtol=1e-5)
    model, latents = WorldModel(config), _task(config, 2).encode(ae, batch["frames"])
    score_of = lambda p: _task(config, 2)._sample_scores(lambda x, t, a, c: model.apply({"params": p}, x, t, a, c),
                                                         latents, batch["actions"], jax.random.key(3))["energy_score"]
    grads = jax.jit(jax.grad(score_of))(params)
    assert float(sum(jnp.abs(g).sum() for g in jax.tree_util.tree_leaves(grads))) > 0  # the score trains the params


def test_the_sample_score_refuses_a_velocity_model_and_too_few_clips(tiny_config):
    config = tiny_config.replace(max_frames=3)
    latents, actions = jnp.zeros((1, 3, *config.latent_size, config.in_channels)), jnp.zeros((1, 3, config.action_dim))
    with pytest.raises(ValueError, match="SampleScore.clips = 2"):
        _task(config, clips=2)._sample_scores(lambda *a: a[0], latents, actions, jax.random.key(0))
    with pytest.raises(ValueError, match="clips, weight, lpips_weight and pixel_weight >= 0"):
        SampleScoreConfig(clips=-1)


def test_the_sample_score_in_lpips_space_scores_the_decoded_frames(tiny_config):
    """SampleScore.lpips_weight: the energy score of the decoded last frames with the distance
    sqrt(LPIPS), here recomputed from the report's LPIPS (`image_metrics.lpips`) on frames decoded
    apart, added to the loss beside the latent one; it trains the params; frames under LPIPS' 32
    pixels are refused when the task is set up."""
    from wm_jax import image_metrics

    config = tiny_config.replace(max_frames=2, prediction="x0_residual", in_channels=12, depth=1, width=32,
                                 latent_size=(16, 16))  # pixel_p2 latents of 32x32 frames
    task = WorldTask(config, autoencoder.get_config("pixel_p2"), diffusion.NoiseConfig(context_noise_max=0.2), "world",
                     sample_score=SampleScoreConfig(clips=2, weight=0.5, lpips_weight=2.0))
    ae = autoencoder.init(autoencoder.get_config("pixel_p2"), jax.random.key(0))
    aux = task.aux(ae)
    assert set(aux) == {"autoencoder", "lpips"} and set(_task(config, clips=2).aux(ae)) == {"autoencoder"}
    latents = 0.5 * jax.random.normal(jax.random.key(0), (2, 2, 16, 16, 12))
    calls = []

    def predict(x, t, a, clean):
        calls.append(x)
        return 0.5 * x  # the last frame's prediction: half its noise

    scores = task._sample_scores(predict, latents, jnp.zeros((2, 2, config.action_dim)), jax.random.key(1), aux)
    (x,) = calls
    frames = lambda z: np.clip(np.asarray(autoencoder.decode(ae, z, task.latents)), -1.0, 1.0)
    a, b, y = frames(0.5 * x[:2, -1]), frames(0.5 * x[2:, -1]), frames(latents[:, -1])
    d = lambda u, v: np.sqrt(np.asarray(image_metrics.lpips(u, v)))
    np.testing.assert_allclose(scores["energy_score_lpips"], np.mean(0.5 * (d(a, y) + d(b, y) - d(a, b))), rtol=1e-4)
    np.testing.assert_allclose(scores["energy_score"], jnp.mean(energy_score(0.5 * x[:2, -1], 0.5 * x[2:, -1], latents[:, -1])), rtol=1e-5)
    # pixel_weight: the distance sqrt(LPIPS + w * mean squared pixel difference), the same draws.
    with_pixels = dataclasses.replace(task, sample_score=SampleScoreConfig(clips=2, lpips_weight=2.0, pixel_weight=3.0))
    pixel_scores = with_pixels._sample_scores(lambda x, *_: 0.5 * x, latents, jnp.zeros((2, 2, config.action_dim)),
                                              jax.random.key(1), aux)
    d = lambda u, v: np.sqrt(np.asarray(image_metrics.lpips(u, v)) + 3.0 * np.mean(np.square(u - v), axis=(1, 2, 3)))
    np.testing.assert_allclose(pixel_scores["energy_score_lpips"], np.mean(0.5 * (d(a, y) + d(b, y) - d(a, b))), rtol=1e-4)

    params = randomize(init_params(config, jax.random.key(0)), jax.random.key(1))
    model = WorldModel(config)
    score_of = lambda p: task._sample_scores(lambda x, t, a, c: model.apply({"params": p}, x, t, a, c), latents,
                                             jnp.zeros((2, 2, config.action_dim)), jax.random.key(3), aux)["energy_score_lpips"]
    grads = jax.jit(jax.grad(score_of))(params)
    assert float(sum(jnp.abs(g).sum() for g in jax.tree_util.tree_leaves(grads))) > 0

    small = WorldTask(config.replace(latent_size=(8, 8)), autoencoder.get_config("pixel_p2"), diffusion.NoiseConfig(), "world",
                      sample_score=SampleScoreConfig(clips=2, lpips_weight=1.0))
    with pytest.raises(ValueError, match="at least 32 pixels a side; these are 16x16"):
        small.aux(ae)
    with pytest.raises(ValueError, match="lpips_weight and pixel_weight >= 0"):
        SampleScoreConfig(lpips_weight=-1.0)
    with pytest.raises(ValueError, match="pixel_weight >= 0, got 0, 1.0, 0.0, -1.0"):
        SampleScoreConfig(pixel_weight=-1.0)
    with pytest.raises(ValueError, match="pixel_weight = 1.0 is a term of the decoded frames' score"):
        SampleScoreConfig(clips=2, pixel_weight=1.0)
