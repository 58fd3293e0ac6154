"""Inverse dynamics and phase correlation: recover known motion and known keys."""

import jax
import numpy as np
import pytest

from wm_jax import controllability as ctl


def _textured(rng, size=32):
    img = rng.uniform(0, 255, (size, size, 3))
    return img.astype(np.uint8)


def test_phase_shift_recovers_a_known_translation():
    rng = np.random.default_rng(0)
    a = _textured(rng)
    b = np.roll(a, shift=(3, -2), axis=(0, 1))
    np.testing.assert_array_equal(ctl.phase_shift(a[None], b[None])[0], [3, -2])


def test_action_classes_and_direction_table():
    acts = np.zeros((6, 4), np.float32)
    acts[[1, 4], 0] = 1  # key 0
    acts[[2, 5], 1] = 1  # key 1
    classes = ctl.ActionClasses.fit(acts)
    assert classes.size == 3
    labels = classes.encode(acts)
    assert len(set(labels[[0, 3]])) == 1 and labels[1] == labels[4] and labels[1] != labels[2]
    unseen = np.zeros((1, 4), np.float32); unseen[0, 3] = 1
    assert classes.encode(unseen)[0] == -1
    shifts = np.array([[0, 0], [0, 2], [0, -2], [0, 0], [0, 3], [1, -1]])
    table = ctl.DirectionTable.fit(shifts, labels)
    assert table.accuracy(shifts, labels) == pytest.approx(5 / 6)  # the last pair moved diagonally


def test_idm_learns_keys_that_move_the_picture():
    rng = np.random.default_rng(0)
    moves = {0: (0, 0), 1: (0, 2), 2: (0, -2), 3: (2, 0)}
    prev, nxt, labels = [], [], []
    for i in range(256):
        a, k = _textured(rng), i % 4
        prev.append(a)
        nxt.append(np.roll(a, moves[k], axis=(0, 1)))
        labels.append(k)
    prev, nxt, labels = np.stack(prev), np.stack(nxt), np.array(labels)
    idm = ctl.train(prev[:192], nxt[:192], labels[:192], 4, rng=jax.random.key(0), steps=120, batch=32, width=8, progress=False)
    assert ctl.accuracy(idm, prev[192:], nxt[192:], labels[192:]) > 0.6  # chance is 0.25


def test_split_episodes():
    assert ctl.split_episodes(8) == ([0, 1, 2, 3, 4, 5], [6, 7])
    with pytest.raises(ValueError):
        ctl.split_episodes(1)
