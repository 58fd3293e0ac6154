"""`wm record SOURCE --out DIR`: record episodes from a real source into a TFDS dataset."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time

EPILOG = """\
sources and their options:
  image_pan  camera pans (arrows/WASD) and zooms (e in, q out) over photographs;
             --input FOLDER (default: scikit-image's bundled photos), --resolution, --no-zoom, --pan-step, --augment
  doom       ViZDoom + Freedoom, exploring policy; --map MAP01, --wad freedoom2.wad,
             --resolution, --frame-skip
  atari      Arcade Learning Environment; --game pong, --resolution, --frame-skip
  crafter    Crafter; --resolution
  video      one episode per video file in --input FOLDER (mp4/webm/...), first --steps
             frames; a sidecar NAME.actions.jsonl gives keys per frame, else "unknown"

examples:
  wm record doom --out recordings/doom --episodes 32 --steps 500 --workers 2
  wm record image_pan --out recordings/pan --episodes 64 --steps 200 --resolution 64x64
"""

_OPTION_FIELDS = {"resolution": "resolution", "frame_skip": "frame_skip", "map": "map", "wad": "wad",
                  "game": "game", "input": "input", "script": "script",
                  "pan_step": "pan_step", "still_share": "still_share", "edges": "edges", "photo_scale": "photo_scale"}


def register(subparsers) -> None:
    from wm_jax.datasets import sources

    parser = subparsers.add_parser(
        "record", help="record gameplay/photos/videos into an episode dataset",
        description="Record episodes (frames + the keys that produced them) from a real source and "
                    "write them as ArrayRecord shards through the TFDS builder. Deterministic for a seed "
                    "whatever the number of workers (Crafter: its actions only, see BUILD_NOTES).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", choices=sources.NAMES, help="what to record")
    parser.add_argument("--out", required=True, help="output directory (must not already hold a dataset)")
    parser.add_argument("--episodes", type=int, default=8, help="number of episodes (default 8)")
    parser.add_argument("--steps", type=int, default=200, help="frames per episode (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="recording processes (default 1)")
    parser.add_argument("--resolution", type=_resolution, help="HxW of stored frames, e.g. 64x64")
    parser.add_argument("--frame-skip", type=int, help="engine frames per recorded frame (doom, atari)")
    parser.add_argument("--map", help="doom map, e.g. MAP01 (freedoom2) or E1M1 (freedoom1)")
    parser.add_argument("--wad", help="doom WAD shipped with vizdoom: freedoom1.wad or freedoom2.wad")
    parser.add_argument("--game", help="atari game (ROM name), e.g. pong, breakout")
    parser.add_argument("--input", help="folder of photographs (image_pan) or videos (video)")
    parser.add_argument("--script", help="image_pan: keys from each photo's centre instead of random ones, "
                                             "e.g. 'right*3 left*3' (a wm rollout --keys script); episode i uses photo i")
    parser.add_argument("--no-zoom", action="store_true", help="image_pan: pan only, never zoom")
    parser.add_argument("--pan-step", type=int, help="image_pan: pixels the camera moves per frame (default 4)")
    parser.add_argument("--still-share", type=float,
                        help="doom, image_pan: share of the random policy's held choices that press no key "
                             "(default: the source's own, ~4-6%%); a world learns to hold a still scene from these")
    parser.add_argument("--edges", choices=("clamp", "mirror"),
                        help="image_pan: 'clamp' (default) stops the camera at the photograph's edges; 'mirror' pans "
                             "without end over the photograph tiled with its mirror images (every pan moves the picture)")
    parser.add_argument("--photo-scale", type=float, nargs="+", metavar="S",
                        help="image_pan: the photograph's short side in frames at zoom 1 (default 3); two values LOW HIGH: "
                             "each random episode draws it log-uniformly between them (1 is the picture shown whole)")
    parser.add_argument("--augment", action="store_true",
                        help="image_pan: each random episode mirrors/turns its photograph (one of 8 ways)")
    parser.set_defaults(func=run)


def _resolution(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution must look like 64x64 (HxW), got {text!r}") from None
    if height < 8 or width < 8:
        raise argparse.ArgumentTypeError(f"resolution {text!r} is too small (minimum 8x8)")
    return height, width


def make_recorder(args: argparse.Namespace):
    from wm_jax.datasets import sources

    recorder_cls = sources.recorder_class(args.source)
    fields = {field.name for field in dataclasses.fields(recorder_cls)}
    options = {}
    for attribute, field in _OPTION_FIELDS.items():
        value = getattr(args, attribute, None)
        if value is None:
            continue
        if field not in fields:
            raise ValueError(f"--{attribute.replace('_', '-')} does not apply to source {args.source!r}")
        options[field] = (value[0] if len(value) == 1 else tuple(value)) if isinstance(value, list) else value
    if getattr(args, "no_zoom", False):
        if "allow_zoom" not in fields:
            raise ValueError(f"--no-zoom does not apply to source {args.source!r}")
        options["allow_zoom"] = False
    if getattr(args, "augment", False):
        if "augment" not in fields:
            raise ValueError(f"--augment does not apply to source {args.source!r}")
        options["augment"] = True
    return recorder_cls(**options)


def run(args: argparse.Namespace) -> int:
    import tensorflow_datasets as tfds

    from wm_jax.datasets.recording import record_dataset

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    tfds.disable_progress_bar()  # ours counts frames across workers
    recorder = make_recorder(args)
    start = time.perf_counter()
    path = record_dataset(recorder, args.out, args.episodes, args.steps, args.seed, args.workers)
    seconds = time.perf_counter() - start
    from wm_jax.data import EpisodeStore

    store = EpisodeStore(path)
    frames = int(store.lengths.sum())
    print(f"wrote {len(store)} episodes, {frames} frames to {path} in {seconds:.1f}s "
          f"({frames / seconds:.0f} frames/s)")
    return 0
