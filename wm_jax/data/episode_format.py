"""What an episode looks like on disk: one TFDS example per episode in ArrayRecord shards.

The writer (`data/tfds_builder.py`) and the reader (`wm_jax.data.episode_store`) both take
their feature names and encoding from here, so the two cannot drift apart.

Per-episode features:
  frames_png:    T PNG-encoded RGB frames (bytes). PNG rather than raw uint8 because gameplay
                 compresses 10-50x losslessly, and a clip decodes only the T frames it uses
                 instead of the whole episode.
  actions:       float32 [T, K] multi-hot over `wm_jax.actions.VOCAB`, aligned so that
                 actions[t] is the input pressed between frame t-1 and frame t.
  episode_id:    text, unique within the dataset.
  source:        text, e.g. "doom", "image_pan", "video".
  fps:           float32, frames per second of the recording.
  vocab_version: int32, `wm_jax.actions.VOCAB_VERSION` at recording time.

Dataset-level metadata (TFDS `metadata.json`) repeats what a loader needs before reading any
record: `episode_lengths` (in record order), `episode_ids`, `vocab`, `vocab_version`,
`resolution` [H, W], `source`, `fps`.

Frames are PNG bytes in a plain `Tensor(dtype=object)` rather than `tfds.features.Image` or
`Video`: those two call TensorFlow to encode (and `SkipDecoding` fails without it), and we
want neither TensorFlow at recording time nor at training time.
"""

from __future__ import annotations

import io

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from wm_jax import actions as actions_lib

DATASET_NAME = "wm_episodes"
DATASET_VERSION = "1.0.0"
SPLIT = "train"


def features() -> tfds.features.FeaturesDict:
    return tfds.features.FeaturesDict({
        "frames_png": tfds.features.Sequence(tfds.features.Tensor(shape=(), dtype=np.object_)),
        "actions": tfds.features.Tensor(shape=(None, actions_lib.NUM_ACTIONS), dtype=np.float32),
        "episode_id": tfds.features.Text(),
        "source": tfds.features.Text(),
        "fps": tfds.features.Scalar(dtype=np.float32),
        "vocab_version": tfds.features.Scalar(dtype=np.int32),
    })


def encode_png(frame_HWC: np.ndarray) -> bytes:
    """frame_HWC: uint8 [H, W, 3]."""
    buffer = io.BytesIO()
    # Level 1: ~as small as level 6 on game frames, several times faster to write.
    Image.fromarray(frame_HWC, mode="RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """Returns uint8 [H, W, 3]."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))
