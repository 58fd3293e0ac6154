"""wm_jax.autoencoder: shapes, dtypes, pixel losslessness, size refusal, stats, save/load."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wm_jax import autoencoder as ae

RNG = jax.random.PRNGKey(0)


def _frames(shape, seed=0):
    return jax.random.uniform(jax.random.PRNGKey(seed), shape, jnp.float32, -1.0, 1.0)


@pytest.mark.parametrize("name", sorted(ae.CONFIGS))
def test_every_named_config_shapes_and_dtypes(name):
    cfg = ae.get_config(name)
    f, c = cfg.downscale, cfg.latent_channels
    variables = ae.init(cfg, RNG)
    frames = _frames((2, 16, 24, 3))  # two frames, a non-square multiple of 8
    z = ae.encode(variables, frames, cfg)
    assert z.shape == (2, 16 // f, 24 // f, c) and z.dtype == jnp.float32
    assert cfg.latent_shape(16, 24) == z.shape[1:]
    x = ae.decode(variables, z, cfg)
    assert x.shape == frames.shape and x.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(x)))


def test_leading_dims_are_kept_and_batch_independent():
    cfg = ae.get_config("tiny_f4c8")
    variables = ae.init(cfg, RNG)
    frames = _frames((2, 3, 8, 8, 3))  # [B, T, H, W, 3]
    z = ae.encode(variables, frames, cfg)
    assert z.shape == (2, 3, 2, 2, 8)
    one = ae.encode(variables, frames[1, 2], cfg)  # unbatched [H, W, 3]
    np.testing.assert_allclose(np.asarray(z[1, 2]), np.asarray(one), atol=1e-6)


def test_params_are_plain_trainable_tree_and_stats_separate():
    cfg = ae.get_config("taef2")
    variables = ae.init(cfg, RNG)
    assert set(variables) == {"params", "latent_stats"}
    assert set(variables["params"]) == {"encoder", "decoder"}
    block = variables["params"]["encoder"]["level_3_block_0"]
    assert block["pool_in"]["kernel"].shape == (1, 1, 64, 256)
    assert block["pool_norm"]["scale"].shape == (256,)
    assert "pool_in" not in variables["params"]["encoder"]["level_2_block_0"]
    assert "pool_in" in variables["params"]["decoder"]["level_3_block_2"]
    n = sum(x.size for x in jax.tree_util.tree_leaves(variables["params"]))
    # taef2_encoder.pth + taef2_decoder.pth hold 79 + 79 tensors, 2 x ~1.35M weights.
    assert len(jax.tree_util.tree_leaves(variables["params"])) == 158
    assert 2.5e6 < n < 2.9e6


@pytest.mark.parametrize("name", ["pixel_p1", "pixel_p2", "pixel_p4"])
def test_pixel_space_is_lossless(name):
    cfg = ae.get_config(name)
    variables = ae.init(cfg, RNG)
    frames = _frames((3, 16, 8, 3), seed=3)
    z = ae.encode(variables, frames, cfg)
    assert z.shape == (3, 16 // cfg.downscale, 8 // cfg.downscale, 3 * cfg.downscale**2)
    np.testing.assert_array_equal(np.asarray(ae.decode(variables, z, cfg)), np.asarray(frames))


def test_patchify_layout_is_patch_rows_then_columns_then_channels():
    x = jnp.arange(4 * 4 * 3, dtype=jnp.float32).reshape(1, 4, 4, 3)
    z = ae.patchify(x, 2)
    np.testing.assert_array_equal(np.asarray(z[0, 0, 1]), np.asarray(x[0, 0:2, 2:4].reshape(-1)))


@pytest.mark.parametrize("name,size", [("taef2", (60, 64)), ("tiny_f4c8", (18, 16)), ("pixel_p4", (16, 30))])
def test_sizes_not_multiple_of_downscale_are_refused(name, size):
    cfg = ae.get_config(name)
    variables = ae.init(cfg, RNG)
    with pytest.raises(ValueError, match=rf"{size[0]}x{size[1]} is not a multiple of .* factor {cfg.downscale}"):
        ae.encode(variables, jnp.zeros(size + (3,)), cfg)


def test_unknown_config_name_lists_known_ones():
    with pytest.raises(KeyError, match="unknown autoencoder config 'taef3'.*taef2.*tiny_f4c8"):
        ae.get_config("taef3")


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        ae.AutoencoderConfig(downscale=6)
    with pytest.raises(ValueError, match="48 latent channels"):
        ae.AutoencoderConfig(kind="pixel", downscale=4, latent_channels=16)


def test_integer_frames_are_refused():
    cfg = ae.get_config("pixel_p2")
    with pytest.raises(TypeError, match="float in \\[-1, 1\\]"):
        ae.encode(ae.init(cfg, RNG), jnp.zeros((4, 4, 3), jnp.uint8), cfg)


def test_latent_stats_normalise_to_unit_scale_and_round_trip():
    cfg = ae.get_config("tiny_f4c8")
    variables = ae.init(cfg, RNG)
    frames = _frames((4, 16, 16, 3), seed=1)
    mean, std = ae.raw_latent_stats(variables, frames, cfg)
    assert mean.shape == std.shape == (8,)
    normed = ae.with_latent_stats(variables, mean, std)
    z = np.asarray(ae.encode(normed, frames, cfg)).reshape(-1, 8)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-3)
    # Decoding normalised latents gives what decoding the raw ones did.
    raw = ae.encode(variables, frames, cfg)
    np.testing.assert_allclose(
        np.asarray(ae.decode(normed, ae.encode(normed, frames, cfg), cfg)), np.asarray(ae.decode(variables, raw, cfg)), atol=1e-4
    )
    with pytest.raises(ValueError, match="shaped"):
        ae.with_latent_stats(variables, np.zeros(4), np.ones(4))


def test_encode_decode_jit_with_static_config():
    cfg = ae.get_config("tiny_f8c16")
    variables = ae.init(cfg, RNG)
    enc = jax.jit(ae.encode, static_argnames="config")
    frames = _frames((1, 16, 16, 3))
    np.testing.assert_allclose(np.asarray(enc(variables, frames, config=cfg)), np.asarray(ae.encode(variables, frames, cfg)), atol=1e-5)


@pytest.mark.parametrize("cfg", [dataclasses.replace(ae.get_config("tiny_f4c8"), latent_channels=4), ae.get_config("pixel_p2")])
def test_save_load_round_trip(tmp_path, cfg):
    c = cfg.latent_channels
    variables = ae.with_latent_stats(ae.init(cfg, RNG), np.arange(c, dtype=np.float32), np.full(c, 2.0))
    ae.save(tmp_path / "ae", cfg, variables, info={"source": "test"})
    cfg2, loaded = ae.load(tmp_path / "ae")
    assert cfg2 == cfg
    frames = _frames((1, 8, 8, 3))
    np.testing.assert_array_equal(np.asarray(ae.encode(loaded, frames, cfg2)), np.asarray(ae.encode(variables, frames, cfg)))
    with pytest.raises(FileNotFoundError, match="autoencoder.json"):
        ae.load(tmp_path / "nothing")


def test_pixel_variables_have_an_empty_params_collection():
    variables = ae.init(ae.get_config("pixel_p4"), RNG)
    assert set(variables) == {"params", "latent_stats"} and variables["params"] == {}
