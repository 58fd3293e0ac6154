"""The decoder whose cost `wm bench` adds to the step's: a trained autoencoder, or a randomly
initialised one of the family matching the model's latent channels (decode cost depends on the
architecture, not on the weights)."""

from __future__ import annotations

import jax

from wm_jax import autoencoder as ae
from wm_jax.configs import ModelConfig

# The TAESD family's member for each latent channel count.
_TAESD_BY_CHANNELS = {4: "taesd", 16: "taef1", 32: "taef2"}


def decoder_for(config: ModelConfig, autoencoder_dir: str | None = None):
    """(decode fn latent -> frame, description). A trained autoencoder from `autoencoder_dir` if
    given; else a randomly initialised TAESD-family decoder with the model's latent channels."""
    if autoencoder_dir:
        ae_config, variables = ae.load(autoencoder_dir)
        source = f"loaded from {autoencoder_dir}"
    else:
        name = _TAESD_BY_CHANNELS.get(config.in_channels)
        ae_config = ae.get_config(name) if name else ae.get_config("taesd", latent_channels=config.in_channels)
        variables = ae.init(ae_config, jax.random.key(0))
        source = f"random-init {name or 'taesd-like'} (c={config.in_channels}, f={ae_config.downscale})"
    if ae_config.latent_channels != config.in_channels:
        raise ValueError(f"autoencoder has {ae_config.latent_channels} latent channels, the model {config.in_channels}")
    h, w = config.latent_size
    desc = {"autoencoder": source, "frame_size": [h * ae_config.downscale, w * ae_config.downscale]}
    return (lambda latent: ae.decode(variables, latent, ae_config)), desc
