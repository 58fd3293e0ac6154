"""What every layout's `convert` returns: the converted weights, their config, and what goes beside them.

One dataclass for all layouts, so `wm_jax.conversion.save` / `verify` / `summary` treat them
alike: a `ModelConfig` is written as a wm_jax model directory, an `AutoencoderConfig` as an
autoencoder directory; the optional fields add files (class table, sampler, world link).
Nothing here imports jax: layouts import it, and `wm --help` lists layouts without jax.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np


@dataclasses.dataclass(frozen=True)
class WorldLink:
    """A world bundle made in place at save time (wm_jax.bundle.link_world): the model directory
    decodes through `autoencoder` (a converted autoencoder directory), with these keys."""

    autoencoder: str
    keys: Mapping[str, str]
    fps: float
    title: str  # "<title> converted from <source file>" becomes the world's description


@dataclasses.dataclass
class Converted:
    """A converted checkpoint, in memory.

    config: a ModelConfig (saved as a model directory plus conversion.json) or an
    AutoencoderConfig (saved as an autoencoder directory, `info` inside autoencoder.json).
    params: the params pytree (numpy from a layout; jax arrays once `conversion.convert` returns).
    info: provenance, written beside the weights and printed by `wm convert`;
    `conversion.convert` puts the layout and the source (path, entry, dtypes) first.
    description: one line about the config, for printing.
    collections: variable collections other than params (autoencoders: latent_stats).
    sampler: the sampler the model is sampled with by default (sampler.json), if not the default.
    class_table: [classes + 1, D] rows of a class-conditional model, the null class last (class_table.npy).
    world: make the saved directory a world bundle (world.json).
    """

    layout: str
    config: Any
    params: dict
    info: dict
    description: str
    collections: dict = dataclasses.field(default_factory=dict)
    sampler: Any = None  # wm_jax.diffusion.SamplerConfig
    class_table: np.ndarray | None = None
    world: WorldLink | None = None

    @property
    def variables(self) -> dict:
        """{"params": ..., **collections}: what wm_jax.autoencoder functions take."""
        return {"params": self.params, **self.collections}

    @property
    def parameter_count(self) -> int:
        return int(sum(np.size(leaf) for leaf in _leaves(self.params)))


def _leaves(tree):
    if isinstance(tree, Mapping):
        for value in tree.values():
            yield from _leaves(value)
    else:
        yield tree


def describe_model(config) -> str:
    """One line about a ModelConfig, the fields a conversion infers or is told."""
    h, w = config.latent_size
    return (
        f"latent {h}x{w}x{config.in_channels} -> {config.output_channels}, patch {config.patch_size}, "
        f"width {config.width}, depth {config.depth}, heads {config.num_heads}, mlp_ratio {config.mlp_ratio:g}, "
        f"temporal_every {config.temporal_every}, actions {config.action_dim}, window {config.window}, "
        f"max_frames {config.max_frames}"
    )

