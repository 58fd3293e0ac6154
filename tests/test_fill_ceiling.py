"""experiments.fill_ceiling: the start frame carried by the recorded keys with memory, the never-seen
area filled by a fixed rule. A pan out and back shows the start frame exactly; what a pan keeps in
view is the real picture; a still region stays as it was in the start frame."""

import jax.numpy as jnp
import numpy as np
import pytest

from experiments.fill_ceiling import DONOR_FILLS, FILLS, rollout, sibling_clips
from wm_jax import configs, model, warp


@pytest.mark.parametrize("fill", FILLS)
def test_out_and_back_is_exact_and_what_stays_in_view_is_the_picture(fill):
    config = configs.get_config("tiny", prediction="x0_residual", key_moves=(("left", 0, 2, 0), ("right", 0, -2, 0)))
    moves_K2 = jnp.asarray(model.key_move_table(config)[:, :2] * 4)  # latent pixels -> 64x64 frames
    picture = np.random.default_rng(0).uniform(-1, 1, (64, 256, 3)).astype(np.float32)
    keys = [None, "left", "right", "right"]
    camera = np.cumsum([96] + [{"left": -8, "right": 8}[k] for k in keys[1:]])  # the view's left column
    frames = np.stack([picture[:, x:x + 64] for x in camera])[None]
    actions = np.zeros((1, 4, config.action_dim), np.float32)
    for t, key in enumerate(keys):
        if key:
            actions[0, t, config.action_keys.index(key)] = 1.0
    donors = jnp.asarray(np.random.default_rng(4).uniform(-1, 1, frames.shape), jnp.float32) if fill in DONOR_FILLS else None
    out = np.asarray(rollout(jnp.asarray(frames), jnp.asarray(actions), moves_K2, margin=32, fill=fill, donors_BTHWC=donors))
    np.testing.assert_array_equal(out[0, 1, :, 8:], frames[0, 1, :, 8:])  # moved, kept exactly
    assert not np.array_equal(out[0, 1, :, :8], frames[0, 1, :, :8])  # never seen: the fill
    np.testing.assert_array_equal(out[0, 2], frames[0, 2])  # back where it started: recalled
    np.testing.assert_array_equal(out[0, 3, :, :56], frames[0, 3, :, :56])


def test_a_still_region_stays_as_the_start_frame_drew_it():
    config = configs.get_config("tiny", prediction="x0_residual", key_moves=(("left", 0, 2, 0),))
    moves_K2 = jnp.asarray(model.key_move_table(config)[:, :2] * 4)
    frames = np.random.default_rng(1).uniform(-1, 1, (1, 3, 64, 64, 3)).astype(np.float32)
    actions = np.zeros((1, 3, config.action_dim), np.float32)
    actions[0, 1:, config.action_keys.index("left")] = 1.0
    region = (40, 24, 64, 40)  # a weapon at the bottom centre, in pixels
    out = np.asarray(rollout(jnp.asarray(frames), jnp.asarray(actions), moves_K2, 32, "mirror", warp.region_mask(64, 64, region)))
    np.testing.assert_array_equal(out[0, 2, 40:, 24:40], frames[0, 0, 40:, 24:40])
    np.testing.assert_array_equal(out[0, 1, :40, 8:], frames[0, 0, :40, :56])  # the scene above it moved


def test_a_walking_key_zooms_the_frame_before_and_forgets_the_canvas():
    """--walk-zoom: w zooms in about the centre (the frame before resampled, mirror beyond it), and a
    zoom forgets what the canvas remembered, so a turn back after it is filled, not recalled."""
    config = configs.get_config("tiny", prediction="x0_residual", key_moves=(("left", 0, 2, 0), ("right", 0, -2, 0)))
    moves_K2 = jnp.asarray(model.key_move_table(config)[:, :2] * 4)
    zooms_K = np.zeros(config.action_dim, np.float32)
    zooms_K[config.action_keys.index("w")] = 0.05
    frames = np.random.default_rng(2).uniform(-1, 1, (1, 4, 64, 64, 3)).astype(np.float32)
    actions = np.zeros((1, 4, config.action_dim), np.float32)
    for t, key in ((1, "left"), (2, "w"), (3, "right")):
        actions[0, t, config.action_keys.index(key)] = 1.0
    out = np.asarray(rollout(jnp.asarray(frames), jnp.asarray(actions), moves_K2, 32, "mirror", zooms_K=zooms_K))
    zoomed = warp.shift_and_zoom(jnp.asarray(out[:, 1]), jnp.zeros((1, 2)), jnp.asarray([0.05]), "mirror")
    np.testing.assert_allclose(out[0, 2], np.asarray(zoomed)[0], atol=1e-6)
    back = warp.shift_and_zoom(jnp.asarray(out[:, 2]), jnp.asarray([[0.0, -8.0]]), jnp.zeros((1,)), "mirror")
    np.testing.assert_allclose(out[0, 3], np.asarray(back)[0], atol=1e-6)  # the mirror fill, nothing recalled
    without = np.asarray(rollout(jnp.asarray(frames), jnp.asarray(actions), moves_K2, 32, "mirror"))
    np.testing.assert_array_equal(without[0, 2], without[0, 1])  # no walk zoom: w does nothing


def test_first_move_scales_a_key_s_first_frame_only():
    """--first-move F: a move key's first frame after a frame without one moves F x its move (Doom
    turns 7.03 degrees on a turn's first frame, 14.06 once the key is held); held on, the full move."""
    config = configs.get_config("tiny", prediction="x0_residual", key_moves=(("left", 0, 2, 0),))
    moves_K2 = jnp.asarray(model.key_move_table(config)[:, :2] * 4)
    frames = np.random.default_rng(3).uniform(-1, 1, (1, 3, 64, 64, 3)).astype(np.float32)
    actions = np.zeros((1, 3, config.action_dim), np.float32)
    actions[0, 1:, config.action_keys.index("left")] = 1.0
    out = np.asarray(rollout(jnp.asarray(frames), jnp.asarray(actions), moves_K2, 32, "mirror", first_move=0.5))
    np.testing.assert_array_equal(out[0, 1, :, 4:], frames[0, 0, :, :60])  # half of 8 pixels
    np.testing.assert_array_equal(out[0, 2, :, 12:], frames[0, 0, :, :52])  # then the whole 8


def test_quilt_continues_a_repeating_picture_exactly_and_never_copies_a_still_sprite():
    """The quilt fill copies the columns that follow the best match of the columns beside the strip:
    on a picture that repeats every 16 columns that is the picture's own continuation, in either
    direction; sources holding a still sprite are skipped."""
    from experiments.fill_ceiling import quilted

    tile = np.random.default_rng(1).uniform(-1, 1, (32, 16, 3)).astype(np.float32)
    picture = np.concatenate([tile] * 6, axis=1)  # 96 columns
    view, truth_right, truth_left = picture[:, 16:64], picture[:, 24:72], picture[:, 8:56]
    for shift, truth in ((-8, truth_right), (8, truth_left)):  # the picture moves left: a strip on the right
        moved = np.asarray(warp.shift_and_zoom(jnp.asarray(view)[None], jnp.asarray([[0.0, shift]]), jnp.zeros(1), "mirror"))
        np.testing.assert_allclose(np.asarray(quilted(moved, np.asarray([[0.0, shift]])))[0], truth, atol=1e-6)
    # On a picture that does not repeat, the columns it copied, then with them under a sprite.
    noise = np.random.default_rng(2).uniform(-1, 1, (1, 32, 48, 3)).astype(np.float32)
    moved = np.asarray(warp.shift_and_zoom(jnp.asarray(noise), jnp.asarray([[0.0, -8.0]]), jnp.zeros(1), "mirror"))

    def source(filled):
        return next(c for c in range(40 - 8 + 1) if np.array_equal(filled[:, 40:], moved[0, :, c:c + 8]))

    free = np.asarray(quilted(moved, np.asarray([[0.0, -8.0]])))[0]
    np.testing.assert_array_equal(free[:, :40], moved[0, :, :40])  # only the strip is filled
    still = np.zeros((32, 48), bool)
    still[:, source(free):source(free) + 8] = True
    avoiding = np.asarray(quilted(moved, np.asarray([[0.0, -8.0]]), still))[0]
    assert not still[:, source(avoiding):source(avoiding) + 8].any()


def test_elsewhere_fills_what_was_never_seen_with_the_sibling_clip_s_frame_at_the_same_horizon():
    """The elsewhere fill: where the view never was, the donor frame (the next clip of the same
    episode at the same horizon, `sibling_clips`); what was seen is kept as with every fill."""
    config = configs.get_config("tiny", prediction="x0_residual", key_moves=(("left", 0, 2, 0),))
    moves_K2 = jnp.asarray(model.key_move_table(config)[:, :2] * 4)
    rng = np.random.default_rng(5)
    frames, donors = (rng.uniform(-1, 1, (1, 3, 64, 64, 3)).astype(np.float32) for _ in range(2))
    actions = np.zeros((1, 3, config.action_dim), np.float32)
    actions[0, 1:, config.action_keys.index("left")] = 1.0
    out = np.asarray(rollout(jnp.asarray(frames), jnp.asarray(actions), moves_K2, 32, "elsewhere", donors_BTHWC=jnp.asarray(donors)))
    np.testing.assert_array_equal(out[0, 2, :, :8], donors[0, 2, :, :8])  # the strip this move uncovers
    np.testing.assert_array_equal(out[0, 2, :, 8:16], donors[0, 1, :, :8])  # the last move's, carried on
    np.testing.assert_array_equal(out[0, 2, :, 16:], frames[0, 0, :, :48])
    truth = np.asarray(rollout(jnp.asarray(frames), jnp.asarray(actions), moves_K2, 32, "truth", donors_BTHWC=jnp.asarray(frames)))
    np.testing.assert_array_equal(truth[0, 2, :, :8], frames[0, 2, :, :8])  # the oracle paints the real frame
    with pytest.raises(ValueError, match="donor"):
        rollout(jnp.asarray(frames), jnp.asarray(actions), moves_K2, 32, "mirror", donors_BTHWC=jnp.asarray(donors))


def test_sibling_clips_pairs_each_clip_with_the_next_of_its_own_episode():
    # episodes of 40, 25 and 30 frames, clips of 10 every 10: 4, 2 and 3 clips
    np.testing.assert_array_equal(sibling_clips([40, 25, 30], 10, 10), [1, 2, 3, 0, 5, 4, 7, 8, 6])
    with pytest.raises(ValueError, match="episode 1 gives one clip"):
        sibling_clips([40, 10, 60], 10, 10)
