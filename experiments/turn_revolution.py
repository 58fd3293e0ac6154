"""Does a first-person world come back to where it started after turning all the way round?

    python -m experiments.turn_revolution --world wm_jax/worlds/doom --maps MAP04 MAP13 MAP14 --starts 4 --frames 52

For each held-out map and start, ViZDoom plays the recorder's exploring policy for a few frames (a
different place for each start; start 0 is the map's own), then holds `--key` for `--frames` frames;
the world, started from the real frame where the turn began, holds the same key. Per frame, over all
turns: LPIPS and PSNR of the world's frame against the real one, and of the start frame against it
(copy-first). ViZDoom turns 14.06 degrees a frame once the key is held; a turn's first two frames
turn 7.03 and 12.30 (Doom turns slowly for a turn's first tics; on an episode's first frames, start
0's turn, 0 and 3.52): the real view comes round after ~26-27 frames and then every 25.6, so near
frames 26-27 and 52-53 both the world that wraps its memory and the start frame are near the truth,
and a world that does not wrap shows what it painted.

Also: `--period-only` prints the game's measured turn (degrees a frame, frames a revolution) and exits.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from wm_jax import bundle, image_metrics
from wm_jax import world as world_lib

WARMUP_FRAMES = 12  # exploring frames before each later start's turn: a new place, not the map's start


def real_turn(game_map: str, start: int, key: str, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """([frames + 1, H, W, 3] uint8 the real frames from the turn's start, [frames + 1] the game's
    angle at each), ViZDoom at the recorder's settings (64x64, 4 tics a frame)."""
    import shutil

    import vizdoom as vzd

    from wm_jax.datasets.hold_policy import HoldPolicy
    from wm_jax.datasets.sources.doom import BUTTON_KEYS, EXPLORE_CHOICES, DoomRecorder

    recorder = DoomRecorder(map=game_map)
    game, scratch = recorder._make_game(seed=start)
    try:
        game.new_episode()
        choices, weights = zip(*EXPLORE_CHOICES)
        policy = HoldPolicy(choices, np.random.default_rng(start), weights, recorder.min_hold, recorder.max_hold)
        for _ in range(WARMUP_FRAMES * start):
            keys = policy()
            game.make_action([float(k in keys) for k in BUTTON_KEYS], recorder.frame_skip)
            if game.is_episode_finished():
                raise RuntimeError(f"{game_map} start {start}: the episode ended while exploring")
        shown, angles = [recorder._frame(game)], [game.get_game_variable(vzd.GameVariable.ANGLE)]
        for _ in range(frames):
            game.make_action([float(k == key) for k in BUTTON_KEYS], recorder.frame_skip)
            shown.append(recorder._frame(game))
            angles.append(game.get_game_variable(vzd.GameVariable.ANGLE))
    finally:
        game.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return np.stack(shown), np.asarray(angles)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", nargs="+", default=[], help="world bundle directories or shipped names")
    parser.add_argument("--maps", nargs="+", default=["MAP04", "MAP13", "MAP14"], help="held-out Freedoom 2 maps")
    parser.add_argument("--starts", type=int, default=4, help="turns per map (default 4)")
    parser.add_argument("--frames", type=int, default=52, help="frames the key is held (default 52: two revolutions)")
    parser.add_argument("--key", default="left", choices=["left", "right"])
    parser.add_argument("--report", nargs="+", type=int, default=[1, 2, 8, 13, 20, 26, 27, 39, 52, 53], help="frames to print")
    parser.add_argument("--period-only", action="store_true", help="print the game's turn per frame and exit")
    parser.add_argument("--out", help="write the per-frame figures as JSON here")
    args = parser.parse_args(argv)

    turns = [real_turn(m, s, args.key, args.frames) for m in args.maps for s in range(args.starts)]
    steps = np.diff(turns[0][1]) % 360
    steps = np.minimum(steps, 360 - steps)  # either direction
    steady = float(np.median(steps))
    print(f"the game turns {steady:.3f} degrees a frame once {args.key!r} is held ({steps[0]:.3f} and {steps[1]:.3f} "
          f"the first two): a revolution in {360 / steady:.2f} frames", flush=True)
    if args.period_only:
        return 0
    real_NT = np.stack([frames for frames, _ in turns]).astype(np.float32) / 127.5 - 1.0  # [N, T + 1, H, W, 3]
    truth = real_NT[:, 1:]
    first = np.broadcast_to(real_NT[:, :1], truth.shape)
    report = {"turns": len(turns), "degrees_a_frame": steady,
              "copy_first": {"lpips": np.asarray(image_metrics.lpips(first, truth)).mean(0).tolist(),
                             "psnr": np.asarray(image_metrics.capped_psnr(first, truth)).mean(0).tolist()}}
    for name in args.world:
        world = world_lib.load_world(bundle.locate(name))
        generated = np.stack([world.rollout(frames[0], [(args.key,)] * args.frames, seed=i)[1:]
                              for i, (frames, _) in enumerate(turns)]).astype(np.float32) / 127.5 - 1.0
        report[name] = {"lpips": np.asarray(image_metrics.lpips(generated, truth)).mean(0).tolist(),
                        "psnr": np.asarray(image_metrics.capped_psnr(generated, truth)).mean(0).tolist()}
    for name in ["copy_first"] + args.world:
        row = ", ".join(f"{n}: {report[name]['lpips'][n - 1]:.3f} / {report[name]['psnr'][n - 1]:.1f} dB"
                        for n in args.report if n <= args.frames)
        print(f"{name} (LPIPS / PSNR at frame) {row}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
