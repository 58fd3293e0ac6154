"""The inverse-dynamics model (`wm_jax.inverse_dynamics`): key sets as classes, and an IDM that
learns which key moved the picture which way."""

import jax
import numpy as np

from wm_jax import inverse_dynamics as idm_lib


def test_action_classes():
    acts = np.zeros((6, 4), np.float32)
    acts[[1, 4], 0] = 1  # key 0
    acts[[2, 5], 1] = 1  # key 1
    classes = idm_lib.ActionClasses.fit(acts)
    assert classes.size == 3
    labels = classes.encode(acts)
    assert len(set(labels[[0, 3]])) == 1 and labels[1] == labels[4] and labels[1] != labels[2]
    unseen = np.zeros((1, 4), np.float32); unseen[0, 3] = 1
    assert classes.encode(unseen)[0] == -1


def test_augment_keeps_the_motion_of_a_pair():
    """The same shift, channel order and contrast for both frames: a pair that moved by (0, 2)
    still moved by (0, 2)."""
    from wm_jax import motion

    rng = np.random.default_rng(0)
    prev = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    nxt = np.roll(prev, (0, 2), axis=(1, 2))
    p, n = idm_lib.augment(prev, nxt, np.random.default_rng(1))
    assert not np.allclose(p, prev)
    np.testing.assert_array_equal(motion.phase_shift(p, n), [[0, 2]] * 4)


def test_idm_learns_keys_that_move_the_picture():
    rng = np.random.default_rng(0)
    moves = {0: (0, 0), 1: (0, 2), 2: (0, -2), 3: (2, 0)}
    prev, nxt, labels = [], [], []
    for i in range(256):
        a, k = rng.uniform(0, 255, (32, 32, 3)).astype(np.uint8), i % 4
        prev.append(a)
        nxt.append(np.roll(a, moves[k], axis=(0, 1)))
        labels.append(k)
    prev, nxt, labels = np.stack(prev), np.stack(nxt), np.array(labels)
    idm = idm_lib.train(prev[:192], nxt[:192], labels[:192], 4, rng=jax.random.key(0), steps=120, batch=32, width=8, progress=False)
    assert idm_lib.accuracy(idm, prev[192:], nxt[192:], labels[192:]) > 0.6  # chance is 0.25
