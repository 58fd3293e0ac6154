"""`wm_jax.warp` against scipy's bilinear resampling, and `ModelConfig.keys_warp` in the model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from wm_jax import configs, warp
from wm_jax import model as wm_model
from conftest import model_apply


SCIPY_MODES = {"edge": "nearest", "mirror": "reflect"}


def _reference(x_HWC, shift, log_scale, fill="edge"):
    """scipy.ndimage.map_coordinates, order 1, the border repeated or reflected: the same map
    written independently."""
    h, w = x_HWC.shape[:2]
    s = np.exp(log_scale)
    rows = (h - 1) / 2 + (np.arange(h) - (h - 1) / 2) / s - shift[0]
    cols = (w - 1) / 2 + (np.arange(w) - (w - 1) / 2) / s - shift[1]
    grid = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([ndimage.map_coordinates(x_HWC[..., c], grid, order=1, mode=SCIPY_MODES[fill]) for c in range(x_HWC.shape[-1])], -1)


@pytest.mark.parametrize("fill", warp.FILLS)
@pytest.mark.parametrize("shift, log_scale", [((0.0, 0.0), 0.0), ((0.0, 2.0), 0.0), ((-1.3, 0.7), 0.0),
                                              ((0.0, 0.0), 0.1), ((0.5, -2.2), -0.3), ((9.0, -20.0), 0.2)])
def test_shift_and_zoom_matches_scipy(shift, log_scale, fill):
    x = np.random.default_rng(0).normal(size=(1, 8, 10, 3)).astype(np.float32)
    out = warp.shift_and_zoom(jnp.asarray(x), jnp.asarray([shift], jnp.float32), jnp.asarray([log_scale], jnp.float32), fill)
    np.testing.assert_allclose(np.asarray(out[0]), _reference(x[0], np.asarray(shift), log_scale, fill), atol=1e-5)


def test_a_mirror_fill_reflects_the_frame_about_its_border():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(1, 6, 6, 2)), jnp.float32)
    right = warp.shift_and_zoom(x, jnp.asarray([[0.0, 2.0]]), jnp.zeros((1,)), "mirror")
    np.testing.assert_allclose(np.asarray(right[:, :, :2]), np.asarray(x[:, :, 1::-1]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(right[:, :, 2:]), np.asarray(x[:, :, :-2]), atol=1e-6)


def test_no_move_is_the_identity_and_a_whole_pixel_shift_moves_the_picture():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 6, 6, 2)), jnp.float32)
    zero = jnp.zeros((2,))
    np.testing.assert_array_equal(np.asarray(warp.shift_and_zoom(x, jnp.zeros((2, 2)), zero)), np.asarray(x))
    right = warp.shift_and_zoom(x, jnp.asarray([[0.0, 1.0], [0.0, 1.0]]), zero)
    np.testing.assert_allclose(np.asarray(right[:, :, 1:]), np.asarray(x[:, :, :-1]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(right[:, :, 0]), np.asarray(x[:, :, 0]), atol=1e-6)  # border repeated


def test_a_silent_head_gives_the_previous_frame_moved_the_way_the_held_key_says():
    """A fresh model's head is silent (adaLN-Zero): its clean-frame guess is the previous frame,
    moved by the held key's move (left: one latent pixel to the right) and unmoved with no key."""
    config = configs.get_config("tiny", prediction="x0_residual", key_moves=(("left", 0, 1, 0),), max_frames=3)
    params = wm_model.init_params(config, jax.random.key(0))
    h, w = config.latent_size
    x = jax.random.normal(jax.random.key(1), (1, 2, h, w, config.in_channels))
    t = jnp.asarray([[0.0, 1.0]])
    none = jnp.zeros((1, 2, config.action_dim))
    left = none.at[:, 1, config.action_keys.index("left")].set(1.0)
    apply = lambda a: model_apply(config)(params, x, t, a)[:, 1]
    np.testing.assert_allclose(np.asarray(apply(left)[:, :, 1:]), np.asarray(x[:, 0, :, :-1]), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(apply(none)), np.asarray(x[:, 0]))


def _uncovered_reference(h, w, shift, log_scale, margin):
    """Pixels whose source position (scipy's convention above) lies outside the frame, grown by
    `margin` with scipy's binary dilation: the same mask written independently."""
    s = np.exp(log_scale)
    rows = (h - 1) / 2 + (np.arange(h) - (h - 1) / 2) / s - shift[0]
    cols = (w - 1) / 2 + (np.arange(w) - (w - 1) / 2) / s - shift[1]
    outside = ((rows < 0) | (rows > h - 1))[:, None] | ((cols < 0) | (cols > w - 1))[None, :]
    if margin:
        outside = ndimage.binary_dilation(outside, np.ones((2 * margin + 1,) * 2, bool))
    return outside.astype(np.float32)


@pytest.mark.parametrize("shift, log_scale, margin", [((0.0, 0.0), 0.0, 1), ((0.0, 2.0), 0.0, 1), ((-2.0, 2.0), 0.0, 1),
                                                      ((0.0, -3.0), 0.0, 0), ((0.0, 0.0), -0.0953, 1),
                                                      ((0.0, 0.0), 0.0953, 1), ((1.0, 0.0), -0.2, 2)])
def test_uncovered_marks_what_the_move_brings_in(shift, log_scale, margin):
    out = warp.uncovered(10, 12, jnp.asarray([shift], jnp.float32), jnp.asarray([log_scale], jnp.float32), margin)
    np.testing.assert_array_equal(np.asarray(out[0, ..., 0]), _uncovered_reference(10, 12, np.asarray(shift), log_scale, margin))


def _behind_reference(h, w, shift, still_HW):
    """Whole-pixel shifts: output pixel (i, j) outside the mask reads (i - down, j - right); it
    is uncovered when that lies beyond the frame or inside the mask (loops, no vector tricks)."""
    inside = lambda i, j: bool(still_HW[i, j])
    out = np.zeros((h, w), np.float32)
    for i in range(h):
        for j in range(w):
            si, sj = i - int(shift[0]), j - int(shift[1])
            if not inside(i, j) and (not (0 <= si < h and 0 <= sj < w) or inside(si, sj)):
                out[i, j] = 1.0
    return out


def _sprite_mask():
    """A box less a corner, and a pixel apart: not a rectangle."""
    mask = warp.region_mask(10, 12, (5, 3, 9, 7))
    mask[5:7, 3:5] = False
    mask[2, 9] = True
    return mask


@pytest.mark.parametrize("still", ["box", "sprite"])
@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.0, 2.0), (0.0, -3.0), (1.0, 2.0), (-2.0, 0.0)])
def test_a_still_mask_stays_and_what_it_hid_is_uncovered(shift, still):
    """A sprite fixed to the screen: where it is the frame before, exactly; elsewhere the plain
    move; uncovered: beyond the frame, and what the sprite's pixels hid as the scene moves past."""
    inside = warp.region_mask(10, 12, (5, 3, 9, 7)) if still == "box" else _sprite_mask()
    x = jnp.asarray(np.random.default_rng(3).normal(size=(1, 10, 12, 2)), jnp.float32)
    shift_B2, zero = jnp.asarray([shift], jnp.float32), jnp.zeros((1,))
    held = np.asarray(warp.shift_and_zoom(x, shift_B2, zero, "mirror", inside))
    plain = np.asarray(warp.shift_and_zoom(x, shift_B2, zero, "mirror"))
    np.testing.assert_array_equal(held[0][inside], np.asarray(x[0])[inside])
    np.testing.assert_array_equal(held[0][~inside], plain[0][~inside])
    out = warp.uncovered(10, 12, shift_B2, zero, margin=0, still_HW=inside)
    np.testing.assert_array_equal(np.asarray(out[0, ..., 0]), _behind_reference(10, 12, shift, inside))


def test_no_region_is_no_mask():
    assert warp.region_mask(10, 12, ()) is None


def test_still_region_is_checked():
    moves = (("left", 0, 2, 0),)
    for region in [(0, 0, 9, 2), (3, 2, 3, 4), (1, 2, 3), (-1, 0, 2, 2)]:
        with pytest.raises(ValueError, match="still_region must be"):
            configs.get_config("tiny", prediction="x0_residual", key_moves=moves, still_region=region)
    with pytest.raises(ValueError, match="still_region must be"):
        configs.get_config("tiny", still_region=(0, 0, 2, 2))  # no key moves: nothing moves anyway


def test_painting_only_the_uncovered_strip_keeps_the_rest_of_the_moved_frame_exactly():
    """With paint_uncovered_only, a trained-looking (random) head changes a held pan's uncovered
    strip (and a margin) only; with no key the frame is the previous one exactly."""
    config = configs.get_config("tiny", prediction="x0_residual", key_moves=(("left", 0, 2, 0),),
                                paint_uncovered_only=True, previous_frame_input=True, max_frames=3)
    params = jax.tree_util.tree_map(lambda p: p + 0.05 * jax.random.normal(jax.random.key(9), p.shape),
                                    wm_model.init_params(config, jax.random.key(0)))
    h, w = config.latent_size
    x = jax.random.normal(jax.random.key(1), (1, 2, h, w, config.in_channels))
    t = jnp.asarray([[0.0, 1.0]])
    none = jnp.zeros((1, 2, config.action_dim))
    left = none.at[:, 1, config.action_keys.index("left")].set(1.0)
    apply = lambda a: model_apply(config)(params, x, t, a)
    held = apply(left)
    np.testing.assert_allclose(np.asarray(held[:, 1, :, 3:]), np.asarray(x[:, 0, :, 1:-2]), atol=1e-5)
    assert float(jnp.abs(held[:, 1, :, :3] - warp.shift_and_zoom(x[:, 0], jnp.asarray([[0.0, 2.0]]), jnp.zeros(1))[:, :, :3]).max()) > 1e-3
    np.testing.assert_array_equal(np.asarray(apply(none)[:, 1]), np.asarray(x[:, 0]))


def test_uncovered_fill_is_checked():
    with pytest.raises(ValueError, match="uncovered_fill must be one of"):
        configs.get_config("tiny", uncovered_fill="wrap")


def test_paint_uncovered_only_needs_key_moves():
    with pytest.raises(ValueError, match="needs key_moves"):
        configs.get_config("tiny", prediction="x0_residual", paint_uncovered_only=True)


def test_key_moves_are_checked():
    with pytest.raises(ValueError, match="x0_residual head adds"):
        configs.get_config("tiny", key_moves=(("left", 0, 1, 0),))
    with pytest.raises(ValueError, match=r"not in action_keys"):
        configs.get_config("tiny", prediction="x0_residual", key_moves=(("jump", 0, 1, 0),))


def test_best_move_finds_a_planted_shift_and_zoom():
    """Smooth random latents moved by a known shift (and zoomed), a quarter of the pairs blocked
    (unmoved, as a camera at an edge): the vote finds the shift, the median the zoom."""
    rng = np.random.default_rng(3)
    coarse = rng.normal(size=(32, 6, 6, 4)).astype(np.float32)
    smooth = np.asarray(jax.image.resize(jnp.asarray(coarse), (32, 16, 16, 4), "cubic"))
    for shift, log_zoom in (((0.0, 2.0), 0.0), ((-1.0, 0.0), 0.1)):
        moved = np.array(warp.shift_and_zoom(jnp.asarray(smooth), jnp.tile(jnp.asarray([shift]), (32, 1)), jnp.full((32,), log_zoom)))
        moved[:8] = smooth[:8]
        found = warp.best_move(smooth, moved, max_shift=3, log_zooms=np.linspace(-0.2, 0.2, 21))
        assert (found["down"], found["right"]) == shift
        assert abs(found["log_zoom"] - log_zoom) < 0.011
        assert found["error"] < 0.5 * found["copy_error"]


def test_a_zoom_out_antialiased_averages_as_pil_does_and_a_zoom_in_is_left_alone():
    """A fine stripe pattern shrunk by 1/1.7: PIL's bilinear reduction (which widens its filter to
    the reduction, as the recorder's camera does) and `antialiased` + bilinear sampling give nearly
    flat grey; bilinear sampling alone aliases (stripes of every contrast). At scale >= 1 the frame
    is returned unchanged."""
    from PIL import Image

    size, scale = 64, 1 / 1.7
    x = np.zeros((size, size, 1), np.float32)
    x[:, ::2] = 1.0  # 1-pixel stripes: what a reduction must average to grey
    log_scale = jnp.asarray([np.log(scale)])
    inside = np.s_[0, 24:40, 24:40, 0]  # well inside the shrunk picture
    zoom = lambda frame: np.asarray(warp.shift_and_zoom(frame, jnp.zeros((1, 2)), log_scale))[inside]
    plain, smoothed = zoom(jnp.asarray(x)[None]), zoom(warp.antialiased(jnp.asarray(x)[None], log_scale))
    pil = np.asarray(Image.fromarray(x[..., 0]).resize((round(size * scale),) * 2, Image.Resampling.BILINEAR), np.float32)
    assert pil[4:-4, 4:-4].std() < 0.1 and smoothed.std() < 0.1 < plain.std()
    assert abs(smoothed.mean() - 0.5) < 0.05
    for s in (1.0, 1.5):
        same = warp.antialiased(jnp.asarray(x)[None], jnp.asarray([np.log(s)]))
        np.testing.assert_allclose(np.asarray(same)[0], x, atol=1e-6)
