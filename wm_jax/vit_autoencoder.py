"""The ViT autoencoder of the open Oasis model (its "ViT-VAE-L/20"), as `autoencoder` kind "vit".

Written from the public description of open-oasis `vae.py` (an `AutoencoderKL` built from ViT
blocks; facts only, nothing copied). `wm_jax.autoencoder.Autoencoder` builds these modules when
`AutoencoderConfig.kind == "vit"`; its `encode`/`decode`/`save`/`load` serve every kind alike.

Encoder, frames [N, H, W, 3] in [-1, 1] (Oasis encodes `x * 2 - 1`) -> latents [N, H/p, W/p, c]:
  patch embedding (a p x p conv with stride p, p = `downscale`), tokens row-major;
  `blocks` pre-norm transformer blocks of width `width` with `heads` heads;
  LayerNorm; a linear map to 2c "moments" (mean | log-variance). The latent is the mean (the
  posterior's mode, what Oasis' generate.py feeds its DiT); the log-variance half is kept in the
  weights but not used.
Decoder, latents [N, h, w, c] -> frames [N, h*p, w*p, 3] in about [-1, 1]:
  a linear map c -> `decoder_width`; `decoder_blocks` blocks with `decoder_heads` heads;
  LayerNorm; a linear "predictor" to 3·p² per token, laid out channel-major (3, p, p), unpatchified.

Each block: x + proj(attn(LN(x))), then x + fc2(gelu(fc1(LN(x)))); LayerNorms with affine
parameters and eps 1e-6; exact (erf) GELU; qkv one linear map with bias, split q | k | v, heads
major within each. Attention over all tokens of the frame, not causal, scale 1/sqrt(head_dim).
RoPE: axial "pixel" frequencies (`rope.pixel_frequencies(head_dim // 4, max_freq)`, i.e.
head_dim/8 frequencies evenly spaced in [pi, pi·max_freq/2]) with max_freq = the number of
tokens of the frame size the model was built for (Oasis: 18·32 = 576); positions linspace(-1, 1)
along each axis, the row's angles then the column's, each repeated for an interleaved feature
pair: the first head_dim/2 features of q and k are rotated, the rest pass through.

The network only runs at the frame size it was built for (`frame_size`; Oasis: 360x640): its
rotary tables are fixed by it, and Oasis refuses other sizes too. `autoencoder.encode/decode`
refuse other sizes with an error naming both.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from wm_jax import rope

LAYER_NORM_EPS = 1e-6


def rotary_angles(grid: tuple[int, int], built_grid: tuple[int, int], head_dim: int):
    """[gh·gw, head_dim/2] angles for a token grid; frequencies fixed by the built-for grid."""
    max_freq = float(built_grid[0] * built_grid[1])
    return rope.axial_angles(grid[0], grid[1], head_dim // 2, max_freq)


def unpatchify(x_NhwD, patch: int):
    """[N, h, w, 3·p·p] (channel-major within a token) -> [N, h·p, w·p, 3]."""
    n, h, w, _ = x_NhwD.shape
    x = x_NhwD.reshape(n, h, w, 3, patch, patch).transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(n, h * patch, w * patch, 3)


def _layer_norm(name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=LAYER_NORM_EPS, use_fast_variance=False, name=name)


class Attention(nn.Module):
    """x: [N, S, D], angles: [S, E/2] -> [N, S, D]."""

    width: int
    heads: int

    @nn.compact
    def __call__(self, x_NSD, angles_SR):
        n, s, _ = x_NSD.shape
        e = self.width // self.heads
        q, k, v = jnp.split(nn.Dense(3 * self.width, name="qkv")(x_NSD), 3, axis=-1)
        q, k, v = (a.reshape(n, s, self.heads, e) for a in (q, k, v))
        theta = jnp.asarray(angles_SR)[:, None, :]  # broadcast over heads
        q, k = rope.rotate(q, theta), rope.rotate(k, theta)
        out = jax.nn.dot_product_attention(q, k, v, implementation="xla")
        return nn.Dense(self.width, name="proj")(out.reshape(n, s, self.width))


class Block(nn.Module):
    """Pre-norm transformer block: x: [N, S, D] -> [N, S, D]."""

    width: int
    heads: int
    mlp_hidden: int

    @nn.compact
    def __call__(self, x_NSD, angles_SR):
        x = x_NSD + Attention(self.width, self.heads, name="attn")(_layer_norm("norm1")(x_NSD), angles_SR)
        h = nn.Dense(self.mlp_hidden, name="fc1")(_layer_norm("norm2")(x))
        return x + nn.Dense(self.width, name="fc2")(nn.gelu(h, approximate=False))


def _blocks(x_NSD, grid, config, width: int, heads: int, depth: int):
    angles = rotary_angles(grid, config.latent_grid, width // heads)
    for i in range(depth):
        x_NSD = Block(width, heads, int(width * config.mlp_ratio), name=f"block_{i}")(x_NSD, angles)
    return x_NSD


class Encoder(nn.Module):
    """frames [N, H, W, 3] in [-1, 1] -> raw latents [N, H/p, W/p, c] (the posterior mean)."""

    config: "object"  # wm_jax.autoencoder.AutoencoderConfig (not imported: it imports this module)

    @nn.compact
    def __call__(self, x_NHWC):
        cfg = self.config
        p = cfg.downscale
        x = nn.Conv(cfg.width, (p, p), strides=(p, p), padding="VALID", name="patch_embed")(x_NHWC)
        n, gh, gw, _ = x.shape
        x = _blocks(x.reshape(n, gh * gw, cfg.width), (gh, gw), cfg, cfg.width, cfg.heads, cfg.blocks)
        moments = nn.Dense(2 * cfg.latent_channels, name="quant")(_layer_norm("norm")(x))
        return moments[..., : cfg.latent_channels].reshape(n, gh, gw, cfg.latent_channels)


class Decoder(nn.Module):
    """raw latents [N, h, w, c] -> frames [N, h·p, w·p, 3], about [-1, 1]."""

    config: "object"

    @nn.compact
    def __call__(self, z_NhwC):
        cfg = self.config
        n, gh, gw, c = z_NhwC.shape
        x = nn.Dense(cfg.decoder_width, name="post_quant")(z_NhwC.reshape(n, gh * gw, c))
        x = _blocks(x, (gh, gw), cfg, cfg.decoder_width, cfg.decoder_heads, cfg.decoder_blocks)
        x = nn.Dense(3 * cfg.downscale**2, name="predictor")(_layer_norm("norm")(x))
        return unpatchify(x.reshape(n, gh, gw, -1), cfg.downscale)
