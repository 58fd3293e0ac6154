"""`wm export-world WORKDIR --name NAME --out DIR`: a trained run as a playable world bundle."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-world",
        help="turn a finished `wm train` run into a world bundle for `wm play` / `wm rollout`",
        description=(
            "Reads WORKDIR/config.gin and the latest checkpoint's EMA params, and writes a world bundle "
            "(model, autoencoder, world.json, start.png) to --out. Put it under wm_jax/worlds/NAME to ship "
            "it, or point $WM_WORLDS at its parent folder."
        ),
    )
    parser.add_argument("workdir", help="a `wm train` workdir of the 'world' stage")
    parser.add_argument("--name", required=True, help="the world's name, as `wm play --world NAME` will know it")
    parser.add_argument("--out", required=True, help="directory to write the bundle to (must not hold one)")
    parser.add_argument(
        "--keys", required=True,
        help="the keys the world answers to, with what they do, comma-separated: 'w=forward,s=back,left=turn left'",
    )
    parser.add_argument("--fps", type=float, default=20.0, help="frames per second the player paces to (default 20)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per frame (default 4)")
    parser.add_argument("--guidance", type=float, default=1.0,
                        help="action guidance: 1 plain conditional sampling, >1 pushes away from the null action "
                             "(twice the model work per step; default 1)")
    parser.add_argument("--guidance-min-level", type=float, default=0.0, metavar="T",
                        help="guidance only at denoising steps starting at noise level >= T (default 0: every step)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="standard deviation of each frame's starting noise (default 1; below 1 trades variety "
                             "for frames nearer the model's likeliest: a small one-step painter's confetti calms at 0.8)")
    parser.add_argument("--memory", type=int, default=0, metavar="N",
                        help="latent pixels beyond each edge of the view the world remembers, so that what a pan or "
                             "turn carried out of view comes back as it was (wm_jax.memory; the model must keep its "
                             "moved frame: paint_uncovered_only; default 0: none)")
    parser.add_argument("--memory-wraps", action="store_true",
                        help="close the remembered columns into a circle of the view's width plus 2 x --memory latent "
                             "pixels: a turn all the way round shows what it started from (a first-person view "
                             "turning on the spot; size --memory to the game's turn: doom's COMMANDS.md)")
    parser.add_argument("--context-noise", type=float, default=0.0,
                        help="noise level at which finished frames enter the cache (default 0: clean)")
    parser.add_argument("--start-image", help="default start image (any size; center-cropped and resized)")
    parser.add_argument("--description", default="", help="one line shown in the player")
    parser.add_argument("--zoom-keys", default="", metavar="KEY=SCALE,...",
                        help="keys the world zooms the camera with, in pixels, and their scale per frame (> 1 zooms in): "
                             "'e=1.1,q=0.9091' (each also in --keys; the model must be paint_uncovered_only; "
                             "wm_jax.pixel_zoom). Default: none")
    parser.add_argument("--zoom-range", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="the camera's zoom limits from the start frame (default: the recorder's, 1.1^-7 1.1^7)")
    parser.add_argument("--still-mask", metavar="FILE",
                        help="a text file outlining the sprite the model's still_region holds still (a game's weapon), "
                             "one line per pixel row, '#' marked and '.' not, at the world's resolution "
                             "(`python -m experiments.still_region_probe --mask-out FILE` writes one): the rest of the "
                             "box then shows the scene moving. Default: the whole box holds still")
    parser.add_argument("--match-picture", action="store_true",
                        help="show what the model paints with the given picture's contrast and grain (a model that keeps "
                             "its picture; wm_jax.kept_pixels.matched_to_picture). Default: as decoded")
    parser.set_defaults(func=run)


def parse_keys(text: str) -> dict[str, str]:
    keys = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, meaning = item.partition("=")
        keys[key.strip()] = meaning.strip()
    if not keys:
        raise ValueError("--keys is empty; give e.g. 'w=forward,s=back'")
    return keys


def parse_zoom_keys(text: str) -> dict[str, float]:
    zoom_keys = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, scale = item.partition("=")
        try:
            zoom_keys[key.strip()] = float(scale)
        except ValueError:
            raise ValueError(f"--zoom-keys: {item!r} is not KEY=SCALE (e.g. 'e=1.1')") from None
    return zoom_keys


def read_still_mask(path: str) -> tuple[str, ...]:
    """--still-mask FILE: its non-empty lines, each a pixel row of '#' and '.'."""
    rows = tuple(line.strip() for line in open(path).read().splitlines() if line.strip())
    bad = next((i for i, row in enumerate(rows) if set(row) - {"#", "."}), None)
    if not rows or bad is not None:
        raise ValueError(f"--still-mask {path}: expected lines of '#' (the sprite) and '.' (not), one per pixel row; "
                         + (f"line {bad + 1} holds {sorted(set(rows[bad]) - {'#', '.'})}" if rows else "the file is empty"))
    return rows


def run(args) -> int:
    from wm_jax import images, pixel_zoom
    from wm_jax.diffusion import SamplerConfig
    from wm_jax.train.export import export_world

    start = images.read(args.start_image) if args.start_image else None
    still_mask = read_still_mask(args.still_mask) if args.still_mask else ()
    out = export_world(
        args.workdir, args.out, name=args.name, keys=parse_keys(args.keys), fps=args.fps,
        sampler=SamplerConfig(steps=args.steps, guidance=args.guidance, context_noise=args.context_noise,
                              guidance_min_level=args.guidance_min_level, temperature=args.temperature, memory=args.memory,
                              memory_wraps=args.memory_wraps), start_image=start, description=args.description,
        zoom_keys=parse_zoom_keys(args.zoom_keys), zoom_range=tuple(args.zoom_range or pixel_zoom.DEFAULT_RANGE),
        still_mask=still_mask, match_picture=args.match_picture,
    )
    print(f"wrote world {args.name!r} to {out}")
    return 0
