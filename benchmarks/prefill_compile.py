"""Compile time of `rollout.init_state`'s prefill for 1, 8 and 31 context frames (issue 20).

    .venv/bin/python benchmarks/prefill_compile.py --config tiny --window 32

Lowers and compiles the prefill with abstract params (nothing is allocated or run), so a large
configuration (e.g. wm_516m) is measured without its weights.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from wm_jax import configs, model, rollout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny", help="a named configuration (wm info NAME)")
    parser.add_argument("--window", type=int, default=32, help="KV-cache frames (default 32, as Oasis)")
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 8, 31], help="context lengths to compile for")
    args = parser.parse_args()
    config = configs.get_config(args.config, window=args.window, max_frames=args.window + 1)
    params = model.abstract_params(config)
    for t in args.frames:
        context = jax.ShapeDtypeStruct((1, t, *config.latent_size, config.in_channels), jnp.float32)
        actions = jax.ShapeDtypeStruct((1, t, config.action_dim), jnp.float32)
        start = time.perf_counter()
        lowered = rollout._prefill.lower(config, rollout.SamplerConfig(), params, context, actions, jax.random.key(0))
        traced = time.perf_counter()
        lowered.compile()
        done = time.perf_counter()
        print(f"{args.config} window {args.window}, {t:>2} context frames: trace+lower {traced - start:6.2f} s, "
              f"compile {done - traced:6.2f} s", flush=True)


if __name__ == "__main__":
    main()
