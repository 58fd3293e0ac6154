"""The experiment, as gin binds it. One gin name per dataclass; `parse` reads files + bindings.

    Experiment.stage = 'world'            # 'image' (T = 1, the image DiT) or 'world'
    Experiment.model = 'tiny'             # a wm_jax.configs name ...
    Experiment.model_overrides = {...}    # ... with fields replaced (compute_dtype, remat, ...)
    Experiment.latents = 'pixel_p2'       # wm_jax.autoencoder config name, or an autoencoder dir
    Data.datasets = {'recordings/pan': 1.0}
    Optimizer.learning_rate = 1e-3
    NoiseConfig.context_share = 0.25      # wm_jax.diffusion.NoiseConfig
    OwnContext.clips = 4                  # wm_jax.train.world.OwnContextConfig
    Mesh.fsdp = 4

The model's latent_size and in_channels follow from the latents and Data.resolution.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import gin

from wm_jax import diffusion
from wm_jax.train.sharding import MeshConfig
from wm_jax.train.state import OptimizerConfig
from wm_jax.train.world import OwnContextConfig

Optimizer = gin.configurable("Optimizer")(OptimizerConfig)
Mesh = gin.configurable("Mesh")(MeshConfig)
Noise = gin.external_configurable(diffusion.NoiseConfig, "NoiseConfig")
OwnContext = gin.configurable("OwnContext")(OwnContextConfig)


@gin.configurable("Data")
@dataclasses.dataclass(frozen=True)
class DataConfig:
    """datasets: {dir written by `wm record --out DIR`: mixing weight}. batch_size is global."""

    datasets: dict = dataclasses.field(default_factory=dict)
    resolution: tuple = (32, 32)
    clip_len: int = 8
    batch_size: int = 8
    random_crop: bool = False
    clip_stride: int = 1
    workers: int = 0
    read_threads: int = 2
    # Held-out data for the evaluation loss and rollout strip; None: the training datasets
    # (another seed). Record a separate set (other seed/episodes) for a real held-out split.
    eval_datasets: dict | None = None

    def __post_init__(self):
        # Checked here, before any thread or file exists: a zero batch would fail deep inside
        # the data pipeline, with orbax's threads printing tracebacks on the way out.
        for name, least in (("batch_size", 1), ("clip_len", 1), ("clip_stride", 1), ("workers", 0), ("read_threads", 1)):
            value = getattr(self, name)
            if type(value) is not int or value < least:
                raise ValueError(f"Data.{name} must be an integer >= {least}, got {value!r}")


@gin.configurable("Evaluation")
@dataclasses.dataclass(frozen=True)
class EvalConfig:
    every: int = 500  # steps; 0 disables
    examples: int = 2  # clips in the image strip
    context_frames: int = 1  # ground-truth frames given before generating
    sampler_steps: int = 4


@gin.configurable("Experiment")
@dataclasses.dataclass(frozen=True)
class Experiment:
    stage: str = "world"
    model: str = "tiny"
    model_overrides: dict = dataclasses.field(default_factory=dict)
    latents: str = "pixel_p2"
    num_steps: int = 1000
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    keep_last: int = 3
    keep_every: int | None = None
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=Optimizer)
    noise: diffusion.NoiseConfig = dataclasses.field(default_factory=Noise)
    own_context: OwnContextConfig = dataclasses.field(default_factory=OwnContext)
    mesh: MeshConfig = dataclasses.field(default_factory=Mesh)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)

    def __post_init__(self):
        if self.stage not in ("image", "world"):
            raise ValueError(f"Experiment.stage must be 'image' or 'world', got {self.stage!r}")
        if self.stage == "image" and self.data.clip_len != 1:
            raise ValueError(f"the image stage trains single frames: set Data.clip_len = 1 (got {self.data.clip_len})")
        for name in ("num_steps", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"Experiment.{name} must be >= 1, got {getattr(self, name)}")
        if not self.data.datasets:
            raise ValueError("no training data: bind Data.datasets = {'DIR': 1.0} (DIR from `wm record --out DIR`)")


def parse(files: Sequence[str] = (), bindings: Sequence[str] = (), factory=None) -> tuple[Experiment, str]:
    """(experiment, gin config text). Unknown or malformed bindings raise ValueError naming them.

    factory: the gin-configurable experiment class to build (default `Experiment`; `wm train-ae`
    passes `wm_jax.train.autoencoder.AutoencoderExperiment`)."""
    for path in files:  # before gin, which logs its own error and raises something else
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--gin_file {path}: no such file")
    gin.clear_config()
    try:
        gin.parse_config_files_and_bindings(list(files), list(bindings), finalize_config=False)
    except (ValueError, KeyError, SyntaxError, NameError, TypeError) as error:
        raise ValueError(f"bad gin configuration: {error}") from None
    except OSError as error:
        raise FileNotFoundError(f"cannot read gin file: {error}") from None
    try:
        experiment = (factory or Experiment)()
    except (ValueError, TypeError) as error:
        # gin appends "In call to configurable ..." lines to the message; the first one says it.
        raise ValueError(str(error).splitlines()[0]) from None
    return experiment, gin.config_str()
