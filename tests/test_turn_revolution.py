"""`experiments.turn_revolution`: whole turns in ViZDoom against a world's (held-out map MAP04)."""

import json

from experiments.turn_revolution import main


def test_turns_in_the_game_are_scored_against_the_world_and_the_start_frame(demo_world_dir, tmp_path, capsys):
    """The game's turn is read from its own angle (14.0625 degrees a frame once held); copy-first is
    near the truth at frame 1 (the game has not turned yet) and an untrained world is not."""
    out = tmp_path / "revolution.json"
    assert main(["--world", str(demo_world_dir), "--maps", "MAP04", "--starts", "2", "--frames", "5",
                 "--report", "1", "5", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["turns"] == 2 and abs(report["degrees_a_frame"] - 14.0625) < 1e-3
    copy_first, world = report["copy_first"], report[str(demo_world_dir)]
    assert len(copy_first["lpips"]) == len(world["psnr"]) == 5
    assert copy_first["lpips"][0] < 0.05 < world["lpips"][0]
    assert copy_first["lpips"][4] > copy_first["lpips"][0]  # four frames later the view has turned
    assert "a revolution in 25.60 frames" in capsys.readouterr().out
