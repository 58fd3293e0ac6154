"""Camera worlds (`wm eval --camera`, `wm_jax.camera_eval`): a model that copies the real frames
scores perfectly, one that never moves fails, and zoom keys are scored per key."""

import jax
import numpy as np
import pytest

from wm_jax import camera_eval


@pytest.fixture(scope="module")
def scripted_pan(tmp_path_factory):
    """Two photographs, each panned out and back from its centre: the real frames repeat."""
    from wm_jax.datasets.recording import record_dataset
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder

    recorder = ImagePanRecorder(resolution=(32, 32), script="right*3 left*3 up*3 down*3")
    return record_dataset(recorder, str(tmp_path_factory.mktemp("pan_script")), 2, 13, 0, 1)


def camera_motion_with(monkeypatch, dataset, predict):
    """camera_motion with the model replaced by `predict(real latents) -> latents of frames 1..`."""
    from types import SimpleNamespace

    from wm_jax import evaluation

    monkeypatch.setattr(evaluation, "autoregressive_latents", lambda params, latents, actions, rng, **kw: predict(latents))
    identity = lambda x: x
    return camera_eval.camera_motion(dataset, SimpleNamespace(window=7), None, None, encode=identity, decode=identity,
                                     rng=jax.random.key(0), progress=False)


def perfect(latents):
    return latents[:, 1:]


def still(latents):
    return np.repeat(latents[:, :1], latents.shape[1] - 1, axis=1)


def test_scripted_pan_episodes_start_at_the_centre_and_come_back(scripted_pan):
    from wm_jax import motion
    from wm_jax.data.episode_store import EpisodeStore

    store = EpisodeStore(scripted_pan)
    frames, _ = store.read_clip(0, 0, 13)
    np.testing.assert_array_equal(frames[6], frames[0])  # right*3 left*3
    np.testing.assert_array_equal(motion.phase_shift(frames[:1], frames[1:2])[0], [0, -4])


def test_camera_motion_scores_a_perfect_model_perfectly(monkeypatch, scripted_pan):
    report = camera_motion_with(monkeypatch, scripted_pan, perfect)
    assert report["moving_transitions"] == 2 * 12
    assert report["direction_accuracy_moving"] == 1.0
    # Per episode: frames 4, 5, 6 show frames 2, 1, 0 again (right*3 left*3), 10, 11, 12 show 8, 7, 6.
    assert report["revisits"] == 2 * 6
    assert report["revisit_psnr"] == float("inf") and report["revisit_psnr_vs_own_earlier_frame"] == float("inf")


def test_camera_motion_fails_a_model_that_never_moves(monkeypatch, scripted_pan):
    report = camera_motion_with(monkeypatch, scripted_pan, still)
    assert report["direction_accuracy_moving"] == 0.0
    assert report["revisit_psnr_vs_own_earlier_frame"] == float("inf")  # it kept the picture...
    assert report["never_seen_psnr"] < 30  # ...but never showed what the camera moved to


def test_zoom_by_key_scores_each_key_against_the_real_frames():
    keys = ["e"] * 4 + ["q"] * 4 + ["right"] * 2
    real = [1.1] * 4 + [1 / 1.1] * 4 + [1.0] * 2
    unmoved = camera_eval.zoom_by_key(keys, real, [1.0] * 10, direction_hit_N=[False] * 8 + [True, False])
    assert unmoved["e"]["zooms"] == "in" and unmoved["q"]["zooms"] == "out" and "zooms" not in unmoved["right"]
    assert unmoved["e"]["zoom_way_real"] == 1.0 and unmoved["e"]["zoom_way_within_10pct_real"] == 1.0
    assert unmoved["e"]["zoom_way_generated"] == 0.0 and unmoved["q"]["zoom_way_generated"] == 0.0
    assert unmoved["e"]["scale_real"] == pytest.approx(1.1) and unmoved["e"]["scale_generated"] == 1.0
    assert unmoved["right"]["direction_accuracy"] == 0.5
    # The right way but too far (1.5 against 1.1) counts as the key's way, not within 10%; a
    # timid 1.03 (less than half the real zoom, in log scale) does not count at all.
    mixed = camera_eval.zoom_by_key(keys, real, [1.1, 1.15, 1.5, 1.03] + [1 / 1.1] * 4 + [1.0] * 2)
    assert mixed["e"]["zoom_way_generated"] == 0.75 and mixed["e"]["zoom_way_within_10pct_generated"] == 0.5
    assert mixed["q"]["zoom_way_within_10pct_generated"] == 1.0


def test_camera_motion_reports_zoom_per_key(monkeypatch, tmp_path):
    """A perfect model zooms as the real frames do; a still one scores 0 on e and q while its pan
    directions are also 0 (it never moves)."""
    from wm_jax.datasets.recording import record_dataset
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder

    recorder = ImagePanRecorder(resolution=(64, 64), pan_step=8, script="e*3 q*3 right*2 left*2")
    dataset = record_dataset(recorder, str(tmp_path / "zoom"), 1, 11, 0, 1)
    report = camera_motion_with(monkeypatch, dataset, perfect)
    assert report["zoom"]["keys"] == ["e", "q"] and report["zoom"]["transitions"] == 6
    assert report["zoom"]["zoom_way_within_10pct_generated"] == report["zoom"]["zoom_way_within_10pct_real"] == 1.0
    assert report["per_key"]["e"]["scale_generated"] == pytest.approx(1.1, rel=0.03)
    assert report["per_key"]["right"]["direction_accuracy"] == 1.0
    report = camera_motion_with(monkeypatch, dataset, still)
    assert report["zoom"]["zoom_way_generated"] == 0.0 and report["zoom"]["zoom_way_real"] == 1.0
    assert report["per_key"]["q"]["scale_generated"] == pytest.approx(1.0, abs=0.01)
