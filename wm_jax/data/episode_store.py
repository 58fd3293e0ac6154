"""Random access to the episodes of one recorded dataset directory (no TensorFlow needed).

`EpisodeStore(path)` accepts the directory `wm record --out DIR` wrote (DIR), or the TFDS
version directory inside it (DIR/wm_episodes/1.0.0). Records are read through
`tfds.data_source`, i.e. an ArrayRecord random-access source.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from wm_jax import actions as actions_lib
from wm_jax.data import episode_format as fmt


def find_dataset_root(path: str | pathlib.Path) -> pathlib.Path:
    """The directory that holds `wm_episodes/<version>/`; raises naming `path` if there is none."""
    path = pathlib.Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"dataset directory {str(path)!r} does not exist")
    if (path / "dataset_info.json").exists() and path.parent.name == fmt.DATASET_NAME:
        return path.parent.parent
    if list(path.glob(f"{fmt.DATASET_NAME}/*/dataset_info.json")):
        return path
    raise FileNotFoundError(
        f"{str(path)!r} holds no recorded episodes (expected {fmt.DATASET_NAME}/<version>/dataset_info.json "
        f"inside it, as written by `wm record SOURCE --out DIR`)"
    )


class EpisodeStore:
    """Episodes of one dataset: lengths known up front, clips decoded on demand.

    Picklable (Grain worker processes receive it); the data source is reopened lazily.
    """

    def __init__(self, path: str | pathlib.Path):
        self.root = find_dataset_root(path)
        version_dirs = sorted(self.root.glob(f"{fmt.DATASET_NAME}/*/dataset_info.json"))
        self.version_dir = version_dirs[-1].parent
        metadata_path = self.version_dir / "metadata.json"
        try:
            self.metadata: dict[str, Any] = json.loads(metadata_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read dataset metadata {str(metadata_path)!r}: {error}") from None
        self._check_vocabulary()
        self.lengths = np.asarray(self.metadata["episode_lengths"], np.int64)
        self.episode_ids: list[str] = list(self.metadata["episode_ids"])
        self._source = None

    def _check_vocabulary(self) -> None:
        vocab = tuple(self.metadata.get("vocab", ()))
        if vocab != actions_lib.VOCAB:
            raise ValueError(
                f"dataset {str(self.version_dir)!r} was recorded with key vocabulary version "
                f"{self.metadata.get('vocab_version')} ({len(vocab)} keys); this code uses version "
                f"{actions_lib.VOCAB_VERSION} ({actions_lib.NUM_ACTIONS} keys). Re-record it."
            )

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_source"] = None
        return state

    @property
    def source(self):
        if self._source is None:
            try:
                self._source = tfds.data_source(
                    fmt.DATASET_NAME, split=fmt.SPLIT, data_dir=str(self.root), download=False
                )
            except Exception as error:  # TFDS raises many kinds; the user needs the path.
                raise ValueError(f"cannot open episodes in {str(self.version_dir)!r}: {error}") from error
            if len(self._source) != len(self.lengths):
                raise ValueError(
                    f"{str(self.version_dir)!r}: shards hold {len(self._source)} episodes but metadata.json "
                    f"lists {len(self.lengths)}; a shard is missing or truncated"
                )
        return self._source

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def resolution(self) -> tuple[int, int]:
        height, width = self.metadata["resolution"]
        return int(height), int(width)

    def shard_files(self) -> list[pathlib.Path]:
        return sorted(self.version_dir.glob(f"{fmt.DATASET_NAME}-{fmt.SPLIT}.array_record-*"))

    def read_record(self, episode: int) -> dict[str, Any]:
        """The raw record of one episode (frames still PNG bytes), checked against the metadata."""
        where = f"episode {episode} ({self.episode_ids[episode]!r}) of {str(self.version_dir)!r}"
        try:
            record = self.source[int(episode)]
        except ValueError:
            raise
        except Exception as error:
            raise ValueError(f"cannot read {where}; the shard may be corrupted: {error}") from error
        num_frames = len(record["frames_png"])
        if num_frames != self.lengths[episode] or record["actions"].shape[0] != num_frames:
            raise ValueError(
                f"{where}: {num_frames} frames and {record['actions'].shape[0]} actions, metadata says "
                f"{self.lengths[episode]}"
            )
        return record

    def read_clip(self, episode: int, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames uint8 [length, H, W, 3] and actions float32 [length, K] from `start`."""
        record = self.read_record(episode)
        if start < 0 or start + length > len(record["frames_png"]):
            raise IndexError(f"clip [{start}, {start + length}) is outside episode {episode} of length "
                             f"{len(record['frames_png'])} in {str(self.version_dir)!r}")
        try:
            frames = np.stack([fmt.decode_png(data) for data in record["frames_png"][start:start + length]])
        except Exception as error:
            raise ValueError(
                f"episode {episode} ({self.episode_ids[episode]!r}) of {str(self.version_dir)!r}: "
                f"a frame does not decode as PNG: {error}"
            ) from error
        return frames, np.asarray(record["actions"][start:start + length], np.float32)

    def clips_in_order(self, length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames uint8 [B, length, H, W, 3] and actions float32 [B, length, K] of every clip that
        starts at a multiple of `stride` in each episode, episode by episode (no sampling: the same
        clips on every call)."""
        clips, actions = [], []
        for episode, episode_length in enumerate(self.lengths):
            starts = range(0, int(episode_length) - length + 1, stride)
            if not starts:
                continue
            frames, episode_actions = self.read_clip(episode, 0, int(episode_length))
            clips += [frames[start:start + length] for start in starts]
            actions += [episode_actions[start:start + length] for start in starts]
        if not clips:
            raise ValueError(f"{str(self.version_dir)!r}: no episode holds a clip of {length} frames "
                             f"(the longest has {int(self.lengths.max(initial=0))})")
        return np.stack(clips), np.stack(actions)
