"""`wm train-ae --gin_file F.gin [--gin_param B ...] --workdir DIR`: train the project's own
autoencoder (L1 + LPIPS), or resume DIR; exports DIR/autoencoder with latent statistics."""

from __future__ import annotations

import argparse
import sys

from wm_jax.cli.train import add_run_arguments, prepare, print_final

EPILOG = """\
examples:
  wm record image_pan --out recordings/ae_smoke_pan --episodes 6 --steps 24 --resolution 32x32 --no-zoom
  wm train-ae --gin_file experiments/configs/ae_smoke.gin --workdir runs/ae_smoke
  wm train-ae --gin_file experiments/configs/ae_doom_pan64.gin --workdir runs/ae_doom_pan64
  wm train-ae --gin_file experiments/configs/ae_doom_pan64_decoder.gin --workdir runs/ae_doom_pan64_decoder

AutoencoderExperiment.keep_encoder = 'DIR' (an exported autoencoder) trains DIR's decoder alone, from
its weights, and exports it with DIR's encoder and latent statistics: the latents stay the same
numbers, so world models trained on DIR's latents run unchanged with the new decoder.

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
    add_run_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from wm_jax.train import autoencoder
    from wm_jax.train.loop import NonFiniteLoss

    experiment, config_text = prepare(args, factory=autoencoder.AutoencoderExperiment)
    try:
        final = autoencoder.train(experiment, config_text, args.workdir)
    except NonFiniteLoss as error:
        print(f"wm train-ae: {error}", file=sys.stderr)
        return 1
    export = final.pop("export", None)
    print_final(final)
    if export:
        print(f"autoencoder written to {export}")
    return 0
