"""The recordable sources: name -> recorder class (a dataclass of its options).

Every recorder has `source` (its name), `fps`, and `record(index, seed, steps) -> Episode | None`
(None: nothing usable for that index, already logged). Episode `index` with `seed` must give
the same episode in any process, so `wm record --workers K` is deterministic for a seed.
"""

from __future__ import annotations

import importlib

_SOURCES = {
    "image_pan": "wm_jax.datasets.sources.image_pan:ImagePanRecorder",
    "doom": "wm_jax.datasets.sources.doom:DoomRecorder",
    "atari": "wm_jax.datasets.sources.atari:AtariRecorder",
    "crafter": "wm_jax.datasets.sources.crafter_env:CrafterRecorder",
    "video": "wm_jax.datasets.sources.video_files:VideoRecorder",
}
NAMES = tuple(_SOURCES)


def recorder_class(name: str):
    if name not in _SOURCES:
        raise KeyError(f"unknown source {name!r}; choose one of {', '.join(NAMES)}")
    module, attribute = _SOURCES[name].split(":")
    return getattr(importlib.import_module(module), attribute)
