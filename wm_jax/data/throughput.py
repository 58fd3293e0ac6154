"""Measures loader throughput: `python -m wm_jax.data.throughput DIR --clip-len 16 --batch-size 8`."""

from __future__ import annotations

import argparse
import time

from wm_jax.data.clips import make_clip_iterator
from wm_jax.data.episode_store import EpisodeStore


def measure(path: str, clip_len: int, batch_size: int, batches: int, workers: int, read_threads: int) -> float:
    """Clips per second after one warm-up batch."""
    resolution = EpisodeStore(path).resolution
    iterator = make_clip_iterator(path, clip_len, batch_size, resolution, seed=0, workers=workers,
                                  read_threads=read_threads)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dir")
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--read-threads", type=int, default=4)
    args = parser.parse_args()
    rate = measure(args.dir, args.clip_len, args.batch_size, args.batches, args.workers, args.read_threads)
    print(f"{rate:.1f} clips/s ({rate * args.clip_len:.0f} frames/s) from {args.dir}")


if __name__ == "__main__":
    main()
