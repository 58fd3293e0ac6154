"""Summary and contact sheet of a recorded dataset (`wm data inspect` / `wm data preview`)."""

from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from wm_jax import actions as actions_lib
from wm_jax.data import EpisodeStore


def summarize(path: str | pathlib.Path) -> dict:
    """Episodes, frames, resolution, frames per key (from the actions themselves), bytes on disk."""
    store = EpisodeStore(path)
    key_counts = np.zeros(actions_lib.NUM_ACTIONS, np.int64)
    no_key_frames = 0
    sources, fps = set(), set()
    for episode in range(len(store)):
        record = store.read_record(episode)
        held_TK = record["actions"] > 0.5
        key_counts += held_TK.sum(axis=0)
        no_key_frames += int((~held_TK.any(axis=1)).sum())
        sources.add(_text(record["source"]))
        fps.add(float(record["fps"]))
    height, width = store.resolution
    return {
        "path": str(store.version_dir),
        "episodes": len(store),
        "frames": int(store.lengths.sum()),
        "episode_length": {"min": int(store.lengths.min()), "max": int(store.lengths.max()),
                           "mean": round(float(store.lengths.mean()), 2)},
        "resolution": [height, width],
        "sources": sorted(sources),
        "fps": sorted(fps),
        "vocab_version": store.metadata["vocab_version"],
        "action_histogram": {key: int(count) for key, count in zip(actions_lib.VOCAB, key_counts) if count},
        # What a world learns "no key" from (issue 15: exploring policies rarely stand still).
        "no_key_frames": no_key_frames,
        "bytes_on_disk": sum(file.stat().st_size for file in store.version_dir.iterdir() if file.is_file()),
    }


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def contact_sheet(path: str | pathlib.Path, clips: int = 4, frames_per_clip: int = 8, seed: int = 0,
                  cell: int = 96) -> Image.Image:
    """Rows of random clips; under each frame, the keys pressed to reach it. Same seed, same picture."""
    store = EpisodeStore(path)
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(store.lengths >= frames_per_clip)
    if not len(candidates):
        raise ValueError(f"{str(store.version_dir)!r}: no episode has {frames_per_clip} frames to preview")
    font = ImageFont.load_default()
    label_height = 14
    sheet = Image.new("RGB", (frames_per_clip * cell, clips * (cell + label_height)), "black")
    draw = ImageDraw.Draw(sheet)
    for row in range(clips):
        episode = int(rng.choice(candidates))
        start = int(rng.integers(0, store.lengths[episode] - frames_per_clip + 1))
        frames, actions = store.read_clip(episode, start, frames_per_clip)
        top = row * (cell + label_height)
        for column, (frame, action) in enumerate(zip(frames, actions)):
            left = column * cell
            sheet.paste(Image.fromarray(frame).resize((cell, cell), Image.Resampling.NEAREST), (left, top))
            keys = actions_lib.DEFAULT.decode(action)
            label = "?" if keys == [actions_lib.UNKNOWN] else ("+".join(keys) or "-")
            draw.text((left + 2, top + cell + 1), label[:cell // 6], fill="white", font=font)
        draw.text((2, top + 1), f"{store.episode_ids[episode]}@{start}"[:frames_per_clip * cell // 6], fill="yellow", font=font)
    return sheet
