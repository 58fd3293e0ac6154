"""`wm record`, `wm data inspect`, `wm data preview` through their argument parsers."""

from __future__ import annotations

import argparse
import json

import pytest

from wm_jax.cli import data as cmd_data, record as cmd_record


def _run(argv):
    parser = argparse.ArgumentParser(prog="wm")
    subparsers = parser.add_subparsers(dest="command")
    cmd_record.register(subparsers)
    cmd_data.register(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "pan"
    assert _run(["record", "image_pan", "--out", str(out), "--episodes", "3", "--steps", "20",
                 "--resolution", "24x32", "--seed", "1"]) == 0
    return out


def test_inspect_reports_counts_resolution_and_keys(recorded, capsys):
    capsys.readouterr()
    assert _run(["data", "inspect", str(recorded), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 3 and summary["frames"] == 60
    assert summary["resolution"] == [24, 32] and summary["sources"] == ["image_pan"]
    assert sum(summary["action_histogram"].values()) > 0 and summary["bytes_on_disk"] > 0
    assert summary["no_key_frames"] < 0.4 * summary["frames"]  # the default policy mostly moves


def test_still_share_makes_the_policy_stand_still_and_inspect_counts_it(tmp_path, capsys):
    out = tmp_path / "still"
    assert _run(["record", "image_pan", "--out", str(out), "--episodes", "3", "--steps", "20",
                 "--resolution", "24x32", "--seed", "1", "--still-share", "0.9"]) == 0
    capsys.readouterr()
    assert _run(["data", "inspect", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["no_key_frames"] > 0.6 * summary["frames"]


def test_preview_is_the_same_picture_for_the_same_seed(recorded, tmp_path):
    paths = [tmp_path / name for name in ("a.png", "b.png", "c.png")]
    for path, seed in zip(paths, (3, 3, 4)):
        assert _run(["data", "preview", str(recorded), "--out", str(path), "--seed", str(seed)]) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_bad_input_names_the_path_or_option(tmp_path, recorded):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nothing")):
        _run(["data", "inspect", str(tmp_path / "nothing")])
    with pytest.raises(ValueError, match="--game does not apply"):
        _run(["record", "doom", "--out", str(tmp_path / "x"), "--game", "pong"])
    with pytest.raises(ValueError, match="already exists"):
        _run(["record", "image_pan", "--out", str(recorded), "--episodes", "1", "--steps", "5"])
    with pytest.raises(SystemExit):
        _run(["record", "image_pan", "--out", str(tmp_path / "y"), "--resolution", "big"])
    with pytest.raises(ValueError, match="--augment does not apply"):
        _run(["record", "doom", "--out", str(tmp_path / "z"), "--augment"])
    with pytest.raises(ValueError, match="--pan-step does not apply"):
        _run(["record", "doom", "--out", str(tmp_path / "z"), "--pan-step", "8"])


def test_pan_step_and_augment_reach_the_recorder():
    parser = argparse.ArgumentParser(prog="wm")
    cmd_record.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["record", "image_pan", "--out", "x", "--pan-step", "8", "--augment"])
    recorder = cmd_record.make_recorder(args)
    assert recorder.pan_step == 8 and recorder.augment
