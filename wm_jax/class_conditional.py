"""Class-conditional images from a converted class-conditional DiT, sampled as DiT's own
`sample.py` samples them (facts from the public facebookresearch/DiT `sample.py`, `models.py` and
`diffusion/`; nothing copied):

* the class embedding is a table of classes + 1 rows, the last the null class (label 1000 for
  ImageNet); wm_jax's conditioning c = t_embed(1000·t) + action_embed(a) takes the row as the
  action embedding's bias (`with_class`), the actions all zero;
* classifier-free guidance batches the conditional and null branches on the same x and mixes
  ε_null + s·(ε_cond - ε_null) on the first 3 output channels only ("for exact reproducibility";
  `DIT_GUIDED_CHANNELS`), the other ε channels and the learned variance from the conditional
  branch (`diffusion.guide`);
* DDPM ancestral sampling (`p_sample_loop`, learned-range variance, no clipping of x̂_0) over
  guided-diffusion's respacing of 1000 steps to S (`SamplerConfig.spacing = "dit"`, S = 250 in
  sample.py), from N(0, I) latents; DDIM (eta) over the same steps is guided-diffusion's
  `ddim_sample_loop`.

Latents are channels-last [B, h, w, c] in the DiT's latent space (SD's VAE latents x 0.18215).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from wm_jax import diffusion
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig
from wm_jax.model import WorldModel

# DiT's sample.py guides 3 of the ε channels (its forward_with_cfg), whatever the latent channels.
DIT_GUIDED_CHANNELS = 3
# DiT's sample.py: 250 DDPM steps, guidance scale 4.
DIT_STEPS, DIT_CFG = 250, 4.0


def dit_sampler(steps: int = DIT_STEPS, method: str = "ddpm", eta: float = 0.0) -> SamplerConfig:
    """DiT's sampler: `method` over guided-diffusion's respacing of its training steps."""
    return SamplerConfig(steps=steps, method=method, eta=eta, spacing="dit")


def class_rows(class_table_RD, label: int):
    """(the class's row, the null row) of a DiT class table [classes + 1, D]; a class must be a
    row other than the last (the null class, which guidance uses)."""
    classes = class_table_RD.shape[0] - 1
    if not 0 <= label < classes:
        raise ValueError(f"class {label} is out of range: this DiT's class table has {classes} classes (0..{classes - 1}) "
                         f"and the null class {classes}, which guidance uses")
    return class_table_RD[label], class_table_RD[-1]


def with_class(params, row_D):
    """The params with one class-table row as the constant conditioning (action embedding bias)."""
    return {**params, "action_embed": {**params["action_embed"], "bias": jnp.asarray(row_D, jnp.float32)}}


def sample(config: ModelConfig, params, class_D, null_D, noise_BHWC, sampler: SamplerConfig, cfg: float, rng=None,
           guided_channels: int | None = DIT_GUIDED_CHANNELS):
    """Latents [B, h, w, c] of the class whose table row is class_D, from the starting noise
    [B, h, w, c]; null_D: the null class's row.

    cfg: guidance scale (1: the conditional branch alone, no null pass). guided_channels: how many
    ε channels guidance mixes (DiT's 3; None: all). rng: the noise DDPM (or DDIM with eta > 0)
    draws after the start, `diffusion.sample`'s convention (normal(fold_in(rng, k)) at step k)."""
    objective = config.objective
    b = noise_BHWC.shape[0]
    cond, null = with_class(params, class_D), with_class(params, null_D)
    actions = jnp.zeros((b, 1, config.action_dim), jnp.float32)
    apply = WorldModel(config).apply

    def model_fn(x_BHWC, t):
        t_B1 = jnp.full((b, 1), t, jnp.float32)
        read = lambda p: diffusion.readout(objective, apply({"params": p}, x_BHWC[:, None], t_B1, actions)[:, 0],
                                           x_BHWC, t_B1[:, 0])
        if cfg == 1.0:
            return read(cond)
        return diffusion.guide(objective, read(cond), read(null), cfg, channels=guided_channels)

    return diffusion.sample(model_fn, noise_BHWC, sampler, objective, rng)


def make_sample(config: ModelConfig, sampler: SamplerConfig, cfg: float, guided_channels: int | None = DIT_GUIDED_CHANNELS):
    """`sample` jit-compiled once for a configuration and sampler: (params, class_D, null_D,
    noise, rng) -> latents. A sampler that does not fit the model's objective is refused now."""
    diffusion.sampler_method(config.objective, sampler)
    return jax.jit(lambda params, class_D, null_D, noise_BHWC, rng: sample(
        config, params, class_D, null_D, noise_BHWC, sampler, cfg, rng, guided_channels))
