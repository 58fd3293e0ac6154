"""Inverse dynamics and phase correlation: recover known motion and known keys."""

import jax
import numpy as np
import pytest

from wm_jax import controllability as ctl


def _textured(rng, size=32):
    img = rng.uniform(0, 255, (size, size, 3))
    return img.astype(np.uint8)


def test_phase_shift_recovers_a_known_translation():
    rng = np.random.default_rng(0)
    a = _textured(rng)
    b = np.roll(a, shift=(3, -2), axis=(0, 1))
    np.testing.assert_array_equal(ctl.phase_shift(a[None], b[None])[0], [3, -2])


def test_action_classes_and_direction_table():
    acts = np.zeros((6, 4), np.float32)
    acts[[1, 4], 0] = 1  # key 0
    acts[[2, 5], 1] = 1  # key 1
    classes = ctl.ActionClasses.fit(acts)
    assert classes.size == 3
    labels = classes.encode(acts)
    assert len(set(labels[[0, 3]])) == 1 and labels[1] == labels[4] and labels[1] != labels[2]
    unseen = np.zeros((1, 4), np.float32); unseen[0, 3] = 1
    assert classes.encode(unseen)[0] == -1
    shifts = np.array([[0, 0], [0, 2], [0, -2], [0, 0], [0, 3], [1, -1]])
    table = ctl.DirectionTable.fit(shifts, labels)
    # Scored over the key sets that move the picture (not the no-key pairs 0 and 3); the last pair
    # moved diagonally.
    assert table.accuracy(shifts, labels) == pytest.approx(3 / 4)
    assert table.accuracy(np.zeros_like(shifts), labels) == 0.0  # a model that never moves


def test_idm_learns_keys_that_move_the_picture():
    rng = np.random.default_rng(0)
    moves = {0: (0, 0), 1: (0, 2), 2: (0, -2), 3: (2, 0)}
    prev, nxt, labels = [], [], []
    for i in range(256):
        a, k = _textured(rng), i % 4
        prev.append(a)
        nxt.append(np.roll(a, moves[k], axis=(0, 1)))
        labels.append(k)
    prev, nxt, labels = np.stack(prev), np.stack(nxt), np.array(labels)
    idm = ctl.train(prev[:192], nxt[:192], labels[:192], 4, rng=jax.random.key(0), steps=120, batch=32, width=8, progress=False)
    assert ctl.accuracy(idm, prev[192:], nxt[192:], labels[192:]) > 0.6  # chance is 0.25


def test_split_episodes():
    assert ctl.split_episodes(8) == ([0, 1, 2, 3, 4, 5], [6, 7])
    with pytest.raises(ValueError):
        ctl.split_episodes(1)


@pytest.fixture(scope="module")
def scripted_pan(tmp_path_factory):
    """Two photographs, each panned out and back from its centre: the real frames repeat."""
    from wm_jax.datasets.recording import record_dataset
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder

    recorder = ImagePanRecorder(resolution=(32, 32), script="right*3 left*3 up*3 down*3")
    return record_dataset(recorder, str(tmp_path_factory.mktemp("pan_script")), 2, 13, 0, 1)


def _camera_motion_with(monkeypatch, dataset, predict):
    """camera_motion with the model replaced by `predict(real latents) -> latents of frames 1..`."""
    from types import SimpleNamespace

    from wm_jax import evaluation

    monkeypatch.setattr(evaluation, "autoregressive_latents", lambda params, latents, actions, rng, **kw: predict(latents))
    identity = lambda x: x
    return ctl.camera_motion(dataset, SimpleNamespace(window=7), None, None, encode=identity, decode=identity,
                             rng=jax.random.key(0), progress=False)


def test_scripted_pan_episodes_start_at_the_centre_and_come_back(scripted_pan):
    from wm_jax.data.episode_store import EpisodeStore

    store = EpisodeStore(scripted_pan)
    frames, _ = store.read_clip(0, 0, 13)
    np.testing.assert_array_equal(frames[6], frames[0])  # right*3 left*3
    np.testing.assert_array_equal(ctl.phase_shift(frames[:1], frames[1:2])[0], [0, -4])


def test_camera_motion_scores_a_perfect_model_perfectly(monkeypatch, scripted_pan):
    report = _camera_motion_with(monkeypatch, scripted_pan, lambda latents: latents[:, 1:])
    assert report["moving_transitions"] == 2 * 12
    assert report["direction_accuracy_moving"] == 1.0
    # Per episode: frames 4, 5, 6 show frames 2, 1, 0 again (right*3 left*3), 10, 11, 12 show 8, 7, 6.
    assert report["revisits"] == 2 * 6
    assert report["revisit_psnr"] == float("inf") and report["revisit_psnr_vs_own_earlier_frame"] == float("inf")


def test_camera_motion_fails_a_model_that_never_moves(monkeypatch, scripted_pan):
    still = lambda latents: np.repeat(latents[:, :1], latents.shape[1] - 1, axis=1)
    report = _camera_motion_with(monkeypatch, scripted_pan, still)
    assert report["direction_accuracy_moving"] == 0.0
    assert report["revisit_psnr_vs_own_earlier_frame"] == float("inf")  # it kept the picture...
    assert report["never_seen_psnr"] < 30  # ...but never showed what the camera moved to


ZOOM_SCRIPT = "e*3 q*3 q*3 e*3 e*9 right*2 down*2 left*2 up*2"


def _recorder_scales(recorder, script):
    """The recorder's own scale per transition: zoom_step ** (change of its clipped zoom level)."""
    from wm_jax import keyscript

    level, scales = 0, []
    for keys in keyscript.parse(script):
        new = int(np.clip(level + ("e" in keys) - ("q" in keys), -recorder.max_zoom_steps, recorder.max_zoom_steps))
        scales.append(recorder.zoom_step ** (new - level))
        level = new
    return np.array(scales)


def test_zoom_scale_recovers_the_recorders_zoom_and_pans_read_as_one():
    """On `image_pan`'s own 64x64 frames (two photographs, 8-px pans, the 1.1x zoom steps, e held
    past the zoom limit where the camera stops), every transition's estimate is within 10% of the
    recorder's scale (the issue-19 bar), in fact within 3%; pure pans and a zoom held at its limit
    read ~1.0."""
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder
    from wm_jax import keyscript

    recorder = ImagePanRecorder(resolution=(64, 64), pan_step=8, script=ZOOM_SCRIPT)
    true = _recorder_scales(recorder, ZOOM_SCRIPT)
    keys = keyscript.parse(ZOOM_SCRIPT)
    assert true.max() == pytest.approx(1.1) and true.min() == pytest.approx(1 / 1.1) and (true == 1).sum() > 8
    for index in range(2):
        frames = recorder.record(index, seed=0, steps=len(keys) + 1).frames
        estimate = ctl.zoom_scale(frames[:-1], frames[1:])
        error = np.abs(estimate / true - 1)
        assert error.max() < 0.03, (index, np.round(estimate, 3), np.round(true, 3))
        pans = np.array([k[0] in ("right", "down", "left", "up") for k in keys])
        assert np.abs(estimate[pans] - 1).max() < 0.03
        assert (estimate[true > 1] > 1.07).all() and (estimate[true < 1] < 0.93).all()


def test_zoom_scale_is_symmetric_and_ignores_a_shift():
    """Swapping the frames inverts the scale; a pure circular shift of a texture reads 1."""
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder

    recorder = ImagePanRecorder(resolution=(64, 64), script="e*2")
    frames = recorder.record(0, seed=0, steps=3).frames
    forward, backward = ctl.zoom_scale(frames[:-1], frames[1:]), ctl.zoom_scale(frames[1:], frames[:-1])
    np.testing.assert_allclose(forward * backward, 1.0, atol=0.03)
    a = _textured(np.random.default_rng(0), 64)
    assert ctl.zoom_scale(a[None], np.roll(a, (5, -3), axis=(0, 1))[None])[0] == pytest.approx(1.0, abs=0.01)


def test_zoom_by_key_scores_each_key_against_the_real_frames():
    keys = ["e"] * 4 + ["q"] * 4 + ["right"] * 2
    real = [1.1] * 4 + [1 / 1.1] * 4 + [1.0] * 2
    still = ctl.zoom_by_key(keys, real, [1.0] * 10, direction_hit_N=[False] * 8 + [True, False])
    assert still["e"]["zooms"] == "in" and still["q"]["zooms"] == "out" and "zooms" not in still["right"]
    assert still["e"]["zoom_way_real"] == 1.0 and still["e"]["zoom_way_within_10pct_real"] == 1.0
    assert still["e"]["zoom_way_generated"] == 0.0 and still["q"]["zoom_way_generated"] == 0.0
    assert still["e"]["scale_real"] == pytest.approx(1.1) and still["e"]["scale_generated"] == 1.0
    assert still["right"]["direction_accuracy"] == 0.5
    # The right way but too far (1.5 against 1.1) counts as the key's way, not within 10%; a
    # timid 1.03 (less than half the real zoom, in log scale) does not count at all.
    mixed = ctl.zoom_by_key(keys, real, [1.1, 1.15, 1.5, 1.03] + [1 / 1.1] * 4 + [1.0] * 2)
    assert mixed["e"]["zoom_way_generated"] == 0.75 and mixed["e"]["zoom_way_within_10pct_generated"] == 0.5
    assert mixed["q"]["zoom_way_within_10pct_generated"] == 1.0


def test_camera_motion_reports_zoom_per_key(monkeypatch, tmp_path):
    """A perfect model zooms as the real frames do; a still one scores 0 on e and q while its pan
    directions are also 0 (it never moves)."""
    from wm_jax.datasets.recording import record_dataset
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder

    recorder = ImagePanRecorder(resolution=(64, 64), pan_step=8, script="e*3 q*3 right*2 left*2")
    dataset = record_dataset(recorder, str(tmp_path / "zoom"), 1, 11, 0, 1)
    perfect = _camera_motion_with(monkeypatch, dataset, lambda latents: latents[:, 1:])
    assert perfect["zoom"]["keys"] == ["e", "q"] and perfect["zoom"]["transitions"] == 6
    assert perfect["zoom"]["zoom_way_within_10pct_generated"] == perfect["zoom"]["zoom_way_within_10pct_real"] == 1.0
    assert perfect["per_key"]["e"]["scale_generated"] == pytest.approx(1.1, rel=0.03)
    assert perfect["per_key"]["right"]["direction_accuracy"] == 1.0
    still = _camera_motion_with(monkeypatch, dataset, lambda latents: np.repeat(latents[:, :1], latents.shape[1] - 1, axis=1))
    assert still["zoom"]["zoom_way_generated"] == 0.0 and still["zoom"]["zoom_way_real"] == 1.0
    assert still["per_key"]["q"]["scale_generated"] == pytest.approx(1.0, abs=0.01)
