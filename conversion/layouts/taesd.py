"""TAESD family (taesd, taesdxl, taef1, taesd3, taef2) -> wm_jax.autoencoder, conv kind.

Source: the two files `<name>_encoder.pth` and `<name>_decoder.pth`, each the state_dict of a
torch `nn.Sequential`, so keys are `<index>.<...>`: the PARTS of a source, read under `encoder.` /
`decoder.` (a single file already holding both prefixes works the same). Indices, from the public
`taesd.py` (N = outer blocks, B = blocks per level, L = levels):

  encoder: conv(3,w) | N x Block | L x [conv stride 2, no bias | B x Block] | conv(w,c)
  decoder: Clamp | conv(c,w) | ReLU | L x [B x Block | Upsample | conv no bias] | N x Block | conv(w,3)

Block: `conv.{0,2,4}` (3x3, bias; 1 and 3 are ReLUs), `skip` (1x1, only if widths differ),
and in taef2's deepest level `pool.0` (1x1, w->4w, no bias), `pool.1` (GroupNorm(4, 4w)),
`pool.3` (1x1, 4w->w, no bias). Nothing is ignorable: every tensor of these files is a weight.
"""

from __future__ import annotations

import re
from typing import Mapping

import numpy as np

from wm_jax.conversion.converted import Converted
from wm_jax.conversion.table import CONV2D, IDENTITY, Row, Table, apply
from wm_jax import autoencoder as ae
from wm_jax.autoencoder import AutoencoderConfig

NAME = "taesd"
PARTS = ("encoder", "decoder")  # a source may be the two files, {"encoder": path, "decoder": path}


def _conv_rows(torch_prefix: str, flax_path: tuple[str, ...], bias: bool = True) -> list[Row]:
    rows = [Row(f"{torch_prefix}.weight", flax_path + ("kernel",), CONV2D)]
    if bias:
        rows.append(Row(f"{torch_prefix}.bias", flax_path + ("bias",), IDENTITY))
    return rows


def _block_rows(torch_prefix: str, flax_path: tuple[str, ...], midblock_gn: bool) -> list[Row]:
    rows = []
    for torch_index, name in ((0, "conv_0"), (2, "conv_1"), (4, "conv_2")):
        rows += _conv_rows(f"{torch_prefix}.conv.{torch_index}", flax_path + (name,))
    if midblock_gn:
        rows += _conv_rows(f"{torch_prefix}.pool.0", flax_path + ("pool_in",), bias=False)
        rows.append(Row(f"{torch_prefix}.pool.1.weight", flax_path + ("pool_norm", "scale"), IDENTITY))
        rows.append(Row(f"{torch_prefix}.pool.1.bias", flax_path + ("pool_norm", "bias"), IDENTITY))
        rows += _conv_rows(f"{torch_prefix}.pool.3", flax_path + ("pool_out",), bias=False)
    return rows


def encoder_rows(cfg: AutoencoderConfig) -> list[Row]:
    root = ("encoder",)
    rows, i = _conv_rows("encoder.0", root + ("conv_in",)), 1
    for b in range(cfg.outer_blocks):
        rows += _block_rows(f"encoder.{i}", root + (f"block_in_{b}",), False)
        i += 1
    for level in range(1, cfg.levels + 1):
        rows += _conv_rows(f"encoder.{i}", root + (f"down_{level}",), bias=False)
        i += 1
        for b in range(cfg.blocks):
            rows += _block_rows(f"encoder.{i}", root + (f"level_{level}_block_{b}",), cfg.midblock_gn and level == cfg.levels)
            i += 1
    return rows + _conv_rows(f"encoder.{i}", root + ("conv_out",))


def decoder_rows(cfg: AutoencoderConfig) -> list[Row]:
    root = ("decoder",)
    rows, i = _conv_rows("decoder.1", root + ("conv_in",)), 3  # 0: Clamp, 2: ReLU
    for level in range(cfg.levels, 0, -1):
        for b in range(cfg.blocks):
            rows += _block_rows(f"decoder.{i}", root + (f"level_{level}_block_{b}",), cfg.midblock_gn and level == cfg.levels)
            i += 1
        i += 1  # Upsample
        rows += _conv_rows(f"decoder.{i}", root + (f"up_{level}",), bias=False)
        i += 1
    for b in range(cfg.outer_blocks):
        rows += _block_rows(f"decoder.{i}", root + (f"block_out_{b}",), False)
        i += 1
    return rows + _conv_rows(f"decoder.{i}", root + ("conv_out",))


def table(cfg: AutoencoderConfig) -> Table:
    """The table from the joined state_dict to `variables["params"]` of `cfg`."""
    if cfg.kind != "conv":
        raise ValueError(f"the taesd layout converts into conv autoencoders, not {cfg.kind!r}")
    return Table(name=NAME, rows=tuple(encoder_rows(cfg) + decoder_rows(cfg)))


def join(encoder_sd: Mapping[str, np.ndarray], decoder_sd: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Two Sequential state_dicts -> one namespace with `encoder.` / `decoder.` prefixes."""
    return {**{f"encoder.{k}": v for k, v in encoder_sd.items()}, **{f"decoder.{k}": v for k, v in decoder_sd.items()}}


def split(sd: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A single file holding both halves (`encoder.*`, `decoder.*`) -> (encoder_sd, decoder_sd)."""
    enc = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    dec = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}
    other = sorted(k for k in sd if not k.startswith(("encoder.", "decoder.")))
    if not enc or not dec or other:
        raise ValueError(
            "a single taesd file must hold encoder.* and decoder.* keys only "
            f"(found {len(enc)} encoder, {len(dec)} decoder, and other keys {other[:5]}); or pass --decoder"
        )
    return enc, dec


def _tokens(sd: Mapping[str, np.ndarray], prefix: str) -> tuple[str, list[int]]:
    """The Sequential as a string: C conv with bias, c conv without, B Block (by index)."""
    indices = sorted({int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))})
    out = ""
    for i in indices:
        if f"{prefix}{i}.conv.0.weight" in sd:
            out += "B"
        elif f"{prefix}{i}.weight" in sd:
            out += "C" if f"{prefix}{i}.bias" in sd else "c"
        else:
            out += "?"
    return out, indices


def infer_config(sd: Mapping[str, np.ndarray]) -> AutoencoderConfig:
    """The conv config a joined TAESD-family state_dict was built with, read from its keys and shapes."""
    first = sd.get("encoder.0.weight")
    if first is None or first.ndim != 4 or first.shape[1] != 3 or "decoder.0.weight" in sd or "decoder.1.weight" not in sd:
        raise ValueError(
            "not a TAESD-family encoder/decoder pair: the encoder must start with conv(3, w) at index 0 and the "
            "decoder with Clamp (no weights) then conv(c, w) at index 1; were encoder and decoder swapped?"
        )
    enc, _ = _tokens(sd, "encoder.")
    dec, _ = _tokens(sd, "decoder.")
    m_enc = re.fullmatch(r"C(B*)((?:cB+)+)C", enc)
    m_dec = re.fullmatch(r"C((?:B+c)+)(B*)C", dec)
    if not m_enc or not m_dec:
        raise ValueError(
            "not a TAESD-family encoder/decoder pair: layer pattern "
            f"encoder {enc!r}, decoder {dec!r} (C conv, c bias-free conv, B block; expected "
            "C B..(c B..)..C and C (B..c)..B..C)"
        )
    enc_levels = m_enc.group(2).split("c")[1:]
    dec_levels = m_dec.group(1).split("c")[:-1]
    blocks = {len(s) for s in enc_levels + dec_levels}
    if len(blocks) != 1 or len(enc_levels) != len(dec_levels) or len(m_enc.group(1)) != len(m_dec.group(2)):
        raise ValueError(f"encoder {enc!r} and decoder {dec!r} differ in depth; this layout needs them symmetric")
    width = sd["encoder.0.weight"].shape[0]
    latent = sd["decoder.1.weight"].shape[1]
    return AutoencoderConfig(
        kind="conv",
        latent_channels=int(latent),
        downscale=2 ** len(enc_levels),
        width=int(width),
        blocks=blocks.pop(),
        outer_blocks=len(m_enc.group(1)),
        midblock_gn=any(".pool.0.weight" in k for k in sd),
    )


def convert(state_dict: Mapping[str, np.ndarray]) -> Converted:
    """The wm_jax conv autoencoder holding a TAESD-family encoder/decoder pair.

    state_dict: the two halves under `encoder.` / `decoder.` (a source in PARTS, or one file
    holding both). Latent stats are (0, 1): the converted model's latents are exactly TAESD's
    raw latents.
    """
    split(state_dict)  # refuses anything but the two halves, saying so
    cfg = infer_config(state_dict)
    params = apply(table(cfg), state_dict, ae.abstract_variables(cfg)["params"])
    c = cfg.latent_channels
    stats = {"mean": np.zeros((c,), np.float32), "std": np.ones((c,), np.float32)}
    return Converted(layout=NAME, config=cfg, params=params, info={}, description=str(cfg),
                     collections={"latent_stats": stats})


def verify(converted: Converted, reference: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Max abs error of both halves against a reference in PyTorch's layout and TAESD's ranges.

    reference: image [B,3,H,W] in [0,1], latent [B,c,h,w] (encoder output), random_latent
    [B,c,h,w], decoded_random [B,3,H,W] (decoder output on random_latent, in [0,1] scale).
    """
    missing = [k for k in ("image", "latent", "random_latent", "decoded_random") if k not in reference]
    if missing:
        raise KeyError(f"reference file lacks {missing} (taesd references hold image, latent, random_latent, decoded_random)")
    cfg, variables = converted.config, converted.variables
    to_nhwc = lambda a: np.asarray(a, np.float32).transpose(0, 2, 3, 1)  # noqa: E731
    z = np.asarray(ae.encode(variables, to_nhwc(reference["image"]) * 2 - 1, cfg))
    x = np.asarray(ae.decode(variables, to_nhwc(reference["random_latent"]), cfg))
    return {
        "encoder": float(np.abs(z - to_nhwc(reference["latent"])).max()),
        "decoder": float(np.abs((x + 1) / 2 - to_nhwc(reference["decoded_random"])).max()),
    }
