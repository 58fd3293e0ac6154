"""What the released Oasis ViT autoencoder (ViT-VAE-L/20) costs here: converting it, and encoding
and decoding one 360x640 frame (issue 16).

Writes a random-weight `.safetensors` with every key and shape of the released vit-l-20 (read
off `conversion/layouts/oasis_vae.py`'s table: no download, no torch), converts it with
`wm convert --layout oasis-vae` in a subprocess (wall time and peak RSS of that process), then
loads the result and times `autoencoder.encode` / `decode` of one frame: the first call
(compile included) and the median of the next ones.

    nice -n 10 .venv/bin/python benchmarks/oasis_vae_cost.py [--repeats 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from wm_jax.conversion.layouts import oasis_vae
from wm_jax.conversion.table import flatten_target
from wm_jax import autoencoder as ae


def random_state_dict(config: ae.AutoencoderConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Every key of the released checkpoint, in PyTorch's layout, drawn at a ViT-like scale."""
    gen = np.random.default_rng(seed)
    targets = flatten_target(ae.abstract_variables(config)["params"])
    sd = {}
    for row in oasis_vae.table(config).rows:
        shape = row.transform.source_shape(tuple(targets[row.flax_path].shape))
        if row.flax_path[-1] == "scale":
            sd[row.torch_key] = np.ones(shape, np.float32)
        else:
            sd[row.torch_key] = (0.02 * gen.standard_normal(shape)).astype(np.float32)
    return sd


def _timed(fn, repeats: int) -> tuple[float, float]:
    """(first call s, median of the next `repeats` s)."""
    start = time.perf_counter()
    fn().block_until_ready()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn().block_until_ready()
        times.append(time.perf_counter() - start)
    return first, float(np.median(times))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", help="write the files here instead of a temporary folder (kept)")
    args = parser.parse_args(argv)
    from safetensors.numpy import save_file

    config = oasis_vae.OASIS_VIT_L20
    folder = args.keep or tempfile.mkdtemp(prefix="oasis_vae_cost_")
    os.makedirs(folder, exist_ok=True)
    src, out = os.path.join(folder, "vit-l-20-random.safetensors"), os.path.join(folder, "oasis_vae")
    sd = random_state_dict(config)
    save_file(sd, src)
    parameters = int(sum(v.size for v in sd.values()))
    del sd
    load = os.getloadavg()
    wm = os.path.join(os.path.dirname(sys.executable), "wm")
    start = time.perf_counter()
    subprocess.run([wm, "convert", src, out, "--layout", "oasis-vae"], check=True, stdout=subprocess.DEVNULL)
    convert_s = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux

    cfg, variables = ae.load(out)
    frame = np.random.default_rng(1).uniform(-1, 1, (1, *cfg.frame_size, 3)).astype(np.float32)
    encode_first, encode_s = _timed(lambda: ae.encode(variables, frame, cfg), args.repeats)
    latent = ae.encode(variables, frame, cfg)
    decode_first, decode_s = _timed(lambda: ae.decode(variables, latent, cfg), args.repeats)
    result = {
        "parameters": parameters,
        "file_gib": round(os.path.getsize(src) / 2**30, 3),
        "convert_s": round(convert_s, 1),
        "convert_peak_rss_gib": round(peak_gib, 2),
        "encode_first_s": round(encode_first, 2), "encode_s": round(encode_s, 2),
        "decode_first_s": round(decode_first, 2), "decode_s": round(decode_s, 2),
        "latent_shape": list(latent.shape),
        "load_average_before": [round(x, 2) for x in load], "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(), "folder": folder,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
