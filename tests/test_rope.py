"""RoPE: rotations that preserve norms and make scores depend on relative position only."""

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import rope


def test_scores_depend_only_on_relative_position():
    q, k = jax.random.normal(jax.random.key(0), (2, 16))
    freqs = rope.lang_frequencies(16)
    score = lambda i, j: float(rope.rotate(q, rope.angles(i, freqs)) @ rope.rotate(k, rope.angles(j, freqs)))
    np.testing.assert_allclose(score(7, 3), score(4, 0), rtol=1e-5)
    np.testing.assert_allclose(score(0, -4), score(4, 0), rtol=1e-5)
    assert abs(score(4, 0) - score(5, 0)) > 1e-3


def test_rotation_preserves_norm_and_leaves_the_tail_alone():
    x = jax.random.normal(jax.random.key(1), (3, 10))
    theta = rope.angles(jnp.arange(3), rope.lang_frequencies(6))  # rotates the first 6 features
    y = rope.rotate(x, theta)
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(y[:, 6:]), np.asarray(x[:, 6:]))
    np.testing.assert_array_equal(np.asarray(y[0]), np.asarray(x[0]))  # position 0 is the identity


def test_interleaved_pairs_rotate_together():
    x = jnp.array([1.0, 0.0, 0.0, 1.0])
    y = rope.rotate(x, jnp.full((4,), jnp.pi / 2))
    np.testing.assert_allclose(np.asarray(y), [0.0, 1.0, -1.0, 0.0], atol=1e-6)


def test_axial_table_rows_then_columns():
    table = rope.axial_angles(3, 4, head_dim=8)
    assert table.shape == (12, 8)
    grid = table.reshape(3, 4, 8)
    np.testing.assert_array_equal(grid[:, 0, :4], grid[:, 3, :4])  # first half: constant along a row
    np.testing.assert_array_equal(grid[0, :, 4:], grid[2, :, 4:])  # second half: constant down a column
