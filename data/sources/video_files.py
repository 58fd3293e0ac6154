"""Ordinary video files (mp4, webm, mkv, mov, avi) decoded with PyAV, one episode per file.

Episode i is the i-th file (sorted by path), its first `steps` frames, cropped to the target
aspect ratio at the centre and resized. Actions come from a JSON-lines sidecar next to the
video, `NAME.actions.jsonl`, one line per frame, `{"keys": ["w", "space"]}`, already aligned
(line t = keys held between frame t-1 and frame t). Without a sidecar every frame gets the
"unknown" action. An unreadable video or a sidecar of the wrong length is skipped with a
warning naming the file; the other files are still recorded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib

import numpy as np
from PIL import Image

from wm_jax.datasets.episode import Episode
from wm_jax import actions as actions_lib

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v")


def sidecar_path(video: pathlib.Path) -> pathlib.Path:
    return video.with_name(video.stem + ".actions.jsonl")


def read_sidecar(path: pathlib.Path, num_frames: int) -> np.ndarray:
    """Actions [num_frames, K] from a sidecar; ValueError naming the file and line if it is wrong."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < num_frames:
        raise ValueError(f"actions sidecar {str(path)!r} has {len(lines)} lines for {num_frames} frames")
    rows = []
    for number, line in enumerate(lines[:num_frames], start=1):
        try:
            rows.append(actions_lib.DEFAULT.encode(json.loads(line)["keys"], strict=True))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"actions sidecar {str(path)!r}, line {number}: {error}") from None
    return np.stack(rows)


def _fit(frame: np.ndarray, resolution: tuple[int, int]) -> np.ndarray:
    height, width = resolution
    image = Image.fromarray(frame)
    crop_w = min(image.width, round(image.height * width / height))
    crop_h = min(image.height, round(image.width * height / width))
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    box = (left, top, left + crop_w, top + crop_h)
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR, box=box))


@dataclasses.dataclass
class VideoRecorder:
    input: str | None = None  # folder of video files (searched recursively)
    resolution: tuple[int, int] = (64, 64)
    source = "video"
    fps: float = 0.0  # taken from each file

    def videos(self) -> list[pathlib.Path]:
        if not self.input:
            raise ValueError("the video source needs --input FOLDER")
        folder = pathlib.Path(self.input)
        if not folder.is_dir():
            raise FileNotFoundError(f"video folder {str(folder)!r} does not exist")
        return sorted(path for path in folder.rglob("*") if path.suffix.lower() in VIDEO_SUFFIXES)

    def record(self, index: int, seed: int, steps: int) -> Episode | None:
        del seed  # a file is what it is
        videos = self.videos()
        if index >= len(videos):
            if index == len(videos):
                log.warning("only %d video files in %s; recorded them all", len(videos), self.input)
            return None
        path = videos[index]
        try:
            frames, fps = self._decode(path, steps)
        except Exception as error:  # PyAV raises its own error tree for broken files
            log.warning("skipping unreadable video %s: %s", path, error)
            return None
        if not frames:
            log.warning("skipping video %s: no frames decoded", path)
            return None
        if sidecar_path(path).exists():
            try:
                actions = read_sidecar(sidecar_path(path), len(frames))
            except ValueError as error:
                log.warning("skipping video %s: %s", path, error)
                return None
        else:
            actions = np.tile(actions_lib.DEFAULT.unknown(), (len(frames), 1))
        return Episode(episode_id=f"video-{path.name}", source=self.source, fps=fps,
                       frames=np.stack(frames), actions=actions)

    def _decode(self, path: pathlib.Path, steps: int) -> tuple[list[np.ndarray], float]:
        import av

        frames = []
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            for frame in container.decode(stream):
                frames.append(_fit(frame.to_ndarray(format="rgb24"), self.resolution))
                if len(frames) == steps:
                    break
        return frames, fps
