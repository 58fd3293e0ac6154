"""`wm plot WORKDIR`: loss curves from WORKDIR/metrics.jsonl to a PNG."""

from __future__ import annotations

import os


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "plot", help="draw a training run's loss curves to a PNG",
        description="Read WORKDIR/metrics.jsonl (written by `wm train`) and draw loss (and eval_loss, "
                    "learning rate) against step, log-scale loss axis.",
    )
    parser.add_argument("workdir", help="a `wm train` workdir (or a metrics.jsonl file)")
    parser.add_argument("--out", help="output PNG (default WORKDIR/loss.png)")
    parser.add_argument("--keys", default="loss,eval_loss", help="comma-separated metrics to draw (default loss,eval_loss)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from wm_jax.plots import plot_loss_curves
    from wm_jax.train.metrics import read_metrics

    keys = [k for k in args.keys.split(",") if k]
    out = args.out or os.path.join(args.workdir if os.path.isdir(args.workdir) else os.path.dirname(args.workdir), "loss.png")
    try:
        points = plot_loss_curves(read_metrics(args.workdir), keys, out, title=os.path.basename(os.path.abspath(args.workdir)))
    except ValueError as e:
        raise ValueError(f"{args.workdir}: {e}") from None
    print(f"wrote {out} ({points} points)")
    return 0
