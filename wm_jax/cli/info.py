"""`wm info NAME`: parameters, tokens and the cost of one generated frame for a configuration."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "info",
        help="parameter counts and per-frame cost of a model configuration",
        description=(
            "Print total / spatial / temporal / embedding parameter counts, tokens per frame, KV-cache "
            "bytes and the FLOPs of one generated frame, from XLA's cost analysis of the compiled "
            "streaming step (compiling the 516M/800M configurations takes about a minute on a CPU; "
            "no parameters are allocated)."
        ),
    )
    parser.add_argument("name", help="configuration name: tiny, image_420m, wm_516m, wm_800m")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per frame (default 4)")
    parser.add_argument("--no-cost", action="store_true", help="skip compiling the step (counts only)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args) -> int:
    from wm_jax import configs, info
    from wm_jax.diffusion import SamplerConfig

    config = configs.get_config(args.name)
    described = info.describe(config, SamplerConfig(steps=args.steps), with_cost=not args.no_cost)
    if args.json:
        print(json.dumps({"name": args.name, **described}, indent=2))
        return 0
    print(f"{args.name}")
    for group, count in described["parameters"].items():
        print(f"  {group + ' parameters':<24} {count:>15,}  ({count / 1e6:.1f}M)")
    print(f"  {'tokens per frame':<24} {described['tokens_per_frame']:>15,}")
    print(f"  {'temporal layers':<24} {described['temporal_layers']:>15,}")
    print(f"  {'KV cache bytes (B=1)':<24} {described['kv_cache_bytes_per_batch_element']:>15,}")
    if "frame" in described:
        print(f"  {'GFLOPs per frame':<24} {described['frame']['flops'] / 1e9:>15,.2f}  ({args.steps} denoising steps + 1 cache pass)")
    return 0
