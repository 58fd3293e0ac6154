"""Every PNG figure the project draws from its reports (matplotlib, files only, no display):

* `plot_drift`: `wm eval --data`, each metric against horizon per prediction;
* `plot_long_horizon`: `wm eval --long-horizon`, per-chunk frame statistics and resident memory;
* `plot_stability`: `wm eval --stability`, per-block figures against the bars, and a contact sheet;
* `plot_loss_curves`: `wm plot`, a training run's losses and learning rate against step.
"""

from __future__ import annotations

import os

import numpy as np


def _pyplot():
    """matplotlib.pyplot on the Agg backend: figures go to files, never to a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str) -> None:
    """Lay out, write (making the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_drift(result: dict, path: str) -> str:
    """PNG of each metric against horizon, one line per prediction (`evaluation.evaluate`'s report)."""
    plt = _pyplot()
    metrics = list(next(iter(result["metrics"].values())).keys())
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6))
    axes = np.atleast_1d(axes)
    styles = {"teacher_forced": "-o", "autoregressive": "-s", "copy_last": "--", "copy_first": ":", "teacher_forced_copy_last": "-.", "autoencoder": "-"}
    for ax, metric in zip(axes, metrics):
        for name, values in result["metrics"].items():
            ax.plot(result["horizon"], values[metric], styles.get(name, "-"), label=name, markersize=3)
        ax.set_xlabel("horizon (frames after the context)")
        ax.set_ylabel(metric + (" (dB)" if metric == "psnr" else ""))
        ax.set_title(f"{metric} vs horizon" + (" (lower is better)" if metric == "lpips" else ""))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    save_figure(fig, path)
    return path


def plot_long_horizon(result: dict, path: str) -> str:
    """PNG of the per-chunk frame statistics and resident memory (`evaluation.long_horizon`'s report)."""
    plt = _pyplot()
    x = [r["end_frame"] for r in result["chunks"]]
    keys = ("mean", "variance", "sharpness", "rss_bytes")
    fig, axes = plt.subplots(1, len(keys), figsize=(18, 3.4))
    for ax, key in zip(axes, keys):
        y = [r[key] / 2**20 if key == "rss_bytes" else r[key] for r in result["chunks"]]
        ax.plot(x, y, "-")
        ax.set_title("resident memory (MiB)" if key == "rss_bytes" else f"{key} per chunk ({result.get('statistics_of', 'latents')})")
        ax.set_xlabel("frame")
        ax.grid(alpha=0.3)
    save_figure(fig, path)
    return path


def plot_stability(report: dict, path: str) -> str:
    """PNG of `stability.run`'s report: per block, each figure per script (drift plot) beside the
    bars its `targets` checked; and a contact sheet of every script's last frame per block
    (`_last_frames`, when present) beside it as PATH stem + _frames.png."""
    from PIL import Image

    plt = _pyplot()
    bars = report["targets"]
    panels = [("sharpness_ratio", bars["sharpness_ratio_range"]["bar"]), ("std_ratio", bars["std_ratio_range"]["bar"]),
              ("mean_ratio", None), ("frechet", None), ("psnr_vs_start_last", (bars["still_psnr_last"]["bar"],))]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for ax, (key, bar) in zip(axes, panels):
        for name, rows in report["blocks"].items():
            if key in rows[0]:
                ax.plot([r["end_frame"] for r in rows], [r[key] for r in rows], "o-", label=name)
        for value in bar or ():
            ax.axhline(value, color="grey", ls="--", lw=1)
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("frame (end of block)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    save_figure(fig, path)
    frames = report.get("_last_frames")
    if frames:
        # Rows: script x start; columns: blocks.
        rows = [np.concatenate(blocks_of_start, axis=1) for blocks in frames.values() for blocks_of_start in zip(*blocks)]
        Image.fromarray(np.concatenate(rows, axis=0)).save(os.path.splitext(path)[0] + "_frames.png")
    return path


def plot_loss_curves(rows: list[dict], keys, path: str, title: str = "") -> int:
    """PNG of `keys` (rows of metrics.jsonl) against step on a log axis, the learning rate on a
    second axis when logged -> the number of points drawn. Raises when no key has a value."""
    series = {k: [(r["step"], r[k]) for r in rows if isinstance(r.get(k), (int, float))] for k in keys}
    if not any(series.values()):
        raise ValueError(f"no values for {', '.join(keys)} in metrics.jsonl")
    plt = _pyplot()
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
    ax.set_title(title)
    save_figure(fig, path)
    return sum(len(p) for p in series.values())
