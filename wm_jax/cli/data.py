"""`wm data inspect DIR` and `wm data preview DIR --out grid.png`: look at a recorded dataset."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="inspect or preview a recorded episode dataset",
        description="Look at a dataset written by `wm record`.",
    )
    commands = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    inspect = commands.add_parser(
        "inspect", help="episodes, frames, resolution, key histogram, bytes on disk",
        description="Summarise a recorded dataset: episodes, frames, resolution, how many frames each key "
                    "was pressed in, bytes on disk. Reads every episode, so a corrupted shard shows up here.",
    )
    inspect.add_argument("dir", help="dataset directory (the --out of `wm record`)")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    inspect.set_defaults(func=run_inspect)

    preview = commands.add_parser(
        "preview", help="contact sheet of random clips with their pressed keys",
        description="Write a PNG contact sheet: one row per random clip, the keys pressed to reach each "
                    "frame written under it ('-' none, '?' unknown). The same seed gives the same picture.",
    )
    preview.add_argument("dir", help="dataset directory (the --out of `wm record`)")
    preview.add_argument("--out", required=True, help="PNG file to write")
    preview.add_argument("--seed", type=int, default=0, help="which clips (default 0)")
    preview.add_argument("--clips", type=int, default=4, help="rows (default 4)")
    preview.add_argument("--frames", type=int, default=8, help="frames per row (default 8)")
    preview.set_defaults(func=run_preview)


def run_inspect(args: argparse.Namespace) -> int:
    from wm_jax.datasets.inspection import summarize

    summary = summarize(args.dir)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for key, value in summary.items():
        print(f"{key:>16}: {value}")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from wm_jax.datasets.inspection import contact_sheet

    if args.clips < 1 or args.frames < 1:
        raise ValueError(f"--clips and --frames must be >= 1, got {args.clips} and {args.frames}")
    contact_sheet(args.dir, clips=args.clips, frames_per_clip=args.frames, seed=args.seed).save(args.out)
    print(f"wrote {args.out}")
    return 0
