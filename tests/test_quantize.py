"""Weight-only int8: per-channel error bounds, the params transform, the int8 step, checkpoints."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wm_jax import quantize, rollout
from wm_jax.diffusion import SamplerConfig


def test_per_channel_error_is_within_half_a_step_of_its_own_scale():
    rng = np.random.default_rng(0)
    # Channels with very different magnitudes: a per-tensor scale would crush the small ones.
    w = rng.normal(size=(64, 8)).astype(np.float32) * np.logspace(-3, 1, 8, dtype=np.float32)
    q = quantize.quantize_tensor(w)
    assert q.values.dtype == jnp.int8 and q.values.shape == (64, 8) and q.scale.shape == (8,)
    np.testing.assert_allclose(np.asarray(q.scale), np.abs(w).max(axis=0) / 127, rtol=1e-6)
    err = np.abs(np.asarray(q.dequantize()) - w)
    assert np.all(err <= np.asarray(q.scale)[None] / 2 + 1e-9)
    # Relative to each channel's own range, the error is small for the smallest channel too.
    assert np.all(err.max(axis=0) / np.abs(w).max(axis=0) < 1 / 250)
    assert int(np.abs(np.asarray(q.values)).max()) == 127


def test_zero_channels_and_conv_kernels():
    w = np.zeros((3, 3, 4, 5), np.float32)
    w[..., 2] = np.arange(36, dtype=np.float32).reshape(3, 3, 4) - 18
    q = quantize.quantize_tensor(w)
    assert q.scale.shape == (5,)
    np.testing.assert_array_equal(np.asarray(q.dequantize())[..., [0, 1, 3, 4]], 0.0)
    np.testing.assert_allclose(np.asarray(q.dequantize()), w, atol=18 / 127 / 2 + 1e-6)
    with pytest.raises(ValueError, match=">= 2 axes"):
        quantize.quantize_tensor(np.ones(7, np.float32))


def test_params_transform_quantizes_only_big_kernels(tiny_random_params):
    qparams = quantize.quantize(tiny_random_params)
    assert quantize.is_quantized(qparams) and not quantize.is_quantized(tiny_random_params)
    flat = jax.tree_util.tree_flatten_with_path(qparams, is_leaf=lambda x: isinstance(x, quantize.Int8Tensor))[0]
    for path, leaf in flat:
        name = path[-1].key
        if isinstance(leaf, quantize.Int8Tensor):
            assert name == "kernel" and np.prod(leaf.shape) >= quantize.MIN_ELEMENTS
        else:
            assert name != "kernel" or np.prod(leaf.shape) < quantize.MIN_ELEMENTS
    assert quantize.nbytes(qparams) < 0.5 * quantize.nbytes(tiny_random_params)
    deq = quantize.dequantize(qparams)
    assert jax.tree_util.tree_structure(deq) == jax.tree_util.tree_structure(tiny_random_params)


def test_int8_step_tracks_the_fp32_step(tiny_config, tiny_random_params):
    sampler = SamplerConfig(steps=2)
    qparams = quantize.quantize(tiny_random_params)
    context = jax.random.normal(jax.random.key(3), (1, 2, 8, 8, 4))
    action = jnp.zeros((1, tiny_config.action_dim))
    s32 = rollout.init_state(tiny_config, tiny_random_params, context, rng=jax.random.key(4), sampler=sampler)
    s8 = quantize.init_state(tiny_config, qparams, context, rng=jax.random.key(4), sampler=sampler)
    _, x32 = rollout.make_step(tiny_config, sampler)(tiny_random_params, s32, action, jax.random.key(5))
    _, x8 = quantize.make_step(tiny_config, sampler)(qparams, s8, action, jax.random.key(5))
    rel = float(jnp.linalg.norm(x8 - x32) / jnp.linalg.norm(x32))
    assert 0 < rel < 0.05  # close, and not bit-identical (so the int8 path really ran)


def test_checkpoint_round_trip_and_smaller(tmp_path, tiny_config, tiny_random_params):
    from wm_jax import model

    qparams = quantize.quantize(tiny_random_params)
    quantize.save(str(tmp_path / "int8"), tiny_config, qparams)
    model.save(str(tmp_path / "fp32"), tiny_config, tiny_random_params)
    config, loaded = quantize.load(str(tmp_path / "int8"))
    assert config == tiny_config
    for a, b in zip(jax.tree_util.tree_leaves(qparams), jax.tree_util.tree_leaves(loaded)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert quantize.directory_bytes(str(tmp_path / "int8")) < 0.5 * quantize.directory_bytes(str(tmp_path / "fp32"))
    with pytest.raises(FileNotFoundError, match="not an int8"):
        quantize.load(str(tmp_path / "fp32"))
