"""One Markdown row per `wm eval --stability` report: the issue-15 comparison table.

    python -m experiments.stability_table runs/proxy/eval/*.json

Columns: the sampler (steps / guidance, with the lowest noise level it applies at / context
noise); per script the worst block's sharpness and colour-std ratios; the
Fréchet growth (last block over first) of the worst script, with the worst first block's
distance to the real frames in brackets (a world that is garbage from the first block on grows
little); the still run's PSNR against its
start at the last frame; teacher-forced PSNR against copy-last; autoregressive LPIPS at h = 1
and 16 against copy-first, and the horizons h at which it is below copy-first (a run of them
written first-last).
"""

from __future__ import annotations

import argparse
import json
import os


def row(path: str) -> str:
    with open(path) as f:
        report = json.load(f)
    s, st = report["sampler"], report["stability"]
    guided_from = s.get("guidance_min_level", 0.0)
    guidance = f"{s['guidance']:g}" + (f" (t >= {guided_from:g})" if guided_from and s["guidance"] != 1 else "")
    cells = [os.path.splitext(os.path.basename(path))[0], f"{s['steps']} / {guidance} / {s['context_noise']:g}"]
    for rows in st["blocks"].values():
        sharp = [r["sharpness_ratio"] for r in rows]
        std = [r["std_ratio"] for r in rows]
        cells.append(f"{min(sharp):.2f}-{max(sharp):.2f} / {min(std):.2f}-{max(std):.2f}")
    growth = st["targets"]["frechet_growth"]["per_script"]
    first = max(rows[0]["frechet"] for rows in st["blocks"].values())
    cells.append(f"{max(growth.values()):.2f} ({first:.0f})")
    cells.append(f"{st['blocks']['none'][-1]['psnr_vs_start_last']:.1f}")
    held = report.get("held_out", {}).get("metrics", {})
    if held:
        mean = report["held_out"]["mean"]
        cells.append(f"{mean['teacher_forced']['psnr']:.2f} vs {mean['teacher_forced_copy_last']['psnr']:.2f}")
        ar, cf = held["autoregressive"].get("lpips"), held["copy_first"].get("lpips")
        if ar:
            cells.append(f"{ar[0]:.3f} / {ar[-1]:.3f} vs {cf[0]:.3f} / {cf[-1]:.3f}; below at h = {horizons_below(ar, cf)}")
    return "| " + " | ".join(cells) + " |"


def horizons_below(generated, copied) -> str:
    """'1-6, 10': the 1-based horizons at which `generated` is below `copied`, runs joined."""
    below = [h for h, (g, c) in enumerate(zip(generated, copied), start=1) if g < c]
    runs = []
    for h in below:
        if runs and h == runs[-1][1] + 1:
            runs[-1][1] = h
        else:
            runs.append([h, h])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs) or "none"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", help="JSON reports of `wm eval --stability`")
    args = parser.parse_args(argv)
    print("| run | steps / guidance / context noise | sharpness / std ratio, per script (min-max over blocks) ... "
          "| Fréchet growth (worst script) (worst first block) | still PSNR @600 | TF PSNR vs copy-last | AR LPIPS h1 / h16 vs copy-first; below it at h = |")
    for path in args.reports:
        print(row(path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
