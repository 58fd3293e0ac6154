"""experiments.still_region_probe: where a game holds a sprite still while the camera turns."""

from __future__ import annotations

import types

import numpy as np
import pytest

from experiments.still_region_probe import bounding_box, sprite, still_better
from wm_jax import configs

SPRITE = (20, 12, 30, 19)  # (top, left, bottom, right) in pixels of a 32x32 frame: the sprite's box
SHAPE = np.zeros((32, 32), bool)  # the sprite: its box less a corner (a gun's grip is narrower than its hand)
SHAPE[SPRITE[0]:SPRITE[2], SPRITE[1]:SPRITE[3]] = True
SHAPE[20:24, 12:15] = False
HOLE = (26, 15)  # a pixel inside it through which the scene shows


def _turning_store(seed: int):
    """One episode over a wide random scene: left slides the view 8 px right, right 8 px left, a
    sprite painted at SPRITE in every frame (the EpisodeStore interface the probe reads)."""
    rng = np.random.default_rng(seed)
    scene = rng.integers(0, 255, (32, 400, 3)).astype(np.uint8)
    keys = configs.get_config("tiny").action_keys
    frames, actions, x = [], [], 180
    for t in range(60):
        key = "left" if (t // 5) % 2 else "right"
        x += -8 if key == "left" else 8
        frame = scene[:, x:x + 32].copy()
        drawn = SHAPE.copy()
        drawn[HOLE] = False
        frame[drawn] = (200, 40, 40)
        frames.append(frame)
        action = np.zeros(len(keys), np.float32)
        action[keys.index(key)] = 1.0
        actions.append(action)
    episode = (np.stack(frames), np.stack(actions))
    return types.SimpleNamespace(lengths=[60], read_clip=lambda e, s, n: episode, path=f"scene{seed}")


def test_the_probe_finds_the_sprite_a_turn_leaves_in_place():
    """Its pixels, the hole through which the scene shows filled (a still mask outlines the sprite),
    and its box."""
    config = configs.get_config("tiny", prediction="x0_residual", key_moves=(("left", 0, 2, 0), ("right", 0, -2, 0)))
    better = still_better([_turning_store(0), _turning_store(1)], config, downscale=4)
    assert sorted(better) == ["left", "right"]
    common = np.logical_and.reduce(list(better.values()))
    assert not common[HOLE]
    found = sprite(common, border=8)
    np.testing.assert_array_equal(found, SHAPE)
    assert bounding_box(found) == SPRITE


def test_a_scene_without_a_sprite_has_nothing_still():
    with pytest.raises(ValueError, match="nothing is fixed to the screen"):
        sprite(np.zeros((32, 32), bool), border=8)
