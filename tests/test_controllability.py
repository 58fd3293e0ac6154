"""Controllability (`wm eval --controllability`, `wm_jax.controllability`): the episode split, the
transitions, and the whole score on scripted pans with the model replaced by one that copies the
real frames (the IDM itself: tests/test_inverse_dynamics.py)."""

import jax
import numpy as np
import pytest

from wm_jax import controllability as ctl


def test_split_episodes():
    assert ctl.split_episodes(8) == ([0, 1, 2, 3, 4, 5], [6, 7])
    with pytest.raises(ValueError):
        ctl.split_episodes(1)


def test_transitions_pair_each_frame_with_the_next_and_its_action(tmp_path):
    from wm_jax.data.episode_store import EpisodeStore
    from wm_jax.datasets.recording import record_dataset
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder

    dataset = record_dataset(ImagePanRecorder(resolution=(32, 32), script="right left"), str(tmp_path / "d"), 2, 3, 0, 1)
    prev, nxt, acts = ctl.transitions(dataset, [0, 1])
    assert prev.shape == nxt.shape == (4, 32, 32, 3) and acts.shape[0] == 4
    frames, actions = EpisodeStore(dataset).read_clip(1, 0, 3)
    np.testing.assert_array_equal(prev[2:], frames[:-1])
    np.testing.assert_array_equal(nxt[2:], frames[1:])
    np.testing.assert_array_equal(acts[2:], actions[1:])  # action[t]: pressed between frame t-1 and t


def _evaluate_with(monkeypatch, dataset, predict):
    """controllability.evaluate with the model replaced by `predict(real latents) -> latents of
    frames 1..`, and a narrow IDM (its learning is tests/test_inverse_dynamics.py's)."""
    import functools
    from types import SimpleNamespace

    from wm_jax import evaluation, inverse_dynamics

    monkeypatch.setattr(evaluation, "autoregressive_latents", lambda params, latents, actions, rng, **kw: predict(latents))
    monkeypatch.setattr(inverse_dynamics, "train", functools.partial(inverse_dynamics.train, width=8, batch=32))
    identity = lambda x: x
    config = SimpleNamespace(latent_size=(32, 32), in_channels=3)
    return ctl.evaluate(dataset, config, None, None, encode=identity, decode=identity, rng=jax.random.key(0),
                        clip_len=13, clips_per_episode=1, idm_steps=1, progress=False)


def test_evaluate_scores_a_copying_model_as_real(monkeypatch, tmp_path):
    """Scripted pans out and back (8 episodes: 6 train the IDM, 2 held out). Generated from each
    held-out episode's first frame, a model that copies the real frames shows the real
    transitions: the same IDM accuracy and phase directions as the real held-out ones. (A model
    that never moves scores no direction: tests/test_motion.py and tests/test_camera_eval.py.)"""
    from wm_jax.datasets.recording import record_dataset
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder

    recorder = ImagePanRecorder(resolution=(32, 32), script="right*3 left*3 up*3 down*3")
    dataset = record_dataset(recorder, str(tmp_path / "pan"), 8, 13, 0, 1)
    report = _evaluate_with(monkeypatch, dataset, lambda latents: latents[:, 1:])
    assert report["train_episodes"] == [0, 1, 2, 3, 4, 5] and report["held_out_episodes"] == [6, 7]
    assert report["train_transitions"] == 6 * 12 and report["generated_transitions"] == 2 * 12
    assert report["phase_direction_real_held_out_accuracy"] == report["phase_direction_generated_accuracy"] == 1.0
    assert report["idm_generated_accuracy"] == report["idm_real_held_out_accuracy"]
    assert 0.0 <= report["chance_majority_class"] <= 1.0 and len(report["moving_key_sets"]) == 4
