"""A world that remembers (`SamplerConfig.memory`, `wm_jax.memory`): what a pan carried out of view
comes back as it was, in the rollout's latents and in the pixels shown, and only what was never
seen is painted. The canvas is checked against a loop written here; the world against itself
without memory (where the same keys bring back a repainted strip).

The autoencoder is a lossy one with random weights (`tiny_f4c8`: 32x32 frames, 8x8x8 latents), so
a decoded strip and the pixels it replaced differ everywhere.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import randomize

from wm_jax import autoencoder, images, memory, rollout, warp
from wm_jax import model as wm_model
from wm_jax.bundle import WorldInfo
from wm_jax.diffusion import SamplerConfig
from wm_jax.world import World

SIZE = 32


def moved_reference(content_HWC, known_HW1, down: int, right: int, forget: bool, wraps: bool = False):
    """The canvas carried by (down, right) pixels, one pixel at a time (its columns a circle where wraps)."""
    height, width = known_HW1.shape[:2]
    content, known = np.zeros_like(content_HWC), np.zeros_like(known_HW1)
    for y in range(height):
        for x in range(width):
            source_y, source_x = y - down, (x - right) % width if wraps else x - right
            if 0 <= source_y < height and 0 <= source_x < width:
                content[y, x] = content_HWC[source_y, source_x]
                known[y, x] = 0.0 if forget else known_HW1[source_y, source_x]
    return content, known


@pytest.mark.parametrize("wraps", [False, True])
def test_the_canvas_carries_whole_pixels_and_forgets_what_falls_off_and_what_a_zoom_moves(wraps):
    rng = np.random.default_rng(0)
    view = rng.normal(size=(3, 4, 5, 2)).astype(np.float32)
    canvas = memory.start(jnp.asarray(view), margin=3, still_hw=warp.region_mask(4, 5, (2, 1, 4, 3)), wraps=wraps)
    known = np.asarray(canvas.known_BHW1)
    assert known.shape == (3, 10, 11, 1) and known.sum() == 3 * (4 * 5 - 2 * 2)  # the view but its still region
    np.testing.assert_array_equal(np.asarray(canvas.view(4, 5)[0])[:, :2], view[:, :2])
    shifts = np.array([[1, -2], [-3, 4], [2, 2]], np.float32)
    forget = np.array([False, False, True])
    carried = memory.moved(canvas, jnp.asarray(shifts), jnp.asarray(forget))
    for b in range(3):
        content, known = moved_reference(np.asarray(canvas.content_BHWC[b]), np.asarray(canvas.known_BHW1[b]),
                                         *shifts[b].astype(int), forget[b], wraps)
        np.testing.assert_array_equal(np.asarray(carried.known_BHW1[b]), known)
        np.testing.assert_array_equal(np.asarray(carried.content_BHWC[b]) * known, content * known)


def test_only_what_a_move_uncovered_and_the_canvas_has_seen_is_recalled_and_a_still_mask_is_never_written():
    canvas = memory.Canvas(jnp.full((1, 6, 6, 1), 7.0), jnp.zeros((1, 6, 6, 1)).at[:, 1:3, 1:5].set(1.0), margin=1)
    view = jnp.zeros((1, 4, 4, 1))
    uncovered = jnp.zeros((1, 4, 4, 1)).at[:, :, :2].set(1.0)
    recalled = np.asarray(memory.recalled(canvas, view, uncovered))[0, ..., 0]
    expected = np.zeros((4, 4))
    expected[:2, :2] = 7.0  # uncovered and seen; below it uncovered but never seen, to its right seen but kept
    np.testing.assert_array_equal(recalled, expected)
    written = memory.remembered(canvas, jnp.ones((1, 4, 4, 1)), still_hw=warp.region_mask(4, 4, (2, 0, 3, 1)))
    assert float(written.content_BHWC[0, 3, 1, 0]) == 7.0 and float(written.known_BHW1[0, 3, 1, 0]) == 0.0  # the box: as it was
    assert float(written.content_BHWC[0, 1, 2, 0]) == 1.0 and float(written.known_BHW1[0, 4, 4, 0]) == 1.0


@pytest.fixture(scope="module")
def parts(tiny_config):
    config = tiny_config.replace(
        in_channels=8, latent_size=(8, 8), prediction="x0_residual", window=3,
        key_moves=(("left", 0, 2, 0), ("right", 0, -2, 0)), paint_uncovered_only=True, uncovered_fill="mirror")
    params = randomize(wm_model.init_params(config, jax.random.key(0)), jax.random.key(1))
    ae_config = autoencoder.get_config("tiny_f4c8")
    return config, params, ae_config, autoencoder.init(ae_config, jax.random.key(2))


def _world(parts, remember: int, wraps: bool = False) -> World:
    config, params, ae_config, ae_variables = parts
    info = WorldInfo(name="memory", keys=(("left", "pan left"), ("right", "pan right")),
                     sampler=SamplerConfig(steps=1, memory=remember, memory_wraps=wraps))
    return World(info, config, params, ae_config, ae_variables, images.default_scene(SIZE, SIZE))


def _play(world: World, keys):
    state, frames = world.start(seed=0), []
    for pressed in keys:
        state, frame = world.step(state, pressed)
        frames.append(frame.astype(np.int32))
    return state, frames


def test_a_pan_out_and_back_shows_the_start_image_again_and_the_strip_it_painted(parts):
    """Left twice paints two strips; right twice brings the start image back; left twice again
    brings back the strip painted the first time, in the pixels shown and in the latents. (Only
    the strip that left the view is shown as it was last seen: the model repaints a one-latent-pixel
    margin beside each new strip, so what stayed in view is decoded again and changes a little.)"""
    keys = [("left",)] * 2 + [("right",)] * 2 + [("left",)] * 2
    remembering = _world(parts, remember=4)
    state, frames = _play(remembering, keys)
    np.testing.assert_array_equal(frames[3], remembering.start_image)
    np.testing.assert_array_equal(frames[5][:, :8], frames[1][:, :8])  # last seen in frame 1
    first, _ = _play(remembering, keys[:2])
    np.testing.assert_array_equal(np.asarray(state.rollout.cache.previous_Bhwc)[:, :, :2],
                                  np.asarray(first.rollout.cache.previous_Bhwc)[:, :, :2])

    _, forgetting = _play(_world(parts, remember=0), keys)
    assert np.abs(forgetting[3] - remembering.start_image).mean() > 1  # without memory the start image is repainted
    assert not np.array_equal(forgetting[5], forgetting[1])


def test_a_world_whose_memory_wraps_comes_back_to_its_start_image_after_a_whole_turn(parts):
    """A view 8 latent pixels wide and 4 remembered beyond each edge, in a circle: 16 latent pixels
    all round, 8 turns of 2. Each turn paints a strip until the circle has been seen; the eighth shows
    the start image exactly, either way round, and the turns after it show what the first ones did
    (the strips painted then decoded again beside latents the model has since touched up: within 2 of
    255; painted anew they differ by ~100). The same memory without the circle paints the start
    image's columns again."""
    wrapping = _world(parts, remember=4, wraps=True)
    _, frames = _play(wrapping, [("left",)] * 16)
    np.testing.assert_array_equal(frames[7], wrapping.start_image)
    for turn in range(8):
        assert np.abs(frames[turn + 8] - frames[turn]).mean() < 2
    assert not np.array_equal(frames[6], wrapping.start_image)  # a partial turn is not the start
    _, frames = _play(wrapping, [("right",)] * 8)
    np.testing.assert_array_equal(frames[7], wrapping.start_image)

    _, flat = _play(_world(parts, remember=4), [("left",)] * 8)
    assert np.abs(flat[7] - wrapping.start_image).mean() > 1


def test_memory_is_refused_where_it_cannot_carry_the_picture(parts):
    config, params, *_ = parts
    context = jnp.zeros((1, 1, 8, 8, 8))
    with pytest.raises(ValueError, match="sampler memory is a number of latent pixels >= 0"):
        SamplerConfig(memory=-1)
    with pytest.raises(ValueError, match="memory_wraps .* needs memory > 0"):
        SamplerConfig(memory_wraps=True)
    with pytest.raises(ValueError, match="paints only what a move uncovers"):
        rollout.init_state(config.replace(paint_uncovered_only=False), params, context, rng=jax.random.key(0),
                           sampler=SamplerConfig(memory=4))
    with pytest.raises(ValueError, match="paints only what a move uncovers"):
        _world((config.replace(paint_uncovered_only=False), *parts[1:]), remember=4)  # refused when loaded
    with pytest.raises(ValueError, match="whole latent pixels"):
        rollout.make_step(config.replace(key_moves=(("left", 0, 0.5, 0),)), SamplerConfig(memory=4))
