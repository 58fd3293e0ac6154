"""`wm play`: serve worlds to a browser page on 127.0.0.1 (frames over a WebSocket)."""

from __future__ import annotations

import atexit
import errno
import shutil
import signal
import sys
import tempfile

from wm_jax.cli import flags

NO_WORLD = """\
wm play: no world is available to play.
  None found in {where} (the shipped pan and doom live in wm_jax/worlds/).
  Play a checkpoint:   wm play --checkpoint DIR      a world bundle, or a model directory (+ --autoencoder)
  See the machinery:   wm play --demo                an untrained tiny world: moving noise, not a game
  (with make:          make play PLAY_ARGS="--checkpoint DIR"   or   make play PLAY_ARGS=--demo)
"""
PORT_TAKEN = ('wm play: port {port} on {host} is taken (another wm play?); choose another with --port N '
              '(make play PLAY_ARGS="--port N"; 0 picks a free one)')


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "play",
        help="play worlds in your browser (serves http://127.0.0.1:8000/)",
        description=(
            "Serve a page that streams generated frames and sends the keys you hold. Every world found in "
            "the shipped folder (wm_jax/worlds/) and in $WM_WORLDS is listed in the page's world selector, "
            "plus any --checkpoint; --world chooses which one starts. Binds 127.0.0.1 unless --host says "
            "otherwise; Ctrl+C stops."
        ),
    )
    parser.add_argument("--world", metavar="NAME", help="the world to start with (default: pan, else the first shipped one)")
    parser.add_argument("--checkpoint", metavar="DIR", action="append", default=[],
                        help="a world bundle directory, or a model directory written by wm_jax.model.save "
                             "(repeatable; the first becomes the default)")
    parser.add_argument("--autoencoder", metavar="DIR|NAME",
                        help="autoencoder for --checkpoint model directories: a directory written by "
                             "wm_jax.autoencoder.save, or a pixel configuration (pixel_p1, pixel_p2, pixel_p4)")
    parser.add_argument("--demo", action="store_true",
                        help="add an untrained tiny demo world (random weights, 64x64, made in a temp folder)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--fps", type=float, help="target frames per second (default: each world's own)")
    flags.add_sampler_flags(parser, steps_help="denoising steps per frame (default: each world's own)")
    flags.add_streaming_flags(parser)
    parser.add_argument("--seed", type=int, default=0, help="random seed of every (re)start (default 0)")
    parser.add_argument("--max-sessions", type=int, default=4, help="players at once; more get a 'busy' answer (default 4)")
    parser.add_argument("--max-upload-mb", type=float, default=16.0, help="largest image upload in MB (default 16)")
    parser.set_defaults(func=run)


def _entries(args) -> tuple[dict, str | None]:
    import pathlib

    from wm_jax import bundle

    entries = dict(bundle.available_worlds())
    default = None
    if args.world:
        bundle.resolve(args.world)  # a clear KeyError if it does not exist
        default = args.world
    for checkpoint in args.checkpoint:
        path = pathlib.Path(checkpoint).resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"--checkpoint {checkpoint}: not a directory")
        name = path.name
        while name in entries:
            name += "'"
        entries[name] = path
        default = default or name
    if args.demo:
        folder = tempfile.mkdtemp(prefix="wm_demo_world_")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        print("making the untrained demo world…", flush=True)
        from wm_jax.demo_world import make_demo_world

        entries["demo"] = make_demo_world(pathlib.Path(folder) / "demo")
        default = default or "demo"
    return entries, default


def _port_is_taken(host: str, port: int) -> bool:
    """Whether binding would fail because something listens there: checked before seconds of
    loading and compiling a world, with the server's own socket options."""
    import socket

    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def run(args) -> int:
    from wm_jax import bundle
    from wm_jax.serve import server

    if _port_is_taken(args.host, args.port):
        print(PORT_TAKEN.format(port=args.port, host=args.host), file=sys.stderr)
        return 2
    entries, default = _entries(args)
    if not entries:
        where = ", ".join(str(p) for p in bundle.search_path())
        print(NO_WORLD.format(where=where), file=sys.stderr, end="")
        return 2
    registry = server.WorldRegistry(entries, default, autoencoder_spec=args.autoencoder, sampler_steps=args.steps,
                                    sampler_method=args.sampler, eta=args.eta, temperature=args.temperature, memory=args.memory,
                                    rebuild_context=args.rebuild_context,
                                       quantization=args.quantize)
    print(f"loading world {registry.default!r} (compiling its step)…", flush=True)
    registry.load(registry.default)  # fail now, not in the browser, and make the first frame fast
    try:
        httpd = server.serve(registry, args.host, args.port, max_sessions=args.max_sessions, seed=args.seed,
                             fps=args.fps, max_upload=int(args.max_upload_mb * 1e6))
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        print(PORT_TAKEN.format(port=args.port, host=args.host), file=sys.stderr)  # taken while loading
        return 2
    if not httpd.loopback_only:
        print(f"warning: bound to {args.host}: anyone who can reach this address can use the server", file=sys.stderr)
    print(f"worlds: {', '.join(entries)} (default {registry.default})")
    print(f"wm play: serving on {httpd.url}  (open it in a browser; Ctrl+C stops)", flush=True)
    # SIGTERM (a service manager, a test harness) stops it like Ctrl+C: the demo folder is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        httpd.server_close()
    return 0
