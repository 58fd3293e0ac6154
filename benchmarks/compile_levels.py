"""How long XLA takes to compile a small training program at each LLVM optimisation level: the
reason `tests/conftest.py` runs the test suite at level 1 (BUILD_NOTES, "The test suite's time
(session 15)"). The program is the sample-score test's: a one-block, width-32 world model's
diffusion-forcing loss, the loss with `SampleScore`, and that loss's gradient.

    XLA_FLAGS=--xla_backend_optimization_level=1 .venv/bin/python benchmarks/compile_levels.py

Each run compiles afresh (the persistent compilation cache is switched off) and prints the
compile and run seconds of each program; compare levels by running it once per XLA_FLAGS value.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp

from wm_jax import autoencoder, configs, diffusion
from wm_jax.model import init_params
from wm_jax.train.world import SampleScoreConfig, WorldTask


def main() -> None:
    jax.config.update("jax_enable_compilation_cache", False)
    config = configs.get_config("tiny", max_frames=3, prediction="x0_residual", in_channels=12, depth=1, width=32)
    task = lambda clips: WorldTask(config, autoencoder.get_config("pixel_p2"), diffusion.NoiseConfig(context_noise_max=0.2),
                                   "world", sample_score=SampleScoreConfig(clips=clips, weight=0.5))
    params = init_params(config, jax.random.key(0))
    h, w = config.latent_size
    batch = {"frames": jax.random.randint(jax.random.key(0), (2, 3, 2 * h, 2 * w, 3), 0, 256).astype(jnp.uint8),
             "actions": jnp.zeros((2, 3, config.action_dim))}
    ae = autoencoder.init(autoencoder.get_config("pixel_p2"), jax.random.key(0))
    loss = lambda clips: (lambda p: task(clips).loss(p, batch, task(clips).aux(ae), jax.random.key(2))[0])
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, load average {os.getloadavg()}")
    for name, fn in (("loss", loss(0)), ("loss + SampleScore", loss(2)), ("gradient", jax.grad(loss(2)))):
        start = time.perf_counter()
        compiled = jax.jit(fn).lower(params).compile()
        compiled_s = time.perf_counter() - start
        start = time.perf_counter()
        jax.block_until_ready(compiled(params))
        print(f"{name:20s} compile {compiled_s:6.2f} s   run {time.perf_counter() - start:.4f} s")


if __name__ == "__main__":
    main()
