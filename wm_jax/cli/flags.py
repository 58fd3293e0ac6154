"""Flags that several `wm` commands share, defined once so that their names, choices and help
agree everywhere. Importing this loads no jax: `wm --help` stays fast."""

from __future__ import annotations

import argparse

from wm_jax import samplers  # the registry: --sampler's choices


def add_sampler_flags(parser: argparse.ArgumentParser, steps_help: str) -> None:
    """--steps, --sampler, --eta, --temperature, --memory: how each frame is denoised (unset: the world's own)."""
    parser.add_argument("--steps", type=int, default=None, help=steps_help)
    parser.add_argument("--sampler", choices=samplers.choices(), default=None, metavar="METHOD",
                        help="denoising method, one of %(choices)s: auto is the model's objective's own (euler for rectified "
                             "flow, ddim for an imported DDPM-family model) (default: the world's, else auto)")
    parser.add_argument("--eta", type=float, default=None, help="ddim: 0 deterministic (default), 1 DDPM-like noise")
    parser.add_argument("--temperature", type=float, default=None,
                        help="standard deviation of each frame's starting noise: 1 the training noise, below 1 nearer "
                             "the model's likeliest frame (default: the world's, else 1)")
    parser.add_argument("--memory", type=int, default=None, metavar="N",
                        help="latent pixels beyond each edge of the view that the rollout remembers, so that what a "
                             "pan or turn carried out of view comes back as it was (wm_jax.memory; 0: none; default: "
                             "the world's, else 0; in a world whose memory wraps, N also sets the circle: the view's "
                             "width plus 2N)")


def add_streaming_flags(parser: argparse.ArgumentParser) -> None:
    """--rebuild-context and --quantize: how a world streams (`wm play`, `wm rollout`)."""
    parser.add_argument("--rebuild-context", action="store_true", default=None,
                        help="rebuild the KV cache from the window's frames every frame: a converted Oasis then samples "
                             "exactly as Oasis' own sliding-window loop past its window (default: each frame written once, "
                             "the same until the window is full; costs window - 1 frame passes a frame)")
    parser.add_argument("--quantize", choices=["int8"],
                        help="int8: keep the world model's kernels int8 (weight-only, per-channel scales) and dequantise "
                             "inside each step; 4x less weight memory, slower on this CPU (BUILD_NOTES, Measure)")
