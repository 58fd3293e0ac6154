"""`train(experiment, config_text, workdir)`: the training loop, the one place with side effects.

Start-up order: check everything that can be checked without compiling (workdir config, data
paths, clip length, --init_from shapes), then build the mesh, create the state already sharded
(or restore it), compile the step once (donated state), report its memory and FLOPs, and run.
Restarting on the same workdir resumes from the latest checkpoint, data position included.
`train` is the world-model entry; `run(task, ...)` is the task-independent loop that `train` and
`wm_jax.train.autoencoder.train` both call with their own `Task` (params init, loss, evaluator).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import math
import os
from typing import Any, Callable, Sequence

import jax
import numpy as np
from PIL import Image

from wm_jax.train import checkpoint, init_from as init_lib, metrics as metrics_lib, sharding
from wm_jax.train import state as state_lib
from wm_jax.train import world
from wm_jax.train.config import DataConfig, Experiment, RunConfig, same_bindings

log = logging.getLogger(__name__)

CONFIG_FILE = "config.gin"


class NonFiniteLoss(RuntimeError):
    def __init__(self, step: int, value: float, last_checkpoint: int | None, directory: str):
        kept = f"the last good checkpoint is step {last_checkpoint} in {directory}" if last_checkpoint else "no checkpoint was written"
        super().__init__(f"non-finite loss ({value}) at step {step}: training stopped; {kept}")
        self.step, self.last_checkpoint = step, last_checkpoint


def check_workdir_config(workdir: str, config_text: str) -> None:
    """First run writes WORKDIR/config.gin; later runs must bring the same configuration."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        if jax.process_index() == 0:
            os.makedirs(workdir, exist_ok=True)
            with open(path, "w") as f:
                f.write(config_text)
        return
    with open(path) as f:
        saved = f.read()
    if not same_bindings(saved, config_text):  # a config.gin from before issue 17 resumes too
        diff = "\n".join(difflib.unified_diff(saved.splitlines(), config_text.splitlines(), "workdir", "given", lineterm="", n=0))
        raise ValueError(f"{workdir} was trained with another configuration; use a new --workdir or the same gin files and bindings:\n{diff}")


def check_datasets(paths: Sequence[str]) -> None:
    from wm_jax.data import EpisodeStore

    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"dataset {path!r} does not exist (record one with `wm record SOURCE --out {path}`)")
        EpisodeStore(path)  # raises a clear error for a directory that is not a dataset


def _data_iterator(data: DataConfig, datasets: dict, batch_size: int, seed: int, shard: tuple[int, int] | None = None,
                   training: bool = False):
    """The clips of `datasets`; only training batches are recoloured (`Data.recolour`): held-out
    figures are taken on the frames as recorded."""
    from wm_jax.data import make_clip_iterator

    shard_index, shard_count = shard if shard else (None, None)
    return make_clip_iterator(
        datasets, clip_len=data.clip_len, batch_size=batch_size, resolution=tuple(data.resolution), seed=seed,
        random_crop=data.random_crop, clip_stride=data.clip_stride, recolour=data.recolour if training else 0.0,
        workers=data.workers, read_threads=data.read_threads, shard_index=shard_index, shard_count=shard_count,
    )


@dataclasses.dataclass(frozen=True)
class Task:
    """What the generic loop (`run`) needs from a training task; `train` builds the world-model one,
    `wm_jax.train.autoencoder` the autoencoder one.

    init_params(rng) -> params; loss(params, batch, aux, rng) -> (loss, metrics) (see state.train_step);
    aux: frozen inputs of the loss (autoencoder or LPIPS variables), passed replicated to the step;
    action_dim: K of the batches' actions [B, T, K]; describe(num_params) -> one line for the log;
    make_evaluator(eval_batch, aux, replicated) -> evaluator, evaluator(ema_params) -> (scalars, uint8
    image), run every Evaluation.every steps; the image goes to WORKDIR/eval/<eval_image>_<step>.png.
    """

    init_params: Callable
    loss: Callable
    aux: Any
    action_dim: int
    describe: Callable[[int], str]
    make_evaluator: Callable | None = None
    eval_image: str = "rollout"


def train(experiment: Experiment, config_text: str, workdir: str, *, init_from: str | None = None,
          after_step: Callable[[int, state_lib.TrainState, checkpoint.Checkpoints], None] | None = None) -> dict:
    """Train the world model to Run.num_steps; returns the last logged metrics. Raises NonFiniteLoss.

    after_step(step, state, checkpoints), if given, runs after every step (tests, extensions).
    """
    workdir = os.path.abspath(workdir)
    run_config = experiment.run
    data = run_config.data

    # --- everything checkable without compiling
    check_workdir_config(workdir, config_text)
    check_datasets(list(data.datasets) + list(data.eval_datasets or {}))
    ae_config, ae_variables = world.load_latents(experiment.latents, tuple(data.resolution))
    model_config = world.model_config(experiment.model, experiment.model_overrides, ae_config, data.resolution, data.clip_len)
    world_task = world.WorldTask(model_config, ae_config, experiment.noise, experiment.stage, experiment.own_context,
                                 experiment.sample_score)

    def make_evaluator(eval_batch, aux, replicated):
        evaluate = world.Evaluator(world_task, eval_batch, aux, run_config.eval.context_frames,
                                   run_config.eval.sampler_steps, run_config.seed, replicated)

        def evaluator(params):
            eval_loss, image = evaluate(params)
            return {"eval_loss": eval_loss}, image
        return evaluator

    task = Task(
        init_params=world_task.init_params, loss=world_task.loss, aux=world_task.aux(ae_variables), action_dim=model_config.action_dim,
        describe=lambda num_params: (
            f"model {experiment.model} ({model_config.width}w x {model_config.depth}, {num_params:,} params), latents "
            f"{model_config.latent_size + (model_config.in_channels,)} from {experiment.latents}"),
        make_evaluator=make_evaluator,
    )
    return run(task, run_config, config_text, workdir, init_from=init_from, after_step=after_step)


def run(task: Task, run_config: RunConfig, config_text: str, workdir: str, *, init_from: str | None = None,
        after_step: Callable[[int, state_lib.TrainState, checkpoint.Checkpoints], None] | None = None) -> dict:
    """The task-independent loop: mesh, state (created sharded or restored), compiled step, metrics,
    checkpoints, evaluation, as `run_config` (the `Run` section of every experiment) says;
    the caller has already run check_workdir_config and check_datasets.
    """
    workdir = os.path.abspath(workdir)
    data = run_config.data
    processes = jax.process_count()
    if data.batch_size % processes:
        raise ValueError(f"Data.batch_size = {data.batch_size} is not divisible by the {processes} processes")
    mesh = sharding.make_mesh(run_config.mesh)
    if data.batch_size % mesh.size:
        raise ValueError(f"Data.batch_size = {data.batch_size} is not divisible by the {mesh.size} devices of the mesh")
    optimizer = state_lib.make_optimizer(run_config.optimizer, run_config.num_steps)
    init_fn = lambda rng: state_lib.init_state(task.init_params(rng), optimizer)
    abstract_state = jax.eval_shape(init_fn, jax.random.key(run_config.seed))
    source, init_note = None, ""
    if init_from:
        source_name, source = init_lib.load(init_from)
        copied, fresh = init_lib.check(abstract_state.params, source)

    # --- state: restored or created already sharded
    state_shardings = sharding.tree_shardings(abstract_state, mesh)
    replicated = sharding.replicated(mesh)
    checkpoints = checkpoint.Checkpoints(os.path.join(workdir, "checkpoints"), keep_last=run_config.keep_last,
                                         keep_every=run_config.keep_every)
    data_iterator = _data_iterator(data, dict(data.datasets), data.batch_size // processes, run_config.seed,
                                   training=True)
    # A damaged newest checkpoint is moved aside and the newest intact one resumed (checkpoint.py).
    target = checkpoint.abstract_with_shardings(abstract_state, state_shardings)
    restored = checkpoints.restore_newest_intact(target, data_iterator)
    start = restored[0] if restored else 0
    if restored:
        state = restored[1]
        log.info("resumed from step %d of %s", start, workdir)
    else:
        state = jax.jit(init_fn, out_shardings=state_shardings)(jax.random.key(run_config.seed))
        if source is not None:
            params = init_lib.merge(state.params, source)
            ema = jax.tree_util.tree_map(lambda x: x.copy(), params)  # own buffers: the state is donated
            state = state.replace(params=params, ema_params=ema,
                                  opt_state=jax.jit(optimizer.init, out_shardings=state_shardings.opt_state)(params))
            init_note = f"initialised {len(copied)} param leaves from {source_name}; {len(fresh)} fresh"
            log.info("%s: %s", init_note, ", ".join(fresh[:8]))
    aux = jax.device_put(task.aux, replicated)

    # --- the step, compiled once
    h, w = data.resolution
    batch_spec = {
        "frames": jax.ShapeDtypeStruct((data.batch_size, data.clip_len, h, w, 3), np.uint8, sharding=sharding.batch_sharding(mesh)),
        "actions": jax.ShapeDtypeStruct((data.batch_size, data.clip_len, task.action_dim), np.float32, sharding=sharding.batch_sharding(mesh)),
    }
    step_fn = jax.jit(
        functools.partial(state_lib.train_step, loss_fn=task.loss, optimizer=optimizer,
                          ema_decay=run_config.optimizer.ema_decay, seed=run_config.seed),
        out_shardings=(state_shardings, replicated), donate_argnums=(0,),
    )
    compiled = step_fn.lower(checkpoint.abstract_with_shardings(abstract_state, state_shardings), batch_spec, aux).compile()
    report = metrics_lib.compiled_report(compiled)
    writer = metrics_lib.MetricsWriter(workdir, resume_step=start)
    lr_schedule = state_lib.schedule(run_config.optimizer, run_config.num_steps)
    describe = (f"{task.describe(sum(x.size for x in jax.tree_util.tree_leaves(abstract_state.params)))}, "
                f"mesh {dict(mesh.shape)}, global batch {data.batch_size} x {data.clip_len} frames")
    progress = metrics_lib.Progress(start, run_config.num_steps, data.batch_size * data.clip_len,
                                    report["flops"] * mesh.size)
    progress.write(describe + "\n" + metrics_lib.format_report(report) + (f"\nresumed from step {start}" if start else f"\n{init_note}" if init_note else ""))
    writer.text("compiled_step", describe + "\n" + metrics_lib.format_report(report))

    evaluator = None
    if run_config.eval.every and task.make_evaluator is not None:
        eval_batch = next(_data_iterator(data, dict(data.eval_datasets or data.datasets), run_config.eval.examples,
                                         run_config.seed + 1, shard=(0, 1)))
        evaluator = task.make_evaluator(jax.device_put(eval_batch, replicated), aux, replicated)

    last_logged: dict = {}
    pending: tuple[int, dict] | None = None

    def finish(step: int, step_metrics: dict) -> None:
        """Bring one step's metrics to the host, stop on a non-finite loss, log."""
        nonlocal last_logged
        values = {k: float(sharding.to_host(v)) for k, v in step_metrics.items()}
        if not (math.isfinite(values["loss"]) and math.isfinite(values["grad_norm"])):
            checkpoints.wait()
            raise NonFiniteLoss(step, values["loss"], checkpoints.latest_step(), checkpoints.directory)
        if step % run_config.log_every == 0 or step == run_config.num_steps:
            speed = progress.update(step, values["loss"])
            last_logged = {**values, "learning_rate": float(lr_schedule(step - 1)), **speed}
            writer.write(step, last_logged)

    try:
        for step in range(start + 1, run_config.num_steps + 1):
            batch = sharding.global_batch(next(data_iterator), mesh)
            state, step_metrics = compiled(state, batch, aux)
            # Host work for step-1 overlaps step's device work (one step of lag).
            if pending:
                finish(*pending)
            pending = (step, step_metrics)
            if step % run_config.checkpoint_every == 0 or step == run_config.num_steps:
                finish(*pending)
                pending = None
                checkpoints.save(step, state, data_iterator, {"gin": config_text, "step": step})
            if evaluator and (step % run_config.eval.every == 0 or step == run_config.num_steps):
                scalars, image = evaluator(state.ema_params)
                writer.write(step, scalars)
                writer.image(step, f"eval/{task.eval_image}", image)
                if jax.process_index() == 0:
                    os.makedirs(os.path.join(workdir, "eval"), exist_ok=True)
                    Image.fromarray(image).save(os.path.join(workdir, "eval", f"{task.eval_image}_{step:07d}.png"))
            if after_step:
                after_step(step, state, checkpoints)
        if pending:
            finish(*pending)
    finally:
        progress.close()
        writer.close()
        checkpoints.wait()
        checkpoints.close()
    return last_logged
