"""experiments.shift_probe: which way a predicted frame moved against the previous one."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from experiments.shift_probe import MOVES, nearest_moves


def test_nearest_moves_names_the_camera_move_of_each_example():
    reference = jax.random.normal(jax.random.key(0), (5, 16, 16, 4))
    # The camera moving right by one step slides the content left: x_next[p] = x[p + step].
    moved = jnp.stack([jnp.roll(reference[i], (-dy * 2, -dx * 2), axis=(0, 1)) for i, (dx, dy) in enumerate(MOVES.values())])
    assert nearest_moves(reference, moved, step=2) == list(MOVES)
    assert nearest_moves(reference, reference, step=2) == ["still"] * 5
