"""Model configurations: one frozen dataclass, and the named configurations the project uses.

`image_420m` is a DiT (the public reference layout) at width 1024 and depth 22. `wm_516m` adds
a temporal block (attention + MLP) after every 4th spatial block and the action embedding.
`wm_800m` is the successor: the same design with the MLPs fattened to ratio 9. `BUILD_NOTES.md`
has the parameter breakdown.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax.numpy as jnp

from wm_jax import actions, diffusion, warp


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the shapes of a world model's parameters and its compute."""

    latent_size: tuple[int, int] = (8, 8)  # (h, w) of the latents the model sees
    in_channels: int = 4
    out_channels: int | None = None  # None: same as in_channels; 2x when the model learns sigma
    patch_size: int = 2
    width: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    # The timestep embedding sees timestep_scale·t: 1000 for DiT weights, 1 for SiT/REPA ones.
    timestep_scale: float = 1000.0
    # The action embedding's output is multiplied by action_gain: Adam moves every weight by ~lr a
    # step, so a gain g lets the keys' share of the conditioning grow g times faster against the
    # timestep embedding (|c| ~ 19 at t = 1), which otherwise drowns it for thousands of steps.
    action_gain: float = 1.0
    qkv_bias: bool = True
    # Absolute 2-D sin-cos position embedding (DiT) and/or axial RoPE in spatial attention (Oasis).
    pos_embed: bool = True
    spatial_rope: bool = False
    # Temporal mixing: a temporal block after every k-th spatial block; 0 makes an image model.
    temporal_every: int = 1
    temporal_mlp: bool = False
    temporal_rope_theta: float = 10000.0
    # 0: a token attends to the same place in earlier frames (the reference design). r > 0: to
    # the (2r+1)² places around it, with a learned preference per offset that the query (hence
    # the keys held) can steer, so "the picture moved one token left" is one attention step.
    temporal_neighbourhood: int = 0
    # With a neighbourhood: the keys held also add a learned score per (head, offset) directly,
    # so "left is held: read the picture one token aside" is one linear map from the keys instead
    # of a path the query has to grow through adaLN first (issue 15, BUILD_NOTES "Worlds that hold").
    keys_steer_offsets: bool = False
    # Each frame's patch embedding also sees the frame before it (its input latent, concatenated
    # in channels; zeros for a clip's first frame), so "the scene as it was" reaches every token
    # by a linear map instead of through temporal attention. Not in the reference design.
    previous_frame_input: bool = False
    # What the output head predicts (`wm_jax.diffusion.PREDICTIONS`): the velocity ε - x_0 (the
    # reference design, and every imported layout), or the clean frame x_0 as the previous frame
    # plus a change ("x0_residual"; without previous_frame_input the network learns what the frame
    # before held through its temporal attention only): a still scene is then the zero
    # output, which a small network gets exactly right, where copying a frame through every
    # block it only gets nearly right (issue 15, BUILD_NOTES "Worlds that hold together").
    prediction: str = "velocity"
    # With prediction "x0_residual": each (key, down, right, log_zoom) moves the previous frame by
    # whole latent pixels and zooms it about its centre while that key is held (the moves of the
    # keys held add up; `wm_jax.warp`), so a turn or a pan costs the network nothing and no key
    # is still the zero output. The network draws what a move uncovers and what moves on its own.
    # Measured from a world's recordings (`python -m experiments.key_moves`), not learned by
    # gradient: a shift's loss is bumpy and a fractional one blurs (issue 15, BUILD_NOTES).
    key_moves: tuple[tuple[str, float, float, float], ...] = ()
    # With key_moves: the head's change is kept only where the keys' move brings in content from
    # beyond the frame (`warp.uncovered`: a pan's strip, a zoom out's ring, one latent pixel more
    # for the autoencoder's border), and everywhere else the frame is the previous one moved,
    # exactly. Right for a camera over a still scene (`pan`: the picture holds by construction and
    # the network only paints what comes into view); wrong where things move by themselves (doom).
    paint_uncovered_only: bool = False
    # With key_moves: what the moved frame holds where the move brings in content from beyond
    # it, before the head's change: "edge" repeats the border (a smear the network paints over),
    # "mirror" reflects the frame about its border (`warp.FILLS`): a sharp guess with the
    # picture's own statistics, right wherever the world is a mirror-tiled canvas.
    uncovered_fill: str = "edge"
    # With key_moves: (top, left, bottom, right) in latent pixels that no move moves: a sprite the
    # game draws fixed to the screen (doom's weapon). What it hid comes into view as the scene
    # moves past it and counts as uncovered (`warp.uncovered`). () for none.
    still_region: tuple[int, ...] = ()
    # The noise path it was trained on (`diffusion.Objective`): "flow" (the project's rectified
    # flow), or an imported model's beta schedule, "linear" (DiT), "cosine" or "sigmoid" (Oasis),
    # over diffusion_steps discrete steps, with prediction "epsilon" (DiT; a learned sigma when
    # out_channels = 2·in_channels) or "v_prediction" (Oasis). Written by `wm convert`; a
    # config.json without these fields is a rectified-flow model, as every model was before.
    noise_schedule: str = "flow"
    diffusion_steps: int = 1000
    # The action space, by key name (the player maps keys by name); embedded by one linear map.
    action_keys: tuple[str, ...] = actions.VOCAB
    # Continuous entries of it, each (entry, negative key, positive key, amount): `actions.Axis`
    # (Oasis' camera pitch and yaw, turned by a fixed amount while an arrow key is held).
    action_axes: tuple[tuple[str, str, str, float], ...] = ()
    # Frames the temporal attention may see besides the current one (the KV-cache length), and
    # the longest clip a training batch may hold.
    window: int = 8
    max_frames: int = 16
    compute_dtype: str = "float32"
    remat: bool = False
    attention: Literal["xla"] = "xla"

    def __post_init__(self):
        # config.json gives lists; the config must stay hashable (jit static argument, caches)
        object.__setattr__(self, "action_axes", tuple((str(e), str(n), str(p), float(a)) for e, n, p, a in self.action_axes))
        object.__setattr__(self, "key_moves", tuple((str(k), float(d), float(r), float(z)) for k, d, r, z in self.key_moves))
        object.__setattr__(self, "still_region", tuple(int(v) for v in self.still_region))
        _ = self.action_space  # validates the axes against the entries
        h, w = self.latent_size
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"latent_size {self.latent_size} is not a multiple of patch_size {self.patch_size}")
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}")
        if self.pos_embed and self.width % 4:
            raise ValueError(f"the 2-D sin-cos position embedding needs width divisible by 4, got {self.width}")
        if self.spatial_rope and self.head_dim % 4:
            raise ValueError(f"axial RoPE needs head_dim divisible by 4, got {self.head_dim}")
        if self.temporal_every < 0 or self.window < 1 or self.max_frames < 1:
            raise ValueError("temporal_every must be >= 0, window and max_frames >= 1")
        if self.prediction == "epsilon" and self.output_channels not in (self.in_channels, 2 * self.in_channels):
            raise ValueError(f"prediction 'epsilon' reads ε (and a learned sigma) from {self.in_channels} (or "
                             f"{2 * self.in_channels}) output channels, got out_channels {self.output_channels}")
        _ = self.objective  # validates prediction, noise_schedule and diffusion_steps together
        if self.temporal_neighbourhood < 0:
            raise ValueError(f"temporal_neighbourhood must be >= 0, got {self.temporal_neighbourhood}")
        if self.key_moves and self.prediction != "x0_residual":
            raise ValueError(f"key_moves move the previous frame an x0_residual head adds; prediction is {self.prediction!r}")
        if self.paint_uncovered_only and not self.key_moves:
            raise ValueError("paint_uncovered_only keeps the change where the keys' move uncovers the frame: it needs key_moves")
        if self.uncovered_fill not in warp.FILLS:
            raise ValueError(f"uncovered_fill must be one of {warp.FILLS}, got {self.uncovered_fill!r}")
        if self.still_region:
            top, left, bottom, right = self.still_region if len(self.still_region) == 4 else (0, 0, -1, -1)
            if not (self.key_moves and 0 <= top < bottom <= h and 0 <= left < right <= w):
                raise ValueError(f"still_region must be (top, left, bottom, right) inside the {h}x{w} latent frame with "
                                 f"top < bottom and left < right, for a model with key_moves; got {self.still_region}")
        unknown = sorted({key for key, *_ in self.key_moves} - set(self.action_keys))
        if unknown:
            raise ValueError(f"key_moves name keys {unknown} that are not in action_keys")
        if self.keys_steer_offsets and not self.temporal_neighbourhood:
            raise ValueError("keys_steer_offsets steers the temporal neighbourhood's offsets: it needs temporal_neighbourhood >= 1")

    @property
    def objective(self) -> diffusion.Objective:
        """What the sampler reads: prediction and noise path (learned sigma from the channels)."""
        learned_sigma = self.prediction == "epsilon" and self.output_channels == 2 * self.in_channels
        return diffusion.Objective(self.prediction, self.noise_schedule, self.diffusion_steps, learned_sigma)

    @property
    def action_space(self) -> actions.ActionSpace:
        return actions.ActionSpace(self.action_keys, tuple(actions.Axis(*axis) for axis in self.action_axes))

    @property
    def action_dim(self) -> int:
        return len(self.action_keys)

    @property
    def head_dim(self) -> int:
        return self.width // self.num_heads

    @property
    def output_channels(self) -> int:
        return self.out_channels or self.in_channels

    @property
    def grid(self) -> tuple[int, int]:
        return self.latent_size[0] // self.patch_size, self.latent_size[1] // self.patch_size

    @property
    def tokens_per_frame(self) -> int:
        gh, gw = self.grid
        return gh * gw

    @property
    def temporal_layers(self) -> tuple[int, ...]:
        """Indices of the spatial blocks that a temporal block follows."""
        if not self.temporal_every:
            return ()
        return tuple(i for i in range(self.depth) if (i + 1) % self.temporal_every == 0)

    @property
    def dtype(self):
        return jnp.dtype(self.compute_dtype)

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


_LATENT_32x32x32 = dict(latent_size=(32, 32), in_channels=32, patch_size=2)

CONFIGS: dict[str, ModelConfig] = {
    # Fast enough for every test: compiles in seconds on a CPU.
    "tiny": ModelConfig(
        latent_size=(8, 8), in_channels=4, patch_size=2, width=64, depth=2, num_heads=4,
        temporal_every=1, temporal_mlp=True, window=4, max_frames=8,
    ),
    "image_420m": ModelConfig(
        **_LATENT_32x32x32, width=1024, depth=22, num_heads=16, temporal_every=0, window=1, max_frames=1,
    ),
    "wm_516m": ModelConfig(
        **_LATENT_32x32x32, width=1024, depth=22, num_heads=16, temporal_every=4, temporal_mlp=True,
        window=12, max_frames=13,
    ),
    "wm_800m": ModelConfig(
        **_LATENT_32x32x32, width=1024, depth=22, num_heads=16, mlp_ratio=9.0, temporal_every=4,
        temporal_mlp=True, window=12, max_frames=13,
    ),
}


def get_config(name: str, **overrides) -> ModelConfig:
    """A named configuration, optionally with some fields replaced."""
    if name not in CONFIGS:
        raise KeyError(f"unknown model configuration {name!r}; known: {', '.join(sorted(CONFIGS))}")
    return CONFIGS[name].replace(**overrides)
