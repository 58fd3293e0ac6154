"""`wm`: one entry point, one module per subcommand.

Each module in `COMMANDS` defines `register(subparsers)`, which adds its parser and sets
`func` to a callable taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = (
    "wm_jax.cli.info",
    "wm_jax.cli.record",
    "wm_jax.cli.data",
    "wm_jax.cli.convert",
    "wm_jax.cli.train",
    "wm_jax.cli.train_ae",
    "wm_jax.cli.plot",
    "wm_jax.cli.export_world",
    "wm_jax.cli.bench",
    "wm_jax.cli.eval",
    "wm_jax.cli.play",
    "wm_jax.cli.rollout",
    "wm_jax.cli.sample",
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

