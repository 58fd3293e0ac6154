"""A world that keeps its picture shows the pixels it keeps (`wm_jax.kept_pixels`): with no key the
start image itself, not the autoencoder's reconstruction of it; with a pan key the frame before
shifted by whole pixels, and the decoded frame only in the strip the pan uncovers; a zoom frame
decoded whole. A model that redraws its frames is shown decoded, as before.

The autoencoder here is a lossy one with random weights (`tiny_f4c8`: 32x32 frames, 8x8x8
latents), so the kept pixels and the decoded frame differ everywhere and any mix-up shows.
"""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import randomize

from wm_jax import autoencoder, bundle, evaluation, images, kept_pixels
from wm_jax import model as wm_model
from wm_jax.bundle import WorldInfo
from wm_jax.diffusion import SamplerConfig
from wm_jax.world import World, load_world

SIZE = 32
STEP_PX = 8  # the left key moves the latent 2 pixels; the autoencoder downscales 4x


@pytest.fixture(scope="module")
def parts(tiny_config):
    config = tiny_config.replace(
        in_channels=8, latent_size=(8, 8), prediction="x0_residual", window=3,
        key_moves=(("left", 0, 2, 0),), paint_uncovered_only=True, uncovered_fill="mirror")
    params = randomize(wm_model.init_params(config, jax.random.key(0)), jax.random.key(1))
    ae_config = autoencoder.get_config("tiny_f4c8")
    ae_variables = autoencoder.init(ae_config, jax.random.key(2))
    return config, params, ae_config, ae_variables


ZOOM_KEYS = (("e", 1.1),)


def _world(parts, zoom_keys=ZOOM_KEYS, **config_changes):
    config, params, ae_config, ae_variables = parts
    info = WorldInfo(name="keeper", keys=(("left", "pan left"), ("w", "forward"), ("e", "zoom in")),
                     sampler=SamplerConfig(steps=1), zoom_keys=dict(zoom_keys))
    return World(info, config.replace(**config_changes), params, ae_config, ae_variables, images.default_scene(SIZE, SIZE))


def _decoded(world, latent):
    return np.asarray(jnp.clip(autoencoder.decode(world.ae_variables, latent, world.ae_config), -1.0, 1.0))


def test_no_key_shows_the_start_image_itself_and_a_pan_shifts_its_pixels(parts):
    world = _world(parts)
    start = world.start_image
    latent = autoencoder.encode(world.ae_variables, jnp.asarray(start, jnp.float32)[None] / 127.5 - 1.0, world.ae_config)
    assert np.abs(_decoded(world, latent)[0] - (start / 127.5 - 1.0)).mean() > 0.05  # what decoding the latent would show

    state = world.start(seed=0)
    state, still = world.step(state, ())
    state, walked = world.step(state, ("w",))  # a key without a move keeps the picture too
    state, panned = world.step(state, ("left",))
    np.testing.assert_array_equal(still, start)
    np.testing.assert_array_equal(walked, start)
    np.testing.assert_array_equal(panned[:, STEP_PX:], start[:, :-STEP_PX])  # content slides right, exactly
    assert np.abs(panned[:, :STEP_PX].astype(np.int32) - start[:, :STEP_PX]).mean() > 1  # the strip is new


def test_the_uncovered_strip_is_the_decoded_frame_and_a_zoom_frame_is_decoded_whole(parts):
    world = _world(parts)
    keeper = kept_pixels.make_keeper(world.config, world.ae_config.downscale,
                                     lambda z: autoencoder.decode(world.ae_variables, z, world.ae_config), dict(ZOOM_KEYS))
    shown = jnp.asarray(world.start_image, jnp.float32)[None] / 127.5 - 1.0
    latents = jax.random.normal(jax.random.key(3), (3, 1, 8, 8, 8))
    left, e = (jnp.asarray(world.action(keys))[None] for keys in (["left"], ["e"]))
    pan = keeper.show(kept_pixels.given(shown), latents[0], left)
    np.testing.assert_allclose(pan.pixels_BHW3[:, :, :STEP_PX], _decoded(world, latents[0])[:, :, :STEP_PX], atol=1e-6)
    np.testing.assert_array_equal(pan.pixels_BHW3[:, :, STEP_PX:], np.asarray(shown)[:, :, :-STEP_PX])
    # The strip painted before is shown as the next frame's decoding draws it; the given pixels stay.
    again = keeper.show(pan, latents[1], left)
    np.testing.assert_allclose(again.pixels_BHW3[:, :, :2 * STEP_PX], _decoded(world, latents[1])[:, :, :2 * STEP_PX], atol=1e-6)
    np.testing.assert_array_equal(again.pixels_BHW3[:, :, 2 * STEP_PX:], np.asarray(shown)[:, :, :-2 * STEP_PX])
    np.testing.assert_array_equal(np.asarray(again.painted_BHW1)[0, :, :, 0].any(axis=0), np.arange(SIZE) < 2 * STEP_PX)
    zoom = keeper.show(again, latents[2], e)
    np.testing.assert_allclose(zoom.pixels_BHW3, _decoded(world, latents[2]), atol=1e-6)
    assert np.all(np.asarray(zoom.painted_BHW1) == 1)


def test_a_still_region_keeps_its_pixels_in_place_and_what_it_hid_is_decoded(parts):
    """A sprite fixed to the screen (`ModelConfig.still_region`, latent rows 5-7, columns 2-4: pixels
    20-31 x 8-19) stays put under a pan, in the model's frame and in the pixels shown; the columns
    the scene brings out from behind it are painted, so decoded; the rest slides, exactly."""
    world = _world(parts, zoom_keys=(), still_region=(5, 2, 8, 5))
    start = world.start_image.astype(np.int32)
    state = world.start(seed=0)
    state, panned = world.step(state, ("left",))
    panned = panned.astype(np.int32)
    np.testing.assert_array_equal(panned[20:, 8:20], start[20:, 8:20])  # the sprite, where it was
    np.testing.assert_array_equal(panned[:20, STEP_PX:], start[:20, :-STEP_PX])  # above it the scene slides
    np.testing.assert_array_equal(panned[20:, 20 + STEP_PX:], start[20:, 20:-STEP_PX])  # right of what it hid too
    assert np.abs(panned[20:, 20:20 + STEP_PX] - start[20:, 12:20]).mean() > 1  # not the sprite dragged along
    keeper = kept_pixels.make_keeper(world.config, world.ae_config.downscale, lambda z: z)
    np.testing.assert_array_equal(keeper.still_HW, np.pad(np.ones((12, 12), bool), ((20, 0), (8, 12))))
    assert keeper.stale_HW is None


SPRITE_ROWS = tuple("".join("#" if (r >= 24 and 8 <= c < 12) else "." for c in range(SIZE)) for r in range(SIZE))


def test_a_still_mask_keeps_only_the_sprite_and_the_rest_of_its_box_shows_the_scene_moving(parts):
    """With a still mask (world.json "still_mask": pixel rows 24-31, columns 8-11, inside the model's
    box 20-31 x 8-19) only the sprite stays; in the rest of the box the scene slides as everywhere
    (the box's latents are held still, so their decoding would show the start there: it is not
    shown); what the sprite hid and was never seen keeps the pixel shown before; what it hid as the
    scene moved on comes out of the box as pixels kept, not painted."""
    config, params, ae_config, ae_variables = parts
    info = WorldInfo(name="sprite", keys=(("left", "pan left"),), sampler=SamplerConfig(steps=1), still_mask=SPRITE_ROWS)
    world = World(info, config.replace(still_region=(5, 2, 8, 5)), params, ae_config, ae_variables, images.default_scene(SIZE, SIZE))
    start = world.start_image.astype(np.int32)
    state, panned = world.step(world.start(seed=0), ("left",))
    panned = panned.astype(np.int32)
    np.testing.assert_array_equal(panned[24:, 8:12], start[24:, 8:12])  # the sprite, where it was
    np.testing.assert_array_equal(panned[:24, STEP_PX:], start[:24, :-STEP_PX])  # above it, box rows too, the scene slides
    np.testing.assert_array_equal(panned[24:, 12:16], start[24:, 4:8])  # in the box beside it too
    np.testing.assert_array_equal(panned[24:, 16:20], start[24:, 16:20])  # behind it, never seen: as shown before
    np.testing.assert_array_equal(panned[24:, 20:], start[24:, 12:-STEP_PX])  # out of the box, kept pixels
    keeper = kept_pixels.make_keeper(world.config, 4, lambda z: z, still_mask=info.still_mask_array())
    np.testing.assert_array_equal(keeper.still_HW, info.still_mask_array())


@pytest.mark.parametrize("rows, message", [
    (SPRITE_ROWS[:-1], "31x32 pixels, the world's frames are 32x32"),
    (("." * SIZE,) * SIZE, "no pixel is marked"),
    (("#" + "." * (SIZE - 1),) + SPRITE_ROWS[1:], "1 marked pixels lie outside the model's still_region"),
])
def test_a_still_mask_that_does_not_fit_the_model_is_refused(parts, rows, message):
    config, params, ae_config, ae_variables = parts
    info = WorldInfo(name="sprite", keys=(("left", "pan left"),), sampler=SamplerConfig(steps=1), still_mask=rows)
    with pytest.raises(ValueError, match=message):
        World(info, config.replace(still_region=(5, 2, 8, 5)), params, ae_config, ae_variables)
    with pytest.raises(ValueError, match="holds no still_region"):
        World(dataclasses.replace(info, still_mask=SPRITE_ROWS), config, params, ae_config, ae_variables)
    with pytest.raises(ValueError, match="this one redraws its frames"):
        World(dataclasses.replace(info, still_mask=SPRITE_ROWS), config.replace(still_region=(5, 2, 8, 5), paint_uncovered_only=False),
              params, ae_config, ae_variables)


def test_a_rollout_keeps_the_pixels_across_its_chunks(parts):
    """`World.rollout` (a lax.scan in chunks of 16) keeps the given pixels as `step` does, across a
    chunk's border too; after a zoom frame (decoded whole) nothing given is left to keep."""
    world = _world(parts)
    keys = [()] * 15 + [("left",), ("left",), (), ("e",), ()]
    rolled = world.rollout(None, keys, seed=0).astype(np.int32)  # rolled[t + 1] follows keys[t]
    start = world.start_image
    np.testing.assert_array_equal(rolled[15], start)  # 15 frames without a key: the picture itself
    np.testing.assert_array_equal(rolled[16][:, STEP_PX:], start[:, :-STEP_PX])
    np.testing.assert_array_equal(rolled[17][:, 2 * STEP_PX:], start[:, :-2 * STEP_PX])
    np.testing.assert_array_equal(rolled[18][:, 2 * STEP_PX:], start[:, :-2 * STEP_PX])
    assert np.abs(rolled[19][:, 2 * STEP_PX:] - start[:, :-2 * STEP_PX]).mean() > 1  # the zoom frame: decoded whole


def test_only_a_model_that_keeps_its_picture_in_whole_pixels_gets_a_keeper(parts):
    config, *_ = parts
    decode = lambda z: z
    assert kept_pixels.make_keeper(config, 4, decode) is not None
    assert kept_pixels.make_keeper(config.replace(paint_uncovered_only=False), 4, decode) is None
    half = config.replace(key_moves=(("left", 0, 0.5, 0),))
    assert kept_pixels.make_keeper(half, 2, decode) is not None  # half a latent pixel of a 2x autoencoder: one pixel
    assert kept_pixels.make_keeper(half, 1, decode) is None  # half a pixel would resample the kept frame every frame


def test_a_world_that_redraws_its_frames_shows_them_decoded(parts):
    world = _world(parts, zoom_keys=(), paint_uncovered_only=False)  # zoom keys need a model that keeps
    state, frame = world.step(world.start(seed=0), ())
    assert np.abs(frame.astype(np.int32) - world.start_image).mean() > 1


def test_teacher_forced_figures_score_the_kept_pixels(parts):
    """`evaluation.evaluate` with the keeper: on a clip that holds still, the teacher-forced frame is
    the real frame before (exact), which the decoded latent is not."""
    world = _world(parts)
    config, params = world.config, world.params
    start = jnp.asarray(world.start_image, jnp.float32)[None, None] / 127.5 - 1.0
    frames = jnp.repeat(start, 4, axis=1)
    actions = jnp.zeros((1, 4, config.action_dim))
    codec = dict(encode=lambda x: autoencoder.encode(world.ae_variables, x, world.ae_config),
                 decode=lambda z: autoencoder.decode(world.ae_variables, z, world.ae_config))
    keeper = kept_pixels.make_keeper(config, world.ae_config.downscale, codec["decode"])
    kept = evaluation.evaluate(config, params, SamplerConfig(steps=1), frames, actions, rng=jax.random.key(0), with_lpips=False,
                               keeper=keeper, **codec)
    decoded = evaluation.evaluate(config, params, SamplerConfig(steps=1), frames, actions, rng=jax.random.key(0), with_lpips=False,
                                  **codec)
    assert kept["mean"]["teacher_forced"]["psnr"] >= 99  # capped: an exact copy
    assert kept["mean"]["autoregressive"]["psnr"] >= 99
    assert decoded["mean"]["teacher_forced"]["psnr"] < 40


def test_bundles_carry_a_still_mask_and_refuse_one_that_is_not_pixel_rows(parts, tmp_path):
    config, params, ae_config, ae_variables = parts
    config = config.replace(still_region=(5, 2, 8, 5))
    common = dict(name="sprite", config=config, params=params, ae_config=ae_config, ae_variables=ae_variables,
                  keys={"left": "pan left"}, sampler=SamplerConfig(steps=1))
    bundle.save_world(tmp_path / "ok", still_mask=SPRITE_ROWS, **common)
    meta = json.loads((tmp_path / "ok" / "world.json").read_text())
    assert meta["still_mask"] == list(SPRITE_ROWS)
    assert load_world(tmp_path / "ok").info.still_mask == SPRITE_ROWS
    with pytest.raises(ValueError, match="outside the model's still_region"):
        bundle.save_world(tmp_path / "refused", still_mask=("#" * SIZE,) * SIZE, **common)
    assert not (tmp_path / "refused").exists()
    for bad, message in (("#..#", "must be a list of pixel rows"), (["#.", "#"], "as long"), (["#x", ".."], "only '#' and '.'")):
        meta["still_mask"] = bad
        (tmp_path / "ok" / "world.json").write_text(json.dumps(meta))
        with pytest.raises(ValueError, match=f"world.json: still_mask.*{message}"):
            load_world(tmp_path / "ok")


def test_export_world_reads_a_still_mask_file_and_names_what_is_wrong_with_one(tmp_path):
    from wm_jax.cli.export_world import read_still_mask

    good = tmp_path / "mask.txt"
    good.write_text("..#.\n.##.\n\n")
    assert read_still_mask(str(good)) == ("..#.", ".##.")
    bad = tmp_path / "bad.txt"
    bad.write_text("..#.\n.#1.\n")
    with pytest.raises(ValueError, match=r"bad.txt: .*line 2 holds \['1'\]"):
        read_still_mask(str(bad))
    bad.write_text("\n")
    with pytest.raises(ValueError, match="the file is empty"):
        read_still_mask(str(bad))
