"""A world at play: a loaded world model, the autoencoder whose latents it lives in, and its
jit-compiled step. The bundle format on disk and finding bundles by name are `wm_jax.bundle`.

Playing is a pure function of the state:

    world = load_world(DIR)
    state = world.start(image_uint8_HWC, seed=0)           # any size: center-crop + resize
    state, frame = world.step(state, {"w", "shift"})       # frame: uint8 [H, W, 3]

`step` is one jit-compiled program (the world model's `rollout.step` + decode + uint8),
compiled once per world, the state's buffers donated: do not reuse a state after stepping it.
`rollout` produces a scripted sequence with `rollout.rollout` (a lax.scan), in chunks. A world
with zoom keys (world.json "zoom_keys") zooms in pixels through its autoencoder inside both
(`wm_jax.pixel_zoom`); a world whose model keeps its picture (`paint_uncovered_only`) shows the
pixels it keeps and decodes only what comes into view (`wm_jax.kept_pixels`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from typing import Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from wm_jax import autoencoder, bundle, diffusion, images, kept_pixels, pixel_zoom, quantize
from wm_jax import model as wm_model
from wm_jax import rollout
from wm_jax.bundle import WorldInfo
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig

# Frames per lax.scan call of `World.rollout`. Fixed, because the random stream of a rollout
# depends on it: the same seed and keys give the same frames only with the same chunk size.
ROLLOUT_CHUNK = 16


@struct.dataclass
class PlayState:
    rollout: rollout.RolloutState
    rng: jax.Array  # split on every step, so a session's frames are a function of (seed, keys)
    kept: kept_pixels.KeptFrame  # the frame shown last: what a keeper keeps (`kept_pixels`)


def to_uint8(frames):
    """float frames in [-1, 1] (not clipped) -> uint8, rounded."""
    return jnp.clip(jnp.round((frames + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


class World:
    """A loaded world. Immutable after construction; safe to share between threads."""

    def __init__(self, info: WorldInfo, config: ModelConfig, params, ae_config: autoencoder.AutoencoderConfig,
                 ae_variables, start_image: np.ndarray | None = None, path: str | None = None,
                 quantization: str | None = None):
        problems = bundle.pairing_problems(config, ae_config, info.keys, info.zoom_keys, info.zoom_range, info.still_mask,
                                           info.match_picture)
        if problems:
            raise ValueError(f"world {info.name!r}: " + "; ".join(problems))
        rollout.check_memory(config, info.sampler)  # refused when loaded, not at the first frame
        if quantization not in (None, "int8"):
            raise ValueError(f"quantization must be None or 'int8', got {quantization!r}")
        # int8: the params stay int8 in memory and are dequantised inside each compiled step
        # (weight-only, per-channel scales; see wm_jax.quantize and BUILD_NOTES "Measure").
        params = quantize.quantize(params) if quantization == "int8" and not quantize.is_quantized(params) else params
        self.quantized = quantize.is_quantized(params)
        self.info, self.config, self.params = info, config, params
        self.ae_config, self.ae_variables, self.path = ae_config, ae_variables, path
        self.resolution = bundle.frame_resolution(config, ae_config)
        self.start_image = images.fit(start_image, *self.resolution) if start_image is not None else images.default_scene(*self.resolution)
        # How the world shows its picture, beyond the model: hashable, the compiled step is cached by it.
        self.display = (tuple(sorted(info.zoom_keys.items())), tuple(info.zoom_range), info.still_mask, info.match_picture)
        self._zoom = make_zoom(self.display, config, ae_config, ae_variables)
        self._keeper = make_keeper(self.display, config, ae_config, ae_variables, info.sampler)
        self._step = _make_play_step(config, info.sampler, ae_config, self.quantized, self.display)
        self._chunk = _make_rollout_chunk(config, info.sampler, ae_config, self.quantized, self.display)

    def __repr__(self):
        return f"World({self.info.name!r}, {self.resolution[0]}x{self.resolution[1]}, {self.info.fps:g} fps, path={self.path!r})"

    # -- the pure interface -------------------------------------------------------------------

    def fit(self, image_HWC: np.ndarray) -> np.ndarray:
        """Any uint8 RGB image -> the world's resolution (center-crop + Lanczos resize)."""
        return images.fit(image_HWC, *self.resolution)

    def action(self, pressed: Iterable[str]) -> np.ndarray:
        """Held keys -> the model's action vector [K]; keys the model does not know do nothing."""
        return self.config.action_space.encode(pressed)

    def start(self, image_HWC: np.ndarray | None = None, seed: int = 0) -> PlayState:
        """Encode the start image (default: the world's) and prefill the KV cache with it."""
        image = self.start_image if image_HWC is None else self.fit(image_HWC)
        frames = jnp.asarray(image, jnp.float32)[None, None] / 127.5 - 1.0  # [1, 1, H, W, 3]
        latents = autoencoder.encode(self.ae_variables, frames, self.ae_config)
        rng_init, rng_play = jax.random.split(jax.random.key(seed))
        params = quantize.dequantize(self.params) if self.quantized else self.params
        state = rollout.init_state(self.config, params, latents, rng=rng_init, sampler=self.info.sampler, zoom=self._zoom)
        # Commit the key to the cache's device: an uncommitted argument here and a committed one
        # (the step's own output) next time would make jit compile `step` a second time.
        return PlayState(rollout=state, rng=jax.device_put(rng_play, state.cache.count.sharding),
                         kept=jax.device_put(kept_pixels.given(frames[:, 0], self._keeper), state.cache.count.sharding))

    def step(self, state: PlayState, pressed: Iterable[str]) -> tuple[PlayState, np.ndarray]:
        """One generated frame for the keys held: (new state, uint8 [H, W, 3]). Donates `state`."""
        state, frame = self._step(self.params, self.ae_variables, state, jnp.asarray(self.action(pressed)))
        return state, np.asarray(frame)

    def rollout(self, image_HWC: np.ndarray | None, keys_per_frame: Sequence[Iterable[str]], seed: int = 0,
                progress: Callable[[int], None] | None = None) -> np.ndarray:
        """The start frame followed by one generated frame per entry: uint8 [1 + T, H, W, 3].

        Runs `rollout.rollout` (a lax.scan) over chunks of ROLLOUT_CHUNK frames, the last
        one padded with no-key frames (discarded), so one compiled program serves any length;
        `progress(n)` is called with the frames finished after each chunk.
        """
        state = self.start(image_HWC, seed)
        actions_TK = np.stack([self.action(keys) for keys in keys_per_frame]) if len(keys_per_frame) else np.zeros((0, self.config.action_dim), np.float32)
        frames = [self.fit(image_HWC)[None] if image_HWC is not None else self.start_image[None]]
        for begin in range(0, len(actions_TK), ROLLOUT_CHUNK):
            chunk = actions_TK[begin : begin + ROLLOUT_CHUNK]
            padded = np.zeros((ROLLOUT_CHUNK, self.config.action_dim), np.float32)
            padded[: len(chunk)] = chunk
            state, out = self._chunk(self.params, self.ae_variables, state, jnp.asarray(padded))
            frames.append(np.asarray(out)[: len(chunk)])
            if progress:
                progress(len(chunk))
        return np.concatenate(frames)

    def warmup(self) -> None:
        """Compile `start` and `step` now, so the first played frame is not a compile."""
        state = self.start(seed=0)
        self.step(state, ())


def make_keeper(display, config: ModelConfig, ae_config, ae_variables, sampler: SamplerConfig = SamplerConfig()) -> "kept_pixels.Keeper | None":
    """The world's keeper of its shown pixels (`kept_pixels.make_keeper`); None for a model that
    redraws its frames. display: (zoom keys as (key, scale) pairs, zoom range, still mask rows, match picture);
    sampler: the world's, for what it remembers (`SamplerConfig.memory`, `memory_wraps`)."""
    return kept_pixels.make_keeper(config, ae_config.downscale, lambda z: autoencoder.decode(ae_variables, z, ae_config),
                                   make_zoom(display, config, ae_config, ae_variables), sampler.memory,
                                   bundle.still_mask_array(display[2]), sampler.memory_wraps, display[3])


def make_zoom(display, config: ModelConfig, ae_config, ae_variables) -> "pixel_zoom.Zoom | None":
    """display: (zoom keys as (key, scale) pairs, zoom range, ...) -> the world's zoom through its
    autoencoder (`pixel_zoom.make_zoom`); None without zoom keys."""
    zoom_keys, zoom_range = display[:2]
    return pixel_zoom.make_zoom(dict(zoom_keys), zoom_range, config, lambda x: autoencoder.encode(ae_variables, x, ae_config),
                                lambda z: autoencoder.decode(ae_variables, z, ae_config))


# Cached by configuration, so every World with the same shapes (a world loaded twice, a server's
# sessions, the tests) shares one compiled program.
@functools.lru_cache(maxsize=None)
def _make_play_step(config: ModelConfig, sampler: SamplerConfig, ae_config, quantized: bool = False, display=((), None, (), False)):
    diffusion.sampler_method(config.objective, sampler)  # a misfit is refused now, not at the first frame

    def play_step(params, ae_variables, state: PlayState, action_K):
        params = quantize.dequantize(params) if quantized else params
        rng, rng_step = jax.random.split(state.rng)
        new_rollout, latent_BHWC = rollout.step(params, state.rollout, action_K[None], rng_step, config=config, sampler=sampler,
                                                zoom=make_zoom(display, config, ae_config, ae_variables))
        kept, frames = kept_pixels.shown_frames(make_keeper(display, config, ae_config, ae_variables, sampler),
                                                lambda z: autoencoder.decode(ae_variables, z, ae_config),
                                                state.kept, latent_BHWC[:, None], action_K[None, None])
        return PlayState(rollout=new_rollout, rng=rng, kept=kept), to_uint8(frames[0, 0])

    # Decoding is fused into the same XLA program: one dispatch per frame.
    return jax.jit(play_step, donate_argnums=(2,))


@functools.lru_cache(maxsize=None)
def _make_rollout_chunk(config: ModelConfig, sampler: SamplerConfig, ae_config, quantized: bool = False, display=((), None, (), False)):
    diffusion.sampler_method(config.objective, sampler)

    def chunk(params, ae_variables, state: PlayState, actions_TK):
        params = quantize.dequantize(params) if quantized else params
        rng, rng_chunk = jax.random.split(state.rng)
        new_rollout, latents_BTHWC = rollout.rollout(params, state.rollout, actions_TK[None], rng_chunk, config=config,
                                                     sampler=sampler, zoom=make_zoom(display, config, ae_config, ae_variables))
        kept, frames = kept_pixels.shown_frames(make_keeper(display, config, ae_config, ae_variables, sampler),
                                                lambda z: autoencoder.decode(ae_variables, z, ae_config),
                                                state.kept, latents_BTHWC, actions_TK[None])
        return PlayState(rollout=new_rollout, rng=rng, kept=kept), to_uint8(frames[0])

    return jax.jit(chunk, donate_argnums=(2,))


# ----------------------------------------------------------------------------- loading


def load_autoencoder(spec) -> tuple[autoencoder.AutoencoderConfig, dict]:
    """A directory written by autoencoder.save, or the name of a pixel-space configuration."""
    if isinstance(spec, str) and spec in autoencoder.CONFIGS:
        config = autoencoder.get_config(spec)
        if config.kind != "pixel":
            raise ValueError(f"autoencoder {spec!r} has trained weights: pass its directory, not its name")
        return config, autoencoder.init(config, jax.random.key(0))
    return autoencoder.load(spec)


def _pixel_for(channels: int) -> str | None:
    for name, config in autoencoder.CONFIGS.items():
        if config.kind == "pixel" and config.latent_channels == channels:
            return name
    return None


def load_world(path, *, autoencoder_spec=None, sampler_steps: int | None = None, fps: float | None = None,
               quantization: str | None = None, sampler_method: str | None = None, eta: float | None = None,
               rebuild_context: bool | None = None, temperature: float | None = None, memory: int | None = None,
               match_picture: bool | None = None) -> World:
    """A World from a bundle directory, or from a bare model directory plus `autoencoder_spec`.

    autoencoder_spec: a directory or a pixel configuration name; overrides the bundle's. A bare
      model directory without one gets the pixel autoencoder whose channels match, if any.
    sampler_steps, fps: override the bundle's denoising steps per frame and frame rate.
    sampler_method, eta, temperature, memory: override the bundle's sampler (`samplers.choices()`; one
      that does not fit the model's objective is refused), DDIM's eta, the starting noise's temperature
      and how far beyond the view the rollout remembers (`wm_jax.memory`).
    match_picture: override the bundle's `match_picture` (painted parts shown with the given picture's
      contrast and grain, `kept_pixels.matched_to_picture`).
    rebuild_context: override `SamplerConfig.rebuild_context` (True: Oasis' sliding window
      exactly past the window, at window - 1 extra frame passes a frame).
    quantization: "int8" keeps the world model's kernels int8 (weight-only) while playing.
    """
    path = pathlib.Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"world {str(path)!r} is not a directory")
    if (path / bundle.INFO_FILE).exists():
        info, model_dir, bundled_ae, start_file = bundle.read_bundle(path)
        bundle.check_objective_recorded(model_dir)
        ae_spec = autoencoder_spec or bundled_ae
        start = images.read(start_file) if start_file else None
    elif (path / "config.json").exists():
        model_dir, start = path, None
        bundle.check_objective_recorded(model_dir)
        config = wm_model.config_from_dict(json.loads((path / "config.json").read_text()))
        ae_spec = autoencoder_spec or _pixel_for(config.in_channels)
        if ae_spec is None:
            raise ValueError(
                f"{path} is a bare model directory with {config.in_channels}-channel latents and no autoencoder: "
                "pass one (wm play --autoencoder DIR), or bundle it with wm_jax.bundle.save_world"
            )
        # Without world.json nobody has said which keys matter: offer every key of the model.
        info = WorldInfo(name=path.name, description=f"model directory {path}",
                         keys=config.action_space.meanings(),
                         sampler=bundle.recorded_sampler(path))
    else:
        raise FileNotFoundError(f"{path} holds neither {bundle.INFO_FILE} (a world bundle) nor config.json (a model directory)")
    overrides = {"steps": sampler_steps, "method": sampler_method, "eta": eta, "rebuild_context": rebuild_context,
                 "temperature": temperature, "memory": memory}
    info = dataclasses.replace(info, sampler=info.sampler.overridden(**overrides))
    if fps is not None:
        info = dataclasses.replace(info, fps=float(fps))
    if match_picture is not None:
        info = dataclasses.replace(info, match_picture=bool(match_picture))
    config, params = wm_model.load(str(model_dir))
    ae_config, ae_variables = load_autoencoder(ae_spec if isinstance(ae_spec, str) else str(ae_spec))
    return World(info, config, params, ae_config, ae_variables, start, path=str(path), quantization=quantization)
