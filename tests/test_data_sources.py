"""Recorders of real sources: determinism, held actions, key mapping, bad input."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image

from wm_jax.datasets import images
from wm_jax.datasets.recording import iter_episodes
from wm_jax.datasets.sources.atari import AtariRecorder, keys_for_action
from wm_jax.datasets.sources.crafter_env import ACTION_KEYS, CrafterRecorder
from wm_jax.datasets.sources.doom import KEY_TO_BUTTON, DoomRecorder
from wm_jax.datasets.sources.image_pan import ImagePanRecorder
from wm_jax.datasets.sources.video_files import VideoRecorder
from wm_jax import actions as actions_lib


def _mean_hold(actions_TK):
    changes = np.any(actions_TK[2:] != actions_TK[1:-1], axis=1).sum()
    return (len(actions_TK) - 1) / (changes + 1)


def test_doom_is_deterministic_for_a_seed_and_holds_keys():
    recorder = DoomRecorder(resolution=(32, 40), frame_skip=4)
    first = recorder.record(0, seed=5, steps=40)
    again = recorder.record(0, seed=5, steps=40)
    other = recorder.record(0, seed=6, steps=40)
    assert first.frames.shape == (40, 32, 40, 3) and first.fps == pytest.approx(8.75)
    np.testing.assert_array_equal(first.frames, again.frames)
    np.testing.assert_array_equal(first.actions, again.actions)
    assert not np.array_equal(first.actions, other.actions)
    assert _mean_hold(first.actions) >= 2.5
    pressed = {key for row in first.actions for key in actions_lib.DEFAULT.decode(row)}
    assert pressed <= set(KEY_TO_BUTTON) and "w" in pressed
    # The policy moves: most consecutive frames differ.
    assert np.mean([np.abs(a.astype(int) - b).mean() > 1 for a, b in zip(first.frames, first.frames[1:])]) > 0.5


def test_doom_rejects_a_map_the_wad_does_not_have():
    with pytest.raises(ValueError, match="MAP99.*MAP01"):
        DoomRecorder(map="MAP99").record(0, seed=0, steps=5)


def test_atari_maps_joystick_to_arrows_and_fire_to_space():
    assert keys_for_action("UPLEFTFIRE") == ("up", "left", "space")
    assert keys_for_action("NOOP") == ()
    recorder = AtariRecorder(game="breakout", resolution=(32, 32))
    episode = recorder.record(1, seed=0, steps=30)
    again = recorder.record(1, seed=0, steps=30)
    np.testing.assert_array_equal(episode.frames, again.frames)
    pressed = {key for row in episode.actions for key in actions_lib.DEFAULT.decode(row)}
    assert pressed and pressed <= {"up", "down", "left", "right", "space"}
    with pytest.raises(ValueError, match="unknown Atari game"):
        AtariRecorder(game="no_such_game").record(0, 0, 5)


def test_crafter_maps_its_17_actions_to_distinct_keys():
    assert len(ACTION_KEYS) == 17
    keys = [keys for keys in ACTION_KEYS.values() if keys]
    assert len(set(keys)) == 16
    episode = CrafterRecorder(resolution=(32, 32)).record(0, seed=0, steps=20)
    assert episode.frames.shape == (20, 32, 32, 3) and episode.frames.dtype == np.uint8
    assert not episode.actions[0].any()


def test_recording_is_the_same_with_several_workers():
    recorder = ImagePanRecorder(resolution=(16, 16))
    serial = list(iter_episodes(recorder, episodes=3, steps=10, seed=2, workers=1))
    parallel = list(iter_episodes(recorder, episodes=3, steps=10, seed=2, workers=2))
    assert [e.episode_id for e in serial] == [e.episode_id for e in parallel]
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_array_equal(a.actions, b.actions)


def test_images_of_odd_modes_become_uint8_rgb(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    Image.fromarray(np.full((8, 8, 4), 100, np.uint8), mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray((gray.astype(np.uint16) * 257)).save(tmp_path / "deep.png")  # 16-bit grayscale
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    np.testing.assert_array_equal(images.load_rgb(tmp_path / "gray.png")[..., 1], gray)
    assert images.load_rgb(tmp_path / "rgba.png").shape == (8, 8, 3)
    deep = images.load_rgb(tmp_path / "deep.png")
    assert deep.dtype == np.uint8 and np.abs(deep[..., 0].astype(int) - gray).max() <= 1
    with pytest.raises(ValueError, match="broken.png"):
        images.load_rgb(tmp_path / "broken.png")


def test_image_pan_skips_unreadable_photos_with_a_warning(tmp_path, caplog):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70), np.uint8), mode="L").save(tmp_path / "ok.png")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    recorder = ImagePanRecorder(input=str(tmp_path), resolution=(16, 16))
    with caplog.at_level(logging.WARNING):
        episodes = [recorder.record(index, 0, 8) for index in range(4)]
    assert all(e is not None and e.frames.shape == (8, 16, 16, 3) for e in episodes)
    assert "bad.jpg" in caplog.text


def _write_video(path, num_frames, size=(48, 64)):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for t in range(num_frames):
            image = np.full((*size, 3), (t * 12) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_video_folder_with_sidecars_and_bad_files(tmp_path, caplog):
    _write_video(tmp_path / "a_plain.mp4", 12)
    _write_video(tmp_path / "b_keys.mp4", 12)
    (tmp_path / "b_keys.actions.jsonl").write_text(
        "\n".join(json.dumps({"keys": [] if t == 0 else ["w"]}) for t in range(12)))
    _write_video(tmp_path / "c_short_sidecar.mp4", 12)
    (tmp_path / "c_short_sidecar.actions.jsonl").write_text(json.dumps({"keys": ["w"]}))
    (tmp_path / "d_broken.mp4").write_bytes(b"\x00" * 100)
    recorder = VideoRecorder(input=str(tmp_path), resolution=(16, 16))
    with caplog.at_level(logging.WARNING):
        episodes = list(iter_episodes(recorder, episodes=6, steps=10, seed=0))
    assert [e.episode_id for e in episodes] == ["video-a_plain.mp4", "video-b_keys.mp4"]
    plain, keyed = episodes
    assert plain.frames.shape == (10, 16, 16, 3) and plain.fps == pytest.approx(10.0)
    assert (plain.actions == actions_lib.DEFAULT.unknown()).all()
    assert actions_lib.DEFAULT.decode(keyed.actions[3]) == ["w"] and not keyed.actions[0].any()
    assert "c_short_sidecar.actions.jsonl" in caplog.text and "d_broken.mp4" in caplog.text


def _shift_of(previous, current, step):
    """The (dx, dy) among the four unit moves of `step` px under which `current` continues `previous`."""
    moves = {(1, 0): (previous[:, step:], current[:, :-step]), (-1, 0): (previous[:, :-step], current[:, step:]),
             (0, 1): (previous[step:], current[:-step]), (0, -1): (previous[:-step], current[step:])}
    return [move for move, (a, b) in moves.items() if np.array_equal(a, b)]


@pytest.mark.parametrize("pan_step", [4, 8])
def test_image_pan_moves_pan_step_pixels_per_frame_the_key_s_way(tmp_path, pan_step):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (120, 150, 3), np.uint8)).save(tmp_path / "noise.png")
    recorder = ImagePanRecorder(input=str(tmp_path), resolution=(16, 16), pan_step=pan_step, allow_zoom=False,
                                script="right*2 down*2 left up")
    episode = recorder.record(0, seed=0, steps=7)
    expected = [(1, 0), (1, 0), (0, 1), (0, 1), (-1, 0), (0, -1)]
    assert [_shift_of(a, b, pan_step) for a, b in zip(episode.frames[:-1], episode.frames[1:])] == [[m] for m in expected]


def test_image_pan_mirror_edges_pan_without_end_and_record_only_keys_that_moved(tmp_path):
    """With edges="mirror" a camera that pans right far past the photograph's edge keeps moving
    exactly pan_step pixels a frame (the clamped camera stops), and random episodes record a key
    that had no effect as no key: every recorded pan moves the picture."""
    rng = np.random.default_rng(4)
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), np.uint8)).save(tmp_path / "noise.png")
    script = dict(input=str(tmp_path), resolution=(16, 16), pan_step=8, allow_zoom=False, script="right*30")
    mirrored = ImagePanRecorder(edges="mirror", **script).record(0, seed=0, steps=31)
    clamped = ImagePanRecorder(**script).record(0, seed=0, steps=31)
    assert all(_shift_of(a, b, 8) == [(1, 0)] for a, b in zip(mirrored.frames[:-1], mirrored.frames[1:]))
    assert any(np.array_equal(a, b) for a, b in zip(clamped.frames[:-1], clamped.frames[1:]))
    episode = ImagePanRecorder(input=str(tmp_path), resolution=(16, 16), pan_step=8, edges="mirror").record(0, seed=3, steps=300)
    held = [actions_lib.DEFAULT.decode(a) for a in episode.actions[1:]]
    for (a, b), keys in zip(zip(episode.frames[:-1], episode.frames[1:]), held):
        assert not keys or not np.array_equal(a, b), f"keys {keys} recorded for a frame that did not move"
    with pytest.raises(ValueError, match="edges must be one of"):
        ImagePanRecorder(edges="wrap")


def test_image_pan_augment_shows_a_photo_mirrored_or_turned(tmp_path):
    from wm_jax.datasets.sources.image_pan import dihedral

    photo = np.random.default_rng(2).integers(0, 255, (30, 40, 3), np.uint8)
    views = [dihedral(photo, which) for which in range(8)]
    assert np.array_equal(views[0], photo)
    assert len({view.tobytes() + bytes(view.shape) for view in views}) == 8  # all distinct
    # Brightness rises left to right: unaugmented frames always show that; turned or mirrored
    # ones show it falling, or running up or down instead.
    ramp = np.broadcast_to(np.linspace(0, 255, 160)[None, :, None], (120, 160, 3)).astype(np.uint8)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")

    def orientation(frame):
        gray = frame.astype(float).mean(-1)
        dx, dy = np.diff(gray, axis=1).mean(), np.diff(gray, axis=0).mean()
        return ("x" if abs(dx) > abs(dy) else "y") + ("+" if dx + dy > 0 else "-")

    plain = ImagePanRecorder(input=str(tmp_path), resolution=(16, 16), allow_zoom=False)
    augmented = ImagePanRecorder(input=str(tmp_path), resolution=(16, 16), allow_zoom=False, augment=True)
    assert {orientation(plain.record(i, 0, 2).frames[0]) for i in range(16)} == {"x+"}
    assert {orientation(augmented.record(i, 0, 2).frames[0]) for i in range(16)} == {"x+", "x-", "y+", "y-"}
    assert np.array_equal(augmented.record(3, 0, 2).frames, augmented.record(3, 0, 2).frames)  # still seeded


def test_hold_policy_still_share_sets_the_no_key_probability_and_keeps_the_others_ratios():
    from wm_jax.datasets.hold_policy import HoldPolicy

    choices, weights = [("w",), ("left",), ()], [6.0, 2.0, 1.0]
    policy = HoldPolicy(choices, np.random.default_rng(0), weights, still_share=0.3)
    np.testing.assert_allclose(policy.probabilities, [0.525, 0.175, 0.3])
    drawn = [HoldPolicy(choices, np.random.default_rng(i), weights, 1, 1, still_share=0.3)() for i in range(2000)]
    assert abs(sum(keys == () for keys in drawn) / len(drawn) - 0.3) < 0.04
    with pytest.raises(ValueError, match="no-key choice"):
        HoldPolicy([("w",)], np.random.default_rng(0), still_share=0.3)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        HoldPolicy(choices, np.random.default_rng(0), still_share=1.0)


def test_record_cli_passes_still_share_to_doom_and_refuses_it_elsewhere():
    import argparse

    from wm_jax.cli.record import make_recorder

    args = argparse.Namespace(source="doom", still_share=0.25)
    assert make_recorder(args).still_share == 0.25
    with pytest.raises(ValueError, match="--still-share does not apply to source 'atari'"):
        make_recorder(argparse.Namespace(source="atari", still_share=0.25))


def test_image_pan_photo_scale_one_or_drawn_per_episode_between_two(tmp_path):
    """The picture's short side is photo_scale frames: a ramp across it climbs 3x as steeply per pixel
    at scale 1 (the picture shown whole) as at 3; a range draws each episode's scale between its ends."""
    import argparse

    from wm_jax.cli.record import make_recorder

    ramp = np.broadcast_to(np.linspace(0, 255, 160)[None, :, None], (120, 160, 3)).astype(np.uint8)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    common = dict(input=str(tmp_path), resolution=(16, 16), allow_zoom=False, edges="mirror")
    slope = lambda recorder, i: np.abs(np.diff(recorder.record(i, 0, 2).frames[0].astype(float), axis=1)).mean()
    whole, magnified = slope(ImagePanRecorder(photo_scale=1.0, **common), 0), slope(ImagePanRecorder(photo_scale=3.0, **common), 0)
    assert 2.5 < whole / magnified < 3.5
    drawn = ImagePanRecorder(photo_scale=(1.0, 3.0), **common)
    slopes = [slope(drawn, i) for i in range(24)]
    assert magnified * 0.9 <= min(slopes) and max(slopes) <= whole * 1.1 and np.ptp(slopes) > 0.5 * (whole - magnified)
    assert slope(drawn, 5) == slopes[5]  # still seeded
    for bad in (0.5, (3.0, 1.0), (1.0, 2.0, 3.0)):
        with pytest.raises(ValueError, match="photo_scale is one scale >= 1 or a range"):
            ImagePanRecorder(photo_scale=bad)
    assert make_recorder(argparse.Namespace(source="image_pan", photo_scale=[1.0, 3.0])).photo_scale == (1.0, 3.0)
    assert make_recorder(argparse.Namespace(source="image_pan", photo_scale=[2.0])).photo_scale == 2.0
