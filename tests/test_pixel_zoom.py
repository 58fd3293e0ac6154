"""A world's zoom keys (`wm_jax.pixel_zoom`): the camera zooms the picture in pixels, within its
range, from the picture a run of zoom frames started with; bundles carry and check the keys.

The world here lives in pixel space (the `pixel_p1` autoencoder: the latent is the frame), with a
`paint_uncovered_only` model that moves the frame on `left` only: a zoom frame must then be the
start picture zoomed, as `warp.shift_and_zoom` (checked against scipy in test_warp) resamples it,
antialiased when it shrinks (`warp.antialiased`).
"""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import randomize

from wm_jax import autoencoder, bundle, evaluation, images, motion, pixel_zoom, warp
from wm_jax import model as wm_model
from wm_jax.bundle import WorldInfo
from wm_jax.diffusion import SamplerConfig
from wm_jax.world import World, load_world

SIZE = 32
SCALE = 1.1


@pytest.fixture(scope="module")
def zoom_world_parts(tiny_config):
    config = tiny_config.replace(
        in_channels=3, latent_size=(SIZE, SIZE), prediction="x0_residual", previous_frame_input=True, window=3,
        key_moves=(("left", 0, 2, 0),), paint_uncovered_only=True, uncovered_fill="mirror")
    params = randomize(wm_model.init_params(config, jax.random.key(0)), jax.random.key(1))
    ae_config = autoencoder.get_config("pixel_p1")
    return config, params, ae_config, autoencoder.init(ae_config, jax.random.key(0))


def _world(parts, zoom_range=pixel_zoom.DEFAULT_RANGE):
    config, params, ae_config, ae_variables = parts
    info = WorldInfo(name="zoomer", keys=(("left", "pan left"), ("e", "zoom in"), ("q", "zoom out")),
                     sampler=SamplerConfig(steps=1), zoom_keys={"e": SCALE, "q": 1 / SCALE}, zoom_range=zoom_range)
    return World(info, config, params, ae_config, ae_variables, images.default_scene(SIZE, SIZE))


def _play(world, keys):
    state, frames = world.start(seed=0), []
    for pressed in keys:
        state, frame = world.step(state, pressed)
        frames.append(frame)
    return np.stack(frames)


def _zoomed(image_uint8, log_scale):
    pixels = jnp.asarray(image_uint8, jnp.float32)[None] / 127.5 - 1.0
    log_scale_B = jnp.asarray([log_scale], jnp.float32)
    out = warp.shift_and_zoom(warp.antialiased(pixels, log_scale_B), jnp.zeros((1, 2)), log_scale_B, fill="mirror")[0]
    return np.asarray(jnp.clip(jnp.round((out + 1.0) * 127.5), 0, 255)).astype(np.int32)


def test_zoom_keys_zoom_the_picture_from_where_the_run_began(zoom_world_parts):
    """Each frame of a run of zoom keys is the start picture zoomed to the level reached (within
    one grey level of rounding); zooming in and back out gives the picture back, where zooming
    every frame's own frame again would have blurred it once per frame."""
    world = _world(zoom_world_parts)
    start = world.start_image.astype(np.int32)
    frames = _play(world, [("e",)] * 3 + [("q",)] * 5 + [("e",)] * 2).astype(np.int32)
    levels = [1, 2, 3, 2, 1, 0, -1, -2, -1, 0]
    for frame, level in zip(frames, levels):
        assert np.abs(frame - _zoomed(start, level * math.log(SCALE))).max() <= 1, level
    assert np.abs(frames[-1] - start).max() <= 1
    shown = np.concatenate([start[None], frames]).astype(np.uint8)
    scales = motion.zoom_scale(shown[:-1], shown[1:])
    np.testing.assert_allclose(scales[:3], SCALE, rtol=0.03)
    np.testing.assert_allclose(scales[3:8], 1 / SCALE, rtol=0.03)


def test_the_camera_stops_at_its_range_and_a_key_at_the_limit_does_nothing(zoom_world_parts):
    world = _world(zoom_world_parts, zoom_range=(SCALE ** -1, SCALE ** 2))
    frames = _play(world, [("e",)] * 5 + [("q",)] * 5).astype(np.int32)
    start = world.start_image.astype(np.int32)
    assert np.abs(frames[2] - frames[4]).max() <= 1  # stopped at 1.1^2 (a frame's rounding apart)
    assert np.abs(frames[2] - _zoomed(start, 2 * math.log(SCALE))).max() <= 1
    assert np.abs(frames[8] - frames[9]).max() <= 1  # stopped at 1.1^-1
    assert np.abs(frames[8] - _zoomed(start, -math.log(SCALE))).max() <= 1


def test_a_frame_without_a_zoom_key_ends_the_run_and_pans_stay_latent_moves(zoom_world_parts):
    """e, left, q: the zoom out starts from the panned frame, not from the picture before the
    pan (away from the painted strip, which the zoom shows as the model's latent draws it); and
    the frames of a world without zoom keys are exactly those of a world whose zoom keys are not
    pressed."""
    world = _world(zoom_world_parts)
    frames = _play(world, [("e",), ("left",), ("q",)]).astype(np.int32)
    given = np.s_[:, 6:]  # the 2-pixel strip at the left, zoomed out and the pixels beside it: columns 0-4
    assert np.abs(frames[2] - _zoomed(frames[1], -math.log(SCALE)))[given].max() <= 1
    assert np.abs(frames[2] - _zoomed(frames[0], -math.log(SCALE)))[given].max() > 10
    config, params, ae_config, ae_variables = zoom_world_parts
    plain = World(WorldInfo(name="plain", keys=(("left", ""),), sampler=SamplerConfig(steps=1)), config, params, ae_config,
                  ae_variables, images.default_scene(SIZE, SIZE))
    keys = [("left",), (), ("left",)]
    np.testing.assert_array_equal(_play(world, keys), _play(plain, keys))


def test_scripted_rollouts_and_the_evaluation_zoom_as_play_does(zoom_world_parts):
    world = _world(zoom_world_parts)
    keys = [("e",), ("e",), ("q",)]
    played = _play(world, keys).astype(np.int32)
    assert np.abs(world.rollout(None, keys, seed=0)[1:].astype(np.int32) - played).max() <= 1
    config, params, ae_config, ae_variables = zoom_world_parts
    codec = dict(encode=lambda x: autoencoder.encode(ae_variables, x, ae_config),
                 decode=lambda z: autoencoder.decode(ae_variables, z, ae_config))
    zoom = pixel_zoom.make_zoom({"e": SCALE, "q": 1 / SCALE}, pixel_zoom.DEFAULT_RANGE, config, **codec)
    start = jnp.asarray(world.start_image, jnp.float32)[None, None] / 127.5 - 1.0
    actions = jnp.asarray(np.stack([world.action(k) for k in [()] + keys]))[None]
    latents = codec["encode"](jnp.concatenate([start] * 4, axis=1))
    for predict in (evaluation.autoregressive_latents, evaluation.teacher_forced_latents):
        out = predict(params, latents, actions, jax.random.key(0), config=config, sampler=world.info.sampler, zoom=zoom)
        frame = np.asarray(jnp.clip(jnp.round((codec["decode"](out[0, 0]) + 1) * 127.5), 0, 255)).astype(np.int32)
        assert np.abs(frame - played[0]).max() <= 1, predict.__name__


def test_bundles_carry_zoom_keys_and_refuse_ones_that_cannot_work(zoom_world_parts, tmp_path):
    config, params, ae_config, ae_variables = zoom_world_parts
    keys = {"left": "pan left", "e": "zoom in", "q": "zoom out"}
    common = dict(name="zoomer", config=config, params=params, ae_config=ae_config, ae_variables=ae_variables, keys=keys,
                  sampler=SamplerConfig(steps=1))
    bundle.save_world(tmp_path / "ok", zoom_keys={"e": SCALE, "q": 1 / SCALE}, zoom_range=(0.5, 2.0), **common)
    meta = json.loads((tmp_path / "ok" / "world.json").read_text())
    assert meta["zoom_keys"] == {"e": SCALE, "q": 1 / SCALE} and meta["zoom_range"] == [0.5, 2.0]
    loaded = load_world(tmp_path / "ok")
    assert dict(loaded.info.zoom_keys) == {"e": SCALE, "q": 1 / SCALE} and loaded.info.zoom_range == (0.5, 2.0)

    refused = {
        "not among the world's keys": dict(zoom_keys={"r": SCALE}),
        "scale 1.0 per frame": dict(zoom_keys={"e": 1.0}),
        "already moves the latent frame": dict(zoom_keys={"left": SCALE}),
        "zoom_range [2.0, 4.0] must hold 1": dict(zoom_keys={"e": SCALE}, zoom_range=(2.0, 4.0)),
        "must be a number": dict(zoom_keys={"e": "big"}),
    }
    for message, fields in refused.items():
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            bundle.save_world(tmp_path / "refused", **common, **fields)
        assert not (tmp_path / "refused" / "world.json").exists()
    with pytest.raises(ValueError, match="paint_uncovered_only"):
        bundle.save_world(tmp_path / "repaints", **{**common, "config": config.replace(paint_uncovered_only=False)},
                          zoom_keys={"e": SCALE})
    meta["zoom_range"] = "wide"
    (tmp_path / "ok" / "world.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="world.json: zoom_range must be"):
        load_world(tmp_path / "ok")
