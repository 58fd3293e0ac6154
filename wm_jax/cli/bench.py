"""`wm bench`: latency, throughput, compile time, memory and utilisation of the streaming step."""

from __future__ import annotations

import json
import os

from wm_jax.cli import flags


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure the streaming step: latency, fps, compile time, memory, utilisation, int8, GPU projection",
        description=(
            "Measure the KV-cache streaming step of a model configuration on this machine (untrained params "
            "with every block active; timings do not depend on the weights): per-frame latency p50/p95/p99 "
            "and fps with and without decoding, the recompute-everything baseline and the cache's speedup, "
            "compile time cold and from JAX's persistent cache (two fresh processes), XLA memory and KV-cache "
            "bytes, peak RSS, achieved FLOP/s against a matmul peak measured in the same run, latency against "
            "window / latent size / denoising steps. --quantize int8 adds weight-only int8 (size, speed, PSNR "
            "against fp32 on the same noise); --roofline adds, for the large configurations, one frame timed "
            "here and a roofline projection to RTX 4090 / RTX 5090 / H100. Writes JSON and a markdown table; "
            "the load average is recorded at the start and the end."
        ),
    )
    parser.add_argument("--config", default="tiny", help="model configuration (default tiny)")
    parser.add_argument("--compute-dtype", choices=["float32", "bfloat16"], default=None, help="override the configuration's matmul dtype (params stay fp32)")
    parser.add_argument("--world", default=None, metavar="NAME|DIR",
                        help="time a world bundle (a shipped name or a directory) as it plays: its model, autoencoder "
                             "and sampler (steps, guidance, context noise); --steps / --guidance override")
    flags.add_sampler_flags(parser, steps_help="denoising steps per frame (default 4, or the world's)")
    parser.add_argument("--guidance", type=float, default=None,
                        help="action guidance (default 1, or the world's); > 1 runs a null-action branch beside every step")
    parser.add_argument("--frames", type=int, default=50, help="frames timed per measurement (default 50)")
    parser.add_argument("--sweep-windows", type=_ints, default=(2, 4, 8, 16), metavar="W,W,..", help="windows to sweep (default 2,4,8,16; '' skips)")
    parser.add_argument("--sweep-latent-sizes", type=_ints, default=(8, 16, 32), metavar="S,S,..", help="square latent sizes to sweep (default 8,16,32)")
    parser.add_argument("--sweep-steps", type=_ints, default=(1, 2, 4, 8), metavar="N,N,..", help="denoising steps to sweep (default 1,2,4,8)")
    parser.add_argument("--checkpoint", default=None, metavar="DIR", help="trained model directory (wm_jax.model.save); overrides --config")
    parser.add_argument("--no-decode", action="store_true", help="skip the with-decoding timings")
    parser.add_argument("--autoencoder", default=None, metavar="DIR", help="trained autoencoder for the decode timings (default: random-init TAESD-family decoder of the same shape)")
    parser.add_argument("--no-compile", action="store_true", help="skip the cold / persistent-cache compile timings (two subprocesses)")
    parser.add_argument("--quantize", choices=["int8"], default=None, help="also measure weight-only int8 against fp32")
    parser.add_argument("--roofline", nargs="*", default=None, metavar="NAME",
                        help="time one frame of these configurations here and project GPU fps (default when given bare: wm_516m wm_800m; ~10 min on 2 cores)")
    parser.add_argument("--profile", default=None, metavar="DIR", help="also write a jax.profiler trace of a few steps to DIR")
    parser.add_argument("--out", default=None, metavar="FILE.json", help="write the JSON report here (and FILE.md beside it)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    from wm_jax import bench, configs
    from wm_jax import bundle as world_lib
    from wm_jax.bench.profiling import profile_step
    from wm_jax.diffusion import SamplerConfig

    checkpoint, autoencoder, sampler = args.checkpoint, args.autoencoder, SamplerConfig()
    if checkpoint:  # the sampler a model directory records (a converted Oasis: Oasis' recipe), else the default
        sampler = world_lib.recorded_sampler(checkpoint)
    if args.world:
        info, model_dir, bundled_ae, _ = world_lib.read_bundle(world_lib.locate(args.world))
        checkpoint, autoencoder, sampler = str(model_dir), autoencoder or str(bundled_ae), info.sampler
    overrides = {"steps": args.steps, "guidance": args.guidance, "method": args.sampler, "eta": args.eta,
                 "temperature": args.temperature, "memory": args.memory}
    sampler = sampler.overridden(**overrides)
    if not checkpoint:
        configs.get_config(args.config)  # fail early on a bad name
    roofline = () if args.roofline is None else (tuple(args.roofline) or ("wm_516m", "wm_800m"))
    report = bench.run(
        args.config, sampler, args.frames,
        sweep_windows=args.sweep_windows, sweep_latent_sizes=args.sweep_latent_sizes, sweep_steps=args.sweep_steps,
        with_decode=not args.no_decode, with_compile=not args.no_compile, quantize=args.quantize,
        roofline_configs=roofline, autoencoder_dir=autoencoder, checkpoint=checkpoint, compute_dtype=args.compute_dtype, progress=not args.quiet,
    )
    if args.profile:
        from wm_jax import model as wm_model

        profiled = wm_model.load(checkpoint)[0] if checkpoint else configs.get_config(args.config)
        report["profile"] = profile_step(profiled, sampler, args.profile)
    table = bench.markdown(report)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
        with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
            f.write(table)
    print(table)
    if not args.out:
        print(json.dumps(report, indent=2))
    return 0
