"""Training: the reusable machinery (state, checkpoints, sharding, metrics, loop) and the
world-model task that plugs into it.

  wm_jax.train.state       TrainState, the optimiser (AdamW + warmup-cosine + clipping), EMA
  wm_jax.train.sharding    Mesh with data/fsdp axes, logical-axis rules, batch sharding, multi-host init
  wm_jax.train.checkpoint  orbax CheckpointManager: one composite item per step, exact resume
  wm_jax.train.metrics     metrics.jsonl + TensorBoard, progress bar, compiled-step report
  wm_jax.train.config      the gin-configurable experiment description
  wm_jax.train.world       the world-model task: latents, diffusion-forcing loss, eval strip
  wm_jax.train.autoencoder the autoencoder task (`wm train-ae`): L1 + LPIPS, latent stats, export
  wm_jax.train.loop        train(workdir) / run(task, ...): the only place with side effects
"""
