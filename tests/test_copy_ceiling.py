"""experiments.copy_ceiling: the predictions a world that keeps its picture is built from, scored
against the real next frame. With a lossless "autoencoder" (pixel_p1) the frame before through it
is copy-last exactly, and a transition that is the keys' move exactly scores the cap when moved."""

import jax.numpy as jnp
import numpy as np

from experiments.copy_ceiling import score
from wm_jax import configs, warp
from wm_jax import world as world_lib


def test_a_lossless_autoencoder_copies_exactly_and_the_keys_move_earns_the_cap():
    config = configs.get_config("tiny", in_channels=3, latent_size=(64, 64), prediction="x0_residual",
                                key_moves=(("left", 0, 2, 0),), paint_uncovered_only=True, uncovered_fill="mirror")
    ae_config, ae_variables = world_lib.load_autoencoder("pixel_p1")
    rng = np.random.default_rng(0)
    before = rng.integers(0, 256, (2, 64, 64, 3)).astype(np.uint8)
    moved = warp.shift_and_zoom(jnp.asarray(before[:1], jnp.float32), jnp.asarray([[0.0, 2.0]]), jnp.zeros((1,)), "mirror")
    after = np.concatenate([np.asarray(moved).astype(np.uint8), before[1:]])  # a left turn, exactly; then a frame that stays
    acts = np.zeros((2, config.action_dim), np.float32)
    acts[0, config.action_keys.index("left")] = 1.0
    scores = score(config, ae_config, ae_variables, before, after, acts)
    assert scores["unchanged_share"] == 0.5
    assert scores["latent_copy"] == scores["copy_last"]  # lossless: the frame before itself
    assert scores["autoencoder"]["psnr"] == 100.0
    assert scores["latent_move"]["psnr"] == 100.0 and scores["latent_move"]["psnr_changed"] == 100.0
    assert scores["copy_last"]["psnr_changed"] < 15  # random pixels moved by 2: copying is far off
