"""DiT reference naming (DiT, and SiT / REPA, which share it) -> wm_jax.WorldModel.

Source keys (the public DiT `models.py` naming), N = block index:

  x_embedder.proj.{weight,bias}              conv [D, C, p, p]         -> patch_embed/proj
  t_embedder.mlp.{0,2}.{weight,bias}         Linear(256, D), Linear(D, D) -> t_embed/fc1, fc2
  y_embedder.embedding_table.weight          [classes (+1 null), D]    -> action_embed/bias (one row)
  pos_embed                                  [1, (S/p)^2, D] fixed sin-cos: checked, not loaded
  blocks.N.attn.qkv.{weight,bias}            fused [3D, D]             -> spatial_N/attn/qkv
  blocks.N.attn.proj.{weight,bias}                                     -> spatial_N/proj
  blocks.N.mlp.fc{1,2}.{weight,bias}                                   -> spatial_N/mlp/fc{1,2}
  blocks.N.adaLN_modulation.1.{weight,bias}  [6D, D]                   -> spatial_N/adaLN/linear
  final_layer.linear.{weight,bias}           [p^2 C_out, D]            -> final/linear
  final_layer.adaLN_modulation.1.{weight,bias} [2D, D]                 -> final/adaLN/linear

Linear weights are transposed ([out, in] -> [in, out]), the patch conv OIHW -> HWIO. The fused
qkv needs no split: both sides lay its output out as (3, heads, head_dim).

Everything but the head count is read off the shapes: width and channels from the patch conv,
depth from the block indices, MLP ratio from fc1, learn-sigma from the final layer (C_out = 2C),
qkv bias from its presence, the latent size from pos_embed's length (square, as DiT's is).
Attention heads do not show in any shape: `--heads` (default 16, DiT-XL/L/B's).

Class conditioning: wm_jax has no classes. Its conditioning is
c = t_embed(1000 t) + action_embed(a), and the action embedding's *bias* is the constant part;
the class table's null row (its last row, DiT's classifier-free-guidance null) goes there, so
the converted model is the unconditional image model. `class_label` bakes another row in
instead (the model then always generates that class). The action embedding's kernel is not in
the checkpoint: it starts at zero (actions change nothing until trained).

Time input: wm_jax's timestep embedding sees timestep_scale·t (t in [0, 1]), 1000 by default,
the scale DiT's integer timesteps 0..999 use, so DiT checkpoints convert exactly. SiT and REPA
share the naming but feed t in [0, 1] unscaled to the same embedder: their networks convert one
to one with `timestep_scale=1` (recorded in the config). SiT also runs time the other way
(t = 1 is data) and predicts data - noise; REPA's path is wm_jax's (x_t = (1-t)x_0 + t·ε, v = ε - x_0).

Objective: DiT is trained for DDPM ε-prediction with the linear beta schedule over 1000 steps
(the public DiT `diffusion/__init__.py` defaults), with a learned variance (guided-diffusion's
learned range) when C_out = 2C: `OBJECTIVE`, recorded in the config (learned sigma follows from
the channels). SiT and REPA are flow models: their objective is not in the weights, and
`wm convert` asks for it (--prediction) when --timestep-scale says the checkpoint is not DiT's.

`to_world_model`: the same weights into the spatial blocks of a world-model configuration; its
temporal blocks start at their adaLN-Zero initialisation, which is exactly the identity, so the
world model generates every frame as the image model would.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax.conversion.converted import Converted, describe_model
from wm_jax.conversion.objective import objective_fields
from wm_jax.conversion.table import CONV2D, IDENTITY, LINEAR, Row, Table, TakeRow, apply, flatten_target, unflatten
from wm_jax import configs, embeddings
from wm_jax import model as wm_model
from wm_jax.blocks import TemporalBlock
from wm_jax.configs import ModelConfig

NAME = "dit"
# DiT's objective as ModelConfig fields (see the module docstring).
OBJECTIVE = dict(prediction="epsilon", noise_schedule="linear", diffusion_steps=1000)
DEFAULT_HEADS = 16
POS_EMBED_TOLERANCE = 1e-5

IGNORE: tuple[tuple[str, str], ...] = (
    ("pos_embed", "the fixed 2-D sin-cos table; wm_jax computes the same table itself "
                  "(check_pos_embed compares them and refuses a checkpoint whose table differs)"),
    ("projectors.*", "REPA's representation-alignment projection heads: they only feed REPA's "
                     "training loss, never the denoiser's output"),
)

# Target leaves no checkpoint tensor fills, and why their initial values are right.
FROM_INIT_REASONS = {
    "action_embed/kernel": "actions are new to an image model: a zero kernel makes them change nothing until trained",
    "action_embed/bias": "an unconditional checkpoint (no class table) has no constant conditioning: zero",
    "temporal_*": "temporal blocks are new: adaLN-Zero (zero modulation) makes each exactly the identity",
}


@dataclasses.dataclass(frozen=True)
class DiTShape:
    """What the checkpoint's shapes say about the model."""

    width: int
    depth: int
    patch_size: int
    in_channels: int
    out_channels: int
    latent_size: tuple[int, int]
    mlp_hidden: int
    qkv_bias: bool
    class_rows: int | None  # rows of the class table (classes + the null row); None: unconditional

    @property
    def learn_sigma(self) -> bool:
        return self.out_channels == 2 * self.in_channels

    def describe(self) -> str:
        h, w = self.latent_size
        classes = "unconditional" if self.class_rows is None else f"class table {self.class_rows} rows"
        return (
            f"width {self.width}, depth {self.depth}, patch {self.patch_size}, latent {h}x{w}x{self.in_channels}, "
            f"out channels {self.out_channels} (learn_sigma={self.learn_sigma}), mlp {self.mlp_hidden}, "
            f"qkv_bias={self.qkv_bias}, {classes}"
        )


def _require(sd: Mapping[str, np.ndarray], key: str, ndim: int) -> np.ndarray:
    if key not in sd:
        sample = ", ".join(sorted(sd)[:8])
        raise ValueError(f"not a DiT-layout checkpoint: it has no {key!r} (its keys begin: {sample}, ...)")
    value = sd[key]
    if value.ndim != ndim:
        raise ValueError(f"not a DiT-layout checkpoint: {key} has shape {tuple(value.shape)}, expected {ndim} dims")
    return value


def block_count(sd: Mapping[str, np.ndarray], prefix: str = "blocks.") -> int:
    """Number of blocks `prefix<N>.*`, which must be numbered 0..N-1 without gaps."""
    indices = {int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    if not indices:
        raise ValueError(f"the checkpoint has no {prefix}N.* keys")
    if indices != set(range(len(indices))):
        missing = sorted(set(range(max(indices) + 1)) - indices)
        raise ValueError(f"the checkpoint's blocks are not numbered 0..{max(indices)}: missing {missing}")
    return len(indices)


def infer_shape(sd: Mapping[str, np.ndarray]) -> DiTShape:
    patch = _require(sd, "x_embedder.proj.weight", 4)
    width, in_channels, p, p2 = (int(s) for s in patch.shape)
    if p != p2:
        raise ValueError(f"x_embedder.proj.weight {tuple(patch.shape)}: non-square patches are not supported")
    final = _require(sd, "final_layer.linear.weight", 2)
    if final.shape[0] % (p * p):
        raise ValueError(f"final_layer.linear.weight {tuple(final.shape)} is not patch_size^2 * channels for patch {p}")
    pos = _require(sd, "pos_embed", 3)
    tokens = int(pos.shape[1])
    grid = int(round(tokens ** 0.5))
    if grid * grid != tokens or pos.shape[2] != width:
        raise ValueError(f"pos_embed {tuple(pos.shape)} is not a square grid of width-{width} vectors")
    fc1 = _require(sd, "blocks.0.mlp.fc1.weight", 2)
    table = sd.get("y_embedder.embedding_table.weight")
    return DiTShape(
        width=width,
        depth=block_count(sd),
        patch_size=p,
        in_channels=in_channels,
        out_channels=int(final.shape[0]) // (p * p),
        latent_size=(grid * p, grid * p),
        mlp_hidden=int(fc1.shape[0]),
        qkv_bias="blocks.0.attn.qkv.bias" in sd,
        class_rows=None if table is None else int(table.shape[0]),
    )


def image_fields(shape: DiTShape, heads: int) -> dict:
    """The ModelConfig fields an image DiT fixes (everything about the spatial path, and DiT's
    objective)."""
    if shape.width % heads:
        raise ValueError(f"width {shape.width} is not divisible by --heads {heads}; pass the checkpoint's head count")
    mlp_ratio = shape.mlp_hidden / shape.width
    if int(shape.width * mlp_ratio) != shape.mlp_hidden:
        raise ValueError(f"MLP width {shape.mlp_hidden} is not expressible as int(width * ratio) for width {shape.width}")
    return dict(
        latent_size=shape.latent_size,
        in_channels=shape.in_channels,
        out_channels=None if shape.out_channels == shape.in_channels else shape.out_channels,
        patch_size=shape.patch_size,
        width=shape.width,
        depth=shape.depth,
        num_heads=heads,
        mlp_ratio=mlp_ratio,
        qkv_bias=shape.qkv_bias,
        pos_embed=True,
        spatial_rope=False,
        **OBJECTIVE,
    )


def image_config(shape: DiTShape, heads: int = DEFAULT_HEADS) -> ModelConfig:
    """The wm_jax image model (no temporal blocks, one frame) that this checkpoint is."""
    return ModelConfig(**image_fields(shape, heads), temporal_every=0, temporal_mlp=False, window=1, max_frames=1)


def world_config(shape: DiTShape, base: ModelConfig, heads: int = DEFAULT_HEADS) -> tuple[ModelConfig, dict]:
    """`base` (a world-model configuration) with its spatial path replaced by the checkpoint's.

    Returns the config and {field: (base value, checkpoint value)} for every field that changed,
    so the caller can say what of the named configuration was overridden.
    """
    fields = image_fields(shape, heads)
    overridden = {k: (getattr(base, k), v) for k, v in fields.items() if getattr(base, k) != v}
    return base.replace(**fields), overridden


def _linear(torch_prefix: str, flax_path: tuple[str, ...], bias: bool = True) -> list[Row]:
    rows = [Row(f"{torch_prefix}.weight", flax_path + ("kernel",), LINEAR)]
    if bias:
        rows.append(Row(f"{torch_prefix}.bias", flax_path + ("bias",), IDENTITY))
    return rows


def table(config: ModelConfig, class_rows: int | None = None, class_label: int | None = None) -> Table:
    """Rows for every leaf of `config`'s params a DiT checkpoint fills (not FROM_INIT leaves).

    class_rows: rows of the checkpoint's class table (None: unconditional checkpoint);
    class_label: the row that becomes the action-embedding bias (default: the last, the null class).
    """
    rows = [
        Row("x_embedder.proj.weight", ("patch_embed", "proj", "kernel"), CONV2D),
        Row("x_embedder.proj.bias", ("patch_embed", "proj", "bias"), IDENTITY),
        *_linear("t_embedder.mlp.0", ("t_embed", "fc1")),
        *_linear("t_embedder.mlp.2", ("t_embed", "fc2")),
    ]
    if class_rows is not None:
        label = class_rows - 1 if class_label is None else class_label
        if not 0 <= label < class_rows:
            raise ValueError(f"class label {label} is outside the class table's {class_rows} rows (0..{class_rows - 1})")
        rows.append(Row("y_embedder.embedding_table.weight", ("action_embed", "bias"), TakeRow(label, class_rows)))
    elif class_label is not None:
        raise ValueError("--class-label given, but the checkpoint has no class table (y_embedder.embedding_table.weight)")
    for n in range(config.depth):
        block = (f"spatial_{n}",)
        rows += _linear(f"blocks.{n}.attn.qkv", block + ("attn", "qkv"), bias=config.qkv_bias)
        rows += _linear(f"blocks.{n}.attn.proj", block + ("proj",))
        rows += _linear(f"blocks.{n}.mlp.fc1", block + ("mlp", "fc1"))
        rows += _linear(f"blocks.{n}.mlp.fc2", block + ("mlp", "fc2"))
        rows += _linear(f"blocks.{n}.adaLN_modulation.1", block + ("adaLN", "linear"))
    rows += _linear("final_layer.linear", ("final", "linear"))
    rows += _linear("final_layer.adaLN_modulation.1", ("final", "adaLN", "linear"))
    return Table(name=NAME, rows=tuple(rows), ignore=IGNORE)


def check_pos_embed(sd: Mapping[str, np.ndarray], config: ModelConfig, tolerance: float = POS_EMBED_TOLERANCE) -> float:
    """Max abs difference between the checkpoint's pos_embed and wm_jax's fixed table; raises above tolerance."""
    gh, gw = config.grid
    ours = embeddings.sincos_2d(config.width, gh, gw)
    theirs = np.asarray(sd["pos_embed"], np.float32).reshape(ours.shape)
    err = float(np.abs(theirs - ours).max())
    if not err <= tolerance:
        raise ValueError(
            f"pos_embed differs from wm_jax's fixed 2-D sin-cos table by up to {err:.3g} (tolerance {tolerance:g}): "
            "this checkpoint's position table is not the DiT reference's (learned, interpolated or reordered), "
            "and wm_jax's positions are fixed, so its outputs would not match; refusing to convert"
        )
    return err


def split_target(target: Mapping, from_init: tuple[str, ...]) -> tuple[dict, dict]:
    """(leaves the checkpoint fills, leaves initialised here) by fnmatch patterns on 'a/b/c' paths."""
    import fnmatch

    leaves = flatten_target(target)
    init = {p: v for p, v in leaves.items() if any(fnmatch.fnmatchcase("/".join(p), pat) for pat in from_init)}
    ckpt = {p: v for p, v in leaves.items() if p not in init}
    return unflatten(ckpt), init


def identity_leaves(config: ModelConfig, wanted: Mapping[tuple[str, ...], object], seed: int = 0) -> dict:
    """Values for the FROM_INIT leaves: zeros for the action embedding, fresh temporal blocks.

    Only the temporal blocks are initialised (each on its own), never the whole model, so a
    large configuration costs no second full copy of its parameters.
    """
    out: dict[tuple[str, ...], np.ndarray] = {}
    temporal = sorted({p[0] for p in wanted if p[0].startswith("temporal_")})
    if temporal:
        mlp_hidden = int(config.width * config.mlp_ratio) if config.temporal_mlp else None
        block = TemporalBlock(config.width, config.num_heads, mlp_hidden, config.window, config.qkv_bias,
                              config.temporal_rope_theta, config.dtype)
        init = jax.jit(block.init)
        x = jnp.zeros((1, 1, 1, config.width), jnp.float32)
        c = jnp.zeros((1, 1, config.width), jnp.float32)
        for i, name in enumerate(temporal):
            no_keys = jnp.zeros((1, 1, 0), jnp.float32)  # read only by a neighbourhood, which imports lack
            params = jax.device_get(init(jax.random.fold_in(jax.random.key(seed), i), x, c, no_keys)["params"])
            for path, value in flatten_target(params).items():
                out[(name,) + path] = np.asarray(value)
    for path, leaf in wanted.items():
        if path[0] == "action_embed":
            out[path] = np.zeros(leaf.shape, leaf.dtype)
    problems = sorted(set(wanted) ^ set(out))
    bad = [p for p in wanted if p in out and tuple(out[p].shape) != tuple(wanted[p].shape)]
    if problems or bad:
        raise AssertionError(f"identity init does not match the model's params: {problems + bad}")  # a bug here, not input
    for path in out:
        if path[0].startswith("temporal_") and path[1:3] == ("adaLN", "linear"):
            assert not np.any(out[path]), "temporal adaLN must start at zero (identity)"
    return out


@dataclasses.dataclass
class Built:
    """The params of a DiT checkpoint and what building them found (`build`)."""

    config: ModelConfig
    params: dict
    shape: DiTShape
    class_table: np.ndarray | None  # kept for `verify` with other labels than the baked one
    class_label: int | None  # the row that became the action-embedding bias
    pos_embed_error: float
    overridden: dict
    from_init: tuple[str, ...]


def build(
    sd: Mapping[str, np.ndarray],
    heads: int = DEFAULT_HEADS,
    class_label: int | None = None,
    world: ModelConfig | None = None,
    seed: int = 0,
) -> Built:
    """A DiT-layout state_dict -> wm_jax params (numpy), for the image model or, given `world`, that world model."""
    shape = infer_shape(sd)
    if world is None:
        config, overridden = image_config(shape, heads), {}
    else:
        config, overridden = world_config(shape, world, heads)
    pos_err = check_pos_embed(sd, config)
    from_init = ["action_embed/kernel", "temporal_*"]
    if shape.class_rows is None:
        from_init.append("action_embed/bias")
    ckpt_target, init_target = split_target(wm_model.abstract_params(config), tuple(from_init))
    params = apply(table(config, shape.class_rows, class_label), sd, ckpt_target)
    for path, value in identity_leaves(config, init_target, seed).items():
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    class_table = None
    label = None
    if shape.class_rows is not None:
        class_table = np.asarray(sd["y_embedder.embedding_table.weight"], np.float32)
        label = shape.class_rows - 1 if class_label is None else class_label
    return Built(config, params, shape, class_table, label, pos_err, overridden, tuple(from_init))


def convert(
    state_dict: Mapping[str, np.ndarray],
    heads: int = DEFAULT_HEADS,
    class_label: int | None = None,
    to_world_model: str | ModelConfig | None = None,
    timestep_scale: float = 1000.0,
    prediction: str | None = None,
    noise_schedule: str | None = None,
    diffusion_steps: int | None = None,
    seed: int = 0,
) -> Converted:
    """A DiT-layout state_dict -> the wm_jax image model (one frame), or, given `to_world_model`
    (a configuration name or a ModelConfig), the world model with it in its spatial blocks.

    heads: not in any shape (DiT-XL/L/B: 16); class_label: the class-table row baked in as the
    constant conditioning (default: the null row); timestep_scale: the source's embedder sees
    scale·t (DiT 1000, SiT/REPA 1); prediction, noise_schedule, diffusion_steps: the objective,
    required when timestep_scale says the checkpoint is not DiT's; seed: the temporal blocks' init.
    """
    # Shapes cannot tell how the source scaled time before its timestep embedding, nor, for a
    # SiT or REPA checkpoint (same naming, time unscaled), what it was trained to predict.
    objective = objective_fields(OBJECTIVE if timestep_scale == 1000.0 else None, prediction, noise_schedule,
                                 diffusion_steps, unknown=(
        f"a DiT-layout checkpoint fed t unscaled (--timestep-scale {timestep_scale:g}: SiT, REPA) does not say "
        "its objective, and it is not DiT's (DDPM epsilon): pass --prediction velocity for REPA (rectified flow on "
        "wm_jax's path), or --prediction and --noise-schedule for another; SiT runs time the other way (t = 1 is "
        "data), which no objective here samples"))
    world = configs.get_config(to_world_model) if isinstance(to_world_model, str) else to_world_model
    built = build(state_dict, heads=heads, class_label=class_label, world=world, seed=seed)
    config = built.config.replace(timestep_scale=timestep_scale, **objective)
    overridden = {}
    if world is not None:  # the overrides as finally written (the objective may differ from DiT's)
        changed = set(built.overridden) | set(objective)
        overridden = {k: (getattr(world, k), getattr(config, k)) for k in sorted(changed)
                      if getattr(world, k) != getattr(config, k)}
    label, rows = built.class_label, built.shape.class_rows
    if label is None:
        class_row = "none (unconditional checkpoint)"
    else:
        class_row = f"{label} of {rows}" + (" (the null class)" if label == rows - 1 else "")
    info = {
        "inferred": built.shape.describe(),
        "heads": heads,
        "class_row": class_row,
        "objective": config.objective.describe(),
        "pos_embed_diff": built.pos_embed_error,
        "to_world_model": to_world_model if world is None or isinstance(to_world_model, str) else "a ModelConfig",
        "overridden": {k: f"{a} -> {b}" for k, (a, b) in overridden.items()},
        "from_init": {p: FROM_INIT_REASONS[p] for p in built.from_init},
    }
    return Converted(layout=NAME, config=config, params=built.params, info=info, description=describe_model(config),
                     class_table=built.class_table)


def verify(converted: Converted, reference: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Max abs error of a converted DiT against a reference in PyTorch's layout.

    reference: x [B, C, H, W], t [B] (0..999), y [B] int class labels (the null class allowed;
    omit for an unconditional model), out [B, C_out, H, W]. Each sample runs as a one-frame
    clip; for a label other than the baked one, that class's row of the checkpoint's table
    takes the action-embedding bias's place (where --class-label would have put it).
    """
    missing = [k for k in ("x", "t", "out") if k not in reference]
    if missing:
        raise KeyError(f"reference file lacks {missing} (dit references hold x, t, y, out)")
    config, params = converted.config, converted.params
    x = np.asarray(reference["x"], np.float32).transpose(0, 2, 3, 1)[:, None]
    t = (np.asarray(reference["t"], np.float64) / 1000.0).astype(np.float32)[:, None]
    expected = np.asarray(reference["out"], np.float32).transpose(0, 2, 3, 1)
    b = x.shape[0]
    if "y" in reference and converted.class_table is None:
        raise ValueError("the reference has class labels y, but the checkpoint has no class table")
    y = np.asarray(reference["y"]).astype(np.int64) if "y" in reference else np.full((b,), -1)
    apply_fn = jax.jit(wm_model.WorldModel(config).apply)
    actions = np.zeros((b, 1, config.action_dim), np.float32)
    got = np.zeros_like(expected)
    for label in np.unique(y):
        p = params
        if label >= 0:
            rows = converted.class_table.shape[0]
            if label >= rows:
                raise ValueError(f"reference label {label} is outside the class table's {rows} rows")
            p = {**params, "action_embed": {**params["action_embed"], "bias": converted.class_table[label]}}
        sel = y == label
        out = apply_fn({"params": p}, x[sel], t[sel], actions[sel])
        got[sel] = np.asarray(out)[:, 0]
    return {"dit": float(np.abs(got - expected).max())}
