"""Loading recorded episodes for training: Grain clips of frames + aligned actions.

Public API:
  make_clip_iterator(dirs_and_weights, clip_len, batch_size, resolution, seed, ...) -> iterator
  make_clip_dataset(...)  -> grain.MapDataset of the same batches (for custom pipelines)
  EpisodeStore(path)      -> random access to one recorded dataset's episodes
"""

from wm_jax.data.clips import make_clip_dataset, make_clip_iterator
from wm_jax.data.episode_store import EpisodeStore, find_dataset_root

__all__ = ["make_clip_dataset", "make_clip_iterator", "EpisodeStore", "find_dataset_root"]
