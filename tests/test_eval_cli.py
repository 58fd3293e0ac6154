"""`wm eval` end to end: a demo world against a freshly recorded held-out dataset, and a short
long-horizon run (the 10,000-frame one is in tests/test_eval.py, marked slow)."""

import json

import numpy as np
import pytest

from wm_jax.cli import main


def test_eval_world_against_recorded_clips_and_long_horizon(demo_world_dir, tmp_path):
    from wm_jax.datasets.recording import iter_episodes
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder
    from wm_jax.datasets.tfds_builder import write_episodes

    world = demo_world_dir  # the session's demo world: read, never written
    write_episodes(tmp_path / "data", iter_episodes(ImagePanRecorder(resolution=(64, 64), allow_zoom=False), episodes=2, steps=8, seed=0))
    scripted = ImagePanRecorder(resolution=(64, 64), script="right left _")
    write_episodes(tmp_path / "scripted", iter_episodes(scripted, episodes=1, steps=4, seed=0))
    out = tmp_path / "eval.json"
    # One held-out clip of 4 frames, as long as the scripted episode: --data and --camera then share
    # one compiled autoregressive rollout (batching clips is tests/test_eval.py's).
    code = main(["eval", "--world", str(world), "--data", str(tmp_path / "data"), "--clips", "1", "--clip-len", "4",
                 "--steps", "1", "--long-horizon", "40", "--chunk", "20", "--camera", str(tmp_path / "scripted"),
                 "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    held = report["held_out"]
    assert held["horizon"] == [1, 2, 3] and held["frame_size"] == [64, 64] and held["clips"] == 1
    for name in ("teacher_forced", "autoregressive", "copy_last", "copy_first"):
        assert set(held["metrics"][name]) == {"psnr", "ssim", "lpips"}
    assert (tmp_path / "eval_drift.png").exists() and (tmp_path / "eval_long_horizon.png").exists()
    assert report["long_horizon"]["all_finite"] and report["long_horizon"]["frames"] == 40
    assert report["long_horizon"]["statistics_of"] == "decoded frames"
    camera = report["camera"]  # an untrained world: the plumbing, not the figures
    assert camera["moving_transitions"] == 2 and camera["revisits"] == 2  # frames 2 and 3 show frame 0 again
    assert 0.0 <= camera["direction_accuracy_moving"] <= 1.0 and camera["revisit_psnr"] > 0


def test_eval_needs_something_to_do(capsys):
    assert main(["eval", "--config", "tiny"]) == 2
    assert "nothing to do" in capsys.readouterr().err


def test_held_out_clips_come_from_every_dataset_given(tmp_path, capsys):
    """`wm eval --data A B --clips N`: N clips of each, in the order given (scored together);
    --controllability reads one dataset's episodes and refuses several."""
    from wm_jax.cli.eval import held_out_clips
    from wm_jax.datasets.recording import iter_episodes
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder
    from wm_jax.datasets.tfds_builder import write_episodes

    for name, seed in (("a", 0), ("b", 1)):
        write_episodes(tmp_path / name, iter_episodes(ImagePanRecorder(resolution=(32, 32), allow_zoom=False), episodes=1, steps=6, seed=seed))
    one, _ = held_out_clips([tmp_path / "a"], 2, 4, (32, 32), seed=0)
    other, _ = held_out_clips([tmp_path / "b"], 2, 4, (32, 32), seed=0)
    both, actions = held_out_clips([tmp_path / "a", tmp_path / "b"], 2, 4, (32, 32), seed=0)
    assert both.shape == (4, 4, 32, 32, 3) and actions.shape[:2] == (4, 4) and -1.0 <= both.min() <= both.max() <= 1.0
    np.testing.assert_array_equal(both, np.concatenate([one, other]))
    assert not np.array_equal(one, other)
    assert main(["eval", "--config", "tiny", "--controllability", "--data", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert "reads one dataset's episodes; --data gave 2" in capsys.readouterr().err


def test_clips_in_order_are_each_episode_s_non_overlapping_clips_whatever_the_seed(tmp_path, capsys):
    """`wm eval --clips-in-order`: the first --clips clips starting every --clip-len frames, episode
    by episode (the clips `experiments.fill_ceiling` scores), read as recorded; a dataset recorded at
    another size is refused by name, and the flag without --data is refused."""
    from wm_jax.cli.eval import held_out_clips
    from wm_jax.data.episode_store import EpisodeStore
    from wm_jax.datasets.recording import iter_episodes
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder
    from wm_jax.datasets.tfds_builder import write_episodes

    write_episodes(tmp_path / "a", iter_episodes(ImagePanRecorder(resolution=(32, 32), allow_zoom=False), episodes=2, steps=9, seed=0))
    store = EpisodeStore(tmp_path / "a")
    frames, actions = held_out_clips([tmp_path / "a"], 3, 4, (32, 32), seed=0, in_order=True)
    again, _ = held_out_clips([tmp_path / "a"], 3, 4, (32, 32), seed=5, in_order=True)
    assert frames.shape == (3, 4, 32, 32, 3)
    np.testing.assert_array_equal(frames, again)
    per_episode = len(range(0, int(store.lengths[0]) - 4 + 1, 4))
    expected = [(0, 4 * i) for i in range(per_episode)] + [(1, 4 * i) for i in range(3 - per_episode)]
    for clip, (episode, start) in zip(frames, expected):
        truth, _ = store.read_clip(episode, start, 4)
        np.testing.assert_array_equal(clip, truth.astype(np.float32) / 127.5 - 1.0)
    np.testing.assert_array_equal(actions[0], store.read_clip(0, 0, 4)[1])
    with pytest.raises(ValueError, match="no episode holds a clip of 100 frames"):
        store.clips_in_order(100, 100)
    with pytest.raises(ValueError, match=r"recorded at 32x32, the model sees 64x64"):
        held_out_clips([tmp_path / "a"], 3, 4, (64, 64), seed=0, in_order=True)
    assert main(["eval", "--config", "tiny", "--camera", str(tmp_path / "a"), "--clips-in-order"]) == 2
    assert "--clips-in-order chooses the --data clips" in capsys.readouterr().err
