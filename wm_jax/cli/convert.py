"""`wm convert`: PyTorch checkpoint(s) -> a wm_jax checkpoint directory, strictly, optionally verified.

  wm convert --layout taesd --encoder taef2_encoder.pth --decoder taef2_decoder.pth --out ae_taef2
  wm convert taef2_encoder.pth ae_taef2 --layout taesd --decoder taef2_decoder.pth --verify ref.npz
  wm convert DiT-XL-2-256x256.pt dit_xl --layout dit --heads 16 [--class-label 207]
  wm convert repa.pt wm_from_repa --layout dit --timestep-scale 1 --prediction velocity --to-world-model wm_516m
  wm convert oasis500m.safetensors oasis --layout oasis --latent-size 18x32
  wm convert vit-l-20.safetensors oasis_vae --layout oasis-vae [--frame-size 360x640] --verify ref.npz

dit: DiT/SiT/REPA naming; shapes give everything but the head count (--heads). The class
table's null row (or --class-label N) becomes the action embedding's bias; pos_embed is checked
against wm_jax's fixed table, not loaded. --to-world-model NAME puts the image model into the
spatial blocks of that named configuration (its spatial fields are overridden by the
checkpoint's shapes, and the summary lists them); temporal blocks and the action kernel start at
their identity initialisation. oasis: the open Oasis spatio-temporal DiT; its head count is read
from whichever rotary table the file stores (16, Oasis 500M's, when none is; --heads overrides).
Both write a wm_jax model directory (wm_jax.model.save) plus conversion.json (provenance).
oasis-vae: Oasis' ViT autoencoder (vit-l-20), written as a wm_jax autoencoder directory whose
normalised latents are the Oasis DiT's (the posterior mean x 0.07843137255); convert it first
and pass it to `wm convert --layout oasis --autoencoder OASIS_VAE_DIR` (a playable bundle), or to
`wm play/rollout --checkpoint OASIS_DIR --autoencoder OASIS_VAE_DIR`.

The objective each model was trained with is recorded in its config, so every sampler samples
it that way: dit, DDPM epsilon-prediction with linear betas over 1000 steps (learned sigma when
the head has 2C channels); oasis, v-prediction with sigmoid betas over 1000 steps. A DiT-layout
checkpoint with --timestep-scale other than 1000 (SiT, REPA) does not say its objective: pass
--prediction (REPA: velocity; SiT runs time the other way, which no objective here samples).

This command only turns flags into a call of the library (wm_jax.conversion: convert, verify,
save; the same for every layout, one module per layout in conversion/layouts/) and prints.
Files are read with conversion.torch_reader: no torch, no pickle code run.
"""

from __future__ import annotations

import argparse
import sys

from wm_jax.conversion.layouts import NAMES  # names only: `wm --help` imports no jax

# Flags passed to the layout as options of the same name, when given; a layout that does not
# take one refuses it (the library's UnknownOptions, said here in flags).
OPTION_FLAGS = ("heads", "timestep_scale", "prediction", "noise_schedule", "diffusion_steps", "class_label",
                "to_world_model", "latent_size", "max_frames", "frame_size", "autoencoder")
SIZE_EXAMPLES = {"latent_size": "18x32", "frame_size": "360x640"}


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def _parse_size(text: str, flag: str, example: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected HxW, e.g. {example}") from None
    return h, w


def _source(args: argparse.Namespace):
    """SRC, or taesd's two files as the parts of one source."""
    first = args.encoder or args.src
    if not first:
        raise ValueError("no source checkpoint: give SRC (taesd: or --encoder, with --decoder)")
    return {"encoder": first, "decoder": args.decoder} if args.decoder else first


def _options(args: argparse.Namespace) -> dict:
    options = {name: getattr(args, name) for name in OPTION_FLAGS if getattr(args, name) is not None}
    for name, example in SIZE_EXAMPLES.items():
        if name in options:
            options[name] = _parse_size(options[name], _flag(name), example)
    return options


def run(args: argparse.Namespace) -> int:
    from wm_jax import conversion

    out = args.out or args.dst
    if not out:
        raise ValueError("no output directory: give DST or --out")
    conversion.check_output_dir(out)  # before the (long) conversion, not after it
    try:
        converted = conversion.convert(_source(args), args.layout, key=args.key, **_options(args))
    except conversion.UnknownOptions as error:
        flags = [_flag(name) for name in error.accepted if name in OPTION_FLAGS]
        raise ValueError(f"{', '.join(map(_flag, error.names))} do(es) not apply to --layout {error.layout} "
                         f"(its flags: {', '.join(flags) or 'none beyond SRC, DST, --key, --verify'})") from None
    errors = conversion.verify(converted, args.verify) if args.verify else None
    written = conversion.save(converted, out)  # written even when --verify fails, to look into
    for key, value in conversion.summary(converted).items():
        print(f"{key:>14}: {value}")
    print(f"{'written':>14}: {written}")
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
    p.add_argument("--layout", required=True, choices=NAMES, help="naming scheme of the source")
    p.add_argument("--encoder", help="taesd: encoder file (same as SRC)")
    p.add_argument("--decoder", help="taesd: decoder file (omit when SRC holds encoder.* and decoder.*)")
    p.add_argument("--out", help="output directory, read back by the matching wm_jax load()")
    p.add_argument("--key", default=None, help="entry of a training checkpoint to take (default: ema, else model)")
    p.add_argument("--verify", help="reference .npz in PyTorch layout; exit 1 if the converted model misses it")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max abs error allowed by --verify")
    p.add_argument("--heads", type=int, default=None,
                   help="dit/oasis/oasis-vae: attention heads, which shapes cannot tell (default: dit and oasis-vae 16; "
                        "oasis: read from a stored rotary table, else 16)")
    p.add_argument("--timestep-scale", type=float, default=None,
                   help="dit: the source's timestep embedding sees scale*t for t in [0,1]: 1000 for DiT (default), 1 for SiT/REPA")
    # Choices as in wm_jax.diffusion (not imported here: `wm --help` starts without jax).
    p.add_argument("--prediction", choices=["velocity", "epsilon", "v_prediction"], default=None,
                   help="dit/oasis: what the model predicts, when not the layout's own (dit: epsilon, oasis: "
                        "v_prediction); required for dit with --timestep-scale other than 1000 (SiT/REPA)")
    p.add_argument("--noise-schedule", choices=["flow", "linear", "cosine", "sigmoid"], default=None,
                   help="dit/oasis: the noise path it was trained on (default: the layout's; flow for --prediction velocity)")
    p.add_argument("--diffusion-steps", type=int, default=None,
                   help="dit/oasis: the DDPM-family schedule's training steps (default 1000, both layouts')")
    p.add_argument("--class-label", type=int, default=None,
                   help="dit: class-table row to bake in as the constant conditioning (default: the null row, the last)")
    p.add_argument("--to-world-model", metavar="CONFIG",
                   help="dit: put the image DiT into the spatial blocks of this named world-model configuration "
                        "(e.g. wm_516m, tiny); temporal blocks and action kernel start at identity")
    p.add_argument("--latent-size", help="oasis: latent HxW the model runs on (shapes cannot tell; default 18x32)")
    p.add_argument("--max-frames", type=int, default=None,
                   help="oasis: frames of context (default 32, Oasis'); window = this - 1")
    p.add_argument("--frame-size", help="oasis-vae: frame HxW the autoencoder is built for (default 360x640, Oasis')")
    p.add_argument("--autoencoder", metavar="AE_DIR",
                   help="oasis: also write world.json, making DST a world bundle that decodes through AE_DIR (a "
                        "converted --layout oasis-vae directory), so `wm play --checkpoint DST` needs nothing else")
    p.set_defaults(func=run)
