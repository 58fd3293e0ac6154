"""`wm`: one entry point, one module per subcommand.

Each module in `COMMANDS` defines `register(subparsers)`, which adds its parser and sets
`func` to a callable taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = (
    "experiments.cmd_info",
    "experiments.cmd_record",
    "experiments.cmd_data",
    "experiments.cmd_convert",
    "experiments.cmd_train",
    "experiments.cmd_train_ae",
    "experiments.cmd_plot",
    "experiments.cmd_export_world",
    "experiments.cmd_bench",
    "experiments.cmd_eval",
    "experiments.cmd_play",
    "experiments.cmd_rollout",
    "experiments.cmd_sample",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wm",
        description="wm_jax: turn a still image plus live keyboard input into a generated, playable world.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as error:
        # Errors the library raises for bad input carry a message meant for the user.
        print(f"wm {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
