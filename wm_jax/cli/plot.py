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
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    from wm_jax.train.metrics import read_metrics

    rows = read_metrics(args.workdir)
    keys = [k for k in args.keys.split(",") if k]
    series = {k: [(r["step"], r[k]) for r in rows if isinstance(r.get(k), (int, float))] for k in keys}
    if not any(series.values()):
        raise ValueError(f"{args.workdir}: no values for {', '.join(keys)} in metrics.jsonl")
    lr = [(r["step"], r["learning_rate"]) for r in rows if "learning_rate" in r]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, points in series.items():
        if points:
            ax.plot(*zip(*points), label=key, marker="." if len(points) < 30 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    if lr:
        twin = ax.twinx()
        twin.plot(*zip(*lr), color="gray", alpha=0.4, linestyle="--", label="learning_rate")
        twin.set_ylabel("learning rate")
    ax.legend(loc="upper right")
    ax.set_title(os.path.basename(os.path.abspath(args.workdir)))
    out = args.out or os.path.join(args.workdir if os.path.isdir(args.workdir) else os.path.dirname(args.workdir), "loss.png")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out} ({sum(len(p) for p in series.values())} points)")
    return 0
