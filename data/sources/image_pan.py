""""Any image" worlds: a camera that pans and zooms over a real photograph.

Keys: left/a, right/d, up/w, down/s move the camera (the picture slides the other way) by
`pan_step` output pixels per frame; e zooms in, q zooms out by `zoom_step` per frame. At zoom
1 the view is an exact pixel crop of the photograph, so pressing 'right' shifts the next frame
left by exactly `pan_step` pixels — the end-to-end alignment test relies on this.

With `script` (a `wm_jax.keyscript` text such as "right*3 left*3"), every episode starts at the
photograph's centre and plays that script instead of random held keys, and episode i uses
photograph i (cycling): the held-out data of `wm eval --pan`, whose moves go out and back.

With `edges="mirror"` the camera never meets an edge: the photograph is tiled with its mirror
images, a canvas without end (and without seams: a mirror tile continues its neighbour), so
every pan moves the picture by exactly `pan_step`; a key that still has no effect (a zoom at its
limit) is recorded as no key. A world whose keys move the picture by a fixed amount
(`ModelConfig.key_moves`) then never trains on a key that did not move it.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from PIL import Image

from wm_jax.datasets import images
from wm_jax.datasets.episode import Episode, episode_rng, keys_to_actions
from wm_jax.datasets.hold_policy import HoldPolicy

log = logging.getLogger(__name__)

_MOVES = {"left": (-1, 0), "a": (-1, 0), "right": (1, 0), "d": (1, 0),
          "up": (0, -1), "w": (0, -1), "down": (0, 1), "s": (0, 1)}
_ZOOMS = {"e": 1, "q": -1}
EDGES = ("clamp", "mirror")


def key_choices(allow_zoom: bool) -> list[tuple[str, ...]]:
    arrows = [("left",), ("right",), ("up",), ("down",), ("up", "left"), ("up", "right"),
              ("down", "left"), ("down", "right")]
    wasd = [("a",), ("d",), ("w",), ("s",), ("w", "a"), ("w", "d"), ("s", "a"), ("s", "d")]
    return arrows + wasd + [()] + ([("e",), ("q",)] if allow_zoom else [])


@dataclasses.dataclass
class ImagePanRecorder:
    input: str | None = None  # folder of photographs; default: scikit-image's bundled samples
    resolution: tuple[int, int] = (64, 64)
    pan_step: int = 4
    zoom_step: float = 1.1
    max_zoom_steps: int = 7  # zoom levels from -7 (wide) to +7 (close)
    allow_zoom: bool = True
    # The photo's short side, in output frames, at zoom 1; two values (low, high): each random
    # episode draws it log-uniformly between them. A start picture shown whole, as a world shows
    # one, is scale 1; the shipped pan's recordings are all at 3 (BUILD_NOTES session 25).
    photo_scale: float | tuple[float, float] = 3.0
    fps: float = 15.0
    script: str | None = None  # fixed keys from the photo's centre instead of the random policy
    still_share: float | None = None  # share of held choices with no key; None: one choice of 17-19
    # Each random episode sees its photograph mirrored and/or turned by a multiple of 90 degrees
    # (one of 8): a dozen photographs become 96 scenes, too many to learn by heart.
    augment: bool = False
    # "clamp": the camera stops at the photograph's edges; "mirror": an endless mirror-tiled canvas.
    edges: str = "clamp"
    source = "image_pan"

    def __post_init__(self):
        if self.edges not in EDGES:
            raise ValueError(f"image_pan edges must be one of {EDGES}, got {self.edges!r}")
        scales = self.photo_scale if isinstance(self.photo_scale, (tuple, list)) else (self.photo_scale,)
        if not 1 <= len(scales) <= 2 or min(scales) < 1 or (len(scales) == 2 and scales[0] > scales[1]):
            raise ValueError(f"image_pan photo_scale is one scale >= 1 or a range (low, high) with 1 <= low <= high, "
                             f"got {self.photo_scale!r}")

    def photographs(self):
        return images.list_images(self.input) if self.input else images.bundled_photographs()

    def _load_some_photo(self, rng: np.random.Generator) -> tuple[str, np.ndarray] | None:
        paths = self.photographs()
        for position in rng.permutation(len(paths)):
            try:
                return str(paths[position]), images.load_rgb(paths[position])
            except ValueError as error:
                log.warning("skipping photograph: %s", error)
        log.warning("no readable photograph among %d files", len(paths))
        return None

    def _prepare(self, photo: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Rescales so the short side is photo_scale frames (a range: drawn with `rng`) and, on a
        photograph with edges, the widest zoom still fits (a mirror canvas has no edges)."""
        needed = self.photo_scale
        if isinstance(needed, (tuple, list)):
            needed = float(np.exp(rng.uniform(np.log(needed[0]), np.log(needed[1]))))
        if self.edges == "clamp" or self.allow_zoom:
            needed = max(needed, self.zoom_step ** self.max_zoom_steps + 0.5)
        return scaled_photo(photo, needed, self.resolution)

    def record(self, index: int, seed: int, steps: int) -> Episode | None:
        rng = episode_rng(seed, index)
        if self.script is not None:
            return self._record_script(index, seed, steps, rng)
        loaded = self._load_some_photo(rng)
        if loaded is None:
            return None
        path, photo = loaded
        if self.augment:
            photo = dihedral(photo, int(rng.integers(8)))
        camera = _Camera(self._prepare(photo, rng), self.resolution, self.zoom_step, self.max_zoom_steps, rng,
                         mirror=self.edges == "mirror")
        policy = HoldPolicy(key_choices(self.allow_zoom), rng, min_hold=4, max_hold=16, still_share=self.still_share)
        frames, pressed = [camera.render()], []
        for _ in range(steps - 1):
            keys = policy()
            moved = camera.apply(keys, self.pan_step)
            if not moved:
                policy.interrupt()  # at the photo's edge: choose another direction
            pressed.append(list(keys) if moved or self.edges == "clamp" else [])
            frames.append(camera.render())
        return self._episode(seed, index, frames, pressed)

    def _record_script(self, index: int, seed: int, steps: int, rng) -> Episode:
        from wm_jax import keyscript

        script = keyscript.parse(self.script)
        if len(script) < steps - 1:
            raise ValueError(f"--script has {len(script)} frames; --steps {steps} needs {steps - 1}")
        paths = self.photographs()
        photo = images.load_rgb(paths[index % len(paths)])
        camera = _Camera(self._prepare(photo, rng), self.resolution, self.zoom_step, self.max_zoom_steps, rng, centre=True,
                         mirror=self.edges == "mirror")
        frames, pressed = [camera.render()], []
        for keys in script[:steps - 1]:
            camera.apply(keys, self.pan_step)
            pressed.append(list(keys))
            frames.append(camera.render())
        return self._episode(seed, index, frames, pressed)

    def _episode(self, seed: int, index: int, frames, pressed) -> Episode:
        pressed = pressed + [[]]  # nothing follows the last frame
        return Episode(episode_id=f"image_pan-{seed}-{index:05d}", source=self.source, fps=self.fps,
                       frames=np.stack(frames), actions=keys_to_actions(pressed))


def scaled_photo(photo_HWC: np.ndarray, frames: float, resolution: tuple[int, int]) -> np.ndarray:
    """The photograph resized (Lanczos) so that its short side spans `frames` output frames."""
    height, width = resolution
    scale = max(frames * height / photo_HWC.shape[0], frames * width / photo_HWC.shape[1])
    size = (max(1, round(photo_HWC.shape[1] * scale)), max(1, round(photo_HWC.shape[0] * scale)))
    return np.asarray(Image.fromarray(photo_HWC).resize(size, Image.Resampling.LANCZOS))


def dihedral(photo_HWC: np.ndarray, which: int) -> np.ndarray:
    """One of the 8 mirror/quarter-turn transforms (0 = unchanged)."""
    turned = np.rot90(photo_HWC, k=which % 4)
    return np.ascontiguousarray(turned[:, ::-1] if which >= 4 else turned)


def _mirror_tile(photo_HWC: np.ndarray) -> np.ndarray:
    """[2H, 2W]: the photograph and its mirror images, one period of a seamless endless tiling."""
    top = np.concatenate([photo_HWC, photo_HWC[:, ::-1]], axis=1)
    return np.concatenate([top, top[::-1]], axis=0)


class _Camera:
    """A window of resolution/zoom photo pixels, its top-left corner at (x, y).

    mirror: the window moves over the photograph tiled with its mirror images; (x, y) is kept
    within one period (twice the photograph), on a canvas of two periods a side so the window
    always fits."""

    def __init__(self, photo: np.ndarray, resolution, zoom_step: float, max_zoom_steps: int, rng, centre: bool = False,
                 mirror: bool = False):
        self.mirror, self.period = mirror, (2 * photo.shape[1], 2 * photo.shape[0])
        self.canvas = np.tile(_mirror_tile(photo), (2, 2, 1)) if mirror else photo
        self.photo, self.image = photo, Image.fromarray(self.canvas)
        self.height, self.width = resolution
        self.zoom_step, self.max_zoom_steps, self.zoom_level = zoom_step, max_zoom_steps, 0
        if centre:
            self.x, self.y = (photo.shape[1] - self.width) // 2, (photo.shape[0] - self.height) // 2
        else:
            self.x = int(rng.integers(0, photo.shape[1] - self.width + 1))
            self.y = int(rng.integers(0, photo.shape[0] - self.height + 1))

    @property
    def zoom(self) -> float:
        return self.zoom_step ** self.zoom_level

    def _window(self) -> tuple[float, float]:
        return self.width / self.zoom, self.height / self.zoom

    def _clamp(self) -> None:
        if self.mirror:
            self.x, self.y = self.x % self.period[0], self.y % self.period[1]
            return
        window_w, window_h = self._window()
        self.x = min(max(self.x, 0), self.photo.shape[1] - window_w)
        self.y = min(max(self.y, 0), self.photo.shape[0] - window_h)

    def apply(self, keys, pan_step: int) -> bool:
        """Moves the camera; returns False if a key had no effect (edge or zoom limit)."""
        before = (self.x, self.y, self.zoom_level)
        dx = sum(_MOVES[key][0] for key in keys if key in _MOVES)
        dy = sum(_MOVES[key][1] for key in keys if key in _MOVES)
        zoom = sum(_ZOOMS[key] for key in keys if key in _ZOOMS)
        if zoom:
            center_x, center_y = self.x + self._window()[0] / 2, self.y + self._window()[1] / 2
            self.zoom_level = int(np.clip(self.zoom_level + zoom, -self.max_zoom_steps, self.max_zoom_steps))
            self.x, self.y = center_x - self._window()[0] / 2, center_y - self._window()[1] / 2
        self.x += dx * pan_step / self.zoom
        self.y += dy * pan_step / self.zoom
        self._clamp()
        moved = (self.x, self.y, self.zoom_level) != before
        return moved or not keys

    def render(self) -> np.ndarray:
        window_w, window_h = self._window()
        if self.zoom_level == 0 and float(self.x).is_integer() and float(self.y).is_integer():
            x, y = int(self.x), int(self.y)
            return self.canvas[y:y + self.height, x:x + self.width].copy()
        box = (self.x, self.y, self.x + window_w, self.y + window_h)
        return np.asarray(self.image.resize((self.width, self.height), Image.Resampling.BILINEAR, box=box))
