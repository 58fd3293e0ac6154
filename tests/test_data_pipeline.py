"""Recorder -> TFDS ArrayRecord -> Grain clips: alignment, resumable state, mixing, bad input."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from wm_jax.datasets.episode import Episode
from wm_jax.datasets.recording import iter_episodes
from wm_jax.datasets.sources.image_pan import ImagePanRecorder
from wm_jax.datasets.tfds_builder import write_episodes
from wm_jax import actions as actions_lib
from wm_jax.data import EpisodeStore, make_clip_dataset, make_clip_iterator
from wm_jax.data.clips import Recolour

PAN_STEP = 4
MOVES = {"left": (-1, 0), "a": (-1, 0), "right": (1, 0), "d": (1, 0),
         "up": (0, -1), "w": (0, -1), "down": (0, 1), "s": (0, 1)}


@pytest.fixture(scope="module")
def pan_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pan")
    recorder = ImagePanRecorder(resolution=(32, 32), pan_step=PAN_STEP, allow_zoom=False)
    write_episodes(out, iter_episodes(recorder, episodes=6, steps=48, seed=0))
    return out


def _constant_episodes(count, length, value, resolution=(32, 32), prefix="flat"):
    for index in range(count):
        frames = np.full((length, *resolution, 3), value, np.uint8)
        actions = np.tile(actions_lib.DEFAULT.unknown(), (length, 1))
        yield Episode(f"{prefix}-{index}", "synthetic", 10.0, frames, actions)


@pytest.fixture(scope="module")
def white_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("white")
    write_episodes(out, _constant_episodes(3, 20, 255))
    return out


def _camera_motion(before_HWC, after_HWC):
    """The camera move (dx, dy), in pan steps, that turns `before` into `after` exactly, or None."""
    height, width, _ = before_HWC.shape
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            sx, sy = dx * PAN_STEP, dy * PAN_STEP
            new = after_HWC[max(0, -sy):height - max(0, sy), max(0, -sx):width - max(0, sx)]
            old = before_HWC[max(0, sy):height - max(0, -sy), max(0, sx):width - max(0, -sx)]
            if np.array_equal(new, old):
                return dx, dy
    return None


def _expected_motion(action_K):
    keys = actions_lib.DEFAULT.decode(action_K)
    return (int(np.clip(sum(MOVES[key][0] for key in keys if key in MOVES), -1, 1)),
            int(np.clip(sum(MOVES[key][1] for key in keys if key in MOVES), -1, 1)))


def test_frame_t_is_the_consequence_of_action_t_end_to_end(pan_dir):
    iterator = make_clip_iterator({str(pan_dir): 1.0}, clip_len=8, batch_size=4, resolution=(32, 32), seed=1)
    checked_moves = 0
    for _ in range(6):
        batch = next(iterator)
        assert batch["frames"].dtype == np.uint8 and batch["frames"].shape == (4, 8, 32, 32, 3)
        assert batch["actions"].dtype == np.float32 and batch["actions"].shape == (4, 8, actions_lib.NUM_ACTIONS)
        for frames_THWC, actions_TK in zip(batch["frames"], batch["actions"]):
            for t in range(1, len(frames_THWC)):
                observed = _camera_motion(frames_THWC[t - 1], frames_THWC[t])
                expected = _expected_motion(actions_TK[t])
                if observed is None:
                    continue  # the camera hit the photo's edge part-way through a step
                # Per axis: the view moved as action[t] says, or not at all (camera at the edge).
                for axis in (0, 1):
                    assert observed[axis] in (0, expected[axis]), (
                        f"frame {t} moved {observed} but action[{t}] says {expected}")
                checked_moves += observed != (0, 0)
    assert checked_moves >= 50


def test_first_frame_of_each_episode_has_no_keys(pan_dir):
    store = EpisodeStore(pan_dir)
    for episode in range(len(store)):
        _, actions_TK = store.read_clip(episode, 0, 2)
        assert not actions_TK[0].any()


def test_resumed_iterator_sees_the_same_batches(pan_dir):
    iterator = make_clip_iterator(str(pan_dir), clip_len=6, batch_size=3, resolution=(16, 16), seed=7,
                                  random_crop=True)
    for _ in range(3):
        next(iterator)
    state = iterator.get_state()
    expected = [next(iterator) for _ in range(2)]
    resumed = make_clip_iterator(str(pan_dir), clip_len=6, batch_size=3, resolution=(16, 16), seed=7,
                                 random_crop=True, read_threads=1)
    resumed.set_state(json.loads(json.dumps(state)))  # the state must survive a JSON checkpoint
    for want in expected:
        got = next(resumed)
        np.testing.assert_array_equal(got["frames"], want["frames"])
        np.testing.assert_array_equal(got["actions"], want["actions"])
    other_seed = next(make_clip_iterator(str(pan_dir), clip_len=6, batch_size=3, resolution=(16, 16), seed=8))
    assert not np.array_equal(other_seed["frames"], expected[0]["frames"])


def test_clips_are_globally_shuffled_across_episodes(pan_dir):
    dataset = make_clip_dataset(str(pan_dir), clip_len=8, batch_size=1, resolution=(32, 32), seed=0)
    store = EpisodeStore(pan_dir)
    firsts = {store.read_clip(e, 0, 1)[0].tobytes(): e for e in range(len(store))}
    # The first 12 clips should come from several episodes, not one episode in order.
    starts = [dataset[i]["frames"][0, 0].tobytes() for i in range(12)]
    assert len(set(starts)) == 12
    assert sum(start in firsts for start in starts) < 12


def test_weighted_mixture(pan_dir, white_dir):
    dataset = make_clip_dataset({str(pan_dir): 3.0, str(white_dir): 1.0}, clip_len=4, batch_size=1,
                                resolution=(32, 32), seed=0)
    from_white = [bool((dataset[i]["frames"] == 255).all()) for i in range(200)]
    assert 0.18 <= np.mean(from_white) <= 0.32
    white_actions = [dataset[i]["actions"] for i in range(40) if from_white[i]]
    assert all((a == actions_lib.DEFAULT.unknown()).all() for a in white_actions)


def test_shards_are_disjoint_slices(pan_dir):
    def clip(shard_index, shard_count, i):
        dataset = make_clip_dataset(str(pan_dir), clip_len=4, batch_size=1, resolution=(32, 32), seed=0,
                                    shard_index=shard_index, shard_count=shard_count)
        return dataset[i]["frames"]

    np.testing.assert_array_equal(clip(0, 2, 0), clip(0, 1, 0))
    np.testing.assert_array_equal(clip(1, 2, 0), clip(0, 1, 1))
    np.testing.assert_array_equal(clip(1, 2, 3), clip(0, 1, 7))


def test_crop_and_resize_to_another_aspect(tmp_path):
    frames = np.zeros((10, 24, 48, 3), np.uint8)
    frames[:, :, 12:36] = 200  # the centre square
    episode = Episode("wide-0", "synthetic", 10.0, frames, np.zeros((10, actions_lib.NUM_ACTIONS), np.float32))
    write_episodes(tmp_path, [episode])
    batch = next(make_clip_iterator(str(tmp_path), clip_len=4, batch_size=2, resolution=(12, 12), seed=0))
    assert batch["frames"].shape == (2, 4, 12, 12, 3)
    assert (batch["frames"] == 200).all()  # centre crop, then a 2x downscale of a flat square


def test_short_episodes_are_skipped_with_a_log_naming_them(tmp_path, caplog):
    episodes = list(_constant_episodes(1, 3, 10, prefix="short")) + list(_constant_episodes(1, 12, 20, prefix="long"))
    write_episodes(tmp_path, episodes)
    with caplog.at_level(logging.WARNING):
        dataset = make_clip_dataset(str(tmp_path), clip_len=8, batch_size=1, resolution=(32, 32), seed=0)
    assert "short-0" in caplog.text
    assert all((dataset[i]["frames"] == 20).all() for i in range(10))
    with pytest.raises(ValueError, match="no episode has at least 13 frames"):
        make_clip_dataset(str(tmp_path), clip_len=13, batch_size=1, resolution=(32, 32), seed=0)


def test_truncated_shard_is_a_clear_error_naming_the_dataset(pan_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(pan_dir, copy)
    store = EpisodeStore(copy)
    [shard] = store.shard_files()
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=str(store.version_dir)):
        for episode in range(len(store)):
            EpisodeStore(copy).read_clip(episode, 0, 4)


def test_missing_dataset_and_vocabulary_mismatch_are_clear_errors(pan_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="no recorded episodes"):
        EpisodeStore(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(pan_dir, copy)
    [metadata_path] = copy.glob("wm_episodes/*/metadata.json")
    metadata = json.loads(metadata_path.read_text())
    metadata["vocab"] = metadata["vocab"][:-2] + metadata["vocab"][-1:]
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="Re-record"):
        EpisodeStore(copy)


def test_writer_refuses_to_overwrite(pan_dir):
    with pytest.raises(ValueError, match="already exists"):
        write_episodes(pan_dir, _constant_episodes(1, 5, 0))


def test_worker_processes_give_the_same_resumable_batches(pan_dir):
    def iterator(workers):
        return make_clip_iterator(str(pan_dir), clip_len=4, batch_size=2, resolution=(32, 32), seed=3,
                                  workers=workers)

    in_process = iterator(0)
    expected = [next(in_process) for _ in range(4)]
    with_workers = iterator(2)
    np.testing.assert_array_equal(next(with_workers)["frames"], expected[0]["frames"])
    np.testing.assert_array_equal(next(with_workers)["frames"], expected[1]["frames"])
    state = with_workers.get_state()
    with_workers.close()
    resumed = iterator(2)
    resumed.set_state(state)
    np.testing.assert_array_equal(next(resumed)["frames"], expected[2]["frames"])
    np.testing.assert_array_equal(next(resumed)["actions"], expected[3]["actions"])
    resumed.close()


def test_recolour_reorders_and_scales_the_channels_of_whole_clips(pan_dir):
    clip = {"frames": np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8),
            "actions": np.zeros((4, 3), np.float32)}
    assert Recolour(0.0)(clip, np.random.default_rng(1)) is clip
    recoloured = Recolour(1.0, gain_range=0.0)(clip, np.random.default_rng(1))["frames"]
    order = [next(c for c in range(3) if np.array_equal(recoloured[..., k], clip["frames"][..., c])) for k in range(3)]
    assert sorted(order) == [0, 1, 2]  # every channel is one of the clip's own, all frames alike
    gained = Recolour(1.0, gain_range=0.3)(clip, np.random.default_rng(1))["frames"].astype(np.float32)
    source = clip["frames"][..., order[0]].astype(np.float32)
    unclipped = (source > 100) & (source < 190)  # 190 x 1.3 < 255: no value saturates
    ratios = gained[..., 0][unclipped] / source[unclipped]
    assert 0.7 - 0.01 <= ratios.min() and ratios.max() <= 1.3 + 0.01 and np.ptp(ratios) < 0.02  # one gain per channel
    with pytest.raises(ValueError, match=r"recolour share must be in \[0, 1\]"):
        Recolour(1.5)

    plain = make_clip_dataset(str(pan_dir), clip_len=4, batch_size=8, resolution=(32, 32), seed=3)[0]
    half = make_clip_dataset(str(pan_dir), clip_len=4, batch_size=8, resolution=(32, 32), seed=3, recolour=0.5)[0]
    changed = [not np.array_equal(a, b) for a, b in zip(plain["frames"], half["frames"])]
    assert 0 < sum(changed) < 8  # about half of the clips, the rest as recorded
    np.testing.assert_array_equal(plain["actions"], half["actions"])


def test_data_config_refuses_a_recolour_share_outside_zero_to_one():
    from wm_jax.train.config import DataConfig

    with pytest.raises(ValueError, match="Data.recolour"):
        DataConfig(recolour=2.0)


def test_only_training_batches_are_recoloured(pan_dir):
    from wm_jax.train import loop
    from wm_jax.train.config import DataConfig

    data = DataConfig(datasets={str(pan_dir): 1.0}, resolution=(32, 32), clip_len=4, recolour=1.0, read_threads=1)
    batch = lambda training: next(loop._data_iterator(data, dict(data.datasets), 8, 3, training=training))["frames"]
    recorded = next(make_clip_iterator(str(pan_dir), clip_len=4, batch_size=8, resolution=(32, 32), seed=3, read_threads=1))
    np.testing.assert_array_equal(batch(False), recorded["frames"])  # held-out figures see the frames as recorded
    assert not np.array_equal(batch(True), recorded["frames"])
