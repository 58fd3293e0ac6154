"""A finished `wm train` run -> a playable world bundle (see `wm_jax.bundle`).

The run's own config (WORKDIR/config.gin) says which model configuration and latent source it
trained; its latest checkpoint's EMA params become the world's params.
"""

from __future__ import annotations

import os
import pathlib
from typing import Mapping, Sequence

import numpy as np

from wm_jax import bundle, pixel_zoom
from wm_jax.diffusion import SamplerConfig
from wm_jax.train import config as config_lib
from wm_jax.train import init_from
from wm_jax.train import world as world_task


def _world_run(workdir: str):
    """(experiment, gin file, autoencoder config, autoencoder variables, model config) of a world run."""
    gin_file = os.path.join(workdir, "config.gin")
    if not os.path.exists(gin_file):
        raise FileNotFoundError(f"{gin_file} not found: {workdir} is not a `wm train` workdir")
    experiment, _ = config_lib.parse_workdir_config(gin_file)  # also a run from before issue 17
    if experiment.stage != "world":
        raise ValueError(f"{workdir} trained the {experiment.stage!r} stage; only a 'world' run can be played")
    resolution = tuple(experiment.run.data.resolution)
    ae_config, ae_variables = world_task.load_latents(experiment.latents, resolution)
    config = world_task.model_config(
        experiment.model, experiment.model_overrides, ae_config, resolution, experiment.run.data.clip_len
    )
    return experiment, gin_file, ae_config, ae_variables, config


def workdir_model_config(workdir: str):
    """The ModelConfig a world run trains."""
    return _world_run(workdir)[-1]


def export_world(workdir: str, out: str, *, name: str, keys: Mapping[str, str] | Sequence[str],
                 fps: float = 20.0, sampler: SamplerConfig = SamplerConfig(), start_image: np.ndarray | None = None,
                 description: str = "", zoom_keys: Mapping[str, float] | None = None,
                 zoom_range=pixel_zoom.DEFAULT_RANGE, still_mask: Sequence[str] = (), match_picture: bool = False) -> pathlib.Path:
    _, gin_file, ae_config, ae_variables, config = _world_run(workdir)
    source, params = init_from.load(workdir)
    provenance = {"workdir": os.path.abspath(workdir), "params": source, "gin": open(gin_file).read()}
    return bundle.save_world(
        out, name=name, config=config, params=params, ae_config=ae_config, ae_variables=ae_variables, keys=keys,
        fps=fps, start_image=start_image, description=description, sampler=sampler, provenance=provenance,
        zoom_keys=zoom_keys, zoom_range=zoom_range, still_mask=still_mask, match_picture=match_picture,
    )
