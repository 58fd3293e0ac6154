"""The open Oasis spatio-temporal DiT (Etched/Decart, `oasis500m`) -> wm_jax.WorldModel.

Facts read from the public open-oasis `dit.py`, `attention.py` and its vendored
`rotary_embedding_torch.py` (only facts; nothing copied):

* Each of the `depth` blocks is a spatial half then a temporal half, each adaLN-Zero with its own
  6-way modulation of the same per-frame conditioning c: attention + MLP (tanh GELU), LayerNorm
  without affine, eps 1e-6. In wm_jax: a SpatialBlock, then a TemporalBlock with MLP after
  every spatial block (`temporal_every=1, temporal_mlp=True`).
* Attention projections: `to_qkv` (Linear D -> 3D, **no bias**, chunked q|k|v, heads major
  within each) and `to_out` (Linear with bias) -> `qkv_bias=False`.
* Spatial attention: all tokens of a frame, not causal; axial RoPE from a `RotaryEmbedding(
  dim=head_dim // 2, freqs_for="pixel", max_freq=256)`: frequencies linspace(1, 128, head_dim/4)·π,
  positions linspace(-1, 1) along each axis, the row axis' angles first and the column axis'
  second (concatenated), each angle repeated for an interleaved feature pair; all head_dim
  features are rotated. No absolute position embedding -> `spatial_rope=True, pos_embed=False`.
* Temporal attention: each spatial location over frames, **causal** (`is_causal=True`),
  RoPE with "lang" frequencies 10000^(-2i/head_dim) over frame indices 0..T-1, all features.
* Conditioning: c = t_embedder(noise level k in 0..999) + external_cond(actions), a Linear
  (25 -> D) with bias, added to the timestep embedding before the blocks -> wm_jax's action
  embedding (k = 1000·t). Final layer = DiT's (adaLN shift/scale, Linear to p²·C).
* Patch embedding: Conv2d stride p, no norm; tokens row-major, as wm_jax's.
* The rotary modules own `freqs` as (non-trainable) nn.Parameters and are shared by every
  block, so a state_dict may hold `spatial_rotary_emb.freqs`, `temporal_rotary_emb.freqs` and
  `blocks.N.{s,t}_attn.rotary_emb.freqs`; the released checkpoint is loaded with strict=False
  and may lack them. They are ignorable-with-check: wm_jax recomputes the tables, and
  `check_rotary` refuses the checkpoint if a stored table differs from what wm_jax computes.

* Objective (generate.py, utils.py): v-prediction (x_0 = √ᾱ·x_t - √(1-ᾱ)·v) under the sigmoid
  beta schedule (`sigmoid_beta_schedule(1000)`: start -3, end 3, tau 1, betas clipped to
  [0, 0.999]) over max_noise_level = 1000 steps, sampled with DDIM -> `OBJECTIVE`.

Not in the shapes: the latent size (no position table; Oasis 500M sees 18x32 latents, a 9x16
token grid) -> `latent_size`; the head count -> `heads`, which `infer_heads` reads from whichever
rotary table the file holds (spatial: head_dim/4 frequencies, temporal: head_dim/2), falling back
to Oasis 500M's 16 only when none is stored (a `.safetensors` export keeps the shared tables at
most once, since safetensors refuses tensors that share memory); the frame window: Oasis
attends to every earlier frame of its 32-frame context -> `max_frames=32, window=31`, identical
for every clip Oasis itself can run.
"""

from __future__ import annotations

from typing import Mapping

import jax
import numpy as np

from wm_jax.conversion.converted import Converted, WorldLink, describe_model
from wm_jax.conversion.layouts.dit import _linear, block_count
from wm_jax.conversion.objective import objective_fields
from wm_jax.conversion.table import CONV2D, IDENTITY, LINEAR, Row, Table, apply
from wm_jax import diffusion
from wm_jax import model as wm_model
from wm_jax import rope
from wm_jax.configs import ModelConfig

NAME = "oasis"
DEFAULT_HEADS = 16
DEFAULT_LATENT_SIZE = (18, 32)
DEFAULT_MAX_FRAMES = 32
SPATIAL_MAX_FREQ = 256.0  # what wm_jax.rope.axial_angles uses; Oasis' spatial RotaryEmbedding(max_freq=256)
TEMPORAL_THETA = 10000.0
OBJECTIVE = dict(prediction="v_prediction", noise_schedule="sigmoid", diffusion_steps=1000)
FPS = 20.0  # a converted world's frame rate: Oasis' 20 fps (CAMERA_AXES' turns a second assume it)

# Oasis' action vector (open-oasis utils.ACTION_KEYS, the VPT/MineRL action names), in order,
# and the wm_jax key name each is given: the key Minecraft binds it to by default, so the player
# maps browser keys by name. attack/use/pickItem are mouse buttons.
# cameraX/cameraY are continuous: VPT's `camera` action, [0] the mouse's dy (pitch, positive
# looks down) and [1] its dx (yaw, positive turns right), binned by utils.one_hot_actions to
# [-1, 1] in steps of 0.025 (one 0.5-degree bin; 1.0 = 20 degrees). So cameraX is the pitch
# and cameraY the yaw (in the sample data's five action files, |cameraY| is the larger, up to
# 1.0, as horizontal turns are in Minecraft); they are named for what they do.
OASIS_ACTIONS: tuple[tuple[str, str], ...] = (
    ("inventory", "e"), ("ESC", "escape"),
    *((f"hotbar.{i}", str(i)) for i in range(1, 10)),
    ("forward", "w"), ("back", "s"), ("left", "a"), ("right", "d"),
    ("cameraX", "camera_pitch"), ("cameraY", "camera_yaw"),
    ("jump", "space"), ("sneak", "shift"), ("sprint", "ctrl"), ("swapHands", "f"),
    ("attack", "mouse_left"), ("use", "mouse_right"), ("pickItem", "mouse_middle"), ("drop", "q"),
)
ACTION_KEYS: tuple[str, ...] = tuple(name for _, name in OASIS_ACTIONS)
# The arrow keys turn the camera by a fixed amount a frame while held (wm_jax.actions.Axis):
# left/right set camera_yaw to -/+0.25 (5 degrees a frame, 100 a second at Oasis' 20 fps),
# up/down set camera_pitch to -/+0.125 (2.5 degrees a frame). Both amounts sit inside what the
# sample data holds while the camera moves (nonzero |yaw|: median 0.10-0.15, 90th percentile
# 0.33-0.80; |pitch|: median 0.05-0.10, 90th percentile 0.30-0.38).
CAMERA_AXES: tuple[tuple[str, str, str, float], ...] = (
    ("camera_pitch", "up", "down", 0.125),
    ("camera_yaw", "left", "right", 0.25),
)

_TURNS = {"up": "look up", "down": "look down", "left": "turn left", "right": "turn right"}
_DEGREES_PER_UNIT = 20.0  # utils.one_hot_actions: 40 bins of 0.5 degrees either way of 0


def world_keys(config: ModelConfig) -> dict[str, str]:
    """{key: what it does} for a converted Oasis world (world.json): Oasis' own action names,
    then the arrows with the camera turn they hold (e.g. "turn left (camera_yaw -0.25, 5 deg a frame)")."""
    keys = {ours: theirs for theirs, ours in OASIS_ACTIONS if ours in config.action_space.keys}
    for entry, negative, positive, amount in config.action_axes:
        for key, sign in ((negative, -1), (positive, 1)):
            keys[key] = (f"{_TURNS.get(key, key)} ({entry} {sign * amount:+g}, "
                         f"{amount * _DEGREES_PER_UNIT:g} deg a frame)")
    return keys


_ROTARY = {
    "spatial": ("spatial_rotary_emb.freqs", "blocks.*.s_attn.rotary_emb.freqs"),
    "temporal": ("temporal_rotary_emb.freqs", "blocks.*.t_attn.rotary_emb.freqs"),
}
IGNORE: tuple[tuple[str, str], ...] = tuple(
    (pattern, f"{kind} RoPE frequency table: recomputed by wm_jax from the config; check_rotary "
              "refuses the checkpoint if the stored table differs")
    for kind, patterns in _ROTARY.items() for pattern in patterns
)


def infer_heads(sd: Mapping[str, np.ndarray], width: int | None = None) -> tuple[int, str]:
    """(heads, how it was told) from the rotary tables stored, or DEFAULT_HEADS if there are none.

    The spatial tables hold head_dim/4 frequencies, the temporal ones head_dim/2; every stored
    table must give the same head_dim, else the file is refused naming the tables that differ.
    """
    import fnmatch

    width = int(sd["x_embedder.proj.weight"].shape[0]) if width is None else width
    per_entry = {"spatial": 4, "temporal": 2}
    found: dict[str, int] = {}
    for key in sorted(sd):
        for kind, patterns in _ROTARY.items():
            if any(fnmatch.fnmatchcase(key, p) for p in patterns) and np.ndim(sd[key]) == 1:
                found[key] = per_entry[kind] * int(np.shape(sd[key])[0])
    if not found:
        return DEFAULT_HEADS, f"{DEFAULT_HEADS} (Oasis 500M's: no rotary table is stored, so the file cannot tell; pass --heads)"
    head_dims = sorted(set(found.values()))
    if len(head_dims) > 1:
        raise ValueError("the rotary tables disagree on the head size: "
                         + ", ".join(f"{k} -> head_dim {d}" for k, d in found.items()))
    head_dim = head_dims[0]
    if head_dim < 1 or width % head_dim:
        raise ValueError(f"rotary table {next(iter(found))} gives head_dim {head_dim}, which does not divide width {width}")
    first = next(iter(found))
    more = f" and {len(found) - 1} more" if len(found) > 1 else ""
    return width // head_dim, f"{width // head_dim} (head_dim {head_dim} from {first}{more})"


def infer_config(
    sd: Mapping[str, np.ndarray],
    heads: int = DEFAULT_HEADS,
    latent_size: tuple[int, int] = DEFAULT_LATENT_SIZE,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> ModelConfig:
    """The wm_jax configuration of an Oasis state_dict (shapes) plus what shapes cannot tell."""
    for key in ("x_embedder.proj.weight", "final_layer.linear.weight", "external_cond.weight",
                "blocks.0.s_mlp.fc1.weight", "blocks.0.s_attn.to_qkv.weight", "blocks.0.t_attn.to_qkv.weight"):
        if key not in sd:
            raise ValueError(f"not an Oasis-layout checkpoint: it has no {key!r} (its keys begin: {', '.join(sorted(sd)[:8])}, ...)")
    width, in_channels, p, _ = (int(s) for s in sd["x_embedder.proj.weight"].shape)
    out_channels = int(sd["final_layer.linear.weight"].shape[0]) // (p * p)
    mlp_hidden = int(sd["blocks.0.s_mlp.fc1.weight"].shape[0])
    action_dim = int(sd["external_cond.weight"].shape[1])
    if width % heads:
        raise ValueError(f"width {width} is not divisible by --heads {heads}; pass the checkpoint's head count")
    oasis_actions = action_dim == len(ACTION_KEYS)
    keys = ACTION_KEYS if oasis_actions else tuple(f"oasis_{i}" for i in range(action_dim))
    return ModelConfig(
        latent_size=tuple(latent_size),
        in_channels=in_channels,
        out_channels=None if out_channels == in_channels else out_channels,
        patch_size=p,
        width=width,
        depth=block_count(sd),
        num_heads=heads,
        mlp_ratio=mlp_hidden / width,
        qkv_bias="blocks.0.s_attn.to_qkv.bias" in sd,
        pos_embed=False,
        spatial_rope=True,
        temporal_every=1,
        temporal_mlp=True,
        temporal_rope_theta=TEMPORAL_THETA,
        action_keys=keys,
        action_axes=CAMERA_AXES if oasis_actions else (),
        window=max_frames - 1,
        max_frames=max_frames,
        **OBJECTIVE,
    )


def table(config: ModelConfig) -> Table:
    rows = [
        Row("x_embedder.proj.weight", ("patch_embed", "proj", "kernel"), CONV2D),
        Row("x_embedder.proj.bias", ("patch_embed", "proj", "bias"), IDENTITY),
        *_linear("t_embedder.mlp.0", ("t_embed", "fc1")),
        *_linear("t_embedder.mlp.2", ("t_embed", "fc2")),
        Row("external_cond.weight", ("action_embed", "kernel"), LINEAR),
        Row("external_cond.bias", ("action_embed", "bias"), IDENTITY),
    ]
    for n in range(config.depth):
        for half, target in (("s", f"spatial_{n}"), ("t", f"temporal_{n}")):
            rows += _linear(f"blocks.{n}.{half}_attn.to_qkv", (target, "attn", "qkv"), bias=config.qkv_bias)
            rows += _linear(f"blocks.{n}.{half}_attn.to_out", (target, "proj"))
            rows += _linear(f"blocks.{n}.{half}_mlp.fc1", (target, "mlp", "fc1"))
            rows += _linear(f"blocks.{n}.{half}_mlp.fc2", (target, "mlp", "fc2"))
            rows += _linear(f"blocks.{n}.{half}_adaLN_modulation.1", (target, "adaLN", "linear"))
    rows += _linear("final_layer.linear", ("final", "linear"))
    rows += _linear("final_layer.adaLN_modulation.1", ("final", "adaLN", "linear"))
    return Table(name=NAME, rows=tuple(rows), ignore=IGNORE)


def expected_rotary(config: ModelConfig) -> dict[str, np.ndarray]:
    """The frequency tables wm_jax uses (the same numbers Oasis stores in its rotary modules)."""
    return {
        "spatial": rope.pixel_frequencies(config.head_dim // 2, SPATIAL_MAX_FREQ),
        "temporal": rope.lang_frequencies(config.head_dim, config.temporal_rope_theta),
    }


def check_rotary(sd: Mapping[str, np.ndarray], config: ModelConfig) -> list[str]:
    """Compare every stored rotary frequency table with wm_jax's; returns the keys checked.

    Raises ValueError naming each table that differs (e.g. another max_freq or theta, which
    wm_jax's model cannot express), with the largest difference.
    """
    import fnmatch

    expected = expected_rotary(config)
    checked, bad = [], []
    for key in sorted(sd):
        for kind, patterns in _ROTARY.items():
            if any(fnmatch.fnmatchcase(key, p) for p in patterns):
                got = np.asarray(sd[key], np.float64)
                want = expected[kind]
                if got.shape != want.shape:
                    bad.append(f"{key}: shape {got.shape}, wm_jax uses {want.shape}")
                elif not np.allclose(got, want, rtol=1e-5, atol=1e-6):
                    bad.append(f"{key}: differs by up to {np.abs(got - want).max():.3g}")
                checked.append(key)
    if bad:
        raise ValueError(
            "the checkpoint's RoPE frequency tables are not the ones wm_jax computes "
            f"(spatial: pixel, max_freq {SPATIAL_MAX_FREQ:g}; temporal: lang, theta {config.temporal_rope_theta:g}):\n  "
            + "\n  ".join(bad)
        )
    return checked


def build(
    sd: Mapping[str, np.ndarray],
    heads: int,
    latent_size: tuple[int, int] = DEFAULT_LATENT_SIZE,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> tuple[ModelConfig, dict, list[str]]:
    """(config, params as numpy, rotary keys checked) for an Oasis state_dict with `heads` heads."""
    config = infer_config(sd, heads, latent_size, max_frames)
    checked = check_rotary(sd, config)
    params = apply(table(config), sd, wm_model.abstract_params(config))
    return config, params, checked


def convert(
    state_dict: Mapping[str, np.ndarray],
    heads: int | None = None,
    latent_size: tuple[int, int] = DEFAULT_LATENT_SIZE,
    max_frames: int = DEFAULT_MAX_FRAMES,
    prediction: str | None = None,
    noise_schedule: str | None = None,
    diffusion_steps: int | None = None,
    autoencoder: str | None = None,
) -> Converted:
    """An Oasis state_dict -> the wm_jax world model, sampled with Oasis' recipe (OASIS_SAMPLER).

    heads: None reads them from a stored rotary table (`infer_heads`); latent_size, max_frames:
    what the shapes cannot tell; prediction, noise_schedule, diffusion_steps: an objective other
    than Oasis' (`OBJECTIVE`); autoencoder: a converted oasis-vae directory, which makes the
    saved directory a world bundle playable as it is.
    """
    objective = objective_fields(OBJECTIVE, prediction, noise_schedule, diffusion_steps)
    infer_config(state_dict, 1, latent_size, max_frames)  # "not an Oasis checkpoint" before anything else
    if heads is None:
        heads, heads_told = infer_heads(state_dict)
    else:
        heads_told = f"{heads} (--heads)"
    config, params, checked = build(state_dict, heads, latent_size, max_frames)
    config = config.replace(**objective)
    info = {
        "heads": heads_told,
        "rotary_tables_checked": len(checked),
        "objective": config.objective.describe(),
        "action_keys": ", ".join(config.action_keys),
        "camera_keys": "; ".join(f"{n}/{p}: {e} -/+{a:g}" for e, n, p, a in config.action_axes) or "none",
    }
    world = None
    if autoencoder is not None:
        world = WorldLink(autoencoder=str(autoencoder), keys=world_keys(config), fps=FPS, title="Oasis")
    return Converted(layout=NAME, config=config, params=params, info=info, description=describe_model(config),
                     sampler=diffusion.OASIS_SAMPLER, world=world)


def verify(converted: Converted, reference: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Max abs error of a converted Oasis against a reference in PyTorch's layout (`forward_error`)."""
    return forward_error(converted.config, converted.params, reference)


def forward_error(config: ModelConfig, params: Mapping, reference: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Max abs error of a model's forward pass against a reference in PyTorch's layout.

    reference: x [B, T, C, H, W], t [B, T] noise levels 0..999, cond [B, T, A] (Oasis' action
    vectors), out [B, T, C_out, H, W].
    """
    missing = [k for k in ("x", "t", "cond", "out") if k not in reference]
    if missing:
        raise KeyError(f"reference file lacks {missing} (oasis references hold x, t, cond, out)")
    x = np.asarray(reference["x"], np.float32).transpose(0, 1, 3, 4, 2)
    t = (np.asarray(reference["t"], np.float64) / 1000.0).astype(np.float32)
    cond = np.asarray(reference["cond"], np.float32)
    expected = np.asarray(reference["out"], np.float32).transpose(0, 1, 3, 4, 2)
    got = np.asarray(jax.jit(wm_model.WorldModel(config).apply)({"params": params}, x, t, cond))
    return {"oasis": float(np.abs(got - expected).max())}
