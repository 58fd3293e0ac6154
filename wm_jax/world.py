"""A world: a world model, the autoencoder whose latents it lives in, and how to play it.

A world bundle is a directory:

    WORLD/
      world.json      {"format": FORMAT, "name", "description", "fps", "keys": {key: meaning},
                       "sampler": {steps, method, eta, context_noise, guidance, ...},
                       "model": "model", "autoencoder": "autoencoder", "start_image": "start.png",
                       "provenance": {...}}
      model/          written by wm_jax.model.save(path, config, params)
      autoencoder/    written by wm_jax.autoencoder.save(path, config, variables)
      start.png       the default start image, already at the world's resolution

"model" and "autoencoder" are paths relative to the bundle, so worlds may share one autoencoder
directory. The model's objective (what it predicts, on which noise path) is in its config.json
(`ModelConfig.prediction`, `noise_schedule`, `diffusion_steps`); the sampler's method "auto"
samples it the way it was trained. `keys` lists the keys the world answers to, in the order a
player shows them, with what they do; each must be in the model's action space (the model maps
keys by name). A bare model directory (config.json + params) also loads, given an autoencoder (a
directory or a pixel configuration name such as "pixel_p4").

Playing is a pure function of the state:

    world = load_world(DIR)
    state = world.start(image_uint8_HWC, seed=0)           # any size: center-crop + resize
    state, frame = world.step(state, {"w", "shift"})       # frame: uint8 [H, W, 3]

`step` is one jit-compiled program (the world model's `rollout.make_step` + decode + uint8),
compiled once per world, the state's buffers donated: do not reuse a state after stepping it.
`rollout` produces a scripted sequence with `rollout.make_rollout` (a lax.scan), in chunks.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
from typing import Callable, Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from wm_jax import actions, autoencoder, images, quantize
from wm_jax import model as wm_model
from wm_jax import rollout
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig

FORMAT = "wm_jax.world/1"
INFO_FILE = "world.json"
SHIPPED_DIR = pathlib.Path(__file__).parent / "worlds"
# Extra folders of world bundles (os.pathsep-separated), searched after the shipped ones.
PATH_ENV = "WM_WORLDS"
# `wm play` with no --world serves the first of these that exists, else the first by name.
DEFAULT_ORDER = ("pan", "doom")
# Frames per lax.scan call of `World.rollout`. Fixed, because the random stream of a rollout
# depends on it: the same seed and keys give the same frames only with the same chunk size.
ROLLOUT_CHUNK = 16
# A model directory may record how it is sampled by default (`wm convert --layout oasis` writes
# Oasis' recipe, `diffusion.OASIS_SAMPLER`): a bare model directory loads with it; a bundle's
# world.json says its own.
SAMPLER_FILE = "sampler.json"


@dataclasses.dataclass(frozen=True)
class WorldInfo:
    """What a player needs to know about a world (world.json, minus the paths)."""

    name: str
    description: str = ""
    keys: tuple[tuple[str, str], ...] = ()  # (key name, what it does), in display order
    fps: float = 20.0
    sampler: SamplerConfig = SamplerConfig()
    provenance: Mapping = dataclasses.field(default_factory=dict)

    def to_json(self, resolution: tuple[int, int]) -> dict:
        """For the play page; each key says what a player presses for it ("press"): itself, or a
        plain key standing in for a modifier the browser keeps (actions.play_bindings)."""
        press = actions.play_bindings([k for k, _ in self.keys])
        return {
            "name": self.name, "description": self.description, "fps": self.fps,
            "keys": [{"key": k, "meaning": m, "press": press[actions.canonical(k)]} for k, m in self.keys],
            "sampler": dataclasses.asdict(self.sampler), "height": resolution[0], "width": resolution[1],
        }


@struct.dataclass
class PlayState:
    rollout: rollout.RolloutState
    rng: jax.Array  # split on every step, so a session's frames are a function of (seed, keys)


def to_uint8(frames):
    """float frames in [-1, 1] (not clipped) -> uint8, rounded."""
    return jnp.clip(jnp.round((frames + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


class World:
    """A loaded world. Immutable after construction; safe to share between threads."""

    def __init__(self, info: WorldInfo, config: ModelConfig, params, ae_config: autoencoder.AutoencoderConfig,
                 ae_variables, start_image: np.ndarray | None = None, path: str | None = None,
                 quantization: str | None = None):
        if ae_config.latent_channels != config.in_channels:
            raise ValueError(
                f"world {info.name!r}: the autoencoder makes {ae_config.latent_channels}-channel latents but the "
                f"model expects {config.in_channels}"
            )
        missing = [k for k, _ in info.keys if not config.action_space.knows(k)]
        if missing:
            raise ValueError(f"world {info.name!r}: keys {missing} are not in the model's action space {config.action_keys}")
        if quantization not in (None, "int8"):
            raise ValueError(f"quantization must be None or 'int8', got {quantization!r}")
        # int8: the params stay int8 in memory and are dequantised inside each compiled step
        # (weight-only, per-channel scales; see wm_jax.quantize and BUILD_NOTES "Measure").
        params = quantize.quantize(params) if quantization == "int8" and not quantize.is_quantized(params) else params
        self.quantized = quantize.is_quantized(params)
        self.info, self.config, self.params = info, config, params
        self.ae_config, self.ae_variables, self.path = ae_config, ae_variables, path
        h, w = config.latent_size
        self.resolution = (h * ae_config.downscale, w * ae_config.downscale)
        self.start_image = images.fit(start_image, *self.resolution) if start_image is not None else images.default_scene(*self.resolution)
        self._step = _make_play_step(config, info.sampler, ae_config, self.quantized)
        self._chunk = _make_rollout_chunk(config, info.sampler, ae_config, self.quantized)

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
        state = rollout.init_state(self.config, params, latents, rng=rng_init, sampler=self.info.sampler)
        # Commit the key to the cache's device: an uncommitted argument here and a committed one
        # (the step's own output) next time would make jit compile `step` a second time.
        return PlayState(rollout=state, rng=jax.device_put(rng_play, state.cache.count.sharding))

    def step(self, state: PlayState, pressed: Iterable[str]) -> tuple[PlayState, np.ndarray]:
        """One generated frame for the keys held: (new state, uint8 [H, W, 3]). Donates `state`."""
        state, frame = self._step(self.params, self.ae_variables, state, jnp.asarray(self.action(pressed)))
        return state, np.asarray(frame)

    def rollout(self, image_HWC: np.ndarray | None, keys_per_frame: Sequence[Iterable[str]], seed: int = 0,
                progress: Callable[[int], None] | None = None) -> np.ndarray:
        """The start frame followed by one generated frame per entry: uint8 [1 + T, H, W, 3].

        Runs `rollout.make_rollout` (a lax.scan) over chunks of ROLLOUT_CHUNK frames, the last
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


# Cached by configuration, so every World with the same shapes (a world loaded twice, a server's
# sessions, the tests) shares one compiled program.
@functools.lru_cache(maxsize=None)
def _make_play_step(config: ModelConfig, sampler: SamplerConfig, ae_config, quantized: bool = False):
    step = rollout.make_step(config, sampler)

    def play_step(params, ae_variables, state: PlayState, action_K):
        params = quantize.dequantize(params) if quantized else params
        rng, rng_step = jax.random.split(state.rng)
        new_rollout, latent_BHWC = step(params, state.rollout, action_K[None], rng_step)
        frame = autoencoder.decode(ae_variables, latent_BHWC, ae_config)[0]
        return PlayState(rollout=new_rollout, rng=rng), to_uint8(frame)

    # Decoding is fused into the same XLA program: one dispatch per frame.
    return jax.jit(play_step, donate_argnums=(2,))


@functools.lru_cache(maxsize=None)
def _make_rollout_chunk(config: ModelConfig, sampler: SamplerConfig, ae_config, quantized: bool = False):
    scan = rollout.make_rollout(config, sampler)

    def chunk(params, ae_variables, state: PlayState, actions_TK):
        params = quantize.dequantize(params) if quantized else params
        rng, rng_chunk = jax.random.split(state.rng)
        new_rollout, latents_BTHWC = scan(params, state.rollout, actions_TK[None], rng_chunk)
        frames = autoencoder.decode(ae_variables, latents_BTHWC[0], ae_config)
        return PlayState(rollout=new_rollout, rng=rng), to_uint8(frames)

    return jax.jit(chunk, donate_argnums=(2,))


# ----------------------------------------------------------------------------- bundles on disk


def sampler_from_fields(fields: Mapping) -> SamplerConfig:
    known = {f.name for f in dataclasses.fields(SamplerConfig)}
    unknown = set(fields) - known
    if unknown:
        raise ValueError(f"unknown sampler fields {sorted(unknown)}; known: {sorted(known)}")
    return SamplerConfig(**fields)


def record_sampler(model_dir, sampler: SamplerConfig) -> None:
    """Write the sampler a model directory is sampled with by default (`SAMPLER_FILE`)."""
    (pathlib.Path(model_dir) / SAMPLER_FILE).write_text(json.dumps(dataclasses.asdict(sampler), indent=2))


def recorded_sampler(model_dir) -> SamplerConfig:
    """The sampler a model directory records (`SAMPLER_FILE`); an Oasis converted before
    samplers were recorded gets Oasis' (`diffusion.OASIS_SAMPLER`); else the default one."""
    from wm_jax import diffusion

    model_dir = pathlib.Path(model_dir)
    if (model_dir / SAMPLER_FILE).exists():
        return sampler_from_fields(json.loads((model_dir / SAMPLER_FILE).read_text()))
    conversion = model_dir / "conversion.json"
    if conversion.is_file() and json.loads(conversion.read_text()).get("layout") == "oasis":
        return diffusion.OASIS_SAMPLER
    return SamplerConfig()


def _keys_from(keys) -> tuple[tuple[str, str], ...]:
    if isinstance(keys, Mapping):
        pairs = list(keys.items())
    else:
        pairs = [(k, "") if isinstance(k, str) else tuple(k) for k in keys]
    return tuple((actions.canonical(k), str(m)) for k, m in pairs)


def save_world(directory, *, name: str, config: ModelConfig, params, ae_config: autoencoder.AutoencoderConfig,
               ae_variables, keys: Mapping[str, str] | Sequence[str], fps: float = 20.0,
               start_image: np.ndarray | None = None, description: str = "",
               sampler: SamplerConfig = SamplerConfig(), provenance: Mapping | None = None) -> pathlib.Path:
    """Write a world bundle (see the module docstring); `directory` must not hold one already."""
    directory = pathlib.Path(directory)
    if (directory / INFO_FILE).exists():
        raise FileExistsError(f"{directory} already holds a world ({INFO_FILE}); choose a new directory")
    info = WorldInfo(name=name, description=description, keys=_keys_from(keys), fps=float(fps), sampler=sampler,
                     provenance=dict(provenance or {}))
    # Building the World validates keys, channels and the start image before anything is written.
    world = World(info, config, params, ae_config, ae_variables, start_image)
    directory.mkdir(parents=True, exist_ok=True)
    wm_model.save(str(directory / "model"), config, params)
    autoencoder.save(directory / "autoencoder", ae_config, ae_variables)
    (directory / "start.png").write_bytes(images.encode_png(world.start_image))
    meta = {
        "format": FORMAT, "name": name, "description": description, "fps": float(fps),
        "keys": dict(info.keys), "sampler": dataclasses.asdict(sampler),
        "model": "model", "autoencoder": "autoencoder", "start_image": "start.png",
        "provenance": dict(provenance or {}),
    }
    (directory / INFO_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def link_world(directory, autoencoder_dir, *, name: str, keys: Mapping[str, str] | Sequence[str], fps: float = 20.0,
               description: str = "", sampler: SamplerConfig = SamplerConfig(),
               provenance: Mapping | None = None) -> pathlib.Path:
    """Make a model directory (`wm_jax.model.save`, `wm convert`) a world bundle in place: a
    world.json whose model is the directory itself and whose autoencoder is `autoencoder_dir`
    (stored relative to it), so `wm play --checkpoint DIR` needs no --autoencoder and nothing
    large is copied. Channels, keys and a fixed-size autoencoder's latent grid are checked from
    the two directories' JSON files, without loading weights."""
    directory, autoencoder_dir = pathlib.Path(directory), pathlib.Path(autoencoder_dir)
    if (directory / INFO_FILE).exists():
        raise FileExistsError(f"{directory} already holds a world ({INFO_FILE})")
    config = wm_model.config_from_dict(json.loads((directory / "config.json").read_text()))
    ae_config, _ = autoencoder.load_config(autoencoder_dir)
    pairs = _keys_from(keys)
    problems = []
    if ae_config.latent_channels != config.in_channels:
        problems.append(f"the autoencoder makes {ae_config.latent_channels}-channel latents, the model expects {config.in_channels}")
    if ae_config.latent_grid is not None and tuple(ae_config.latent_grid) != tuple(config.latent_size):
        problems.append(f"the autoencoder's latents are {ae_config.latent_grid[0]}x{ae_config.latent_grid[1]}, "
                        f"the model's {config.latent_size[0]}x{config.latent_size[1]}")
    unknown = [k for k, _ in pairs if not config.action_space.knows(k)]
    if unknown:
        problems.append(f"keys {unknown} are not in the model's action space")
    if problems:
        raise ValueError(f"{directory} and autoencoder {autoencoder_dir} do not make a world: " + "; ".join(problems))
    meta = {
        "format": FORMAT, "name": name, "description": description, "fps": float(fps),
        "keys": dict(pairs), "sampler": dataclasses.asdict(sampler),
        "model": ".", "autoencoder": os.path.relpath(autoencoder_dir.resolve(), directory.resolve()), "start_image": None,
        "provenance": dict(provenance or {}),
    }
    (directory / INFO_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return directory



def check_objective_recorded(model_dir) -> None:
    """Refuse a converted model directory whose config.json predates recorded objectives.

    A config.json without `noise_schedule` reads as rectified flow: right for every model
    trained here before objectives were recorded, wrong for a converted one (DiT predicts ε,
    Oasis v), which would then generate noise; conversion.json beside it says it was converted.
    """
    model_dir = pathlib.Path(model_dir)
    conversion, config_file = model_dir / "conversion.json", model_dir / "config.json"
    if not conversion.is_file() or not config_file.is_file() or "noise_schedule" in json.loads(config_file.read_text()):
        return
    layout = json.loads(conversion.read_text()).get("layout", "unknown")
    raise ValueError(
        f"{model_dir} was converted (wm convert --layout {layout}) before converted models recorded their objective: "
        "its config.json has no noise_schedule, so how it was trained cannot be told (sampled as rectified flow it "
        "would generate noise). Convert the checkpoint again (dit: DDPM epsilon, linear betas; oasis: v_prediction, "
        'sigmoid betas), or add "prediction", "noise_schedule" and "diffusion_steps" to its config.json'
    )


def _load_autoencoder(spec) -> tuple[autoencoder.AutoencoderConfig, dict]:
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


def read_bundle(path) -> tuple[WorldInfo, pathlib.Path, pathlib.Path, pathlib.Path | None]:
    """(info, model directory, autoencoder directory, start image or None) of a world bundle,
    without loading any weights."""
    path = pathlib.Path(path)
    info_file = path / INFO_FILE
    meta = json.loads(info_file.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{info_file}: format {meta.get('format')!r}; this version reads {FORMAT!r}")
    info = WorldInfo(
        name=meta.get("name") or path.name, description=meta.get("description", ""),
        keys=_keys_from(meta.get("keys", {})), fps=float(meta.get("fps", 20.0)),
        sampler=sampler_from_fields(meta.get("sampler", {})), provenance=meta.get("provenance", {}),
    )
    start = path / meta["start_image"] if meta.get("start_image") else None
    return info, path / meta.get("model", "model"), path / meta.get("autoencoder", "autoencoder"), start


def load_world(path, *, autoencoder_spec=None, sampler_steps: int | None = None, fps: float | None = None,
               quantization: str | None = None, sampler_method: str | None = None, eta: float | None = None,
               rebuild_context: bool | None = None) -> World:
    """A World from a bundle directory, or from a bare model directory plus `autoencoder_spec`.

    autoencoder_spec: a directory or a pixel configuration name; overrides the bundle's. A bare
      model directory without one gets the pixel autoencoder whose channels match, if any.
    sampler_steps, fps: override the bundle's denoising steps per frame and frame rate.
    sampler_method, eta: override the bundle's sampler (`diffusion.METHODS`; one that does not fit
      the model's objective is refused) and DDIM's eta.
    rebuild_context: override `SamplerConfig.rebuild_context` (True: Oasis' sliding window
      exactly past the window, at window - 1 extra frame passes a frame).
    quantization: "int8" keeps the world model's kernels int8 (weight-only) while playing.
    """
    path = pathlib.Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"world {str(path)!r} is not a directory")
    if (path / INFO_FILE).exists():
        info, model_dir, bundled_ae, start_file = read_bundle(path)
        check_objective_recorded(model_dir)
        ae_spec = autoencoder_spec or bundled_ae
        start = images.read(start_file) if start_file else None
    elif (path / "config.json").exists():
        model_dir, start = path, None
        check_objective_recorded(model_dir)
        config = wm_model.config_from_dict(json.loads((path / "config.json").read_text()))
        ae_spec = autoencoder_spec or _pixel_for(config.in_channels)
        if ae_spec is None:
            raise ValueError(
                f"{path} is a bare model directory with {config.in_channels}-channel latents and no autoencoder: "
                "pass one (wm play --autoencoder DIR), or bundle it with wm_jax.world.save_world"
            )
        # Without world.json nobody has said which keys matter: offer every key of the model.
        info = WorldInfo(name=path.name, description=f"model directory {path}",
                         keys=config.action_space.meanings(),
                         sampler=recorded_sampler(path))
    else:
        raise FileNotFoundError(f"{path} holds neither {INFO_FILE} (a world bundle) nor config.json (a model directory)")
    overrides = {"steps": sampler_steps, "method": sampler_method, "eta": eta, "rebuild_context": rebuild_context}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        info = dataclasses.replace(info, sampler=dataclasses.replace(info.sampler, **overrides))
    if fps is not None:
        info = dataclasses.replace(info, fps=float(fps))
    config, params = wm_model.load(str(model_dir))
    ae_config, ae_variables = _load_autoencoder(ae_spec if isinstance(ae_spec, str) else str(ae_spec))
    return World(info, config, params, ae_config, ae_variables, start, path=str(path), quantization=quantization)


def search_path() -> list[pathlib.Path]:
    extra = [pathlib.Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
    return [SHIPPED_DIR, *extra]


def available_worlds(folders: Sequence[pathlib.Path] | None = None) -> dict[str, pathlib.Path]:
    """Name -> bundle directory, for every bundle directly inside the folders (first wins)."""
    found: dict[str, pathlib.Path] = {}
    for folder in folders if folders is not None else search_path():
        if folder.is_dir():
            for child in sorted(folder.iterdir()):
                if (child / INFO_FILE).is_file():
                    found.setdefault(child.name, child)
    return found


def default_world(names: Iterable[str]) -> str | None:
    names = sorted(names)
    for preferred in DEFAULT_ORDER:
        if preferred in names:
            return preferred
    return names[0] if names else None


def resolve(name: str, folders: Sequence[pathlib.Path] | None = None) -> pathlib.Path:
    """A world name (searched in the shipped folder and $WM_WORLDS) -> its bundle directory."""
    worlds = available_worlds(folders)
    if name in worlds:
        return worlds[name]
    where = ", ".join(str(f) for f in (folders if folders is not None else search_path()))
    known = ", ".join(sorted(worlds)) or "none found (the shipped pan and doom live in wm_jax/worlds/)"
    raise KeyError(f"no world named {name!r} in {where}; available: {known}. Play a directory with --checkpoint DIR")


def locate(name_or_directory: str) -> pathlib.Path:
    """A bundle directory if one exists at that path, else a world name as `resolve` finds it."""
    path = pathlib.Path(name_or_directory)
    return path if path.is_dir() else resolve(name_or_directory)


def make_demo_world(directory, *, seed: int = 0, randomize: float = 0.1) -> pathlib.Path:
    """An untrained `tiny`-sized world in pixel space (64x64 frames) for testing the machinery.

    The params are drawn at random (scale `randomize`; 0 keeps the identity init, whose frames
    are pure sampler noise), so keys do change the frames, but nothing here is learned.
    """
    from wm_jax import configs

    config = configs.get_config("tiny", latent_size=(16, 16), in_channels=48)
    ae_config = autoencoder.get_config("pixel_p4")
    if randomize:
        # Drawn with numpy over the abstract shapes: no init to compile, seconds saved per test run.
        gen = np.random.default_rng(seed)
        params = jax.tree_util.tree_map(lambda x: jnp.asarray(randomize * gen.standard_normal(x.shape), x.dtype),
                                        wm_model.abstract_params(config))
    else:
        params = wm_model.init_params(config, jax.random.key(seed))
    return save_world(
        directory, name="demo (untrained)", config=config, params=params, ae_config=ae_config,
        ae_variables=autoencoder.init(ae_config, jax.random.key(0)),
        keys={"w": "forward", "a": "left", "s": "back", "d": "right", "up": "look up", "down": "look down",
              "left": "look left", "right": "look right", "space": "jump", "shift": "run"},
        fps=20.0, sampler=SamplerConfig(steps=4),
        description="Untrained tiny model with random weights: shows the play machinery, not a world.",
        provenance={"made_by": "wm_jax.world.make_demo_world", "seed": seed, "randomize": randomize},
    )
