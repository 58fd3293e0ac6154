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
    from wm_jax.conversion import torch_reader
    from wm_jax.conversion.layouts import taesd

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
    return _save_autoencoder(args, config, variables, info, config, taesd.verify)


def _save_autoencoder(args, config, variables, info: dict, described, verify) -> dict:
    """Writes a converted autoencoder; the summary printed, with --verify's error against a reference."""
    from wm_jax import autoencoder as ae

    summary = {
        **info,
        "config": described,
        "parameters": int(sum(np.size(x) for x in _leaves(variables["params"]))),
        "stored_dtype": "float32",
    }
    if args.verify:
        with np.load(args.verify) as ref:
            summary["max_abs_error"] = verify(config, variables, dict(ref))
    ae.save(args.out, config, variables, info=info)
    return summary


def _file_dtypes(sd) -> list[str]:
    return sorted({str(v.dtype) for v in sd.values()})


def _parse_size(text: str, flag: str = "--latent-size", example: str = "18x32") -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected HxW, e.g. {example}") from None
    return h, w


def _to_jax_in_place(tree: dict) -> None:
    """Replace each numpy leaf by a jax array, one at a time, in its own dict.

    The converted numpy leaves are mostly views of the checkpoint's storages (transposes copy
    nothing); replacing them one by one lets each storage go as soon as its copy exists, so the
    source and the converted params never both exist in full. Orbax's save then adds one host
    copy; handing it numpy arrays instead would cost two.
    """
    import jax.numpy as jnp

    for key in list(tree):
        if isinstance(tree[key], dict):
            _to_jax_in_place(tree[key])
        else:
            tree[key] = jnp.asarray(tree[key])


def _write_model(args: argparse.Namespace, config, params, info: dict) -> None:
    import json

    from wm_jax import model as wm_model

    wm_model.save(args.out, config, params)
    with open(os.path.join(args.out, "conversion.json"), "w") as f:
        json.dump(info, f, indent=2, default=str)


def _config_line(config) -> str:
    h, w = config.latent_size
    return (
        f"latent {h}x{w}x{config.in_channels} -> {config.output_channels}, patch {config.patch_size}, "
        f"width {config.width}, depth {config.depth}, heads {config.num_heads}, mlp_ratio {config.mlp_ratio:g}, "
        f"temporal_every {config.temporal_every}, actions {config.action_dim}, window {config.window}, "
        f"max_frames {config.max_frames}"
    )


# The DiT class table (all rows, the null class last), beside a converted DiT, for `wm sample`.
CLASS_TABLE_FILE = "class_table.npy"
FLOW_PREDICTIONS = ("velocity",)  # the flow choices of --prediction (x0_residual is the project's own)


def _objective(args: argparse.Namespace, layout_default: dict | None, unknown: str = "") -> dict:
    """The objective fields (ModelConfig) to record: the layout's, with what --prediction,
    --noise-schedule and --diffusion-steps say instead; `unknown` is the error when the layout
    cannot tell and no --prediction is given."""
    fields = dict(layout_default or {})
    if args.prediction:
        fields["prediction"] = args.prediction
        if args.prediction in FLOW_PREDICTIONS:
            fields["noise_schedule"] = "flow"
        elif fields.get("noise_schedule") == "flow":
            del fields["noise_schedule"]
    if args.noise_schedule:
        fields["noise_schedule"] = args.noise_schedule
    if args.diffusion_steps:
        fields["diffusion_steps"] = args.diffusion_steps
    if "prediction" not in fields:
        raise ValueError(unknown)
    if "noise_schedule" not in fields:
        raise ValueError(f"--prediction {fields['prediction']} needs --noise-schedule (linear, cosine or sigmoid): "
                         "the checkpoint does not say which betas it was trained with")
    fields.setdefault("diffusion_steps", 1000)
    return fields


def _dit(args: argparse.Namespace) -> dict:
    from wm_jax.conversion import torch_reader
    from wm_jax.conversion.layouts import dit
    from wm_jax import configs

    if not args.src:
        raise ValueError("--layout dit needs the checkpoint SRC")
    # Shapes cannot tell how the source scaled time before its timestep embedding, nor, for a
    # SiT or REPA checkpoint (same naming, time unscaled), what it was trained to predict.
    objective = _objective(args, dit.OBJECTIVE if args.timestep_scale == 1000.0 else None, unknown=(
        f"a DiT-layout checkpoint fed t unscaled (--timestep-scale {args.timestep_scale:g}: SiT, REPA) does not say "
        "its objective, and it is not DiT's (DDPM epsilon): pass --prediction velocity for REPA (rectified flow on "
        "wm_jax's path), or --prediction and --noise-schedule for another; SiT runs time the other way (t = 1 is "
        "data), which no objective here samples"))
    loaded = torch_reader.load_state_dict(args.src, key=args.key)
    world = configs.get_config(args.to_world_model) if args.to_world_model else None
    dtypes = _file_dtypes(loaded.tensors)
    heads = dit.DEFAULT_HEADS if args.heads is None else args.heads
    converted = dit.convert(loaded.tensors, heads=heads, class_label=args.class_label, world=world)
    converted.config = converted.config.replace(timestep_scale=args.timestep_scale, **objective)
    if world is not None:  # the overrides as finally written (the objective may differ from DiT's)
        changed = set(converted.overridden) | set(objective)
        converted.overridden = {k: (getattr(world, k), getattr(converted.config, k)) for k in sorted(changed)
                                if getattr(world, k) != getattr(converted.config, k)}
    del loaded  # the source tensors: only the storages the params view stay alive
    _to_jax_in_place(converted.params)
    label, rows = converted.class_label, converted.shape.class_rows
    if label is None:
        class_row = "none (unconditional checkpoint)"
    else:
        class_row = f"{label} of {rows}" + (" (the null class)" if label == rows - 1 else "")
    info = {
        "layout": "dit",
        "source": os.path.abspath(args.src),
        "source_key": args.key,
        "file_dtypes": dtypes,
        "inferred": converted.shape.describe(),
        "heads": heads,
        "class_row": class_row,
        "objective": converted.config.objective.describe(),
        "pos_embed_diff": converted.pos_embed_error,
        "to_world_model": args.to_world_model,
        "overridden": {k: f"{a} -> {b}" for k, (a, b) in converted.overridden.items()},
        "from_init": {p: dit.FROM_INIT_REASONS[p] for p in converted.from_init},
    }
    summary = {
        **info,
        "config": _config_line(converted.config),
        "parameters": int(sum(np.size(x) for x in _leaves(converted.params))),
        "stored_dtype": "float32",
    }
    if args.verify:
        with np.load(args.verify) as ref:
            summary["max_abs_error"] = dit.verify(converted, dict(ref))
    _write_model(args, converted.config, converted.params, info)
    if converted.class_table is not None:  # wm sample conditions on any class with it
        np.save(os.path.join(args.out, CLASS_TABLE_FILE), converted.class_table)
        summary["class_table"] = f"{CLASS_TABLE_FILE} ({converted.class_table.shape[0]} rows, the last the null class)"
    return summary


def _oasis(args: argparse.Namespace) -> dict:
    from wm_jax.conversion import torch_reader
    from wm_jax.conversion.layouts import oasis

    if not args.src:
        raise ValueError("--layout oasis needs the checkpoint SRC")
    if args.to_world_model or args.class_label is not None:
        raise ValueError("--to-world-model and --class-label apply to --layout dit only (Oasis already is a world model)")
    objective = _objective(args, oasis.OBJECTIVE)
    loaded = torch_reader.load_state_dict(args.src, key=args.key)
    dtypes = _file_dtypes(loaded.tensors)
    latent = _parse_size(args.latent_size) if args.latent_size else oasis.DEFAULT_LATENT_SIZE
    oasis.infer_config(loaded.tensors, 1, latent, args.max_frames)  # "not an Oasis checkpoint" before anything else
    if args.heads is None:
        heads, heads_told = oasis.infer_heads(loaded.tensors)
    else:
        heads, heads_told = args.heads, f"{args.heads} (--heads)"
    print(f"{'heads':>14}: {heads_told}")
    config, params, checked = oasis.convert(loaded.tensors, heads=heads, latent_size=latent, max_frames=args.max_frames)
    config = config.replace(**objective)
    del loaded
    _to_jax_in_place(params)
    info = {
        "layout": "oasis",
        "source": os.path.abspath(args.src),
        "source_key": args.key,
        "file_dtypes": dtypes,
        "heads": heads_told,
        "rotary_tables_checked": len(checked),
        "objective": config.objective.describe(),
        "action_keys": ", ".join(config.action_keys),
        "camera_keys": "; ".join(f"{n}/{p}: {e} -/+{a:g}" for e, n, p, a in config.action_axes) or "none",
    }
    summary = {
        **info,
        "config": _config_line(config),
        "parameters": int(sum(np.size(x) for x in _leaves(params))),
        "stored_dtype": "float32",
    }
    if args.verify:
        with np.load(args.verify) as ref:
            summary["max_abs_error"] = oasis.verify(config, params, dict(ref))
    _write_model(args, config, params, info)
    # Sampled as Oasis samples it by default (wm rollout / wm play on this directory).
    from wm_jax import diffusion
    from wm_jax import world as wm_world

    wm_world.record_sampler(args.out, diffusion.OASIS_SAMPLER)
    summary["sampler"] = f"{wm_world.SAMPLER_FILE}: Oasis' recipe ({_sampler_line(diffusion.OASIS_SAMPLER)})"
    if args.autoencoder:  # the directory becomes a world bundle decoding through that autoencoder
        wm_world.link_world(args.out, args.autoencoder, name=os.path.basename(os.path.abspath(args.out)),
                            keys=oasis.world_keys(config), fps=20.0, sampler=diffusion.OASIS_SAMPLER,
                            description=f"Oasis converted from {os.path.basename(args.src)}", provenance=info)
        summary["world"] = f"{wm_world.INFO_FILE}: autoencoder {os.path.abspath(args.autoencoder)}"
    return summary


def _sampler_line(sampler) -> str:
    context = "clean, labelled" if not sampler.context_noised else "noised to"
    return (f"{sampler.method} {sampler.steps} steps, noise clamped at {sampler.noise_clamp:g}, "
            f"context {context} level {round(sampler.context_noise * 1000)}/1000")


def _oasis_vae(args: argparse.Namespace) -> dict:
    from wm_jax.conversion import torch_reader
    from wm_jax.conversion.layouts import oasis_vae

    if not args.src:
        raise ValueError("--layout oasis-vae needs the checkpoint SRC (vit-l-20.safetensors)")
    foreign = [flag for flag, value in (("--to-world-model", args.to_world_model), ("--class-label", args.class_label),
                                        ("--latent-size", args.latent_size), ("--autoencoder", args.autoencoder),
                                        ("--prediction", args.prediction), ("--noise-schedule", args.noise_schedule),
                                        ("--diffusion-steps", args.diffusion_steps), ("--decoder", args.decoder))
               if value is not None]
    if foreign:
        raise ValueError(f"{', '.join(foreign)} do(es) not apply to --layout oasis-vae (an autoencoder: its size is "
                         "--frame-size, its heads --heads)")
    loaded = torch_reader.load_state_dict(args.src, key=args.key)
    frame = _parse_size(args.frame_size, "--frame-size", "360x640") if args.frame_size else oasis_vae.DEFAULT_FRAME_SIZE
    heads = oasis_vae.DEFAULT_HEADS if args.heads is None else args.heads
    config, variables = oasis_vae.convert(loaded.tensors, heads=heads, frame_size=frame)
    info = {
        "layout": "oasis-vae",
        "source": os.path.abspath(args.src),
        "source_key": loaded.source_key,
        "file_dtypes": _file_dtypes(loaded.tensors),
        "heads": heads,
        "latent_scale": f"{oasis_vae.SCALING_FACTOR} (latent stats std = 1/scale: normalised latents are Oasis' DiT latents)",
    }
    del loaded
    described = (f"frames {frame[0]}x{frame[1]}, patch {config.downscale}, latent {config.latent_grid[0]}x"
                   f"{config.latent_grid[1]}x{config.latent_channels}, encoder {config.width}x{config.blocks} "
                   f"({config.heads} heads), decoder {config.decoder_width}x{config.decoder_blocks} "
                   f"({config.decoder_heads} heads), mlp_ratio {config.mlp_ratio:g}")
    return _save_autoencoder(args, config, variables, info, described, oasis_vae.verify)


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    else:
        yield tree


# layout name -> converter.
LAYOUTS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "taesd": _taesd,
    "dit": _dit,  # DiT / SiT / REPA naming
    "oasis": _oasis,  # the open Oasis spatio-temporal DiT
    "oasis-vae": _oasis_vae,  # the open Oasis ViT autoencoder
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
    p.add_argument("--heads", type=int, default=None,
                   help="dit/oasis/oasis-vae: attention heads, which shapes cannot tell (default: dit and oasis-vae 16; "
                        "oasis: read from a stored rotary table, else 16)")
    p.add_argument("--timestep-scale", type=float, default=1000.0,
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
    p.add_argument("--max-frames", type=int, default=32, help="oasis: frames of context (Oasis: 32); window = this - 1")
    p.add_argument("--frame-size", help="oasis-vae: frame HxW the autoencoder is built for (default 360x640, Oasis')")
    p.add_argument("--autoencoder", metavar="AE_DIR",
                   help="oasis: also write world.json, making DST a world bundle that decodes through AE_DIR (a "
                        "converted --layout oasis-vae directory), so `wm play --checkpoint DST` needs nothing else")
    p.set_defaults(func=run)
