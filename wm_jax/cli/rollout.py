"""`wm rollout`: a scripted, headless rollout from an image to a video or an image strip."""

from __future__ import annotations

import os
import pathlib
import time

from wm_jax.cli import flags

FORMATS = (".mp4", ".gif", ".png")
STRIP_COLUMNS = 16


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "rollout",
        help="generate frames from an image and a key script, write a video or a strip",
        description=(
            "Roll a world out from a start image with a scripted sequence of held keys (one jit-compiled "
            "lax.scan per 16 frames) and write OUT.mp4, OUT.gif, or OUT.png (a strip, 16 frames per row). "
            "The first frame is the start image (center-cropped and resized to the world's resolution). "
            "Deterministic for a seed."
        ),
        epilog=(
            "key scripts: frames are separated by commas or spaces; keys held together are joined with '+'; "
            "'_' or an empty item is a frame with no keys; '*N' repeats. "
            'Examples: --keys "w,w,a,,d"   --keys "W*10 A*5 _*3 w+shift*4". '
            'JSONL: one line per frame, ["w", "shift"] or {"keys": ["w"], "repeat": 3}.'
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--world", metavar="NAME", help="a shipped world (wm_jax/worlds/, $WM_WORLDS)")
    source.add_argument("--checkpoint", metavar="DIR", help="a world bundle or a model directory")
    parser.add_argument("--autoencoder", metavar="DIR|NAME", help="autoencoder for a bare model directory (see wm play --help)")
    parser.add_argument("--image", metavar="IN", help="start image of any size (default: the world's own)")
    script = parser.add_mutually_exclusive_group()
    script.add_argument("--keys", metavar="SCRIPT", help='keys held for each generated frame, e.g. "W*10 A*5"')
    script.add_argument("--actions", metavar="FILE.jsonl", help="the same as a JSONL file, one line per frame")
    parser.add_argument("--frames", type=int, help="frames to generate (default: the script's length; a shorter "
                                                    "script is padded with no keys, a longer one cut)")
    parser.add_argument("--out", required=True, metavar="OUT", help="output file: .mp4, .gif, or .png (image strip)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    flags.add_sampler_flags(parser, steps_help="denoising steps per frame (default: the world's own)")
    flags.add_streaming_flags(parser)
    parser.add_argument("--fps", type=float, help="frame rate of the video (default: the world's)")
    parser.add_argument("--scale", type=int, default=0,
                        help="integer upscaling of the frames (default: videos to at least 256 pixels, strips 1)")
    parser.set_defaults(func=run)


def _script(args) -> list[tuple[str, ...]]:
    from wm_jax import keyscript

    try:
        if args.actions:
            frames = keyscript.parse_jsonl(pathlib.Path(args.actions).read_text(), args.actions)
        else:
            frames = keyscript.parse(args.keys or "")
    except KeyError as error:  # an unknown key name: show the message, not a KeyError repr
        raise ValueError(error.args[0]) from None
    if args.frames is not None:
        if args.frames < 1:
            raise ValueError("--frames must be at least 1")
        frames = (frames + [()] * args.frames)[: args.frames]
    if not frames:
        raise ValueError("nothing to generate: give --keys, --actions or --frames N")
    return frames


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from wm_jax import diffusion, images
    from wm_jax import bundle
    from wm_jax import world as wm_world

    out = pathlib.Path(args.out)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"--out {args.out}: the suffix must be one of {', '.join(FORMATS)}")
    _check_writable(out)  # inputs and output are checked before anything loads or generates
    frames_script = _script(args)
    try:
        image = images.read(args.image) if args.image else None
    except images.ImageError as error:
        raise ValueError(f"--image {error}") from None
    path = bundle.resolve(args.world) if args.world else pathlib.Path(args.checkpoint)
    world = wm_world.load_world(path, autoencoder_spec=args.autoencoder, sampler_steps=args.steps,
                                 sampler_method=args.sampler, eta=args.eta, temperature=args.temperature, memory=args.memory,
                                 rebuild_context=args.rebuild_context,
                                 quantization=args.quantize)
    _check_keys(frames_script, world)
    method = diffusion.sampler_method(world.config.objective, world.info.sampler)
    sampler = world.info.sampler
    recipe = "".join([
        f"; context clean, labelled level {sampler.context_noise:g}" if sampler.context_noise and not sampler.context_noised else "",
        f"; noise clamped at {sampler.noise_clamp:g}" if sampler.noise_clamp else "",
        "; the cache rebuilt from the window every frame" if sampler.rebuild_context else "",
    ])
    print(f"{world}: {len(frames_script)} frames, seed {args.seed}, {sampler.steps} denoising steps "
          f"({method}{recipe}; the model's objective: {world.config.objective.describe()})")

    marks: list[float] = []  # time after each chunk
    started = time.perf_counter()
    with tqdm(total=len(frames_script), unit="frame", desc="rollout") as bar:
        def progress(n: int) -> None:
            bar.update(n)
            marks.append(time.perf_counter())

        frames = world.rollout(image, frames_script, seed=args.seed, progress=progress)
    elapsed = time.perf_counter() - started
    chunk = wm_world.ROLLOUT_CHUNK
    if len(marks) > 1:
        # The first chunk includes compiling; every chunk computes `chunk` frames (the last one
        # is padded), so the steady rate is chunks x chunk size over the time after the first.
        rate = (f"{(len(marks) - 1) * chunk / (marks[-1] - marks[0]):.1f} frames/s after the first {chunk}-frame "
                f"chunk (which took {marks[0] - started:.1f} s, compile included)")
    else:
        rate = f"{len(frames_script) / elapsed:.1f} frames/s, compile included (one chunk)"
    print(f"generated {len(frames_script)} frames in {elapsed:.1f} s: {rate}; decoding included")

    scale = args.scale or (1 if out.suffix.lower() == ".png" else max(1, -(-256 // min(world.resolution))))
    if scale > 1:
        frames = np.repeat(np.repeat(frames, scale, axis=1), scale, axis=2)
    write(out, frames, args.fps or world.info.fps)
    print(f"wrote {out} ({len(frames)} frames with the start frame, {frames.shape[2]}x{frames.shape[1]})")
    return 0


def _check_writable(out: pathlib.Path) -> None:
    """Create --out's folder and a file beside where --out goes, then remove the file: a failure
    here costs nothing, after generating it would cost the whole rollout."""
    import tempfile

    if out.is_dir():
        raise ValueError(f"--out {out}: is a directory; give a file name ending in {', '.join(FORMATS)}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".wm_rollout_probe_"):
            pass
        if out.exists() and not os.access(out, os.W_OK):
            raise PermissionError(f"{out} is read-only")
    except OSError as error:
        raise ValueError(f"--out {out}: cannot write there ({error.strerror or error})") from None


def _check_keys(frames_script, world) -> None:
    """Every scripted key must be one the world answers to: a key it ignores would silently do
    nothing (e.g. ctrl in pan)."""
    known = [key for key, _ in world.info.keys]
    unknown = sorted({key for keys in frames_script for key in keys} - set(known))
    if unknown:
        raise ValueError(f"the script holds {', '.join(unknown)}, which {world.info.name!r} does not answer to; "
                         f"its keys: {', '.join(known)}")


def write(path: pathlib.Path, frames, fps: float) -> None:
    """frames: uint8 [T, H, W, 3] -> .mp4 (H.264 via PyAV), .gif (Pillow) or .png (a strip)."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".png":
        t, h, w, _ = frames.shape
        rows = -(-t // STRIP_COLUMNS)
        columns = min(t, STRIP_COLUMNS)
        strip = np.zeros((rows * h, columns * w, 3), np.uint8)
        for i, frame in enumerate(frames):
            r, c = divmod(i, STRIP_COLUMNS)
            strip[r * h : (r + 1) * h, c * w : (c + 1) * w] = frame
        Image.fromarray(strip).save(path)
    elif suffix == ".gif":
        pictures = [Image.fromarray(f) for f in frames]
        pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=max(20, round(1000 / fps)), loop=0)
    else:
        try:
            import av
        except ImportError:
            raise ValueError("writing .mp4 needs PyAV: pip install -e '.[sources]' (or write .gif / .png)") from None
        from fractions import Fraction

        h, w = frames.shape[1:3]
        frames = frames[:, : h - h % 2, : w - w % 2]  # yuv420p needs even sizes
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18"}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            container.mux(stream.encode())
