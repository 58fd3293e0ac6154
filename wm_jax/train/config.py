"""The experiment, as gin binds it. One gin name per dataclass; `parse` reads files + bindings.

    Run.num_steps = 1000                  # what every training run has (`RunConfig`): length,
    Run.checkpoint_every = 500            # seed, logging and checkpoint cadence, and the
    Data.datasets = {'recordings/pan': 1.0}   # sections below; shared by `wm train` and
    Optimizer.learning_rate = 1e-3        # `wm train-ae` (AutoencoderExperiment)
    Evaluation.every = 500
    Mesh.fsdp = 4
    Experiment.stage = 'world'            # 'image' (T = 1, the image DiT) or 'world'
    Experiment.model = 'tiny'             # a wm_jax.configs name ...
    ModelConfig.depth = 4                 # ... with fields replaced (a misspelt field is refused)
    Experiment.latents = 'pixel_p2'       # wm_jax.autoencoder config name, or an autoencoder dir
    NoiseConfig.context_share = 0.25      # wm_jax.diffusion.NoiseConfig
    OwnContext.clips = 4                  # wm_jax.train.world.OwnContextConfig
    SampleScore.clips = 4                 # wm_jax.train.world.SampleScoreConfig

The model's latent_size and in_channels follow from the latents and Data.resolution.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Sequence

import gin
from gin import config_parser

from wm_jax import autoencoder, configs, diffusion
from wm_jax.train.sharding import MeshConfig
from wm_jax.train.state import OptimizerConfig
from wm_jax.train.world import OwnContextConfig, SampleScoreConfig

Optimizer = gin.configurable("Optimizer")(OptimizerConfig)
Mesh = gin.configurable("Mesh")(MeshConfig)
Noise = gin.external_configurable(diffusion.NoiseConfig, "NoiseConfig")
OwnContext = gin.configurable("OwnContext")(OwnContextConfig)
SampleScore = gin.configurable("SampleScore")(SampleScoreConfig)


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
    recolour: float = 0.0  # share of training clips with their colour channels reordered and rescaled
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
        if not (isinstance(self.recolour, (int, float)) and 0 <= self.recolour <= 1):
            raise ValueError(f"Data.recolour is the share of training clips recoloured, in [0, 1]; got {self.recolour!r}")


@gin.configurable("Evaluation")
@dataclasses.dataclass(frozen=True)
class EvalConfig:
    every: int = 500  # steps; 0 disables
    examples: int = 2  # clips in the image strip
    context_frames: int = 1  # ground-truth frames given before generating
    sampler_steps: int = 4


def bound_fields(configurable: str) -> dict:
    """The fields a gin configuration binds on `configurable` (`ModelConfig.depth = 4` -> {'depth': 4}).

    ModelConfig and AutoencoderConfig are registered with gin only to declare their fields: a
    binding is then a named field of a named preset (gin refuses a misspelt one at parse time),
    never a call that would build a config from the dataclass defaults."""
    return gin.get_bindings(configurable)


# Registered for their field names only (see bound_fields): never called through gin.
gin.external_configurable(configs.ModelConfig, "ModelConfig")
gin.external_configurable(autoencoder.AutoencoderConfig, "AutoencoderConfig")


@gin.configurable("Run")
@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What every training run has, whatever it trains (`wm train`, `wm train-ae`): its length,
    seed, logging and checkpoint cadence, data, optimiser, mesh and evaluation. The generic loop
    (`loop.run`) reads only this."""

    num_steps: int = 1000
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    keep_last: int = 3
    keep_every: int | None = None
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=Optimizer)
    mesh: MeshConfig = dataclasses.field(default_factory=Mesh)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)

    def __post_init__(self):
        for name in ("num_steps", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"Run.{name} must be >= 1, got {getattr(self, name)}")
        if not self.data.datasets:
            raise ValueError("no training data: bind Data.datasets = {'DIR': 1.0} (DIR from `wm record --out DIR`)")


# model_overrides comes from `ModelConfig.<field> = value` bindings, not from a dict in the config.
@gin.configurable("Experiment", denylist=["model_overrides", "run"])
@dataclasses.dataclass(frozen=True)
class Experiment:
    """The world-model run (`wm train`): the generic run plus the model, its latents and noise."""

    stage: str = "world"
    model: str = "tiny"
    model_overrides: dict = dataclasses.field(default_factory=lambda: bound_fields("ModelConfig"))
    latents: str = "pixel_p2"
    noise: diffusion.NoiseConfig = dataclasses.field(default_factory=Noise)
    own_context: OwnContextConfig = dataclasses.field(default_factory=OwnContext)
    sample_score: SampleScoreConfig = dataclasses.field(default_factory=SampleScore)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)

    def __post_init__(self):
        if self.stage not in ("image", "world"):
            raise ValueError(f"Experiment.stage must be 'image' or 'world', got {self.stage!r}")
        if self.stage == "image" and self.run.data.clip_len != 1:
            raise ValueError(f"the image stage trains single frames: set Data.clip_len = 1 (got {self.run.data.clip_len})")


# Bindings of configurations written before the run-level config (issue 17), and where they went.
_RUN_FIELDS = ("num_steps", "seed", "log_every", "checkpoint_every", "keep_last", "keep_every")
_MOVED = {
    "model_overrides": "ModelConfig.<field> = value, one line per field",
    "autoencoder_overrides": "AutoencoderConfig.<field> = value, one line per field",
    **{name: f"Run.{name}" for name in _RUN_FIELDS},
}
_LEGACY_DICTS = {("Experiment", "model_overrides"): "ModelConfig",
                 ("AutoencoderExperiment", "autoencoder_overrides"): "AutoencoderConfig"}


def _moved_hint(message: str) -> str:
    found = re.search(r"Configurable '(Experiment|AutoencoderExperiment)' (?:doesn't have a parameter named|"
                      r"has denylisted kwarg) '(\w+)'", message)
    return f"\n(bind {_MOVED[found.group(2)]} instead)" if found and found.group(2) in _MOVED else ""


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
        raise ValueError(f"bad gin configuration: {error}{_moved_hint(str(error))}") from None
    except OSError as error:
        raise FileNotFoundError(f"cannot read gin file: {error}") from None
    try:
        experiment = (factory or Experiment)()
    except (ValueError, TypeError) as error:
        # gin appends "In call to configurable ..." lines to the message; the first one says it.
        raise ValueError(str(error).splitlines()[0]) from None
    return experiment, gin.config_str()


def upgrade_legacy(text: str) -> str:
    """Gin bindings as a workdir's config.gin holds them, in today's names: the run fields of
    `Experiment`/`AutoencoderExperiment` become `Run.*`, and their `model_overrides` /
    `autoencoder_overrides` dicts one `ModelConfig.<field>` / `AutoencoderConfig.<field>` line each.
    Bindings already in today's names come back unchanged in meaning."""
    lines = []
    for statement in config_parser.ConfigParser(text, gin.config.ParserDelegate()):
        if not isinstance(statement, config_parser.BindingStatement):
            raise ValueError(f"a saved configuration holds bindings only, found {statement}")
        scope = f"{statement.scope}/" if statement.scope else ""
        selector, name, value = statement.selector, statement.arg_name, statement.value
        if (selector, name) in _LEGACY_DICTS:
            lines += [f"{scope}{_LEGACY_DICTS[selector, name]}.{k} = {v!r}" for k, v in value.items()]
            continue
        if selector in ("Experiment", "AutoencoderExperiment") and name in _RUN_FIELDS:
            selector = "Run"
        lines.append(f"{scope}{selector}.{name} = {value!r}")
    return "\n".join(lines) + "\n"


def parse_workdir_config(path: str, factory=None):
    """(experiment, gin config text) of a workdir's config.gin, also one written before issue 17."""
    with open(path) as f:
        return parse((), [upgrade_legacy(f.read())], factory=factory)


def same_bindings(saved: str, given: str) -> bool:
    """Whether two config texts bind the same values, a config.gin from before issue 17 included
    (its workdir resumes under today's names)."""
    return saved == given or sorted(upgrade_legacy(saved).splitlines()) == sorted(upgrade_legacy(given).splitlines())
