"""`wm convert`: PyTorch checkpoint(s) -> a wm_jax checkpoint directory, strictly, optionally verified.

  wm convert --layout taesd --encoder taef2_encoder.pth --decoder taef2_decoder.pth --out ae_taef2
  wm convert taef2_encoder.pth ae_taef2 --layout taesd --decoder taef2_decoder.pth --verify ref.npz

Each layout is one entry of LAYOUTS: a function (args) -> summary dict that reads the sources,
converts through its table in conversion/layouts/, writes args.out, and, given --verify,
returns the max abs errors against the reference file. Add `dit` and `oasis` there.
Files are read with conversion.torch_reader: no torch, no pickle code run.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

import numpy as np


def _taesd(args: argparse.Namespace) -> dict:
    from conversion import torch_reader
    from conversion.layouts import taesd
    from wm_jax import autoencoder as ae

    encoder_path = args.encoder or args.src
    if not encoder_path:
        raise ValueError("--layout taesd needs the encoder file (SRC or --encoder) and --decoder, or one file with both")
    enc = torch_reader.load_state_dict(encoder_path, key=args.key)
    if args.decoder:
        enc_sd, dec_sd = enc.tensors, torch_reader.load_state_dict(args.decoder, key=args.key).tensors
    else:  # one file holding encoder.* and decoder.*
        enc_sd, dec_sd = taesd.split(enc.tensors)
    config, variables = taesd.convert(enc_sd, dec_sd)
    file_dtypes = sorted({str(v.dtype) for v in list(enc_sd.values()) + list(dec_sd.values())})
    info = {
        "layout": "taesd",
        "encoder": os.path.abspath(encoder_path),
        "decoder": os.path.abspath(args.decoder or encoder_path),
        "source_key": enc.source_key,
        "file_dtypes": file_dtypes,
    }
    summary = {
        **info,
        "config": config,
        "parameters": int(sum(np.size(x) for x in _leaves(variables["params"]))),
        "stored_dtype": "float32",
    }
    if args.verify:
        with np.load(args.verify) as ref:
            summary["max_abs_error"] = taesd.verify(config, variables, dict(ref))
    ae.save(args.out, config, variables, info=info)
    return summary


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    else:
        yield tree


# layout name -> converter. Future: "dit" (DiT/SiT/REPA naming), "oasis" (spatio-temporal DiT).
LAYOUTS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "taesd": _taesd,
}


def run(args: argparse.Namespace) -> int:
    args.out = args.out or args.dst
    if not args.out:
        raise ValueError("no output directory: give DST or --out")
    if os.path.exists(args.out) and os.listdir(args.out):
        raise ValueError(f"output directory {args.out} exists and is not empty")
    summary = LAYOUTS[args.layout](args)
    for key, value in summary.items():
        if key != "max_abs_error":
            print(f"{key:>14}: {value}")
    print(f"{'written':>14}: {os.path.abspath(args.out)}")
    errors = summary.get("max_abs_error")
    if errors is not None:
        worst = max(errors.values())
        for part, err in errors.items():
            print(f"{'max abs error':>14}: {part} {err:.3g} (tolerance {args.tolerance:g})")
        if not worst <= args.tolerance:
            print(f"wm convert: verification failed: max abs error {worst:.3g} > {args.tolerance:g}", file=sys.stderr)
            return 1
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert PyTorch weights (.pt/.pth/.safetensors) into a wm_jax checkpoint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", nargs="?", help="source checkpoint (taesd: the encoder file)")
    p.add_argument("dst", nargs="?", help="output directory (same as --out)")
    p.add_argument("--layout", required=True, choices=sorted(LAYOUTS), help="naming scheme of the source")
    p.add_argument("--encoder", help="taesd: encoder file (instead of SRC)")
    p.add_argument("--decoder", help="taesd: decoder file (omit when SRC holds encoder.* and decoder.*)")
    p.add_argument("--out", help="output directory, read back by the matching wm_jax load()")
    p.add_argument("--key", default=None, help="entry of a training checkpoint to take (default: ema, else model)")
    p.add_argument("--verify", help="reference .npz in PyTorch layout; exit 1 if the converted model misses it")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max abs error allowed by --verify")
    p.set_defaults(func=run)
