"""A copy of a world whose `x0_residual` head paints a fraction of its change: how much of what a
painted part costs is the painter's content, and how much the way it is shown (BUILD_NOTES session 27).

    python -m experiments.scaled_head --world pan --scale 0 --out runs/pan_head0

The head's change is the model's final linear layer's output (`['final']['linear']`, after its
adaLN modulation, which is left alone), so scaling that layer's kernel and bias by S scales the
change: S = 0 paints nothing, and a painted part is the model's fill (the latent mirror) decoded and
shown as painted; S = 1 is the world itself. The copy keeps the world's bundle otherwise (keys,
sampler, zoom, still mask, matching) and is evaluated with the world's own commands.
"""

from __future__ import annotations

import argparse

import jax

from wm_jax import bundle
from wm_jax import world as world_lib

HEAD = "['final']['linear']"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="world bundle directory or shipped name")
    parser.add_argument("--scale", type=float, required=True, help="the factor on the head's change (0: none)")
    parser.add_argument("--out", required=True, help="a new bundle directory")
    args = parser.parse_args(argv)
    world = world_lib.load_world(bundle.locate(args.world))
    if world.config.prediction != "x0_residual":
        raise SystemExit(f"world {args.world!r} predicts {world.config.prediction!r}: only an x0_residual head paints a change")
    params = jax.tree_util.tree_map_with_path(
        lambda path, x: x * args.scale if jax.tree_util.keystr(path).startswith(HEAD) else x, world.params)
    info = world.info
    bundle.save_world(args.out, name=f"{info.name}_head{args.scale:g}", config=world.config, params=params,
                      ae_config=world.ae_config, ae_variables=world.ae_variables, keys=dict(info.keys), fps=info.fps,
                      start_image=world.start_image, sampler=info.sampler, zoom_keys=dict(info.zoom_keys),
                      zoom_range=info.zoom_range, still_mask=info.still_mask, match_picture=info.match_picture,
                      description=f"{info.name} with its head's change x {args.scale:g} (experiments.scaled_head)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
