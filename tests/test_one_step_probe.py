"""experiments.one_step_probe: per-key scores and the still transitions, on an untrained world."""

from __future__ import annotations

import numpy as np

from experiments.one_step_probe import probe
from wm_jax.world import load_world


def test_probe_groups_transitions_by_key_and_finds_the_still_one(demo_world_dir):
    world = load_world(demo_world_dir)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 4, 64, 64, 3)).astype(np.uint8)  # two full batches: one compile
    frames[0, 3] = frames[0, 2]  # clip 0 ends on a still transition
    actions = np.zeros((4, 4, world.config.action_dim), np.float32)
    actions[1, 3] = actions[3, 3] = world.config.action_space.encode(["w"])
    actions[2, 3] = world.config.action_space.encode(["left"])
    report = probe(world, frames, actions, still=1e-6, batch=2)
    by_keys = report["psnr_by_keys"]
    assert set(by_keys) == {"none", "w", "left"}
    assert by_keys["none"]["transitions"] == 1 and by_keys["w"]["transitions"] == 2
    assert by_keys["none"]["copy_last"] == 100.0  # an exact copy, capped
    assert by_keys["w"]["copy_last"] < 15  # unrelated random frames
    assert report["still_latent_mse"]["transitions"] == 1 and report["still_latent_mse"]["copy_last"] == 0.0
    assert report["still_latent_mse"]["model"] > 0
    swap = report["swap_latent_mse"]
    assert swap["transitions"] == 1 and swap["recorded_keys"] > 0 and swap["swapped_keys"] > 0


def test_swapping_keys_exchanges_only_the_pair_on_the_last_frame():
    from experiments.one_step_probe import swap_keys
    names = ["left", "right", "w"]
    actions = np.array([[[1, 0, 1], [1, 0, 1]]], np.float32)
    np.testing.assert_array_equal(swap_keys(actions, names, ("left", "right")), [[[1, 0, 1], [0, 1, 1]]])
