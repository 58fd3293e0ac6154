"""Raise a world run's action gain without changing what it computes (the shipped worlds' stage 3).

    python -m experiments.action_gain runs/pan64_stage2 --gain 16 --out runs/pan64_gain16

Reads the workdir's latest EMA params and its model configuration, divides the action
embedding (kernel and bias) by --gain and writes a model directory (wm_jax.model.save) whose
config has `action_gain` multiplied by --gain: the same function, but the keys' share of the
conditioning now learns --gain times faster (see ModelConfig.action_gain). Start the next stage
from it with `wm train ... --init_from OUT` and `ModelConfig.action_gain` set to the new gain.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir", help="a `wm train` workdir of the world stage")
    parser.add_argument("--gain", type=float, required=True, help="factor to multiply ModelConfig.action_gain by")
    parser.add_argument("--out", required=True, help="model directory to write")
    args = parser.parse_args(argv)

    from wm_jax import model
    from wm_jax.train import export, init_from

    config = export.workdir_model_config(args.workdir)
    source, params = init_from.load(args.workdir)
    params = dict(params)
    params["action_embed"] = {name: np.asarray(value) / args.gain for name, value in params["action_embed"].items()}
    config = dataclasses.replace(config, action_gain=config.action_gain * args.gain)
    model.save(args.out, config, params)
    print(f"{source}: action embedding / {args.gain:g}, action_gain {config.action_gain:g} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
