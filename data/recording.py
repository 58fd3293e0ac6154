"""Runs a recorder for N episodes (optionally in worker processes) and writes them with TFDS."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pathlib
from typing import Iterator

import tqdm

from wm_jax.datasets.episode import Episode
from wm_jax.datasets.tfds_builder import write_episodes


def _record_one(job) -> Episode | None:
    recorder, index, seed, steps = job
    return recorder.record(index, seed, steps)


def iter_episodes(recorder, episodes: int, steps: int, seed: int, workers: int = 1) -> Iterator[Episode]:
    """Episodes 0..episodes-1 in order (skipping unusable ones); the same for any `workers`."""
    if episodes < 1 or steps < 1:
        raise ValueError(f"--episodes and --steps must be >= 1, got {episodes} and {steps}")
    jobs = [(recorder, index, seed, steps) for index in range(episodes)]
    if workers <= 1:
        results = map(_record_one, jobs)
        yield from (episode for episode in results if episode is not None)
        return
    # spawn: game engines and TFDS's threads do not survive fork reliably.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from (episode for episode in pool.map(_record_one, jobs) if episode is not None)


def record_dataset(recorder, out_dir: str | pathlib.Path, episodes: int, steps: int, seed: int,
                   workers: int = 1, progress: bool = True) -> pathlib.Path:
    """Records and writes a dataset; returns the TFDS version directory."""
    bar = tqdm.tqdm(total=episodes * steps, unit="frame", desc=f"recording {recorder.source}", disable=not progress)
    try:
        return write_episodes(out_dir, iter_episodes(recorder, episodes, steps, seed, workers),
                              on_episode=lambda episode: bar.update(len(episode.frames)))
    finally:
        bar.close()
