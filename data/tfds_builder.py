"""The TFDS builder that writes episodes as ArrayRecord shards (no TensorFlow needed).

TFDS serialises examples with its own protobuf code and writes ArrayRecord through the
`array_record` package, so `download_and_prepare(file_format="array_record")` runs in a venv
without TensorFlow as long as no feature needs TF to encode (see wm_jax.data.episode_format).
"""

from __future__ import annotations

import pathlib
from typing import Callable, Iterable

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from wm_jax.datasets.episode import Episode
from wm_jax import actions as actions_lib
from wm_jax.data import episode_format as fmt


class WmEpisodes(tfds.core.GeneratorBasedBuilder):
    """Recorded episodes; set `episodes` to an iterable of `Episode` before `download_and_prepare`."""

    name = fmt.DATASET_NAME
    VERSION = tfds.core.Version(fmt.DATASET_VERSION)
    RELEASE_NOTES = {fmt.DATASET_VERSION: "PNG frames, aligned multi-hot actions."}

    # TFDS finds a builder's own files through importlib.resources, which fails when `data` is
    # imported as a namespace package (as an editable install may map it); the file is enough.
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        return epath.Path(__file__)

    episodes: Iterable[Episode] = ()
    on_episode: Callable[[Episode], None] = staticmethod(lambda episode: None)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Episodes recorded by `wm record`: frames and the keys that produced them.",
            features=fmt.features(),
            metadata=tfds.core.MetadataDict(),
            # Record order = episode order, so metadata["episode_lengths"][i] describes record i.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        return {fmt.SPLIT: self._generate_examples()}

    def _generate_examples(self):
        metadata = self.info.metadata
        metadata.update(episode_lengths=[], episode_ids=[], vocab=list(actions_lib.VOCAB),
                        vocab_version=actions_lib.VOCAB_VERSION, resolution=None, source=None, fps=None)
        for number, episode in enumerate(self.episodes):
            height, width = episode.frames.shape[1:3]
            if metadata["resolution"] is None:
                metadata.update(resolution=[height, width], source=episode.source, fps=episode.fps)
            elif metadata["resolution"] != [height, width]:
                raise ValueError(f"episode {episode.episode_id!r} is {height}x{width}, the dataset is "
                                 f"{metadata['resolution'][0]}x{metadata['resolution'][1]}")
            metadata["episode_lengths"].append(len(episode.frames))
            metadata["episode_ids"].append(episode.episode_id)
            yield number, {
                "frames_png": [fmt.encode_png(frame) for frame in episode.frames],
                "actions": episode.actions.astype(np.float32),
                "episode_id": episode.episode_id,
                "source": episode.source,
                "fps": np.float32(episode.fps),
                "vocab_version": np.int32(actions_lib.VOCAB_VERSION),
            }
            self.on_episode(episode)
        if not metadata["episode_lengths"]:
            raise ValueError("no episode was recorded; nothing to write")


def write_episodes(out_dir: str | pathlib.Path, episodes: Iterable[Episode],
                   on_episode: Callable[[Episode], None] | None = None) -> pathlib.Path:
    """Writes episodes under out_dir/wm_episodes/<version>/ and returns that directory.

    on_episode is called after each episode is written (progress bars).

    Refuses to overwrite an existing dataset in out_dir (TFDS would silently keep the old one).
    """
    out_dir = pathlib.Path(out_dir)
    existing = out_dir / fmt.DATASET_NAME / fmt.DATASET_VERSION
    if existing.exists():
        raise ValueError(f"{str(existing)!r} already exists; choose another --out or delete it")
    builder = WmEpisodes(data_dir=str(out_dir), file_format="array_record")
    builder.episodes = episodes
    if on_episode is not None:
        builder.on_episode = on_episode
    builder.download_and_prepare()
    return pathlib.Path(builder.data_dir)
