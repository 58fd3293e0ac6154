"""A world that keeps its picture shows the pixels it keeps (`wm_jax.kept_pixels`): with no key the
start image itself, not the autoencoder's reconstruction of it; with a pan key the frame before
shifted by whole pixels, and the decoded frame only in the strip the pan uncovers; a zoom key
zooms the pixels shown. A model that redraws its frames is shown decoded, as before.

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

from wm_jax import autoencoder, bundle, evaluation, images, kept_pixels, warp
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
    info = WorldInfo(name="keeper", keys=(("left", "pan left"), ("w", "forward"), ("e", "zoom in"), ("q", "zoom out")),
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


def test_the_uncovered_strip_is_the_decoded_frame_and_a_zoom_zooms_the_pixels_shown(parts):
    world = _world(parts)
    keeper = kept_pixels.make_keeper(world.config, world.ae_config.downscale,
                                     lambda z: autoencoder.decode(world.ae_variables, z, world.ae_config), world._zoom)
    shown = jnp.asarray(world.start_image, jnp.float32)[None] / 127.5 - 1.0
    latents = jax.random.normal(jax.random.key(3), (3, 1, 8, 8, 8))
    left, e = (jnp.asarray(world.action(keys))[None] for keys in (["left"], ["e"]))
    pan = keeper.show(kept_pixels.given(shown, keeper), latents[0], left)
    np.testing.assert_allclose(pan.pixels_BHW3[:, :, :STEP_PX], _decoded(world, latents[0])[:, :, :STEP_PX], atol=1e-6)
    np.testing.assert_array_equal(pan.pixels_BHW3[:, :, STEP_PX:], np.asarray(shown)[:, :, :-STEP_PX])
    # The strip painted before is shown as the next frame's decoding draws it; the given pixels stay.
    again = keeper.show(pan, latents[1], left)
    np.testing.assert_allclose(again.pixels_BHW3[:, :, :2 * STEP_PX], _decoded(world, latents[1])[:, :, :2 * STEP_PX], atol=1e-6)
    np.testing.assert_array_equal(again.pixels_BHW3[:, :, 2 * STEP_PX:], np.asarray(shown)[:, :, :-2 * STEP_PX])
    np.testing.assert_array_equal(np.asarray(again.painted_BHW1)[0, :, :, 0].any(axis=0), np.arange(SIZE) < 2 * STEP_PX)
    # A zoom in shows the frame shown before zoomed in pixels (not its decoding), and decodes what
    # draws mostly on painted pixels: the strip, magnified.
    zoom = keeper.show(again, latents[2], e)
    view = np.asarray(warp.shift_and_zoom(jnp.concatenate([again.pixels_BHW3, again.painted_BHW1], -1), jnp.zeros((1, 2)),
                                          jnp.asarray([np.log(1.1)]), fill="mirror"))
    painted = view[..., 3:] > 0.5
    np.testing.assert_array_equal(np.asarray(zoom.painted_BHW1) > 0, painted)
    columns = painted[0, :, :, 0].any(axis=0)
    assert columns[0] and not columns[-1] and np.all(np.diff(columns.astype(int)) <= 0)  # the strip, magnified: a left band
    np.testing.assert_allclose(zoom.pixels_BHW3, np.where(painted, _decoded(world, latents[2]), view[..., :3]), atol=1e-5)
    assert np.abs(np.asarray(zoom.pixels_BHW3) - _decoded(world, latents[2]))[~painted[..., 0]].mean() > 0.05
    # The next zoom frame zooms the run's first frame again (resampled once, not twice).
    twice = keeper.show(zoom, latents[2], e)
    view = np.asarray(warp.shift_and_zoom(again.pixels_BHW3, jnp.zeros((1, 2)), jnp.asarray([2 * np.log(1.1)]), fill="mirror"))
    given_px = np.asarray(twice.painted_BHW1)[..., 0] == 0
    np.testing.assert_allclose(np.asarray(twice.pixels_BHW3)[given_px], view[given_px], atol=1e-5)
    with pytest.raises(ValueError, match="needs the camera"):
        keeper.show(kept_pixels.given(shown), latents[0], e)  # given without the keeper: no camera


def test_a_zoom_out_shows_the_picture_shrunk_and_its_mirror_around_it_as_given(parts):
    """What a zoom out brings into view is the shown frame's mirror image in pixels (the rollout's
    fill, which the model does not paint over), not its decoding: the whole frame is the start
    picture zoomed out as `warp` resamples it, and nothing is painted."""
    world = _world(parts, zoom_keys=(("e", 1.1), ("q", 1 / 1.1)))
    state, frame = world.step(world.start(seed=0), ("q",))
    start = jnp.asarray(world.start_image, jnp.float32)[None] / 127.5 - 1.0
    log_scale = jnp.asarray([-np.log(1.1)])
    want = warp.shift_and_zoom(warp.antialiased(start, log_scale), jnp.zeros((1, 2)), log_scale, fill="mirror")[0]
    want = np.clip(np.round((np.asarray(want) + 1.0) * 127.5), 0, 255)
    assert np.abs(frame.astype(np.int32) - want).max() <= 1
    assert not np.asarray(state.kept.painted_BHW1).any()


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
    chunk's border too; a zoom frame shows them zoomed, and the frame after it keeps those."""
    world = _world(parts)
    keys = [()] * 15 + [("left",), ("left",), (), ("e",), ()]
    rolled = world.rollout(None, keys, seed=0).astype(np.int32)  # rolled[t + 1] follows keys[t]
    start = world.start_image
    np.testing.assert_array_equal(rolled[15], start)  # 15 frames without a key: the picture itself
    np.testing.assert_array_equal(rolled[16][:, STEP_PX:], start[:, :-STEP_PX])
    np.testing.assert_array_equal(rolled[17][:, 2 * STEP_PX:], start[:, :-2 * STEP_PX])
    np.testing.assert_array_equal(rolled[18][:, 2 * STEP_PX:], start[:, :-2 * STEP_PX])
    before = jnp.asarray(rolled[18], jnp.float32)[None] / 127.5 - 1.0
    zoomed = np.asarray(warp.shift_and_zoom(before, jnp.zeros((1, 2)), jnp.asarray([np.log(1.1)]), fill="mirror"))[0]
    zoomed = np.clip(np.round((zoomed + 1.0) * 127.5), 0, 255)
    assert np.abs(rolled[19][:, 3 * STEP_PX:] - zoomed[:, 3 * STEP_PX:]).max() <= 1  # the zoom frame: the pixels zoomed
    np.testing.assert_array_equal(rolled[20][:, 3 * STEP_PX:], rolled[19][:, 3 * STEP_PX:])  # away from the strip: kept


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



# ----------------------------------------------------------------------------- matching the picture


def _picture(seed=0):
    """A picture with a colour cast, blotches and grain, the same everywhere (so a strip of it has the
    whole picture's statistics): [1, H, W, 3] in [-1, 1]."""
    blotches, grain = jax.random.normal(jax.random.key(seed), (2, 1, SIZE, SIZE, 3))
    cast = jnp.asarray([0.2, -0.1, 0.0])
    return jnp.clip(cast + 0.5 * warp.gaussian_blur(blotches, 2.0) / 0.15 * 0.3 + 0.15 * grain, -1.0, 1.0)


def _where(x_BHW3, mask_HW):
    """(each channel's std, the mean squared detail) of the pixels of x where mask_HW."""
    mask = np.asarray(mask_HW, bool)
    return np.asarray(x_BHW3)[0][mask].std(axis=0), float(np.mean(np.square(np.asarray(kept_pixels.detail(x_BHW3))[0][mask])))


def test_a_painted_part_as_the_picture_is_left_as_it_is():
    """Painted everywhere with the picture itself, every gain is 1: the frame comes back unchanged;
    so does one whose contrast about each channel's mean was only lowered (the contrast gain restores
    it, and then the detail is the picture's)."""
    picture = _picture()
    everywhere = jnp.ones(picture.shape[:-1] + (1,), jnp.float32)
    statistics = kept_pixels.picture_statistics(picture)
    np.testing.assert_allclose(kept_pixels.matched_to_picture(picture, everywhere, statistics), picture, atol=1e-4)
    mean = jnp.mean(picture, axis=(1, 2), keepdims=True)
    flatter = mean + 0.6 * (picture - mean)
    np.testing.assert_allclose(kept_pixels.matched_to_picture(flatter, everywhere, statistics), picture, atol=1e-4)


def test_a_soft_flat_painted_strip_takes_the_pictures_contrast_and_grain():
    """A strip painted softer and flatter than the picture (half blurred, its contrast at 0.7) comes
    out with the picture's detail energy within 15% and its channel spreads within 20% (the grain,
    scaled after the contrast, adds its own variance: a large share in this grainy picture); a
    strip painted flat (one colour: no spread, no detail to scale) stays flat and finite."""
    picture = _picture()
    strip_HW = np.zeros((SIZE, SIZE), bool)
    strip_HW[:, :STEP_PX] = True
    strip = jnp.asarray(strip_HW, jnp.float32)[None, :, :, None]
    statistics = kept_pixels.picture_statistics(picture)
    want_std, want_detail = np.asarray(statistics.std_B3)[0], float(statistics.detail_B[0])
    soft = 0.5 * picture + 0.5 * warp.gaussian_blur(picture, 1.0)
    soft = 0.7 * (soft - soft.mean()) + soft.mean()
    got_std, got_detail = _where(soft, strip_HW)
    assert np.all(got_std < 0.6 * want_std) and got_detail < 0.2 * want_detail  # what the painter drew: far off
    matched = kept_pixels.matched_to_picture(soft, strip, statistics)
    got_std, got_detail = _where(matched, strip_HW)
    np.testing.assert_allclose(got_std, want_std, rtol=0.2)
    np.testing.assert_allclose(got_detail, want_detail, rtol=0.15)
    flat = jnp.full_like(picture, 0.2)
    np.testing.assert_allclose(kept_pixels.matched_to_picture(flat, strip, statistics), flat, atol=1e-5)


def test_a_world_that_matches_its_picture_keeps_its_pixels_and_matches_only_what_it_paints(parts, tmp_path):
    """With world.json "match_picture" the pan's kept pixels are the start image's exactly and the
    strip is the decoded one matched to the start picture (not the plain decoding); the flag round-trips
    through a bundle, and a value that is not true/false, or a model that redraws, is refused."""
    config, params, ae_config, ae_variables = parts
    start = np.asarray(jnp.round((_picture()[0] + 1.0) * 127.5), np.uint8)
    common = dict(name="matched", config=config, params=params, ae_config=ae_config, ae_variables=ae_variables,
                  keys={"left": "pan left"}, sampler=SamplerConfig(steps=1), start_image=start)
    bundle.save_world(tmp_path / "w", match_picture=True, **common)
    assert json.loads((tmp_path / "w" / "world.json").read_text())["match_picture"] is True
    matched, plain = load_world(tmp_path / "w"), load_world(tmp_path / "w", match_picture=False)
    assert matched.info.match_picture and not plain.info.match_picture
    frames = {}
    for name, world in (("matched", matched), ("plain", plain)):
        _, frames[name] = world.step(world.start(seed=0), ("left",))
    for frame in frames.values():
        np.testing.assert_array_equal(frame[:, STEP_PX:], start[:, :-STEP_PX])
    assert np.abs(frames["matched"][:, :STEP_PX].astype(np.int32) - frames["plain"][:, :STEP_PX]).mean() > 1
    # The matched strip (away from the feathered seam) is nearer the picture's grain than the plain
    # decoding of random weights is.
    inner = STEP_PX - kept_pixels.FEATHER_PX
    grain = lambda x: float(np.mean(np.square(np.asarray(kept_pixels.detail(jnp.asarray(x, jnp.float32)[None] / 127.5 - 1.0))[0, :, :inner])))
    want = float(kept_pixels.picture_statistics(jnp.asarray(start, jnp.float32)[None] / 127.5 - 1.0).detail_B[0])
    assert abs(np.log(grain(frames["matched"]) / want)) < abs(np.log(grain(frames["plain"]) / want))

    keeper = kept_pixels.make_keeper(config, ae_config.downscale, lambda z: autoencoder.decode(ae_variables, z, ae_config),
                                     match_picture=True)
    latent, left = jnp.zeros((1, 8, 8, 8)), jnp.asarray(matched.action(["left"]))[None]
    with pytest.raises(ValueError, match="needs the given picture's statistics"):
        keeper.show(kept_pixels.given(jnp.zeros((1, SIZE, SIZE, 3))), latent, left)  # given without the keeper
    assert keeper.show(kept_pixels.given(jnp.zeros((1, SIZE, SIZE, 3)), keeper), latent, left).picture is not None

    meta = json.loads((tmp_path / "w" / "world.json").read_text())
    meta["match_picture"] = "yes"
    (tmp_path / "w" / "world.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="world.json: match_picture must be true or false"):
        load_world(tmp_path / "w")
    with pytest.raises(ValueError, match="match_picture: .*this one redraws its frames"):
        bundle.save_world(tmp_path / "redraws", match_picture=True, **{**common, "config": config.replace(paint_uncovered_only=False)})


def test_the_seam_between_given_and_painted_pixels_is_feathered_on_the_painted_side():
    """`feathered` blurs only the painted pixels within FEATHER_PX of a given one: given pixels and
    painted ones further in are left exactly; a hard edge between a bright given half and a dark
    painted half comes out with a smaller jump at the seam."""
    half_HW = np.zeros((SIZE, SIZE), bool)
    half_HW[:, SIZE // 2:] = True  # painted
    painted = jnp.asarray(half_HW, jnp.float32)[None, :, :, None]
    frame = jnp.where(painted > 0, -0.8, 0.8) * jnp.ones((1, SIZE, SIZE, 3))
    out = np.asarray(kept_pixels.feathered(frame, painted))[0]
    np.testing.assert_array_equal(out[:, : SIZE // 2], np.asarray(frame)[0, :, : SIZE // 2])
    far = SIZE // 2 + kept_pixels.FEATHER_PX
    np.testing.assert_array_equal(out[:, far:], np.asarray(frame)[0, :, far:])
    seam_jump = lambda x: float(np.abs(x[:, SIZE // 2] - x[:, SIZE // 2 - 1]).mean())
    assert seam_jump(out) < 0.8 * seam_jump(np.asarray(frame)[0])
