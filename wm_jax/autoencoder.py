"""The autoencoder whose latent space the world model lives in.

Two kinds, chosen by `AutoencoderConfig.kind`:

* "conv": the TAESD family's architecture, exactly (github.com/madebyollin/taesd, MIT), so
  converted TAESD / taef1 / taef2 weights run unchanged: 3x3 conv Blocks with a skip
  (relu(conv(relu(conv(relu(conv(x))))) + x)), stride-2 3x3 convs to downsample, nearest 2x
  upsampling followed by a bias-free 3x3 conv, and `tanh(z/3)*3` clamping the decoder's input.
  The FLUX.2 variant (taef2) adds, to the Blocks at the deepest level, a branch
  `x + conv1x1(relu(GroupNorm4(conv1x1_4x(x))))` before the block (`midblock_gn`); the
  GroupNorm pools statistics over the whole frame, so taef2 is not tile-separable. Width,
  blocks per level, downscale (2**levels: 4, 8, ...) and latent channels are free, so the
  project can train small fast ones too.
* "pixel": no network; the latent is the frame cut into p x p patches stacked on channels
  ([H, W, 3] -> [H/p, W/p, 3p^2]), lossless, for worlds small enough to model directly.
* "vit": the open Oasis model's ViT autoencoder (`wm_jax.vit_autoencoder`; converted with
  `wm convert --layout oasis-vae`): p x p patches (p = downscale, Oasis 20) through transformer
  blocks to c latent channels and back. It runs at its `frame_size` only (Oasis: 360x640), and
  sees frames in [-1, 1] as they are. Converted Oasis weights get latent stats (0, 1/0.07843137255):
  the normalised latents are Oasis' latents times its scaling factor, what its DiT was trained on.

Conventions:
  frames:  [..., H, W, 3] float in [-1, 1] (TAESD's networks see [0, 1]; the shift happens here).
  latents: [..., H/f, W/f, c] float32, normalised by the per-channel `latent_stats` (mean, std)
           kept beside the params, so the world model sees unit-scale latents. Fresh or converted
           stats are (0, 1): latents are then exactly TAESD's raw latents.
  H and W must be multiples of the downscale factor f; other sizes are refused (never cropped
  or padded silently): pad or resize the frames first.

Variables are a plain pytree {"params": {...}, "latent_stats": {"mean": [c], "std": [c]}};
train "params" only. `encode` and `decode` are pure functions, jit-compiled with `config`
static (a frozen, hashable dataclass); inside a caller's jit they simply inline. A checkpoint
directory, as written by `save` or by `wm convert --layout taesd`, is read back by `load`:
  DIR/autoencoder.json   {"format": FORMAT, "config": {...}, "info": {...}}
  DIR/variables/         orbax PyTree checkpoint of the variables
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import vit_autoencoder as vit

FORMAT = "wm_jax.autoencoder/1"
GN_GROUPS = 4  # taef2's pooling branch: GroupNorm(4 groups, 4*width channels)
GN_EPS = 1e-5  # PyTorch's GroupNorm default, which the taef2 weights were trained with


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """kind: "conv" (TAESD family), "pixel" (patchify) or "vit" (Oasis' ViT autoencoder).

    downscale: spatial factor f (conv: a power of two, 2**levels; pixel and vit: the patch size).
    latent_channels: c (pixel: must be 3*f*f).
    width, blocks, outer_blocks: conv channels; Blocks per downsampled level (TAESD: 3); Blocks
        at full resolution after the stem / before the output conv (TAESD: 1).
        vit: the encoder's width and number of transformer blocks (outer_blocks unused).
    midblock_gn: the FLUX.2 (taef2) pooling branch on the deepest level's Blocks.
    latent_clamp: the decoder's input goes through tanh(z/a)*a (TAESD: a=3); None disables
        (vit: must be None, Oasis' decoder has no clamp).
    decoder_width, decoder_blocks: the decoder's width and blocks (conv: Blocks per level; 0, the
        default, is the encoder's `width`, `blocks`: a wider decoder draws finer detail from the
        same latents, at its cost in every frame shown).
    heads, decoder_heads, mlp_ratio, frame_size: vit only: the encoder's and the decoder's heads,
        the MLP ratio of both, and the (H, W) frame size the network is built for (its rotary
        tables depend on it).
    """

    kind: str = "conv"
    latent_channels: int = 4
    downscale: int = 8
    width: int = 64
    blocks: int = 3
    outer_blocks: int = 1
    midblock_gn: bool = False
    latent_clamp: float | None = 3.0
    heads: int = 0
    decoder_width: int = 0
    decoder_blocks: int = 0
    decoder_heads: int = 0
    mlp_ratio: float = 4.0
    frame_size: tuple[int, int] | None = None

    def __post_init__(self):
        if self.kind not in ("conv", "pixel", "vit"):
            raise ValueError(f"autoencoder kind must be 'conv', 'pixel' or 'vit', got {self.kind!r}")
        if self.frame_size is not None:  # JSON gives a list; the config must stay hashable
            object.__setattr__(self, "frame_size", tuple(int(v) for v in self.frame_size))
        if self.kind == "vit":
            _check_vit(self)
        if self.kind == "conv" and (self.downscale < 2 or self.downscale & (self.downscale - 1)):
            raise ValueError(f"conv autoencoder downscale must be a power of two >= 2, got {self.downscale}")
        if self.kind == "pixel" and self.latent_channels != 3 * self.downscale**2:
            raise ValueError(
                f"pixel autoencoder with patch {self.downscale} has {3 * self.downscale**2} latent channels, "
                f"config says {self.latent_channels}"
            )

    @property
    def levels(self) -> int:
        return int(math.log2(self.downscale))

    @property
    def latent_grid(self) -> tuple[int, int] | None:
        """vit: the (h, w) latent grid of `frame_size`; None for the other kinds (any size)."""
        if self.frame_size is None:
            return None
        return self.frame_size[0] // self.downscale, self.frame_size[1] // self.downscale

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        check_size(height, width, self.downscale)
        check_frame_size(height, width, self)
        return height // self.downscale, width // self.downscale, self.latent_channels


def _check_vit(cfg: AutoencoderConfig) -> None:
    if cfg.frame_size is None:
        raise ValueError("a vit autoencoder needs frame_size (H, W): its attention's rotary tables are built for it")
    check_size(*cfg.frame_size, cfg.downscale)
    if cfg.latent_clamp is not None:
        raise ValueError("a vit autoencoder's decoder has no input clamp: set latent_clamp=None")
    for what, width, heads, depth in (("encoder", cfg.width, cfg.heads, cfg.blocks),
                                      ("decoder", cfg.decoder_width, cfg.decoder_heads, cfg.decoder_blocks)):
        if heads < 1 or width % heads or (width // heads) % 8 or depth < 1:
            raise ValueError(
                f"vit {what}: width {width} over {heads} heads ({depth} blocks) must give a head_dim divisible by 8 "
                "(half of it is rotated, in head_dim/8 frequency pairs per axis) and at least one block"
            )


def check_frame_size(height: int, width: int, config: AutoencoderConfig) -> None:
    """A vit autoencoder runs at its frame_size only; the other kinds at any multiple of f."""
    if config.frame_size is not None and (height, width) != config.frame_size:
        fh, fw = config.frame_size
        raise ValueError(
            f"this vit autoencoder runs at {fh}x{fw} frames only (its rotary tables are built for a "
            f"{fh // config.downscale}x{fw // config.downscale} latent grid), got {height}x{width}: resize the frames"
        )


CONFIGS: dict[str, AutoencoderConfig] = {
    # Pretrained TAESD family (convert their .pth files with `wm convert --layout taesd`).
    "taesd": AutoencoderConfig(latent_channels=4),  # SD 1.x/2.x and SDXL latent spaces
    "taef1": AutoencoderConfig(latent_channels=16),  # FLUX.1 / SD3 latent space
    "taef2": AutoencoderConfig(latent_channels=32, midblock_gn=True),  # FLUX.2 latent space
    # The project's own, trained by `wm train-ae`: narrower and shallower, for CPU-speed play.
    "tiny_f4c8": AutoencoderConfig(latent_channels=8, downscale=4, width=32, blocks=1),
    "tiny_f8c16": AutoencoderConfig(latent_channels=16, downscale=8, width=32, blocks=1),
    "small_f8c16": AutoencoderConfig(latent_channels=16, downscale=8, width=48, blocks=2),
    # Pixel space: identity plus patchify.
    "pixel_p1": AutoencoderConfig(kind="pixel", downscale=1, latent_channels=3),
    "pixel_p2": AutoencoderConfig(kind="pixel", downscale=2, latent_channels=12),
    "pixel_p4": AutoencoderConfig(kind="pixel", downscale=4, latent_channels=48),
}


def get_config(name: str, **overrides) -> AutoencoderConfig:
    """A named config, optionally with fields replaced."""
    if name not in CONFIGS:
        raise KeyError(f"unknown autoencoder config {name!r}; known: {', '.join(sorted(CONFIGS))}")
    return dataclasses.replace(CONFIGS[name], **overrides)


def check_size(height: int, width: int, factor: int) -> None:
    if height % factor or width % factor:
        raise ValueError(
            f"frame size {height}x{width} is not a multiple of the autoencoder's downscale factor {factor}: "
            f"pad or resize the frames (e.g. to {math.ceil(height / factor) * factor}x{math.ceil(width / factor) * factor}); "
            "frames are never cropped or padded silently"
        )


# ----------------------------------------------------------------------------- layers


def _conv(features: int, name: str, *, kernel: int = 3, stride: int = 1, bias: bool = True) -> nn.Conv:
    # Explicit symmetric padding as PyTorch's padding=1: "SAME" would pad stride-2 convs (0, 1)
    # instead of (1, 1) and shift every downsampled feature map by half a pixel.
    pad = kernel // 2
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=((pad, pad), (pad, pad)), use_bias=bias, name=name)


class Block(nn.Module):
    """TAESD's residual block, with taef2's optional GroupNorm branch in front.

    x: [N, H, W, C] -> [N, H, W, width]
    """

    width: int
    midblock_gn: bool = False

    @nn.compact
    def __call__(self, x_NHWC):
        if self.midblock_gn:
            h = _conv(4 * self.width, "pool_in", kernel=1, bias=False)(x_NHWC)
            h = nn.GroupNorm(num_groups=GN_GROUPS, epsilon=GN_EPS, use_fast_variance=False, name="pool_norm")(h)
            x_NHWC = x_NHWC + _conv(self.width, "pool_out", kernel=1, bias=False)(nn.relu(h))
        h = nn.relu(_conv(self.width, "conv_0")(x_NHWC))
        h = nn.relu(_conv(self.width, "conv_1")(h))
        h = _conv(self.width, "conv_2")(h)
        skip = x_NHWC if x_NHWC.shape[-1] == self.width else _conv(self.width, "skip", kernel=1, bias=False)(x_NHWC)
        return nn.relu(h + skip)


class Encoder(nn.Module):
    """x: [N, H, W, 3] in [0, 1] -> raw latents [N, H/f, W/f, c]."""

    config: AutoencoderConfig

    @nn.compact
    def __call__(self, x_NHWC):
        cfg = self.config
        x = _conv(cfg.width, "conv_in")(x_NHWC)
        for i in range(cfg.outer_blocks):
            x = Block(cfg.width, name=f"block_in_{i}")(x)
        for level in range(1, cfg.levels + 1):
            x = _conv(cfg.width, f"down_{level}", stride=2, bias=False)(x)
            gn = cfg.midblock_gn and level == cfg.levels
            for i in range(cfg.blocks):
                x = Block(cfg.width, gn, name=f"level_{level}_block_{i}")(x)
        return _conv(cfg.latent_channels, "conv_out")(x)


class Decoder(nn.Module):
    """z: raw latents [N, h, w, c] -> [N, h*f, w*f, 3], approximately in [0, 1]."""

    config: AutoencoderConfig

    @nn.compact
    def __call__(self, z_NhwC):
        cfg = self.config
        if cfg.latent_clamp is not None:
            z_NhwC = jnp.tanh(z_NhwC / cfg.latent_clamp) * cfg.latent_clamp
        width, blocks = cfg.decoder_width or cfg.width, cfg.decoder_blocks or cfg.blocks
        x = nn.relu(_conv(width, "conv_in")(z_NhwC))
        for level in range(cfg.levels, 0, -1):
            gn = cfg.midblock_gn and level == cfg.levels
            for i in range(blocks):
                x = Block(width, gn, name=f"level_{level}_block_{i}")(x)
            x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)  # nearest-neighbour 2x
            x = _conv(width, f"up_{level}", bias=False)(x)
        for i in range(cfg.outer_blocks):
            x = Block(width, name=f"block_out_{i}")(x)
        return _conv(3, "conv_out")(x)


def patchify(x_NHWC, p: int):
    """[N, H, W, C] -> [N, H/p, W/p, p*p*C], patch rows then columns then channels."""
    n, h, w, c = x_NHWC.shape
    x = x_NHWC.reshape(n, h // p, p, w // p, p, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h // p, w // p, p * p * c)


def unpatchify(z_NhwD, p: int):
    """Inverse of `patchify`: [N, h, w, p*p*C] -> [N, h*p, w*p, C]."""
    n, h, w, d = z_NhwD.shape
    c = d // (p * p)
    z = z_NhwD.reshape(n, h, w, p, p, c).transpose(0, 1, 3, 2, 4, 5)
    return z.reshape(n, h * p, w * p, c)


class Autoencoder(nn.Module):
    """frames [N, H, W, 3] in [-1, 1] <-> normalised latents [N, h, w, c]."""

    config: AutoencoderConfig

    def setup(self):
        cfg = self.config
        if cfg.kind == "conv":
            self.encoder = Encoder(cfg)
            self.decoder = Decoder(cfg)
        elif cfg.kind == "vit":
            self.encoder = vit.Encoder(cfg)
            self.decoder = vit.Decoder(cfg)
        c = cfg.latent_channels
        self.latent_mean = self.variable("latent_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        self.latent_std = self.variable("latent_stats", "std", lambda: jnp.ones((c,), jnp.float32))

    def encode_raw(self, frames_NHWC):
        if self.config.kind == "pixel":
            return patchify(frames_NHWC, self.config.downscale)
        if self.config.kind == "vit":
            return self.encoder(frames_NHWC)  # Oasis' ViT sees [-1, 1]
        return self.encoder(frames_NHWC * 0.5 + 0.5)  # TAESD networks see [0, 1]

    def decode_raw(self, z_NhwC):
        if self.config.kind == "pixel":
            return unpatchify(z_NhwC, self.config.downscale)
        if self.config.kind == "vit":
            return self.decoder(z_NhwC)
        return self.decoder(z_NhwC) * 2.0 - 1.0

    def encode(self, frames_NHWC):
        return (self.encode_raw(frames_NHWC) - self.latent_mean.value) / self.latent_std.value

    def decode(self, z_NhwC):
        return self.decode_raw(z_NhwC * self.latent_std.value + self.latent_mean.value)

    def __call__(self, frames_NHWC):
        return self.decode(self.encode(frames_NHWC))


# ----------------------------------------------------------------------------- pure functions


def _as_batch(x, trailing: int = 3):
    """[..., A, B, C] -> ([N, A, B, C], leading shape)."""
    if x.ndim < trailing:
        raise ValueError(f"expected [..., H, W, C], got shape {x.shape}")
    lead = x.shape[:-trailing]
    return x.reshape((-1,) + x.shape[-trailing:]), lead


def _check_frames(frames, config: AutoencoderConfig):
    if frames.shape[-1] != 3:
        raise ValueError(f"frames must be [..., H, W, 3], got shape {frames.shape}")
    if not jnp.issubdtype(frames.dtype, jnp.floating):
        raise TypeError(f"frames must be float in [-1, 1], got {frames.dtype} (uint8 frames: x / 127.5 - 1)")
    check_size(frames.shape[-3], frames.shape[-2], config.downscale)
    check_frame_size(frames.shape[-3], frames.shape[-2], config)


def abstract_variables(config: AutoencoderConfig) -> dict:
    """Shapes and dtypes of the variables (jax.ShapeDtypeStruct leaves), without computing anything."""
    f = config.downscale
    shapes = jax.eval_shape(Autoencoder(config).init, jax.random.PRNGKey(0), jnp.zeros((1, f, f, 3), jnp.float32))
    # "params" is always there (empty for pixel space), so training code can rely on it.
    return {"params": {}, **jax.tree_util.tree_map(lambda x: x, dict(shapes))}  # plain dicts, not FrozenDict


# Leaf name -> how `init` fills it. Drawn with numpy, not inside XLA: compiling the ~160 random
# draws of a TAESD-sized init takes XLA longer (5-10 s on a 2-core CPU) than everything else.
# kernel: PyTorch's default conv init U(+-1/sqrt(fan_in)), which TAESD itself trained from.
def _init_leaf(name: str, shape: tuple[int, ...], gen: np.random.Generator) -> np.ndarray:
    if name == "kernel":
        bound = 1.0 / math.sqrt(max(1, int(np.prod(shape[:-1]))))
        return gen.uniform(-bound, bound, shape).astype(np.float32)
    if name in ("bias", "mean"):
        return np.zeros(shape, np.float32)
    if name in ("scale", "std"):
        return np.ones(shape, np.float32)
    raise ValueError(f"no init rule for autoencoder variable {name!r}")


def init(config: AutoencoderConfig, rng: jax.Array) -> dict:
    """Fresh variables {"params", "latent_stats"}; shapes do not depend on the frame size."""
    key = rng if not jnp.issubdtype(rng.dtype, jax.dtypes.prng_key) else jax.random.key_data(rng)
    gen = np.random.default_rng(np.asarray(key, np.uint32).ravel().tolist())
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: jnp.asarray(_init_leaf(path[-1].key, tuple(leaf.shape), gen)), abstract_variables(config)
    )



@functools.partial(jax.jit, static_argnames="config")
def encode(variables: Mapping, frames, config: AutoencoderConfig):
    """frames: [..., H, W, 3] float in [-1, 1] -> latents: [..., H/f, W/f, c] float32 (normalised)."""
    frames = jnp.asarray(frames)
    _check_frames(frames, config)
    x, lead = _as_batch(frames.astype(jnp.float32))
    z = Autoencoder(config).apply(variables, x, method=Autoencoder.encode)
    return z.reshape(lead + z.shape[1:])


@functools.partial(jax.jit, static_argnames="config")
def decode(variables: Mapping, latents, config: AutoencoderConfig):
    """latents: [..., h, w, c] (normalised) -> frames: [..., h*f, w*f, 3] float32, about [-1, 1], not clipped."""
    latents = jnp.asarray(latents)
    if latents.shape[-1] != config.latent_channels:
        raise ValueError(f"latents must be [..., h, w, {config.latent_channels}], got shape {latents.shape}")
    if latents.ndim >= 3 and config.latent_grid is not None and tuple(latents.shape[-3:-1]) != config.latent_grid:
        raise ValueError(f"this vit autoencoder decodes {config.latent_grid[0]}x{config.latent_grid[1]} latents only "
                         f"(its frame size {config.frame_size[0]}x{config.frame_size[1]}), got shape {latents.shape}")
    z, lead = _as_batch(latents.astype(jnp.float32))
    x = Autoencoder(config).apply(variables, z, method=Autoencoder.decode)
    return x.reshape(lead + x.shape[1:])


@functools.partial(jax.jit, static_argnames="config")
def _encode_raw(variables: Mapping, x_NHWC, config: AutoencoderConfig):
    return Autoencoder(config).apply(variables, x_NHWC, method=Autoencoder.encode_raw)


def raw_latent_stats(variables: Mapping, frames, config: AutoencoderConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of the un-normalised latents of `frames` [..., H, W, 3]."""
    frames = jnp.asarray(frames)
    _check_frames(frames, config)
    x, _ = _as_batch(frames.astype(jnp.float32))
    flat = np.asarray(_encode_raw(variables, x, config)).reshape(-1, config.latent_channels).astype(np.float64)
    return flat.mean(0).astype(np.float32), np.maximum(flat.std(0), 1e-6).astype(np.float32)


def with_latent_stats(variables: Mapping, mean, std) -> dict:
    """A copy of `variables` whose latent normalisation is (mean, std), each [c]."""
    c = variables["latent_stats"]["mean"].shape
    mean, std = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)
    if mean.shape != c or std.shape != c:
        raise ValueError(f"latent stats must be shaped {c}, got mean {mean.shape}, std {std.shape}")
    return {**variables, "latent_stats": {"mean": mean, "std": std}}


# ----------------------------------------------------------------------------- checkpoints


def save(directory: str | os.PathLike, config: AutoencoderConfig, variables: Mapping, info: Mapping[str, Any] | None = None) -> None:
    """Write `variables` (orbax) and `config` (JSON) under `directory` (its `variables/` must not exist)."""
    import orbax.checkpoint as ocp  # imported here: only checkpoint I/O needs orbax

    directory = os.path.abspath(os.fspath(directory))
    os.makedirs(directory, exist_ok=True)
    with ocp.PyTreeCheckpointer() as checkpointer:
        checkpointer.save(os.path.join(directory, "variables"), jax.tree_util.tree_map(np.asarray, dict(variables)))
    meta = {"format": FORMAT, "config": dataclasses.asdict(config), "info": dict(info or {})}
    with open(os.path.join(directory, "autoencoder.json"), "w") as f:
        json.dump(meta, f, indent=2)


def load_config(directory: str | os.PathLike) -> tuple[AutoencoderConfig, dict]:
    """(config, info) from DIR/autoencoder.json."""
    path = os.path.join(os.fspath(directory), "autoencoder.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{directory}: no autoencoder.json (write one with wm_jax.autoencoder.save or `wm convert`)")
    with open(path) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, this version reads {FORMAT!r}")
    return AutoencoderConfig(**meta["config"]), meta.get("info", {})


def load(directory: str | os.PathLike) -> tuple[AutoencoderConfig, dict]:
    """(config, variables) from a directory written by `save`; shapes are checked against the config."""
    import orbax.checkpoint as ocp

    config, _ = load_config(directory)
    target = abstract_variables(config)
    path = os.path.join(os.path.abspath(os.fspath(directory)), "variables")
    restore_args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
    with ocp.PyTreeCheckpointer() as checkpointer:
        restored = checkpointer.restore(path, restore_args=restore_args)
    got = jax.tree_util.tree_map(lambda x: (tuple(x.shape), str(x.dtype)), restored)
    want = jax.tree_util.tree_map(lambda x: (tuple(x.shape), str(x.dtype)), target)
    if got != want:
        raise ValueError(f"{directory}: stored variables do not match config {config}")
    return config, jax.tree_util.tree_map(jnp.asarray, restored)
