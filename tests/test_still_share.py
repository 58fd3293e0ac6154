"""experiments.still_share: the share of no-key transitions and how still they are."""

import numpy as np

from experiments.still_share import summarize, transition_changes


def test_counts_no_key_transitions_and_the_still_ones():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 4, 4, 3)).astype(np.uint8)
    frames[2] = frames[1]  # transition 1 -> 2: still, with no key
    actions = np.zeros((5, 3), np.float32)
    actions[1, 0] = actions[4, 2] = 1.0  # keys on transitions 0 -> 1 and 3 -> 4
    changes, no_key = transition_changes(frames, actions)
    np.testing.assert_array_equal(no_key, [False, True, True, False])
    assert changes[1] == 0.0 and changes[2] > 0.1  # random frames differ by ~1/3 on average
    stats = summarize(changes, no_key)
    assert stats["transitions"] == 4 and stats["no_key_share"] == 0.5
    assert stats["still_share_of_no_key"] == 0.5
    assert stats["mean_change_no_key"] == changes[2] / 2
