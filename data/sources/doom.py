"""ViZDoom with the Freedoom maps from the `vizdoom` wheel, first person, keyboard actions.

Keys (classic keyboard Doom, no mouse): w/s move forward/back, left/right arrows turn,
a/d strafe left/right, ctrl fires, e uses (opens doors, presses switches), shift runs.
The exploring policy mostly walks forward while turning in held bursts, and turns away when
its position stops changing (stuck against a wall), so episodes show sustained motion.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import struct
import tempfile

import numpy as np
from PIL import Image

from wm_jax.datasets.episode import Episode, episode_rng, episode_seed, keys_to_actions
from wm_jax.datasets.hold_policy import HoldPolicy

log = logging.getLogger(__name__)

KEY_TO_BUTTON = {
    "w": "MOVE_FORWARD", "s": "MOVE_BACKWARD",
    "left": "TURN_LEFT", "right": "TURN_RIGHT",
    "a": "MOVE_LEFT", "d": "MOVE_RIGHT",
    "ctrl": "ATTACK", "e": "USE", "shift": "SPEED",
}
BUTTON_KEYS = tuple(KEY_TO_BUTTON)

# (keys held, relative weight): forward-heavy, like a person exploring a level.
EXPLORE_CHOICES = (
    (("w",), 6), (("w", "left"), 3), (("w", "right"), 3), (("left",), 2), (("right",), 2),
    (("w", "shift"), 2), (("a",), 1), (("d",), 1), (("s",), 1), (("w", "ctrl"), 1), (("ctrl",), 1),
    (("e",), 1), ((), 1),
)


def wad_maps(path: str) -> list[str]:
    """Map names in a WAD's lump directory (ViZDoom hangs instead of failing on a missing map)."""
    with open(path, "rb") as wad:
        magic, count, offset = struct.unpack("<4sii", wad.read(12))
        if magic not in (b"IWAD", b"PWAD"):
            raise ValueError(f"{path!r} is not a WAD file")
        wad.seek(offset)
        names = [wad.read(16)[8:].rstrip(b"\0").decode("ascii", "replace") for _ in range(count)]
    return [name for name in names if re.fullmatch(r"MAP\d\d|E\dM\d", name)]


@dataclasses.dataclass
class DoomRecorder:
    map: str = "MAP01"
    wad: str = "freedoom2.wad"  # or freedoom1.wad (maps E1M1...)
    resolution: tuple[int, int] = (64, 64)
    frame_skip: int = 4  # game tics per recorded frame (Doom runs at 35 tics/s)
    min_hold: int = 3
    max_hold: int = 12
    still_share: float | None = None  # share of held choices with no key; None: EXPLORE_CHOICES' 4%
    source = "doom"

    @property
    def fps(self) -> float:
        return 35.0 / self.frame_skip

    def _make_game(self, seed: int):
        import vizdoom as vzd

        wad_path = os.path.join(os.path.dirname(vzd.__file__), self.wad)
        if not os.path.exists(wad_path):
            raise FileNotFoundError(f"WAD {wad_path!r} not found in the vizdoom package")
        maps = wad_maps(wad_path)
        if self.map.upper() not in maps:
            raise ValueError(f"map {self.map!r} is not in {self.wad}; it has {', '.join(maps)}")
        game = vzd.DoomGame()
        game.set_doom_game_path(wad_path)
        game.set_doom_map(self.map.upper())
        game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
        game.set_screen_format(vzd.ScreenFormat.RGB24)
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_render_hud(False)
        game.set_render_weapon(True)
        game.set_mode(vzd.Mode.PLAYER)
        game.set_available_buttons([getattr(vzd.Button, KEY_TO_BUTTON[key]) for key in BUTTON_KEYS])
        game.set_available_game_variables([vzd.GameVariable.POSITION_X, vzd.GameVariable.POSITION_Y])
        game.set_episode_timeout(0)
        game.set_seed(seed)
        game.add_game_args("+vid_forcesurface 1")
        # ViZDoom writes _vizdoom.ini and a _vizdoom/ folder into the working directory; keep
        # them out of the user's tree.
        scratch = tempfile.mkdtemp(prefix="wm_vizdoom_")
        game.set_doom_config_path(os.path.join(scratch, "_vizdoom.ini"))
        previous_directory = os.getcwd()
        try:
            os.chdir(scratch)
            game.init()
        except Exception as error:
            shutil.rmtree(scratch, ignore_errors=True)
            raise ValueError(f"ViZDoom could not start map {self.map!r} of {self.wad!r}: {error}") from error
        finally:
            os.chdir(previous_directory)
        return game, scratch

    def _frame(self, game) -> np.ndarray:
        screen = game.get_state().screen_buffer  # [120, 160, 3]
        height, width = self.resolution
        return np.asarray(Image.fromarray(screen).resize((width, height), Image.Resampling.BILINEAR))

    def record(self, index: int, seed: int, steps: int) -> Episode | None:
        rng = episode_rng(seed, index)
        game, scratch = self._make_game(episode_seed(seed, index))
        try:
            game.new_episode()
            choices, weights = zip(*EXPLORE_CHOICES)
            policy = HoldPolicy(choices, rng, weights, self.min_hold, self.max_hold, self.still_share)
            frames, pressed, stuck_for = [self._frame(game)], [], 0
            position = np.array(game.get_state().game_variables[:2])
            for _ in range(steps - 1):
                keys = policy()
                buttons = [float(key in keys) for key in BUTTON_KEYS]
                game.make_action(buttons, self.frame_skip)
                if game.is_episode_finished():  # died or exited: the episode ends here
                    break
                pressed.append(list(keys))
                frames.append(self._frame(game))
                new_position = np.array(game.get_state().game_variables[:2])
                stuck_for = stuck_for + 1 if "w" in keys and np.abs(new_position - position).sum() < 1.0 else 0
                position = new_position
                if stuck_for >= 3:  # walking into a wall: turn around for a while
                    policy.interrupt()
                    policy.current, policy.remaining = (("left",), ("right",))[int(rng.integers(2))], int(rng.integers(4, 10))
                    stuck_for = 0
        finally:
            game.close()
            shutil.rmtree(scratch, ignore_errors=True)
        pressed.append([])
        return Episode(episode_id=f"doom-{self.map}-{seed}-{index:05d}", source=self.source, fps=self.fps,
                       frames=np.stack(frames), actions=keys_to_actions(pressed))
