"""Crafter (2D Minecraft-like survival), its 17 actions mapped to keys.

Crafter's own keyboard layout where our vocabulary has the key (w/a/s/d move, space
interact, tab sleep, r place stone, f place furnace, 1-6 craft); 't' (table) and 'p'
(plant) are not in the vocabulary, so they become 'e' and 'q'. noop is no keys.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from wm_jax.datasets.episode import Episode, episode_rng, episode_seed, keys_to_actions
from wm_jax.datasets.hold_policy import HoldPolicy

ACTION_KEYS = {
    "noop": (), "move_left": ("a",), "move_right": ("d",), "move_up": ("w",), "move_down": ("s",),
    "do": ("space",), "sleep": ("tab",), "place_stone": ("r",), "place_table": ("e",),
    "place_furnace": ("f",), "place_plant": ("q",), "make_wood_pickaxe": ("1",), "make_stone_pickaxe": ("2",),
    "make_iron_pickaxe": ("3",), "make_wood_sword": ("4",), "make_stone_sword": ("5",), "make_iron_sword": ("6",),
}


@dataclasses.dataclass
class CrafterRecorder:
    resolution: tuple[int, int] = (64, 64)
    min_hold: int = 2
    max_hold: int = 8
    fps: float = 10.0
    source = "crafter"

    def record(self, index: int, seed: int, steps: int) -> Episode | None:
        import crafter

        names = list(crafter.constants.actions)
        if set(names) != set(ACTION_KEYS):
            raise ValueError(f"this crafter version has actions {names}; update ACTION_KEYS in {__file__}")
        rng = episode_rng(seed, index)
        height, width = self.resolution
        env = crafter.Env(area=(64, 64), size=(width, height), seed=episode_seed(seed, index))
        # Movement and 'do' dominate, as when a person plays; crafting is rare.
        weights = [1.0 if name == "noop" or name.startswith(("move", "do")) else 0.1 for name in names]
        policy = HoldPolicy(range(len(names)), rng, weights, self.min_hold, self.max_hold)
        frames, pressed = [env.reset()], []
        for _ in range(steps - 1):
            action = policy()
            observation, _, done, _ = env.step(action)
            pressed.append(list(ACTION_KEYS[names[action]]))
            frames.append(observation)
            if done:
                break
        pressed.append([])
        return Episode(episode_id=f"crafter-{seed}-{index:05d}", source=self.source, fps=self.fps,
                       frames=np.stack(frames).astype(np.uint8), actions=keys_to_actions(pressed))
