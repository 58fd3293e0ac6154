"""Any Atari 2600 game through the Arcade Learning Environment (ROMs ship in `ale-py`).

Keys: the joystick directions are the arrow keys and the fire button is space, so ALE's
UPLEFTFIRE is {up, left, space}. The policy holds a random action from the game's minimal
action set for several frames.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from wm_jax.datasets.episode import Episode, episode_rng, episode_seed, keys_to_actions
from wm_jax.datasets.hold_policy import HoldPolicy

_PARTS = (("UP", "up"), ("DOWN", "down"), ("LEFT", "left"), ("RIGHT", "right"), ("FIRE", "space"))


def keys_for_action(name: str) -> tuple[str, ...]:
    """ALE action name (e.g. 'UPLEFTFIRE') -> our key names (('up', 'left', 'space'))."""
    return tuple(key for part, key in _PARTS if part in name)


@dataclasses.dataclass
class AtariRecorder:
    game: str = "pong"
    resolution: tuple[int, int] = (64, 64)
    frame_skip: int = 4  # emulator frames per recorded frame (the ALE runs at 60 frames/s)
    min_hold: int = 3
    max_hold: int = 12
    source = "atari"

    @property
    def fps(self) -> float:
        return 60.0 / self.frame_skip

    def _make_ale(self, seed: int):
        import ale_py
        from ale_py import roms

        try:
            rom = roms.get_rom_path(self.game)
        except Exception:
            rom = None
        if rom is None:
            raise ValueError(f"unknown Atari game {self.game!r}; some: {', '.join(roms.get_all_rom_ids()[:12])}, ...")
        ale = ale_py.ALEInterface()
        ale.setLoggerMode(ale_py.LoggerMode.Error)
        ale.setInt("random_seed", seed)
        ale.setInt("frame_skip", 1)
        ale.loadROM(str(rom))
        return ale

    def _frame(self, ale) -> np.ndarray:
        height, width = self.resolution
        return np.asarray(Image.fromarray(ale.getScreenRGB()).resize((width, height), Image.Resampling.BILINEAR))

    def record(self, index: int, seed: int, steps: int) -> Episode | None:
        rng = episode_rng(seed, index)
        ale = self._make_ale(episode_seed(seed, index))
        actions = list(ale.getMinimalActionSet())
        policy = HoldPolicy(actions, rng, min_hold=self.min_hold, max_hold=self.max_hold)
        frames, pressed = [self._frame(ale)], []
        for _ in range(steps - 1):
            action = policy()
            for _ in range(self.frame_skip):
                ale.act(action)
            if ale.game_over():
                break
            pressed.append(list(keys_for_action(action.name)))
            frames.append(self._frame(ale))
        pressed.append([])
        return Episode(episode_id=f"atari-{self.game}-{seed}-{index:05d}", source=self.source, fps=self.fps,
                       frames=np.stack(frames), actions=keys_to_actions(pressed))
