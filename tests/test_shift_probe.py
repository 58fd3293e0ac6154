"""experiments.shift_probe: which way a predicted frame moved against the previous one."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np

from experiments.shift_probe import MOVES, guess_last_latent, nearest_moves
from wm_jax import configs, model


def test_nearest_moves_names_the_camera_move_of_each_example():
    reference = jax.random.normal(jax.random.key(0), (5, 16, 16, 4))
    # The camera moving right by one step slides the content left: x_next[p] = x[p + step].
    moved = jnp.stack([jnp.roll(reference[i], (-dy * 2, -dx * 2), axis=(0, 1)) for i, (dx, dy) in enumerate(MOVES.values())])
    assert nearest_moves(reference, moved, step=2) == list(MOVES)
    assert nearest_moves(reference, reference, step=2) == ["still"] * 5


def test_one_step_guess_reads_an_x0_head_as_x0():
    """A fresh x0_residual model (zero head) guesses the previous latent exactly; read as a
    velocity, its output would give noise minus the previous latent instead."""
    config = configs.get_config("tiny", previous_frame_input=True, prediction="x0_residual", max_frames=3)
    world = types.SimpleNamespace(config=config, params=model.init_params(config, jax.random.key(0)))
    h, w = config.latent_size
    latents = jax.random.normal(jax.random.key(1), (2, 3, h, w, config.in_channels))
    noise = jax.random.normal(jax.random.key(2), (2, h, w, config.in_channels))
    guess = guess_last_latent(world, latents, jnp.zeros((2, 3, config.action_dim)), noise)
    np.testing.assert_allclose(np.asarray(guess), np.asarray(latents[:, -2]), atol=1e-5)
