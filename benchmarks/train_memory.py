"""Memory per device of the compiled training step, from XLA's memory analysis, without
allocating anything: abstract params/state, fake host devices, compile only.

    .venv/bin/python benchmarks/train_memory.py --config wm_516m --devices 8 --fsdp 8 \
        --batch 8 --frames 13 --resolution 256 --latents taef2 --dtype bfloat16 --remat

XLA's CPU compiler stands in for the accelerator's: fusion and buffer assignment differ on a
GPU, so treat the figure as an estimate (it is usually close for the argument/state part and
conservative for temporaries).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="wm_516m")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--fsdp", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8, help="global batch (clips)")
    parser.add_argument("--frames", type=int, default=13)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--latents", default="taef2", help="autoencoder config name (abstract weights)")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--remat", action="store_true")
    args = parser.parse_args()
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

    import functools

    import jax
    import numpy as np

    from wm_jax import autoencoder, diffusion
    from wm_jax.train import checkpoint, metrics, sharding, state as state_lib, world

    ae_config = autoencoder.get_config(args.latents)
    res = (args.resolution, args.resolution)
    model_config = world.model_config(args.config, {"compute_dtype": args.dtype, "remat": args.remat},
                                      ae_config, res, args.frames)
    task = world.WorldTask(model_config, ae_config, diffusion.NoiseConfig(), "world")
    mesh = sharding.make_mesh(sharding.MeshConfig(data=-1, fsdp=args.fsdp))
    optimizer = state_lib.make_optimizer(state_lib.OptimizerConfig(), 100_000)
    abstract = jax.eval_shape(lambda rng: state_lib.init_state(task.init_params(rng), optimizer), jax.random.key(0))
    shardings = sharding.tree_shardings(abstract, mesh)
    batch_sharding = sharding.batch_sharding(mesh)
    batch = {
        "frames": jax.ShapeDtypeStruct((args.batch, args.frames, *res, 3), np.uint8, sharding=batch_sharding),
        "actions": jax.ShapeDtypeStruct((args.batch, args.frames, model_config.action_dim), np.float32, sharding=batch_sharding),
    }
    ae = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding.replicated(mesh)),
                                autoencoder.abstract_variables(ae_config))
    step = jax.jit(functools.partial(state_lib.train_step, loss_fn=task.loss, optimizer=optimizer, ema_decay=0.999, seed=0),
                   out_shardings=(shardings, sharding.replicated(mesh)), donate_argnums=(0,))
    start = time.perf_counter()
    compiled = step.lower(checkpoint.abstract_with_shardings(abstract, shardings), batch, task.aux(ae)).compile()
    report = metrics.compiled_report(compiled)
    print(f"{args.config}: batch {args.batch} x {args.frames} frames at {args.resolution}px ({args.latents} latents "
          f"{model_config.latent_size + (model_config.in_channels,)}), {args.dtype}, remat={args.remat}, "
          f"mesh {dict(mesh.shape)}; compiled in {time.perf_counter() - start:.0f}s")
    print(metrics.format_report(report))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
