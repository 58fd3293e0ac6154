"""Causal generation, frame by frame, with a KV cache: the whole sampling loop on one screen.

    state = init_state(config, params, context_latents, rng=rng)
    state, latent = step(params, state, action, rng)   # jit-compiled once, state donated
    state, latents = rollout(params, state, actions_BTK, rng)   # lax.scan over frames

`step` denoises one new frame in `sampler.steps` steps of the sampler that fits the model's
objective (`config.objective`: Euler/Heun for rectified flow, DDIM/DDPM for imported DDPM-family
models), its temporal attention reading the cache; then it runs the finished frame once more at
the context-noise level and writes that pass's keys and values into the cache, evicting the
oldest frame.

Oasis' recipe (`diffusion.OASIS_SAMPLER`, which a converted Oasis records) is this loop with
its settings: clamped starting noise, context written clean but labelled at level 14/1000, DDIM.
Its own loop re-runs the whole window for every denoising step; with a fixed context level and
causal temporal attention, a context frame's keys do not change while later frames are
denoised, so writing them once per frame gives the same frames while the rollout fits in the
window. Past the window Oasis' loop drops the oldest frames from every context frame's history,
which a cache written once cannot undo: `SamplerConfig.rebuild_context` rebuilds the cache from
the window's frames once per frame (`WindowState`), which is Oasis' loop exactly.

Letters: B batch, T frames, H W C latent height, width, channels, K action entries.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from wm_jax import diffusion, kv_cache, memory, pixel_zoom, warp
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig
from wm_jax.model import WorldModel, check_inputs, empty_cache, key_move_table


@struct.dataclass
class RolloutState:
    cache: kv_cache.KVCache
    # With `SamplerConfig.rebuild_context`: the last `window` finished frames and their actions,
    # which each frame rebuilds its cache from; None otherwise.
    window: "WindowState | None" = None
    # With a world's zoom keys (`pixel_zoom.Zoom`): the camera's zoom; None otherwise.
    zoom: "pixel_zoom.ZoomState | None" = None
    # With `SamplerConfig.memory`: the latents of the picture around the view (`wm_jax.memory`).
    canvas: "memory.Canvas | None" = None

    @property
    def frame_count(self) -> jnp.ndarray:
        return self.cache.count


def _read_cache(config: ModelConfig, params, cache):
    return WorldModel(config).apply({"params": params}, cache, method="read_cache")


def _stream(config: ModelConfig, params, x_BHWC, t_B, actions_BK, view):
    return WorldModel(config).apply({"params": params}, x_BHWC, t_B, actions_BK, view, method="stream")


def append_frame(config, params, cache, latent_BHWC, action_BK, rng, sampler: SamplerConfig):
    """Write a finished frame's keys and values, computed at the context-noise level (noised to
    it, or only labelled with it: `SamplerConfig.context_noised`)."""
    t_B = jnp.full(latent_BHWC.shape[:1], sampler.context_noise, jnp.float32)
    noisy = latent_BHWC
    # Static settings: clean context costs no random draw (~12% of a tiny step).
    if sampler.context_noise > 0 and sampler.context_noised:
        noise = diffusion.clamp_noise(jax.random.normal(rng, latent_BHWC.shape), sampler.noise_clamp)
        noisy = diffusion.noised(config.objective, latent_BHWC, noise, t_B)
    _, (k, v) = _stream(config, params, noisy, t_B, action_BK, _read_cache(config, params, cache))
    return cache.write(k, v, noisy)


def write_frames(config, params, cache, latents_BTHWC, actions_BTK, rng, sampler: SamplerConfig, first_valid=None):
    """`append_frame` for each frame in order, one frame pass scanned over them (the compiled
    graph does not grow with their number); frames before index `first_valid` (a traced int;
    None: none) are skipped (a window not yet full)."""
    t = latents_BTHWC.shape[1]

    def body(cache, inputs):
        index, latent_BHWC, action_BK, rng_i = inputs
        written = append_frame(config, params, cache, latent_BHWC, action_BK, rng_i, sampler)
        if first_valid is None:
            return written, None
        return jax.tree_util.tree_map(lambda new, old: jnp.where(index >= first_valid, new, old), written, cache), None

    frames = (jnp.arange(t), jnp.swapaxes(latents_BTHWC, 0, 1), jnp.swapaxes(actions_BTK, 0, 1), jax.random.split(rng, t))
    cache, _ = jax.lax.scan(body, cache, frames)
    return cache


def init_state(config: ModelConfig, params, context_BTHWC, actions_BTK=None, *, rng, sampler=SamplerConfig(), zoom=None):
    """Prefill the cache from one or more context frames (their actions default to "no keys");
    zoom: a world's zoom keys (`pixel_zoom.make_zoom`), whose camera starts at the last of them;
    with `sampler.memory` the canvas has seen the last of them."""
    check_memory(config, sampler)
    state = _prefill(config, sampler, params, context_BTHWC, actions_BTK, rng)
    if sampler.memory:
        still_hw = warp.region_mask(*context_BTHWC.shape[2:4], config.still_region)
        state = state.replace(canvas=memory.start(context_BTHWC[:, -1], sampler.memory, still_hw, sampler.memory_wraps))
    return state if zoom is None else state.replace(zoom=zoom.empty_state(context_BTHWC[:, -1]))


def memory_problems(config: ModelConfig) -> list[str]:
    """Why `SamplerConfig.memory` does not fit this model (empty: it does)."""
    if not (config.key_moves and config.paint_uncovered_only):
        return ["memory remembers what the keys' moves carry out of view, for a model that keeps the moved frame "
                "and paints only what a move uncovers (ModelConfig.key_moves, paint_uncovered_only): this one redraws its frames"]
    shifts = key_move_table(config)[:, :2]
    if not np.allclose(shifts, np.round(shifts)):
        return [f"memory carries the picture by whole latent pixels; this model's key moves shift it by {sorted(set(shifts.ravel().tolist()))}"]
    return []


def check_memory(config: ModelConfig, sampler: SamplerConfig) -> None:
    problems = memory_problems(config) if sampler.memory else []
    if problems:
        raise ValueError(f"sampler memory {sampler.memory}: " + "; ".join(problems))


def remember_frame(config: ModelConfig, canvas: "memory.Canvas", latent_BHWC, action_BK, zoom=None):
    """(the new frame with what its move uncovered recalled where the canvas has seen it, the canvas
    moved with it and holding it). A zoom (a key move's, or a world's zoom key held) forgets all
    but the view. Only what the move uncovered is recalled: the one-latent-pixel margin the model
    repaints beside it (`WorldModel._add_previous`) is left to the model, so memory changes nothing
    until something comes back (BUILD_NOTES session 20: recalling the margin too changed held turns)."""
    move_B3 = action_BK.astype(jnp.float32) @ jnp.asarray(key_move_table(config))
    forget_B = move_B3[:, 2] != 0
    if zoom is not None:
        forget_B = forget_B | ((action_BK.astype(jnp.float32) @ jnp.asarray(zoom.log_scale_K)) != 0)
    still_HW = warp.region_mask(*latent_BHWC.shape[1:3], config.still_region)
    uncovered = warp.uncovered(*latent_BHWC.shape[1:3], move_B3[:, :2], move_B3[:, 2], margin=0, still_HW=still_HW)
    return memory.carried(canvas, latent_BHWC, move_B3[:, :2], forget_B, uncovered, still_HW)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _prefill(config, sampler, params, context_BTHWC, actions_BTK, rng):
    if context_BTHWC.ndim != 5:
        h, w = config.latent_size
        raise ValueError(
            f"context latents have shape {tuple(context_BTHWC.shape)}; expected [B, T, {h}, {w}, {config.in_channels}]"
        )
    b, t = context_BTHWC.shape[:2]
    if actions_BTK is None:
        actions_BTK = jnp.zeros((b, t, config.action_dim), jnp.float32)
    cache = write_frames(config, params, empty_cache(config, b), context_BTHWC, actions_BTK, rng, sampler)
    window = init_window_state(config, context_BTHWC, actions_BTK) if sampler.rebuild_context else None
    return RolloutState(cache=cache, window=window)


def rebuild_cache(config, params, window: "WindowState", rng, sampler: SamplerConfig):
    """A cache holding only the window's frames, each written as if the window's first frame
    were the rollout's first (as Oasis' sliding window feeds them)."""
    b, w = window.latents_BTHWC.shape[:2]
    return write_frames(config, params, empty_cache(config, b), window.latents_BTHWC, window.actions_BTK, rng,
                        sampler, first_valid=w - window.filled)


def generate_frame(config, params, cache, action_BK, noise_BHWC, sampler: SamplerConfig, rng=None):
    """Denoise one frame from noise while attending to the cache (the cache is not changed).
    rng: the noise a stochastic sampler draws while denoising (DDPM, DDIM with eta > 0)."""
    objective = config.objective
    null_BK = jnp.broadcast_to(jnp.asarray(config.action_space.null()), action_BK.shape)
    view = _read_cache(config, params, cache)  # once per frame: it does not change while denoising

    def model_fn(x_BHWC, t):
        t_B = jnp.full(x_BHWC.shape[:1], t, jnp.float32)
        read = lambda out: diffusion.readout(objective, out, x_BHWC, t_B)
        if sampler.guidance == 1.0 or t < sampler.guidance_min_level:  # t is a Python float: static
            return read(_stream(config, params, x_BHWC, t_B, action_BK, view)[0])
        # The conditional and null branches as one batch over the one cache.
        both = lambda a: jnp.concatenate([a, a], axis=0)
        out = _stream(config, params, both(x_BHWC), both(t_B), jnp.concatenate([action_BK, null_BK]), view)[0]
        cond, null = jnp.split(out, 2)
        return diffusion.guide(objective, read(cond), read(null), sampler.guidance)

    return diffusion.sample(model_fn, noise_BHWC, sampler, objective, rng)


def step(params, state: RolloutState, action_BK, rng, *, config: ModelConfig, sampler: SamplerConfig = SamplerConfig(),
         zoom: "pixel_zoom.Zoom | None" = None):
    """One generated frame: (new state, latent [B, H, W, C]).

    zoom: a world's zoom keys (`pixel_zoom.make_zoom`; the state made by `init_state(zoom=)`): the
    frame before is zoomed as the keys held say before the new frame continues from it."""
    rng_noise, rng_context = jax.random.split(rng)
    noise = frame_noise(config, sampler, rng_noise, action_BK.shape[0])
    check_inputs(config, noise, noise[:, 0, 0, 0], action_BK, frames_axis=False)
    if zoom is not None:
        if sampler.rebuild_context:
            raise ValueError("zoom keys zoom the cache's last frame, which sampler.rebuild_context rebuilds: use one or the other")
        state = zoomed_previous(state, action_BK, zoom)
    read = state.cache
    if sampler.rebuild_context:
        if state.window is None:
            raise ValueError("sampler.rebuild_context needs the window's frames in the state: make it with "
                             "init_state(..., sampler=) of a sampler with rebuild_context=True")
        read = rebuild_cache(config, params, state.window, jax.random.fold_in(rng_context, 1), sampler)
    # Derived from rng_noise, not a third split: flow sampling draws exactly what it always drew.
    latent = generate_frame(config, params, read, action_BK, noise, sampler, jax.random.fold_in(rng_noise, 1))
    canvas = state.canvas
    if canvas is not None:
        latent, canvas = remember_frame(config, canvas, latent, action_BK, zoom)
    cache = append_frame(config, params, state.cache, latent, action_BK, rng_context, sampler)
    window = push_frame(state.window, latent, action_BK, config.window) if sampler.rebuild_context else None
    return RolloutState(cache=cache, window=window, zoom=state.zoom, canvas=canvas), latent


def zoomed_previous(state: RolloutState, action_BK, zoom: "pixel_zoom.Zoom") -> RolloutState:
    """The state with the cache's last frame zoomed as the keys held say, and the camera moved."""
    if state.zoom is None:
        raise ValueError("a rollout with zoom keys needs the camera in its state: make it with init_state(..., zoom=)")
    camera, previous = zoom(state.zoom, state.cache.previous_Bhwc, action_BK)
    return state.replace(cache=state.cache.replace(previous_Bhwc=previous), zoom=camera)


def frame_noise(config: ModelConfig, sampler: SamplerConfig, rng, batch: int):
    """The noise a new frame starts from: [B, h, w, c] (`diffusion.starting_noise`)."""
    h, w = config.latent_size
    return diffusion.starting_noise(rng, (batch, h, w, config.in_channels), sampler)


def rollout(params, state: RolloutState, actions_BTK, rng, *, config: ModelConfig, sampler: SamplerConfig = SamplerConfig(),
            zoom: "pixel_zoom.Zoom | None" = None):
    """A scripted sequence: (final state, latents [B, T, H, W, C]), one lax.scan over frames."""
    rngs = jax.random.split(rng, actions_BTK.shape[1])

    def body(state, inputs):
        action_BK, rng_t = inputs
        return step(params, state, action_BK, rng_t, config=config, sampler=sampler, zoom=zoom)

    state, latents_TBHWC = jax.lax.scan(body, state, (jnp.swapaxes(actions_BTK, 0, 1), rngs))
    return state, jnp.swapaxes(latents_TBHWC, 0, 1)


def make_step(config: ModelConfig, sampler: SamplerConfig = SamplerConfig(), zoom=None):
    """`step` jit-compiled once for this configuration, with the state's buffers donated."""
    diffusion.sampler_method(config.objective, sampler)  # a misfit is refused now, not at the first frame
    check_memory(config, sampler)
    return jax.jit(functools.partial(step, config=config, sampler=sampler, zoom=zoom), donate_argnums=(1,))


def make_rollout(config: ModelConfig, sampler: SamplerConfig = SamplerConfig(), zoom=None):
    diffusion.sampler_method(config.objective, sampler)
    check_memory(config, sampler)
    return jax.jit(functools.partial(rollout, config=config, sampler=sampler, zoom=zoom), donate_argnums=(1,))


# The baseline the cache is measured against: no cache, the whole window re-run for every
# denoising step of every frame, as the open Oasis sampler does.
@struct.dataclass
class WindowState:
    latents_BTHWC: jnp.ndarray  # the last `window` frames, oldest first
    actions_BTK: jnp.ndarray
    filled: jnp.ndarray  # int32: how many of those slots hold real frames


def init_window_state(config: ModelConfig, context_BTHWC, actions_BTK=None) -> WindowState:
    b, t = context_BTHWC.shape[:2]
    w = config.window
    if actions_BTK is None:
        actions_BTK = jnp.zeros((b, t, config.action_dim), jnp.float32)
    latents = jnp.zeros((b, w) + context_BTHWC.shape[2:], jnp.float32).at[:, w - min(t, w):].set(context_BTHWC[:, -w:])
    acts = jnp.zeros((b, w, config.action_dim), jnp.float32).at[:, w - min(t, w):].set(actions_BTK[:, -w:])
    return WindowState(latents, acts, jnp.asarray(min(t, w), jnp.int32))


def push_frame(window: WindowState, latent_BHWC, action_BK, size: int) -> WindowState:
    """The window with a finished frame appended and its oldest frame dropped."""
    latents = jnp.concatenate([window.latents_BTHWC[:, 1:], latent_BHWC[:, None]], axis=1)
    actions = jnp.concatenate([window.actions_BTK[:, 1:], action_BK[:, None]], axis=1)
    return WindowState(latents, actions, jnp.minimum(window.filled + 1, size))


def recompute_step(params, state: WindowState, action_BK, rng, *, config: ModelConfig, sampler: SamplerConfig = SamplerConfig()):
    """Like `step`, without a cache. Empty slots are always the oldest ones; they are run (the
    compute is the point of the baseline) but their influence is not masked out, so outputs
    match `step` only once the window is full (with `previous_frame_input`, only nearly: the
    oldest frame in the window sees no frame before it)."""
    b = action_BK.shape[0]
    model = WorldModel(config)
    actions = jnp.concatenate([state.actions_BTK, action_BK[:, None]], axis=1)
    t_ctx = jnp.full((b, config.window), sampler.context_noise, jnp.float32)

    def model_fn(x_BHWC, t):
        clip = jnp.concatenate([state.latents_BTHWC, x_BHWC[:, None]], axis=1)
        t_BT = jnp.concatenate([t_ctx, jnp.full((b, 1), t, jnp.float32)], axis=1)
        out = model.apply({"params": params}, clip, t_BT, actions)[:, -1]
        return diffusion.readout(config.objective, out, x_BHWC, t_BT[:, -1])

    noise = diffusion.starting_noise(rng, (b,) + state.latents_BTHWC.shape[2:], sampler)
    latent = diffusion.sample(model_fn, noise, sampler, config.objective, jax.random.fold_in(rng, 1))
    latents = jnp.concatenate([state.latents_BTHWC[:, 1:], latent[:, None]], axis=1)
    return WindowState(latents, actions[:, 1:], jnp.minimum(state.filled + 1, config.window)), latent
