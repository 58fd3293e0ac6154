"""`wm eval`'s library (`wm_jax.evaluation`): baselines, teacher forcing, the report and its drift
plot, the long-horizon report (the metrics themselves: tests/test_image_metrics.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wm_jax import evaluation, image_metrics, plots
from wm_jax.diffusion import SamplerConfig


def test_baselines():
    frames = jnp.arange(5, dtype=jnp.float32)[None, :, None, None, None] * jnp.ones((2, 5, 4, 4, 3))
    last = evaluation.copy_last_frame(frames, context=2)
    first = evaluation.copy_first_frame(frames, context=2)
    tf = evaluation.teacher_forced_copy_last(frames, context=2)
    assert last.shape == first.shape == tf.shape == (2, 3, 4, 4, 3)
    np.testing.assert_array_equal(np.asarray(last[0, :, 0, 0, 0]), [1, 1, 1])
    np.testing.assert_array_equal(np.asarray(first[0, :, 0, 0, 0]), [0, 0, 0])
    np.testing.assert_array_equal(np.asarray(tf[0, :, 0, 0, 0]), [1, 2, 3])


@pytest.fixture(scope="module")
def pixel_world():
    """A tiny untrained model on a lossless pixel-space autoencoder (2x2 patches of 16x16 frames:
    8x8x12 latents), shared by the tests below: teacher forcing runs on the shapes `evaluate` sees
    (2 clips of 4 frames, 1 denoising step), so both compile the two predictions once."""
    from wm_jax import autoencoder as ae
    from wm_jax import configs
    from wm_jax.bench import randomized_params

    config = configs.get_config("tiny", in_channels=12)
    ae_config = ae.get_config("pixel_p2")
    variables = ae.init(ae_config, jax.random.key(0))
    codec = dict(encode=lambda x: ae.encode(variables, x, ae_config), decode=lambda z: ae.decode(variables, z, ae_config))
    return config, randomized_params(config, jax.random.key(0)), codec


CLIPS, FRAMES, SAMPLER = 2, 4, SamplerConfig(steps=1)


def test_teacher_forcing_is_causal_and_uses_ground_truth(pixel_world):
    config, params, _ = pixel_world
    kw = dict(config=config, sampler=SAMPLER, context=1)
    latents = jax.random.normal(jax.random.key(0), (CLIPS, FRAMES, 8, 8, 12))
    actions = jnp.zeros((CLIPS, FRAMES, config.action_dim))
    rng = jax.random.key(1)
    tf = evaluation.teacher_forced_latents(params, latents, actions, rng, **kw)
    ar = evaluation.autoregressive_latents(params, latents, actions, rng, **kw)
    assert tf.shape == ar.shape == (CLIPS, FRAMES - 1, 8, 8, 12)
    # The first prediction sees only the context: identical either way.
    np.testing.assert_allclose(np.asarray(tf[:, 0]), np.asarray(ar[:, 0]), atol=1e-5)
    assert float(jnp.abs(tf[:, 1] - ar[:, 1]).max()) > 1e-4  # later ones differ: truth vs own frames
    # Changing ground-truth frame 2 changes the prediction of frame 3 only (not of frames 1-2).
    tf2 = evaluation.teacher_forced_latents(params, latents.at[:, 2].add(1.0), actions, rng, **kw)
    np.testing.assert_allclose(np.asarray(tf2[:, :2]), np.asarray(tf[:, :2]), atol=1e-5)
    assert float(jnp.abs(tf2[:, 2] - tf[:, 2]).max()) > 1e-4


def test_evaluate_report_and_drift_plot(pixel_world, tmp_path):
    config, params, codec = pixel_world
    frames = jnp.clip(jax.random.normal(jax.random.key(2), (CLIPS, FRAMES, 16, 16, 3)) * 0.3, -1, 1)
    actions = jnp.zeros((CLIPS, FRAMES, config.action_dim))
    result = evaluation.evaluate(config, params, SAMPLER, frames, actions, rng=jax.random.key(3), context=1, with_lpips=False, **codec)
    assert result["horizon"] == [1, 2, 3]
    assert set(result["metrics"]) == {"teacher_forced", "autoregressive", "copy_last", "copy_first", "teacher_forced_copy_last", "autoencoder"}
    assert result["metrics"]["autoencoder"]["psnr"] == [100.0] * 3  # lossless: capped at 100 dB
    np.testing.assert_allclose(result["metrics"]["autoencoder"]["ssim"], 1.0, atol=1e-5)
    # copy_first at horizon k repeats frame 0; its psnr equals psnr(frame 0, frame k) by hand.
    by_hand = np.asarray(image_metrics.psnr(frames[:, 0], frames[:, 2])).mean()
    assert result["metrics"]["copy_first"]["psnr"][1] == pytest.approx(by_hand, abs=1e-3)
    path = plots.plot_drift(result, str(tmp_path / "drift.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_long_horizon_short(pixel_world, tmp_path):
    config, params, _ = pixel_world
    context = jax.random.normal(jax.random.key(0), (1, 1, 8, 8, 12))
    result = evaluation.long_horizon(config, params, SAMPLER, context, frames=300, chunk=100, rng=jax.random.key(1), progress=False)
    assert result["all_finite"] and result["frame_count"] == 301 and len(result["chunks"]) == 3
    assert set(result["drift"]) == {"mean", "variance", "sharpness"}
    assert abs(result["rss_growth_bytes"]) < 64 * 2**20
    assert plots.plot_long_horizon(result, str(tmp_path / "lh.png")).endswith(".png")


@pytest.mark.slow
def test_long_horizon_10k_frames_memory_flat(tiny_config, tiny_random_params):
    context = jax.random.normal(jax.random.key(0), (1, 1, 8, 8, 4))
    result = evaluation.long_horizon(tiny_config, tiny_random_params, SamplerConfig(steps=4), context, frames=10_000, chunk=500,
                                     rng=jax.random.key(1), progress=False)
    assert result["all_finite"] and result["frame_count"] == 10_001
    # Flat: no trend; a leak of one 256-byte latent per frame would already be 2.5 MB per 10k frames.
    assert abs(result["rss_slope_bytes_per_1000_frames"]) < 1 * 2**20
