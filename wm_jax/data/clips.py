"""Grain pipeline: random clips of T consecutive frames, with their actions, in batches.

    it = make_clip_iterator({"recordings/doom": 3.0, "recordings/video": 1.0},
                            clip_len=16, batch_size=8, resolution=(64, 64), seed=0)
    batch = next(it)
    batch["frames"]:  uint8   [B, T, H, W, 3]   (the model maps it to its own float range)
    batch["actions"]: float32 [B, T, K]         (K = wm_jax.actions.NUM_ACTIONS)

Nothing else is yielded. A training checkpoint stores `it.get_state()`; a resumed run calls
`it.set_state(state)` on a freshly made iterator and sees exactly the batches it would have
seen (the pipeline is a Grain `MapDataset`, so its state is just a position).

Order of operations, and why:
  per dataset: all clip starts -> global shuffle (reshuffled every epoch) -> repeat forever
  -> read + decode only the T frames of the clip;
  then: weighted mix of datasets -> this JAX process's shard (every n-th element) -> crop to
  the target aspect + resize (random crop position per clip, same for all its frames) ->
  recolour a share of the clips (`recolour`; off by default) -> batch.
"""

from __future__ import annotations

import logging
import pathlib
from typing import Mapping, Sequence

import grain
import jax
import numpy as np
from PIL import Image

from wm_jax.data.episode_store import EpisodeStore

log = logging.getLogger(__name__)

DirsAndWeights = Mapping[str, float] | Sequence[tuple[str, float]]


class ClipIndex:
    """Maps a flat clip number to (episode, start frame) over the episodes long enough for T."""

    def __init__(self, store: EpisodeStore, clip_len: int, stride: int = 1):
        if clip_len < 1 or stride < 1:
            raise ValueError(f"clip_len and stride must be >= 1, got {clip_len} and {stride}")
        too_short = np.flatnonzero(store.lengths < clip_len)
        for episode in too_short:
            log.warning("skipping episode %r of %s: %d frames, shorter than a clip of %d",
                        store.episode_ids[episode], store.version_dir, store.lengths[episode], clip_len)
        self.episodes = np.flatnonzero(store.lengths >= clip_len)
        clips_per_episode = (store.lengths[self.episodes] - clip_len) // stride + 1
        self.first_clip = np.concatenate([[0], np.cumsum(clips_per_episode)])
        self.stride = stride
        if len(self) == 0:
            raise ValueError(f"{store.version_dir}: no episode has at least {clip_len} frames "
                             f"(longest: {int(store.lengths.max(initial=0))})")

    def __len__(self) -> int:
        return int(self.first_clip[-1])

    def locate(self, clip: int) -> tuple[int, int]:
        position = int(np.searchsorted(self.first_clip, clip, side="right")) - 1
        return int(self.episodes[position]), int(clip - self.first_clip[position]) * self.stride


class ReadClip:
    """Clip number -> {"frames": uint8 [T, H, W, 3], "actions": float32 [T, K]}."""

    def __init__(self, store: EpisodeStore, index: ClipIndex, clip_len: int):
        self.store, self.index, self.clip_len = store, index, clip_len

    def __call__(self, clip: int) -> dict[str, np.ndarray]:
        episode, start = self.index.locate(clip)
        frames, actions = self.store.read_clip(episode, start, self.clip_len)
        return {"frames": frames, "actions": actions}


class CropResize:
    """Crops every frame of a clip to the target aspect ratio, then resizes to (H, W).

    The crop window is drawn once per clip so motion stays coherent across its frames.
    """

    def __init__(self, resolution: tuple[int, int], random_crop: bool):
        self.height, self.width = resolution
        self.random_crop = random_crop

    def __call__(self, clip: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        frames_THWC = clip["frames"]
        _, height, width, _ = frames_THWC.shape
        if (height, width) == (self.height, self.width):
            return clip
        # Largest window of the target aspect ratio that fits in the frame.
        crop_h = min(height, round(width * self.height / self.width))
        crop_w = min(width, round(height * self.width / self.height))
        if self.random_crop:
            top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
        else:
            top, left = (height - crop_h) // 2, (width - crop_w) // 2
        window = frames_THWC[:, top:top + crop_h, left:left + crop_w]
        if (crop_h, crop_w) != (self.height, self.width):
            window = np.stack([
                np.asarray(Image.fromarray(frame).resize((self.width, self.height), Image.Resampling.BILINEAR))
                for frame in window
            ])
        return {"frames": np.ascontiguousarray(window), "actions": clip["actions"]}


class Recolour:
    """Gives a share of the clips other colours: the colour channels in a random order, each scaled
    by a random gain in [1 - gain_range, 1 + gain_range]; one draw per clip, so all its frames agree.

    A world trained on a few maps learns their palette as well as their motion: a model asked what
    a turn uncovers then paints the training maps' colours whatever the view shows. In recoloured
    clips the palette cannot be learnt, only read from the frames before.
    """

    def __init__(self, share: float, gain_range: float = 0.3):
        if not 0 <= share <= 1:
            raise ValueError(f"recolour share must be in [0, 1], got {share}")
        self.share, self.gain_range = share, gain_range

    def __call__(self, clip: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        if rng.random() >= self.share:
            return clip
        order = rng.permutation(3)
        gains = rng.uniform(1 - self.gain_range, 1 + self.gain_range, 3).astype(np.float32)
        frames = np.clip(clip["frames"][..., order].astype(np.float32) * gains + 0.5, 0, 255).astype(np.uint8)
        return {"frames": frames, "actions": clip["actions"]}


def _pairs(dirs_and_weights: DirsAndWeights | str | pathlib.Path) -> list[tuple[str, float]]:
    if isinstance(dirs_and_weights, (str, pathlib.Path)):
        return [(str(dirs_and_weights), 1.0)]
    pairs = list(dirs_and_weights.items() if isinstance(dirs_and_weights, Mapping) else dirs_and_weights)
    if not pairs:
        raise ValueError("no datasets given")
    for path, weight in pairs:
        if not weight > 0:
            raise ValueError(f"dataset {str(path)!r} has weight {weight}; weights must be > 0")
    return [(str(path), float(weight)) for path, weight in pairs]


def make_clip_dataset(
    dirs_and_weights: DirsAndWeights | str | pathlib.Path,
    clip_len: int,
    batch_size: int,
    resolution: tuple[int, int],
    seed: int,
    *,
    random_crop: bool = False,
    clip_stride: int = 1,
    recolour: float = 0.0,
    shard_index: int | None = None,
    shard_count: int | None = None,
) -> grain.MapDataset:
    """An infinite `grain.MapDataset` of batches (see the module docstring for the layout).

    dirs_and_weights: {dataset dir: mixing weight} (or a single dir). Each dir is what
      `wm record --out DIR` wrote.
    clip_stride: distance in frames between the possible starts of clips within an episode.
    recolour: the share of clips given other colours (`Recolour`).
    shard_index/shard_count: this process's shard; default jax.process_index()/process_count().
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    pairs = _pairs(dirs_and_weights)
    per_dataset = []
    for number, (path, _) in enumerate(pairs):
        store = EpisodeStore(path)
        index = ClipIndex(store, clip_len, clip_stride)
        dataset = (
            grain.MapDataset.range(len(index))
            .shuffle(seed=_derive_seed(seed, number))
            .repeat()
            .map(ReadClip(store, index, clip_len))
        )
        per_dataset.append(dataset)
    if len(per_dataset) == 1:
        mixed = per_dataset[0]
    else:
        mixed = grain.MapDataset.mix(per_dataset, weights=[weight for _, weight in pairs])
    shard_index = jax.process_index() if shard_index is None else shard_index
    shard_count = jax.process_count() if shard_count is None else shard_count
    sharded = mixed[shard_index::shard_count]
    cropped = sharded.random_map(CropResize(tuple(resolution), random_crop), seed=_derive_seed(seed, len(pairs)))
    if recolour:
        cropped = cropped.random_map(Recolour(recolour), seed=_derive_seed(seed, len(pairs) + 1))
    return cropped.batch(batch_size, drop_remainder=True)


def make_clip_iterator(
    dirs_and_weights: DirsAndWeights | str | pathlib.Path,
    clip_len: int,
    batch_size: int,
    resolution: tuple[int, int],
    seed: int,
    *,
    random_crop: bool = False,
    clip_stride: int = 1,
    recolour: float = 0.0,
    workers: int = 0,
    read_threads: int = 4,
    shard_index: int | None = None,
    shard_count: int | None = None,
) -> grain.DatasetIterator:
    """Iterator over batches with checkpointable `get_state()` / `set_state(state)`.

    workers: processes that prefetch and decode batches (0 = threads in this process only).
    read_threads: threads per process that read and decode clips ahead of use.
    The batches are the same whatever `workers` and `read_threads` are.
    """
    dataset = make_clip_dataset(
        dirs_and_weights, clip_len, batch_size, resolution, seed,
        random_crop=random_crop, clip_stride=clip_stride, recolour=recolour, shard_index=shard_index,
        shard_count=shard_count,
    ).to_iter_dataset(grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=2 * read_threads))
    if workers > 0:
        _allow_unparsed_absl_flags()
        dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return iter(dataset)


def _allow_unparsed_absl_flags() -> None:
    # grain 0.2.x reads an absl flag in mp_prefetch and fails in programs that never parse absl
    # flags (google/grain#1355); marking them parsed keeps every flag at its default.
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def _derive_seed(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])
