"""The open Oasis model's ViT autoencoder (`vit-l-20.safetensors`) -> wm_jax.autoencoder kind "vit".

Facts read from the public open-oasis `vae.py` and `generate.py` (only facts; nothing copied):

* `AutoencoderKL(latent_dim=16, patch_size=20, enc_dim=1024, enc_depth=6, enc_heads=16,
  dec_dim=1024, dec_depth=12, dec_heads=16, input_height=360, input_width=640)`, mlp_ratio 4,
  LayerNorm eps 1e-6 everywhere, qkv with bias; the module layout is `wm_jax.vit_autoencoder`'s.
* State-dict keys: `patch_embed.proj.{weight,bias}` (Conv2d 3 -> enc_dim, kernel = stride = p),
  `encoder.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.{weight,bias}`, `enc_norm`,
  `quant_conv` (Linear enc_dim -> 2·latent_dim: mean | logvar), `post_quant_conv` (Linear
  latent_dim -> dec_dim), `decoder.N.*` as the encoder's, `dec_norm`, `predictor` (Linear
  dec_dim -> 3·p², channel-major). The rotary tables are non-persistent buffers: never stored.
  Nothing is ignorable: every key is read, a missing or extra one is an error.
* generate.py encodes `x * 2 - 1`, takes the posterior mean, and multiplies by
  `scaling_factor = 0.07843137255` before the DiT; it decodes `z / scaling_factor` and maps
  `(dec + 1) / 2` to [0, 1]. -> latent stats (mean 0, std 1 / 0.07843137255): wm_jax's
  normalised latents are exactly the DiT's.

Not in the shapes: the head counts (Oasis: 16 and 16) and the frame size the network is built
for (Oasis: 360x640; its rotary tables depend on it) -> `heads`, `frame_size` arguments.
"""

from __future__ import annotations

import re
from typing import Mapping

import numpy as np

from wm_jax.conversion.converted import Converted
from wm_jax.conversion.table import CONV2D, IDENTITY, LINEAR, Row, Table, apply
from wm_jax import autoencoder as ae

NAME = "oasis-vae"
DEFAULT_HEADS = 16
DEFAULT_FRAME_SIZE = (360, 640)
SCALING_FACTOR = 0.07843137255  # generate.py: DiT latents = posterior mean x this
REQUIRED = ("patch_embed.proj.weight", "encoder.0.attn.qkv.weight", "encoder.0.mlp.fc1.weight", "enc_norm.weight",
            "quant_conv.weight", "post_quant_conv.weight", "decoder.0.attn.qkv.weight", "dec_norm.weight",
            "predictor.weight")

# The released ViT-VAE-L/20, for reference (and for `wm_jax` code that wants its shapes).
OASIS_VIT_L20 = ae.AutoencoderConfig(
    kind="vit", latent_channels=16, downscale=20, width=1024, blocks=6, heads=16, decoder_width=1024,
    decoder_blocks=12, decoder_heads=16, mlp_ratio=4.0, frame_size=DEFAULT_FRAME_SIZE, latent_clamp=None,
)


def _depth(sd: Mapping[str, np.ndarray], prefix: str) -> int:
    indices = {int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    if indices != set(range(len(indices))):
        raise ValueError(f"{prefix}N blocks are not numbered 0..{len(indices) - 1}: found {sorted(indices)}")
    return len(indices)


def infer_config(
    sd: Mapping[str, np.ndarray], heads: int = DEFAULT_HEADS, frame_size: tuple[int, int] = DEFAULT_FRAME_SIZE
) -> ae.AutoencoderConfig:
    """The vit AutoencoderConfig of an Oasis ViT-VAE state_dict (shapes) plus what shapes cannot tell."""
    for key in REQUIRED:
        if key not in sd:
            raise ValueError(f"not an Oasis ViT-VAE checkpoint: it has no {key!r} (its keys begin: "
                             f"{', '.join(sorted(sd)[:8])}, ...)")
    width, in_channels, p, p2 = (int(s) for s in sd["patch_embed.proj.weight"].shape)
    if in_channels != 3 or p != p2:
        raise ValueError(f"patch_embed.proj.weight: expected [width, 3, p, p], found {tuple(sd['patch_embed.proj.weight'].shape)}")
    decoder_width, latent = (int(s) for s in sd["post_quant_conv.weight"].shape)
    mlp_hidden = int(sd["encoder.0.mlp.fc1.weight"].shape[0])
    return ae.AutoencoderConfig(
        kind="vit",
        latent_channels=latent,
        downscale=p,
        width=width,
        blocks=_depth(sd, "encoder."),
        heads=heads,
        decoder_width=decoder_width,
        decoder_blocks=_depth(sd, "decoder."),
        decoder_heads=heads,
        mlp_ratio=mlp_hidden / width,
        frame_size=tuple(frame_size),
        latent_clamp=None,
    )


def _linear(torch_prefix: str, flax_path: tuple[str, ...]) -> list[Row]:
    return [Row(f"{torch_prefix}.weight", flax_path + ("kernel",), LINEAR),
            Row(f"{torch_prefix}.bias", flax_path + ("bias",), IDENTITY)]


def _norm(torch_prefix: str, flax_path: tuple[str, ...]) -> list[Row]:
    return [Row(f"{torch_prefix}.weight", flax_path + ("scale",), IDENTITY),
            Row(f"{torch_prefix}.bias", flax_path + ("bias",), IDENTITY)]


def _block(torch_prefix: str, flax_path: tuple[str, ...]) -> list[Row]:
    return [
        *_norm(f"{torch_prefix}.norm1", flax_path + ("norm1",)),
        *_linear(f"{torch_prefix}.attn.qkv", flax_path + ("attn", "qkv")),
        *_linear(f"{torch_prefix}.attn.proj", flax_path + ("attn", "proj")),
        *_norm(f"{torch_prefix}.norm2", flax_path + ("norm2",)),
        *_linear(f"{torch_prefix}.mlp.fc1", flax_path + ("fc1",)),
        *_linear(f"{torch_prefix}.mlp.fc2", flax_path + ("fc2",)),
    ]


def table(config: ae.AutoencoderConfig) -> Table:
    enc, dec = ("encoder",), ("decoder",)
    rows = [
        Row("patch_embed.proj.weight", enc + ("patch_embed", "kernel"), CONV2D),
        Row("patch_embed.proj.bias", enc + ("patch_embed", "bias"), IDENTITY),
    ]
    for n in range(config.blocks):
        rows += _block(f"encoder.{n}", enc + (f"block_{n}",))
    rows += _norm("enc_norm", enc + ("norm",)) + _linear("quant_conv", enc + ("quant",))
    rows += _linear("post_quant_conv", dec + ("post_quant",))
    for n in range(config.decoder_blocks):
        rows += _block(f"decoder.{n}", dec + (f"block_{n}",))
    rows += _norm("dec_norm", dec + ("norm",)) + _linear("predictor", dec + ("predictor",))
    return Table(name=NAME, rows=tuple(rows))


def convert(
    state_dict: Mapping[str, np.ndarray], heads: int = DEFAULT_HEADS, frame_size: tuple[int, int] = DEFAULT_FRAME_SIZE
) -> Converted:
    """The wm_jax vit autoencoder holding this ViT-VAE; `heads` and `frame_size` are what its shapes cannot tell.

    Latent stats are (0, 1/SCALING_FACTOR): normalised latents are Oasis' DiT latents.
    """
    config = infer_config(state_dict, heads, frame_size)
    params = apply(table(config), state_dict, ae.abstract_variables(config)["params"])
    c = config.latent_channels
    stats = {"mean": np.zeros((c,), np.float32), "std": np.full((c,), 1.0 / SCALING_FACTOR, np.float32)}
    info = {
        "heads": heads,
        "latent_scale": f"{SCALING_FACTOR} (latent stats std = 1/scale: normalised latents are Oasis' DiT latents)",
    }
    return Converted(layout=NAME, config=config, params=params, info=info, description=describe(config),
                     collections={"latent_stats": stats})


def describe(config: ae.AutoencoderConfig) -> str:
    frame = config.frame_size
    return (f"frames {frame[0]}x{frame[1]}, patch {config.downscale}, latent {config.latent_grid[0]}x"
            f"{config.latent_grid[1]}x{config.latent_channels}, encoder {config.width}x{config.blocks} "
            f"({config.heads} heads), decoder {config.decoder_width}x{config.decoder_blocks} "
            f"({config.decoder_heads} heads), mlp_ratio {config.mlp_ratio:g}")


def verify(converted: Converted, reference: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Max abs error of both halves against a reference in Oasis' layout and ranges (unscaled latents).

    reference: image [B, 3, H, W] in [-1, 1], latent [B, h·w, c] (the encoder's posterior mean),
    random_latent [B, h·w, c], decoded_random [B, 3, H, W] (the decoder's output on random_latent).
    """
    missing = [k for k in ("image", "latent", "random_latent", "decoded_random") if k not in reference]
    if missing:
        raise KeyError(f"reference file lacks {missing} (oasis-vae references hold image, latent, random_latent, "
                       "decoded_random)")
    config, variables = converted.config, converted.variables
    c = config.latent_channels
    raw = ae.with_latent_stats(variables, np.zeros((c,), np.float32), np.ones((c,), np.float32))
    image = np.asarray(reference["image"], np.float32).transpose(0, 2, 3, 1)
    h, w = config.latent_grid
    tokens = lambda a: np.asarray(a, np.float32).reshape(-1, h, w, c)  # noqa: E731  [B, h·w, c] row-major
    z = np.asarray(ae.encode(raw, image, config))
    x = np.asarray(ae.decode(raw, tokens(reference["random_latent"]), config))
    return {
        "encoder": float(np.abs(z - tokens(reference["latent"])).max()),
        "decoder": float(np.abs(x - np.asarray(reference["decoded_random"], np.float32).transpose(0, 2, 3, 1)).max()),
    }
