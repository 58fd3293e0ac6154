"""`wm sample`: class-conditional images from a converted DiT, as DiT's own sample.py makes them."""

from __future__ import annotations

import argparse
import pathlib

from wm_jax import samplers  # the registry: --sampler's choices

FORMATS = (".png", ".npy")
GRID_COLUMNS = 4  # DiT's sample.py saves its 8 images 4 to a row


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="class-conditional images from a converted DiT (classifier-free guidance, DDPM or DDIM)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Sample N images of one class from a class-conditional DiT converted with `wm convert --layout dit`\n"
            "(which keeps its class table, class_table.npy), the way DiT's own sample.py does: DDPM ancestral\n"
            "steps over guided-diffusion's respacing of the 1000 training steps (learned variance, x_0 not\n"
            "clipped), classifier-free guidance between the class and the null class (the table's last row)\n"
            "on the first 3 noise channels (DiT's choice; --guide-all-channels for all), from N(0, I)\n"
            "latents. DDIM (--sampler ddim, --eta) visits the same steps. A sampler that does not fit the\n"
            "model's recorded objective is refused, naming both. The latents are decoded by --autoencoder\n"
            "into a grid (4 per row), or written as they are to OUT.npy."
        ),
        epilog=(
            "example (DiT-XL/2 256x256; decode with an autoencoder of SD's VAE latents x 0.18215, e.g. TAESD "
            "converted with wm convert --layout taesd):\n"
            "  wm convert DiT-XL-2-256x256.pt dit_xl --layout dit --heads 16\n"
            "  wm sample --checkpoint dit_xl --class 207 --cfg 4 --steps 250 --autoencoder taesd_dir --out grid.png\n"
            "  wm sample --checkpoint dit_xl --class 88 --sampler ddim --steps 50 --out latents.npy"
        ),
    )
    parser.add_argument("--checkpoint", required=True, metavar="DIR", help="a DiT model directory written by wm convert --layout dit")
    parser.add_argument("--class", dest="label", type=int, required=True, metavar="N",
                        help="class to sample (ImageNet DiTs: 0..999)")
    parser.add_argument("--cfg", type=float, default=4.0,
                        help="classifier-free guidance scale (default 4, DiT's sample.py; 1: no guidance, no null pass)")
    parser.add_argument("--steps", type=int, default=250, help="denoising steps (default 250, DiT's sample.py)")
    parser.add_argument("--sampler", choices=samplers.choices(), default=None, metavar="METHOD",
                        help="ddpm (ancestral, DiT's sample.py; the default for DDPM-family models) or ddim; "
                             "euler/heun only for a flow model (auto: the objective's own)")
    parser.add_argument("--eta", type=float, default=0.0, help="ddim: 0 deterministic (default), 1 DDPM-like noise")
    parser.add_argument("--n", type=int, default=8, help="images to sample (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--guide-all-channels", action="store_true",
                        help="guide every noise channel (the standard rule) instead of DiT's first 3")
    parser.add_argument("--autoencoder", metavar="DIR|NAME",
                        help="decodes the latents for a .png (a wm_jax autoencoder directory, or a pixel configuration name)")
    parser.add_argument("--out", required=True, metavar="OUT", help="OUT.png (a grid of decoded images) or OUT.npy (latents [N, h, w, c])")
    parser.set_defaults(func=run)


def load_class_table(checkpoint: str):
    """(config, class table [classes + 1, D]) of a converted DiT directory, without its weights."""
    import json

    import numpy as np

    from wm_jax.conversion import CLASS_TABLE_FILE
    from wm_jax import bundle
    from wm_jax import model as wm_model

    path = pathlib.Path(checkpoint)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"--checkpoint {path}: no config.json; convert a DiT with wm convert SRC {path} --layout dit")
    bundle.check_objective_recorded(path)
    table = path / CLASS_TABLE_FILE
    if not table.is_file():
        raise ValueError(f"--checkpoint {path} has no {CLASS_TABLE_FILE}: it is not a class-conditional DiT, or it was "
                         "converted before wm convert kept the class table; convert the checkpoint again (--layout dit)")
    config = wm_model.config_from_dict(json.loads((path / "config.json").read_text()))
    class_table = np.load(table, allow_pickle=False)
    if class_table.ndim != 2 or class_table.shape[1] != config.width:
        raise ValueError(f"{table}: shape {class_table.shape}, expected [classes + 1, {config.width}]")
    return config, class_table


def grid(frames_NHWC, columns: int = GRID_COLUMNS):
    """uint8 frames [N, H, W, 3] -> one uint8 image, `columns` to a row."""
    import numpy as np

    n, h, w, _ = frames_NHWC.shape
    rows, columns = -(-n // columns), min(n, columns)
    out = np.zeros((rows * h, columns * w, 3), np.uint8)
    for i, frame in enumerate(frames_NHWC):
        r, c = divmod(i, columns)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w] = frame
    return out


def run(args) -> int:
    import jax
    import numpy as np
    from PIL import Image

    from wm_jax import class_conditional, diffusion
    from wm_jax import world as wm_world

    out = pathlib.Path(args.out)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"--out {args.out}: the suffix must be one of {', '.join(FORMATS)}")
    if out.suffix.lower() == ".png" and not args.autoencoder:
        raise ValueError("--out .png decodes the latents: pass --autoencoder DIR (an autoencoder of the DiT's latent "
                         "space), or write the latents to OUT.npy")
    if args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}")
    config, class_table = load_class_table(args.checkpoint)  # bad input refused before the weights load
    class_D, null_D = class_conditional.class_rows(class_table, args.label)
    method = args.sampler or ("auto" if config.objective.is_flow else "ddpm")
    sampler = class_conditional.dit_sampler(args.steps, method, args.eta)
    method = diffusion.sampler_method(config.objective, sampler)  # a misfit refused, naming both
    ae = None
    if args.autoencoder:
        ae = wm_world.load_autoencoder(args.autoencoder)
        if ae[0].latent_channels != config.in_channels:
            raise ValueError(f"--autoencoder {args.autoencoder} makes {ae[0].latent_channels}-channel latents; "
                             f"the DiT's have {config.in_channels}")
    from wm_jax import model as wm_model

    params = wm_model.load(args.checkpoint)[1]
    guided = None if args.guide_all_channels else class_conditional.DIT_GUIDED_CHANNELS
    print(f"{args.checkpoint}: class {args.label}, {args.n} images, {method} {args.steps} steps (DiT's respacing), "
          f"guidance {args.cfg:g} on {'all' if guided is None else guided} channels; the model's objective: "
          f"{config.objective.describe()}")
    h, w = config.latent_size
    rng_noise, rng_steps = jax.random.split(jax.random.key(args.seed))
    noise = jax.random.normal(rng_noise, (args.n, h, w, config.in_channels))
    run_sample = class_conditional.make_sample(config, sampler, args.cfg, guided)
    latents = np.asarray(run_sample(params, class_D, null_D, noise, rng_steps))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        np.save(out, latents)
        print(f"wrote {out} (latents {list(latents.shape)})")
        return 0
    from wm_jax import autoencoder

    frames = np.asarray(wm_world.to_uint8(autoencoder.decode(ae[1], latents, ae[0])))
    Image.fromarray(grid(frames)).save(out)
    print(f"wrote {out} ({args.n} images {frames.shape[2]}x{frames.shape[1]}, {GRID_COLUMNS} per row)")
    return 0
