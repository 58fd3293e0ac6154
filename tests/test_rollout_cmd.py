"""`wm rollout` end to end (in-process, so the compiled step is shared), and `wm play` without worlds."""

import numpy as np
import pytest
from PIL import Image

from wm_jax import cli
from wm_jax import bundle


def _rollout(world_dir, out, *extra):
    return cli.main(["rollout", "--checkpoint", str(world_dir), "--out", str(out), *extra])


def test_rollout_writes_strip_gif_and_mp4(demo_world_dir, tmp_path, capsys):
    image = tmp_path / "start.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 90, 3), np.uint8)).save(image)
    assert _rollout(demo_world_dir, tmp_path / "a.png", "--image", str(image), "--keys", "W*10 A*5 _ d+shift*2", "--seed", "3") == 0
    out = capsys.readouterr().out
    assert "frames/s" in out and "wrote" in out
    strip = np.asarray(Image.open(tmp_path / "a.png"))
    assert strip.shape == (2 * 64, 16 * 64, 3)  # 1 start + 18 generated frames, 16 per row
    # Deterministic for a seed, different for another.
    assert _rollout(demo_world_dir, tmp_path / "b.png", "--image", str(image), "--keys", "W*10 A*5 _ d+shift*2", "--seed", "3") == 0
    np.testing.assert_array_equal(strip, np.asarray(Image.open(tmp_path / "b.png")))
    assert _rollout(demo_world_dir, tmp_path / "c.png", "--image", str(image), "--keys", "W*10 A*5 _ d+shift*2", "--seed", "4") == 0
    assert (strip != np.asarray(Image.open(tmp_path / "c.png"))).any()

    actions = tmp_path / "keys.jsonl"
    actions.write_text('["w"]\n{"keys": ["a"], "repeat": 2}\n')
    assert _rollout(demo_world_dir, tmp_path / "d.gif", "--actions", str(actions), "--frames", "5") == 0
    with Image.open(tmp_path / "d.gif") as gif:
        assert gif.n_frames == 6 and gif.size == (256, 256)  # upscaled x4 for viewing

    av = pytest.importorskip("av")
    assert _rollout(demo_world_dir, tmp_path / "e.mp4", "--keys", "w,w,a,,d", "--fps", "10") == 0
    with av.open(str(tmp_path / "e.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 6 and decoded[0].shape == (256, 256, 3)


def test_rollout_rejects_bad_input(demo_world_dir, tmp_path, capsys):
    assert _rollout(demo_world_dir, tmp_path / "x.png", "--keys", "w,teleport") == 2
    assert "unknown key 'teleport'" in capsys.readouterr().err
    assert _rollout(demo_world_dir, tmp_path / "x.avi", "--keys", "w") == 2
    assert "suffix" in capsys.readouterr().err
    assert _rollout(demo_world_dir, tmp_path / "x.png") == 2
    assert "nothing to generate" in capsys.readouterr().err
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    assert _rollout(demo_world_dir, tmp_path / "x.png", "--keys", "w", "--image", str(tmp_path / "broken.png")) == 2
    assert "image" in capsys.readouterr().err
    assert cli.main(["rollout", "--world", "atlantis", "--keys", "w", "--out", str(tmp_path / "x.png")]) == 2
    assert "no world named 'atlantis'" in capsys.readouterr().err


def test_play_says_clearly_when_no_world_is_available(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bundle, "SHIPPED_DIR", tmp_path / "empty")
    monkeypatch.delenv(bundle.PATH_ENV, raising=False)
    assert cli.main(["play"]) == 2
    err = capsys.readouterr().err
    assert "no world is available" in err and "--checkpoint DIR" in err and "--demo" in err
    assert cli.main(["play", "--world", "pan"]) == 2
    assert "none found" in capsys.readouterr().err


def test_rollout_with_int8_weights(demo_world_dir, tmp_path, capsys):
    assert _rollout(demo_world_dir, tmp_path / "q.png", "--keys", "w,a", "--quantize", "int8") == 0
    assert np.asarray(Image.open(tmp_path / "q.png")).shape == (64, 3 * 64, 3)


def test_play_on_a_busy_port_says_so_in_one_line(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["play", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"port {port}" in err and "taken" in err and 'PLAY_ARGS="--port N"' in err


def test_rollout_checks_output_input_and_keys_before_generating(demo_world_dir, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    assert _rollout(demo_world_dir, tmp_path / "a_file" / "x.png", "--keys", "w") == 2
    captured = capsys.readouterr()
    assert "--out" in captured.err and "cannot write there" in captured.err and "frames" not in captured.out

    (tmp_path / "notes.png").write_text("not a picture")
    assert _rollout(demo_world_dir, tmp_path / "x.png", "--keys", "w", "--image", str(tmp_path / "notes.png")) == 2
    err = capsys.readouterr().err
    assert "notes.png" in err and "not an image" in err and "upload" not in err and "server" not in err

    # ctrl is a key of the vocabulary, but not one this world answers to: refused, naming its keys.
    assert _rollout(demo_world_dir, tmp_path / "x.png", "--keys", "w*2 ctrl") == 2
    captured = capsys.readouterr()
    assert "ctrl" in captured.err and "its keys: w, a, s, d" in captured.err and "generated" not in captured.out
    assert not (tmp_path / "x.png").exists()
