"""The world model: a DiT over latent frames with temporal blocks and per-frame conditioning.

Letters: B batch, T frames, H W latent height and width, C channels, K action entries,
N tokens per frame, D width, L temporal layers.

`WorldModel.__call__` runs whole clips with causal temporal attention (training, and the
reference the streaming path is tested against); `WorldModel.stream` runs one frame against a `KVCache`, as `WorldModel.read_cache` prepares it
once per frame (generation). All are pure functions of the params through `model.apply`.

Conditioning per frame: c[b,t] = timestep_embedding(1000·t[b,t]) + action_embedding(a[b,t]),
with the action embedding a single linear map with bias over the multi-hot action vector. Its
bias is the constant conditioning (an imported class-conditional DiT's null-class row goes
there); its row for the UNKNOWN key is the learned "unknown action" embedding.

With `ModelConfig.previous_frame_input` a frame's patch embedding also takes the frame before
it, concatenated in channels, as the model saw that frame (at its own noise level in training;
in generation the latent the cache was written with, which `KVCache` keeps). With
`ModelConfig.key_moves` that frame is first moved the way the keys held move the camera
(`wm_jax.warp`), for the input and for the x0_residual head's base alike.
"""

from __future__ import annotations

import json
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from wm_jax import embeddings, kv_cache, rope, warp
from wm_jax.blocks import FinalLayer, SpatialBlock, TemporalBlock
from wm_jax.configs import ModelConfig

Params = Any


def check_inputs(config: ModelConfig, x, t, actions, *, frames_axis: bool) -> None:
    """Raise a ValueError naming the argument and the expected shape, before anything is traced."""
    h, w = config.latent_size
    lead = "[B, T, " if frames_axis else "[B, "
    expected = f"{lead}{h}, {w}, {config.in_channels}]"
    ndim = 5 if frames_axis else 4
    if x.ndim != ndim or tuple(x.shape[-3:]) != (h, w, config.in_channels):
        raise ValueError(f"latents have shape {tuple(x.shape)}; this model expects {expected}")
    if tuple(t.shape) != tuple(x.shape[:-3]):
        raise ValueError(f"noise levels have shape {tuple(t.shape)}; expected {tuple(x.shape[:-3])}, one per frame")
    if tuple(actions.shape) != tuple(x.shape[:-3]) + (config.action_dim,):
        raise ValueError(
            f"actions have shape {tuple(actions.shape)}; expected {tuple(x.shape[:-3]) + (config.action_dim,)} "
            f"(one multi-hot vector of {config.action_dim} entries per frame)"
        )
    if frames_axis and x.shape[1] > config.max_frames:
        raise ValueError(f"clip has {x.shape[1]} frames; this configuration allows at most max_frames={config.max_frames}")


class WorldModel(nn.Module):
    config: ModelConfig

    def setup(self):
        cfg, dtype = self.config, self.config.dtype
        mlp_hidden = int(cfg.width * cfg.mlp_ratio)
        self.patch_embed = embeddings.PatchEmbed(cfg.width, cfg.patch_size, dtype)
        self.t_embed = embeddings.TimestepEmbedder(cfg.width, dtype, cfg.timestep_scale)
        self.action_embed = nn.Dense(cfg.width, dtype=dtype, kernel_init=nn.initializers.zeros)
        spatial_cls = nn.remat(SpatialBlock) if cfg.remat else SpatialBlock
        temporal_cls = nn.remat(TemporalBlock) if cfg.remat else TemporalBlock
        self.spatial = [
            spatial_cls(cfg.width, cfg.num_heads, mlp_hidden, cfg.qkv_bias, dtype) for _ in range(cfg.depth)
        ]
        self.temporal = [
            temporal_cls(
                cfg.width, cfg.num_heads, mlp_hidden if cfg.temporal_mlp else None, cfg.window,
                cfg.qkv_bias, cfg.temporal_rope_theta, dtype, cfg.temporal_neighbourhood, cfg.grid,
                cfg.action_dim if cfg.keys_steer_offsets else 0,
            )
            for _ in cfg.temporal_layers
        ]
        self.final = FinalLayer(cfg.width, cfg.patch_size, cfg.output_channels, dtype)

    # Fixed tables, not parameters.
    def _position_ND(self):
        gh, gw = self.config.grid
        if not self.config.pos_embed:
            return 0.0
        return jnp.asarray(embeddings.sincos_2d(self.config.width, gh, gw))

    def _spatial_rope_NE(self):
        gh, gw = self.config.grid
        return jnp.asarray(rope.axial_angles(gh, gw, self.config.head_dim)) if self.config.spatial_rope else None

    def conditioning(self, t, actions):
        """t: [...] in [0, 1]; actions: [..., K] -> c: [..., D]."""
        return self.t_embed(t) + self.config.action_gain * self.action_embed(actions.astype(self.config.dtype))

    def _embed(self, x, previous):
        """x, previous: [..., H, W, C] (previous: the frame before x, as the model saw it)."""
        if self.config.previous_frame_input:
            x = jnp.concatenate([x, previous], axis=-1)
        return self.patch_embed(x.astype(self.config.dtype)) + self._position_ND()

    def _moves_of(self, actions_BK):
        """key_moves: the (down, right) shift in latent pixels and the log-zoom of the keys held."""
        move_B3 = actions_BK.astype(jnp.float32) @ jnp.asarray(key_move_table(self.config))
        return move_B3[:, :2], move_B3[:, 2]

    def _still(self, x_GHWC):
        """[H, W] bool where the model holds its frame still (`ModelConfig.still_region`), or None."""
        return warp.region_mask(*x_GHWC.shape[1:3], self.config.still_region)

    def _moved(self, previous, actions):
        """With key_moves, the previous frame as the keys held move it: the frame the head's
        change is added to and the patch embedding sees. previous: [G, H, W, C]; actions: [G, K]."""
        if not self.config.key_moves:
            return previous
        return warp.shift_and_zoom(previous, *self._moves_of(actions), self.config.uncovered_fill, self._still(previous))

    def _add_previous(self, out, previous, actions):
        """With prediction 'x0_residual' the head's output is the change from the previous frame
        (with paint_uncovered_only, kept where the keys' move uncovers it). actions: [G, K]."""
        if self.config.prediction != "x0_residual":
            return out
        c = self.config.in_channels
        change = out[..., :c]
        if self.config.paint_uncovered_only:
            change = change * warp.uncovered(*change.shape[1:3], *self._moves_of(actions), still_HW=self._still(change))
        return jnp.concatenate([change + previous.astype(out.dtype), out[..., c:]], axis=-1)

    def _unpatchify(self, out_GNF, lead):
        cfg = self.config
        (gh, gw), p, c = cfg.grid, cfg.patch_size, cfg.output_channels
        out = out_GNF.reshape(*lead, gh, gw, p, p, c)
        out = jnp.moveaxis(out, -3, -4)  # [..., gh, p, gw, p, c]
        return out.reshape(*lead, gh * p, gw * p, c).astype(jnp.float32)

    def __call__(self, x_BTHWC, t_BT, actions_BTK, clean_BTHWC=None):
        """Whole clips, causal over frames -> model output [B, T, H, W, C_out] (fp32).

        clean_BTHWC (training): the clean latents. An x0_residual head adds its change to the clean
        frame before, as generation does (its cache holds the clean frame), and not to the input's
        noised copy of it. None: to the input's frame before, which streaming equals."""
        check_inputs(self.config, x_BTHWC, t_BT, actions_BTK, frames_axis=True)
        clean_previous = None if clean_BTHWC is None else _previous(clean_BTHWC)
        return self._clip(x_BTHWC, t_BT, actions_BTK, _previous(x_BTHWC), clean_previous)

    def _clip(self, x_BTHWC, t_BT, actions_BTK, previous_BTHWC, clean_previous_BTHWC=None):
        b, t = x_BTHWC.shape[:2]
        c_BTD = self.conditioning(t_BT, actions_BTK)
        c_GD = c_BTD.reshape(b * t, -1)
        frames = lambda a: a.reshape(b * t, *a.shape[2:])
        previous_GHWC = self._moved(frames(previous_BTHWC), frames(actions_BTK))
        x_GND = self._embed(frames(x_BTHWC), previous_GHWC)
        rope_NE = self._spatial_rope_NE()
        temporal = dict(zip(self.config.temporal_layers, self.temporal))
        for i, block in enumerate(self.spatial):
            x_GND = block(x_GND, c_GD, rope_NE)
            if i in temporal:
                x_BTND = x_GND.reshape(b, t, *x_GND.shape[1:])
                x_GND = temporal[i](x_BTND, c_BTD, actions_BTK).reshape(x_GND.shape)
        out_GHWC = self._unpatchify(self.final(x_GND, c_GD), (b * t,))
        base_GHWC = previous_GHWC if clean_previous_BTHWC is None else self._moved(frames(clean_previous_BTHWC), frames(actions_BTK))
        out_GHWC = self._add_previous(out_GHWC, base_GHWC, frames(actions_BTK))
        return out_GHWC.reshape(b, t, *out_GHWC.shape[1:])

    def read_cache(self, cache: kv_cache.KVCache) -> "CacheView":
        """The cache as the next frame's temporal layers read it (`TemporalBlock.read_cache`)."""
        offsets_W, valid_W = cache.offsets()
        layers = [
            block.read_cache(cache.k_BHNWE[layer], cache.v_BHNWE[layer], offsets_W, valid_W)
            for layer, block in enumerate(self.temporal)
        ]
        if not layers:
            return CacheView((), (), jnp.zeros((0,), bool), cache.previous_Bhwc)
        k, v, mask = zip(*layers)
        return CacheView(k, v, mask[0], cache.previous_Bhwc)

    def stream(self, x_BHWC, t_B, actions_BK, view: "CacheView"):
        """One new frame per batch element, attending to the cache as `read_cache` returned it.
        The batch may be R copies of the cache's, stacked (R, B): guidance's two branches.

        Returns the model output [B, H, W, C_out] and this frame's unrotated keys and values
        (k, v: [L, B, N, H, E]), which `rollout` writes into the cache once the frame is final.
        """
        check_inputs(self.config, x_BHWC, t_B, actions_BK, frames_axis=False)
        c_BD = self.conditioning(t_B, actions_BK)
        copies = x_BHWC.shape[0] // view.previous_BHWC.shape[0]
        previous_BHWC = self._moved(jnp.tile(view.previous_BHWC, (copies, 1, 1, 1)), actions_BK)
        x_BND = self._embed(x_BHWC, previous_BHWC)
        rope_NE = self._spatial_rope_NE()
        temporal = dict(zip(self.config.temporal_layers, range(len(self.temporal))))
        keys, values = [], []
        for i, block in enumerate(self.spatial):
            x_BND = block(x_BND, c_BD, rope_NE)
            if i in temporal:
                layer = temporal[i]
                x_BND, (k, v) = self.temporal[layer].stream(
                    x_BND, c_BD, actions_BK, view.k_BHMKE[layer], view.v_BHMKE[layer], view.mask_NK
                )
                keys.append(k)
                values.append(v)
        out = self._add_previous(self._unpatchify(self.final(x_BND, c_BD), x_BHWC.shape[:1]), previous_BHWC, actions_BK)
        cfg = self.config
        empty = jnp.zeros((0, x_BHWC.shape[0], cfg.tokens_per_frame, cfg.num_heads, cfg.head_dim))
        stack = lambda arrays: jnp.stack(arrays) if arrays else empty
        # Released with the output, so a cache write that takes them comes after every read of
        # the cache in this pass: otherwise XLA may schedule the in-place write first and guards
        # against it by copying the whole cache.
        return jax.lax.optimization_barrier((out, (stack(keys), stack(values))))


def key_move_table(config: ModelConfig) -> np.ndarray:
    """[K, 3]: each action entry's (down, right, log_zoom) move; zero for keys without one."""
    table = np.zeros((config.action_dim, 3), np.float32)
    for key, down, right, log_zoom in config.key_moves:
        table[config.action_keys.index(key)] = (down, right, log_zoom)
    return table


def _previous(x_BTHWC):
    """The frame before each frame: [B, T, ...], zeros for the first."""
    return jnp.concatenate([jnp.zeros_like(x_BTHWC[:, :1]), x_BTHWC[:, :-1]], axis=1)


@struct.dataclass
class CacheView:
    """What a new frame's temporal layers read from the cache, prepared once per frame.

    Letters: L temporal layers, B batch, H heads, M = N (each token its own column of keys) or
    1 (keys shared by all tokens, with a temporal neighbourhood), K cached keys, E head dim,
    N tokens per frame. `TemporalBlock.read_cache` says which layout a model uses.
    """

    k_BHMKE: tuple[jnp.ndarray, ...]  # one per temporal layer, rotated by each slot's age
    v_BHMKE: tuple[jnp.ndarray, ...]  # per layer, not stacked: a stacked one is a copy of the cache
    mask_NK: jnp.ndarray  # True where a query token may read a cached key (the same in every layer)
    previous_BHWC: jnp.ndarray  # the last cached frame's input latent


def empty_cache(config: ModelConfig, batch: int) -> kv_cache.KVCache:
    return kv_cache.empty(
        len(config.temporal_layers), batch, config.window, config.tokens_per_frame,
        config.num_heads, config.head_dim, (*config.latent_size, config.in_channels), config.dtype,
    )


def init_params(config: ModelConfig, rng: jax.Array) -> Params:
    """Freshly initialised fp32 params (a plain pytree) for `config`."""
    h, w = config.latent_size
    x = jnp.zeros((1, 1, h, w, config.in_channels), jnp.float32)
    t = jnp.zeros((1, 1), jnp.float32)
    a = jnp.zeros((1, 1, config.action_dim), jnp.float32)
    return jax.jit(WorldModel(config).init)(rng, x, t, a)["params"]


def abstract_params(config: ModelConfig) -> Params:
    """Shapes and dtypes of the params, without allocating them."""
    return jax.eval_shape(lambda rng: init_params(config, rng), jax.random.key(0))


# Checkpoint I/O for inference: a directory with config.json and an orbax params tree.
def save(path: str, config: ModelConfig, params: Params) -> None:
    import orbax.checkpoint as ocp

    path = os.path.abspath(path)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config_to_dict(config), f, indent=2)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(os.path.join(path, "params"), params, force=True)


def load(path: str) -> tuple[ModelConfig, Params]:
    """(config, params) from a directory written by `save`."""
    import orbax.checkpoint as ocp

    path = os.path.abspath(path)
    config_file = os.path.join(path, "config.json")
    if not os.path.exists(config_file):
        raise FileNotFoundError(f"{config_file} not found: {path} is not a wm_jax model directory")
    with open(config_file) as f:
        config = config_from_dict(json.load(f))
    with ocp.StandardCheckpointer() as checkpointer:
        params = checkpointer.restore(os.path.join(path, "params"), abstract_params(config))
    return config, params


def config_to_dict(config: ModelConfig) -> dict:
    import dataclasses

    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def config_from_dict(fields: dict) -> ModelConfig:
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    known = set(ModelConfig.__dataclass_fields__)
    unknown = set(fields) - known
    if unknown:
        raise ValueError(f"unknown model configuration fields {sorted(unknown)}; known: {sorted(known)}")
    return ModelConfig(**fields)


def count_params(tree) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))
