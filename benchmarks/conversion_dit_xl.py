"""Time and peak memory of `wm convert --layout dit` on a DiT-XL/2-sized (675M-parameter) checkpoint.

    .venv/bin/python benchmarks/conversion_dit_xl.py [--workdir DIR] [--keep]

Builds a randomly initialised DiT-XL/2 (latent 32x32x4, patch 2, width 1152, depth 28, 16 heads,
1000 classes + null, learn-sigma) with the PyTorch reference in tests/, saves its state_dict with
torch.save into a temporary directory (never into the repository), frees it, then runs
`wm convert SRC DST --layout dit --heads 16` as a child process and reports the child's wall time
and peak resident memory (os.wait4 -> ru_maxrss), next to the checkpoint's size. Prints one JSON
object. Needs ~8 GB of free disk and torch in the venv.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _make_checkpoint(path: str) -> int:
    import torch

    sys.path.insert(0, os.path.join(REPO, "tests"))
    from torch_dit_reference import DiT

    torch.manual_seed(0)
    model = DiT(input_size=32, patch=2, in_channels=4, dim=1152, depth=28, heads=16, num_classes=1000, learn_sigma=True)
    params = sum(p.numel() for p in model.state_dict().values())
    torch.save(model.state_dict(), path)
    del model
    gc.collect()
    return int(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", help="where to put the checkpoint and the output (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the checkpoint and the converted model")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `wm convert` arguments")
    args = parser.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="wm_convert_bench_")
    os.makedirs(workdir, exist_ok=True)
    src, dst = os.path.join(workdir, "dit_xl_2.pt"), os.path.join(workdir, "converted")
    try:
        start = time.perf_counter()
        params = _make_checkpoint(src)
        made = time.perf_counter() - start
        command = [os.path.join(REPO, ".venv", "bin", "wm"), "convert", src, dst, "--layout", "dit", "--heads", "16", *args.extra]
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            print(output, file=sys.stderr)
            raise SystemExit(f"wm convert failed with status {status}")
        ckpt_bytes = os.path.getsize(src)
        out_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(dst) for f in files)
        peak = usage.ru_maxrss * 1024  # Linux reports KiB
        print(json.dumps({
            "command": " ".join(["wm", *command[1:]]).replace(workdir, "$WORKDIR"),
            "parameters": params,
            "checkpoint_bytes": ckpt_bytes,
            "output_bytes": out_bytes,
            "make_checkpoint_s": round(made, 1),
            "convert_wall_s": round(wall, 1),
            "convert_user_s": round(usage.ru_utime, 1),
            "convert_sys_s": round(usage.ru_stime, 1),
            "convert_peak_rss_bytes": peak,
            "convert_peak_rss_gib": round(peak / 2**30, 2),
            "peak_over_checkpoint": round(peak / ckpt_bytes, 2),
            "wm_convert_output": output.strip().splitlines(),
        }, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
