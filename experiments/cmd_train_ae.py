"""`wm train-ae --gin_file F.gin [--gin_param B ...] --workdir DIR`: train the project's own
autoencoder (L1 + LPIPS), or resume DIR; exports DIR/autoencoder with latent statistics."""

from __future__ import annotations

import argparse
import logging
import sys

EPILOG = """\
examples:
  wm record image_pan --out recordings/ae_smoke_pan --episodes 6 --steps 24 --resolution 32x32 --no-zoom
  wm train-ae --gin_file experiments/configs/ae_smoke.gin --workdir runs/ae_smoke
  wm train-ae --gin_file experiments/configs/ae_doom_pan64.gin --workdir runs/ae_doom_pan64

Restarting on an existing workdir resumes from its latest checkpoint (params, EMA, optimizer,
data position); the gin configuration must be the same. Outputs in WORKDIR: config.gin,
checkpoints/, metrics.jsonl, tb/, eval/reconstruction_<step>.png, latent_stats.json and
autoencoder/ (EMA params + latent stats: `wm_jax.autoencoder.load(DIR)`, or `Experiment.latents`
of `wm train`).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-ae", help="train the project's autoencoder (L1 + LPIPS) from gin configs; resumes a workdir",
        description="Train a TAESD-family autoencoder on frames of recorded datasets, then measure its "
                    "latent normalisation on training frames and export it to WORKDIR/autoencoder. "
                    "Same checkpoints, metrics and resume as `wm train`.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--gin_file", action="append", default=[], required=True, help="gin config file (repeatable)")
    parser.add_argument("--gin_param", action="append", default=[], help="gin binding, e.g. 'AutoencoderExperiment.num_steps = 10' (repeatable)")
    parser.add_argument("--workdir", required=True, help="run directory: created, or resumed if it holds checkpoints")
    parser.add_argument("--coordinator", help="multi-host: coordinator address host:port (else $JAX_COORDINATOR_ADDRESS)")
    parser.add_argument("--num_processes", type=int, help="multi-host: number of processes (else $JAX_NUM_PROCESSES)")
    parser.add_argument("--process_id", type=int, help="multi-host: this process's index (else $JAX_PROCESS_ID)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from wm_jax.train import autoencoder, config, sharding
    from wm_jax.train.loop import NonFiniteLoss

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("absl", "jax", "orbax", "grain", "tensorflow_datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sharding.maybe_initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    experiment, config_text = config.parse(args.gin_file, args.gin_param, factory=autoencoder.AutoencoderExperiment)
    try:
        final = autoencoder.train(experiment, config_text, args.workdir)
    except NonFiniteLoss as error:
        print(f"wm train-ae: {error}", file=sys.stderr)
        return 1
    export = final.pop("export", None)
    if final:
        print(f"final loss {final['loss']!r}; " + ", ".join(f"{k}={v:.4g}" for k, v in final.items() if k != "loss"))
    if export:
        print(f"autoencoder written to {export}")
    return 0
