"""One recorded episode, as every recorder returns it."""

from __future__ import annotations

import dataclasses

import numpy as np

from wm_jax import actions as actions_lib


@dataclasses.dataclass
class Episode:
    """frames: uint8 [T, H, W, 3]; actions: float32 [T, K], aligned (actions[t] led to frames[t])."""

    episode_id: str
    source: str
    fps: float
    frames: np.ndarray
    actions: np.ndarray

    def __post_init__(self):
        if self.frames.dtype != np.uint8 or self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise ValueError(f"episode {self.episode_id!r}: frames must be uint8 [T,H,W,3], got "
                             f"{self.frames.dtype} {self.frames.shape}")
        actions_lib.DEFAULT.check(self.actions, what=f"actions of episode {self.episode_id!r}")
        if len(self.actions) != len(self.frames):
            raise ValueError(f"episode {self.episode_id!r}: {len(self.frames)} frames but "
                             f"{len(self.actions)} actions")


def episode_rng(seed: int, index: int) -> np.random.Generator:
    """Independent random stream per episode, so results do not depend on the worker count."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def episode_seed(seed: int, index: int) -> int:
    """A 31-bit integer seed for engines that take one (ViZDoom, ALE, Crafter)."""
    return int(np.random.SeedSequence([seed, index, 1]).generate_state(1)[0] & 0x7FFFFFFF)


def keys_to_actions(pressed_after_each_frame: list[list[str]]) -> np.ndarray:
    """Aligned [T, K] actions from the keys a recorder pressed after observing each frame."""
    between = np.stack([actions_lib.DEFAULT.encode(keys, strict=True) for keys in pressed_after_each_frame])
    return actions_lib.align(between)
