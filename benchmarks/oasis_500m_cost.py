"""The real Oasis 500M configuration with random weights (issue 16): `wm convert --layout oasis`
time and peak memory, then the per-frame time of the cached step (Oasis' recipe) against the
recompute-everything loop (Oasis' own: the whole 32-frame window re-run per denoising step).

    taskset -c 1 nice -n 10 .venv/bin/python benchmarks/oasis_500m_cost.py [--steps 1] [--frames 5] [--recompute-frames 2]

Builds open-oasis' DiT-S/2 shape (width 1024, depth 16, 16 heads, patch 2, 16 latent channels,
25 actions; 608M parameters) with the PyTorch reference in tests/, PyTorch default init, saves it
as .safetensors without the rotary tables (as the released file) into a temporary directory
(never the repository), runs `wm convert SRC DST --layout oasis --latent-size 18x32` as a child
(wall time, peak RSS from os.wait4), then in another child times `rollout.make_step` with the
converted directory's recorded sampler (DDIM, --steps steps) with the cache full (31 slots; keys
and values random: the cost does not depend on their values), and `rollout.recompute_step` at
the same window. Prints one JSON object. Needs ~5 GB free memory and ~5 GB of disk.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _make_checkpoint(path: str) -> int:
    import torch

    sys.path.insert(0, os.path.join(REPO, "tests"))
    from test_conversion_dit import write_safetensors
    from torch_reference_oasis import OasisDiT

    torch.manual_seed(0)
    model = OasisDiT(patch=2, channels=16, dim=1024, depth=16, heads=16, mlp_ratio=4.0, action_dim=25)
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items() if not k.endswith("freqs")}
    write_safetensors(path, sd)
    count = int(sum(v.size for v in sd.values()))
    del model, sd
    gc.collect()
    return count


def _child(argv: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS GiB, stdout) of a child process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{argv} failed: {out}")
    return time.perf_counter() - started, usage.ru_maxrss / 2**20, out


def time_steps(directory: str, steps: int, frames: int, recompute_frames: int) -> dict:
    """Seconds per frame of the cached step and of the recompute baseline (medians, after a
    first call that compiles)."""
    import dataclasses

    import jax
    import jax.numpy as jnp
    import numpy as np

    from wm_jax import model as wm_model
    from wm_jax import rollout
    from wm_jax import bundle

    config, params = wm_model.load(directory)
    sampler = dataclasses.replace(bundle.recorded_sampler(directory), steps=steps)
    gen = np.random.default_rng(0)
    empty = wm_model.empty_cache(config, 1)
    w = empty.window
    fill = lambda a: jnp.asarray(gen.standard_normal(a.shape, np.float32)) if a.ndim >= 4 else a  # keys and values
    state = rollout.RolloutState(cache=jax.tree_util.tree_map(fill, empty).replace(
        frame_W=jnp.arange(w, dtype=jnp.int32), count=jnp.asarray(w, jnp.int32)))
    action = jnp.zeros((1, config.action_dim), jnp.float32)

    def timed(step, state, n):
        seconds = []
        for i in range(n + 1):
            started = time.perf_counter()
            state, latent = step(params, state, action, jax.random.key(i))
            latent.block_until_ready()
            seconds.append(time.perf_counter() - started)
        return seconds

    cached = timed(rollout.make_step(config, sampler), state, frames)
    recompute_step = jax.jit(lambda p, s, a, r: rollout.recompute_step(p, s, a, r, config=config, sampler=sampler),
                             donate_argnums=(1,))
    context = jnp.asarray(gen.standard_normal((1, w, *config.latent_size, config.in_channels), np.float32))
    recompute = timed(recompute_step, rollout.init_window_state(config, context), recompute_frames)
    return {
        "window": f"{w} cached frames + the new one",
        "sampler": f"{sampler.method}, {steps} steps",
        "cached_s_per_frame": [round(s, 2) for s in cached],
        "cached_median_s": round(float(np.median(cached[1:])), 2),
        "recompute_s_per_frame": [round(s, 2) for s in recompute],
        "recompute_median_s": round(float(np.median(recompute[1:])), 2),
        "speedup": round(float(np.median(recompute[1:]) / np.median(cached[1:])), 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),  # this child's
        "note": "first entry of each list includes compiling; medians over the rest",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", help="where the checkpoint and the converted directory go (default: a temp dir)")
    parser.add_argument("--steps", type=int, default=1, help="DDIM steps per frame (Oasis' default is 10; 1 keeps the recompute loop short)")
    parser.add_argument("--frames", type=int, default=5, help="cached frames timed after the first")
    parser.add_argument("--recompute-frames", type=int, default=2, help="recompute frames timed after the first")
    parser.add_argument("--no-timing", action="store_true", help="convert only: skip the step timings")
    parser.add_argument("--time-only", metavar="DIR", help="(internal) time a converted directory and print JSON")
    parser.add_argument("--make-only", metavar="SRC", help="(internal) write the random checkpoint and print its size")
    args = parser.parse_args()
    if args.time_only:
        print(json.dumps(time_steps(args.time_only, args.steps, args.frames, args.recompute_frames)))
        return
    if args.make_only:
        print(_make_checkpoint(args.make_only))
        return
    # Every heavy part runs in a child of this small process: a child's peak RSS starts from its
    # parent's resident size at fork (Linux keeps it across exec), so the parent must stay small.
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        src, dst = os.path.join(work, "oasis500m_random.safetensors"), os.path.join(work, "oasis500m_wm")
        wall, rss, out = _child([sys.executable, __file__, "--make-only", src])
        report = {"parameters": int(out.strip().splitlines()[-1]), "checkpoint_gib": round(os.path.getsize(src) / 2**30, 2),
                  "make_checkpoint_s": round(wall, 1)}
        wall, rss, _ = _child([sys.executable, "-m", "wm_jax.cli", "convert", src, dst, "--layout", "oasis",
                               "--latent-size", "18x32"])
        report["convert"] = {"wall_s": round(wall, 1), "peak_rss_gib": round(rss, 2)}
        os.remove(src)
        if args.no_timing:
            print(json.dumps(report, indent=2))
            return
        _, _, out = _child([sys.executable, __file__, "--time-only", dst, "--steps", str(args.steps),
                            "--frames", str(args.frames), "--recompute-frames", str(args.recompute_frames)])
        report["step"] = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
