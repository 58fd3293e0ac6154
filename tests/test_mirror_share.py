"""experiments.mirror_share: how often a pan's uncovered strip is the view's mirror image."""

import numpy as np

from experiments.mirror_share import strip_errors
from wm_jax import configs, model


def _episode(picture, lefts: int):
    """A camera sliding right over `picture` one 8-pixel step a frame (the left key: content moves
    right, so the view's left column enters), as (frames uint8, actions)."""
    config = configs.get_config("tiny", prediction="x0_residual", key_moves=(("left", 0, 2, 0),))
    x0 = picture.shape[1] - 32
    frames = np.stack([picture[:, x0 - 8 * t: x0 - 8 * t + 32] for t in range(lefts + 1)])
    actions = np.zeros((lefts + 1, config.action_dim), np.float32)
    actions[1:, config.action_keys.index("left")] = 1.0
    return frames, actions, model.key_move_table(config)


def test_a_mirrored_scene_scores_zero_and_a_random_one_does_not():
    rng = np.random.default_rng(0)
    view = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    mirrored = np.concatenate([view[:, ::-1], view], axis=1)  # beyond the left edge, the reflection
    frames, actions, moves = _episode(mirrored, lefts=1)
    np.testing.assert_array_equal(strip_errors([(frames, actions)], moves, downscale=4), [0.0])
    frames, actions, moves = _episode(rng.integers(0, 256, (32, 96, 3)).astype(np.uint8), lefts=4)
    errors = strip_errors([(frames, actions)], moves, downscale=4)
    assert len(errors) == 4 and errors.min() > 40  # random pixels: ~85 steps of 255 apart on average
