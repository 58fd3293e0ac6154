"""`wm train --gin_file F.gin [--gin_param B ...] --workdir DIR`: train, or resume DIR."""

from __future__ import annotations

import argparse
import logging
import sys

EPILOG = """\
examples:
  wm record image_pan --out recordings/smoke_pan --episodes 8 --steps 48 --resolution 16x16
  wm train --gin_file experiments/configs/smoke.gin --workdir runs/smoke
  wm train --gin_file experiments/configs/smoke.gin --gin_param 'Run.num_steps = 50' --workdir runs/s2
  wm train --gin_file experiments/configs/world_tiny.gin --init_from runs/image_tiny --workdir runs/world

Restarting on an existing workdir resumes from its latest checkpoint (params, EMA, optimizer,
data position); the gin configuration must be the same. Outputs in WORKDIR: config.gin,
checkpoints/, metrics.jsonl, tb/ (TensorBoard), eval/rollout_<step>.png.
Several hosts: set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID (or the flags).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a world model (diffusion forcing) from gin configs; resumes a workdir",
        description="Train the image DiT (stage 'image') or the world model (stage 'world') with "
                    "diffusion forcing, as the gin files say. Checkpoints with orbax; shards over all "
                    "local devices (Mesh.data x Mesh.fsdp) and over hosts.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(parser)
    parser.add_argument("--init_from", help="start params from a `wm train` workdir (EMA params) or a model dir (wm_jax.model.save)")
    parser.set_defaults(func=run)


def add_run_arguments(parser) -> None:
    """The flags every gin-driven training command shares (`wm train`, `wm train-ae`)."""
    parser.add_argument("--gin_file", action="append", default=[], required=True, help="gin config file (repeatable)")
    parser.add_argument("--gin_param", action="append", default=[],
                        help="gin binding, e.g. 'Run.num_steps = 10' (repeatable)")
    parser.add_argument("--workdir", required=True, help="run directory: created, or resumed if it holds checkpoints")
    parser.add_argument("--coordinator", help="multi-host: coordinator address host:port (else $JAX_COORDINATOR_ADDRESS)")
    parser.add_argument("--num_processes", type=int, help="multi-host: number of processes (else $JAX_NUM_PROCESSES)")
    parser.add_argument("--process_id", type=int, help="multi-host: this process's index (else $JAX_PROCESS_ID)")


def prepare(args, factory=None):
    """Logging, the distributed runtime, then (experiment, gin config text) from the flags."""
    from wm_jax.train import config, sharding

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("absl", "jax", "orbax", "grain", "tensorflow_datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Before any other JAX call: the distributed runtime must come up first.
    sharding.maybe_initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    return config.parse(args.gin_file, args.gin_param, factory=factory)


def print_final(final: dict) -> None:
    if final:
        # Full precision for the loss: processes of one run print the same number (tests compare).
        print(f"final loss {final['loss']!r}; " + ", ".join(f"{k}={v:.4g}" for k, v in final.items() if k != "loss"))


def run(args) -> int:
    from wm_jax.train.loop import NonFiniteLoss, train

    experiment, config_text = prepare(args)
    try:
        final = train(experiment, config_text, args.workdir, init_from=args.init_from)
    except NonFiniteLoss as error:
        print(f"wm train: {error}", file=sys.stderr)
        return 1
    print_final(final)
    return 0
