"""World bundles on disk: the format, writing and reading one, and finding one by name.

A world bundle is a directory:

    WORLD/
      world.json      {"format": FORMAT, "name", "description", "fps", "keys": {key: meaning},
                       "zoom_keys": {key: scale per frame}, "zoom_range": [min, max] (optional),
                       "still_mask": ["..##..", ...] (optional), "match_picture": true (optional),
                       "sampler": {steps, method, eta, context_noise, guidance, ...},
                       "model": "model", "autoencoder": "autoencoder", "start_image": "start.png",
                       "provenance": {...}}
      model/          written by wm_jax.model.save(path, config, params)
      autoencoder/    written by wm_jax.autoencoder.save(path, config, variables)
      start.png       the default start image, already at the world's resolution

That is all a bundle holds: what playing it needs. How it was trained (logs, per-stage configs,
the held-out evaluation) is provenance kept in the repository (experiments/worlds/NAME/), not in
the installed package.

"model" and "autoencoder" are paths relative to the bundle, so worlds may share one autoencoder
directory. The model's objective (what it predicts, on which noise path) is in its config.json
(`ModelConfig.prediction`, `noise_schedule`, `diffusion_steps`); the sampler's method "auto"
samples it the way it was trained. `keys` lists the keys the world answers to, in the order a
player shows them, with what they do; each must be in the model's action space (the model maps
keys by name). `zoom_keys` names keys the world zooms the camera with, in pixels
(`wm_jax.pixel_zoom`: > 1 zooms in), each also in `keys`, within `zoom_range` of the start
frame (default `pixel_zoom.DEFAULT_RANGE`, the recorder's). `still_mask` outlines, one string per
pixel row ('#' marked, '.' not), the sprite a model's `still_region` box holds still (a game's
weapon), so that the rest of the box shows the scene moving (`wm_jax.kept_pixels`; written by
`experiments.still_region_probe --mask-out`). `match_picture` shows what the model paints with the
given picture's contrast and grain (`kept_pixels.matched_to_picture`; default false). A bare model
directory (config.json + params) also plays (`wm_jax.world.load_world`), given an autoencoder.

Bundles are found by name in the shipped folder (wm_jax/worlds/) and in the folders of $WM_WORLDS.
Nothing here loads weights: loading and playing a world is `wm_jax.world`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Iterable, Mapping, Sequence

import numpy as np

from wm_jax import actions, autoencoder, images, kept_pixels, pixel_zoom
from wm_jax import model as wm_model
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig

FORMAT = "wm_jax.world/1"
INFO_FILE = "world.json"
SHIPPED_DIR = pathlib.Path(__file__).parent / "worlds"
# Extra folders of world bundles (os.pathsep-separated), searched after the shipped ones.
PATH_ENV = "WM_WORLDS"
# `wm play` with no --world serves the first of these that exists, else the first by name.
DEFAULT_ORDER = ("pan", "doom")
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
    zoom_keys: Mapping[str, float] = dataclasses.field(default_factory=dict)  # key -> scale per frame (pixel_zoom)
    zoom_range: tuple[float, float] = pixel_zoom.DEFAULT_RANGE
    still_mask: tuple[str, ...] = ()  # pixel rows of the still sprite, '#' marked (see the module docstring)
    match_picture: bool = False  # painted parts shown with the given picture's contrast and grain (kept_pixels)

    def still_mask_array(self) -> np.ndarray | None:
        """[H, W] bool of `still_mask`, or None without one."""
        return still_mask_array(self.still_mask)

    def to_json(self, resolution: tuple[int, int]) -> dict:
        """For the play page; each key says what a player presses for it ("press"): itself, or a
        plain key standing in for a modifier the browser keeps (actions.play_bindings)."""
        press = actions.play_bindings([k for k, _ in self.keys])
        return {
            "name": self.name, "description": self.description, "fps": self.fps,
            "keys": [{"key": k, "meaning": m, "press": press[actions.canonical(k)]} for k, m in self.keys],
            "sampler": dataclasses.asdict(self.sampler), "height": resolution[0], "width": resolution[1],
        }


def frame_resolution(config: ModelConfig, ae_config: autoencoder.AutoencoderConfig) -> tuple[int, int]:
    """(height, width) of the frames a model decodes to through an autoencoder."""
    h, w = config.latent_size
    return h * ae_config.downscale, w * ae_config.downscale


def pairing_problems(config: ModelConfig, ae_config: autoencoder.AutoencoderConfig,
                     keys: Iterable[tuple[str, str]], zoom_keys: Mapping[str, float] | None = None,
                     zoom_range=pixel_zoom.DEFAULT_RANGE, still_mask: Sequence[str] = (), match_picture: bool = False) -> list[str]:
    """Why a model, an autoencoder and a world's keys (still mask, match_picture) do not make a world (empty:
    they do). Read from configs alone, so a bundle is checked before any weights are loaded or written."""
    problems = []
    if ae_config.latent_channels != config.in_channels:
        problems.append(f"the autoencoder makes {ae_config.latent_channels}-channel latents, the model expects {config.in_channels}")
    if ae_config.latent_grid is not None and tuple(ae_config.latent_grid) != tuple(config.latent_size):
        problems.append(f"the autoencoder's latents are {ae_config.latent_grid[0]}x{ae_config.latent_grid[1]}, "
                        f"the model's {config.latent_size[0]}x{config.latent_size[1]}")
    unknown = [k for k, _ in keys if not config.action_space.knows(k)]
    if unknown:
        problems.append(f"keys {unknown} are not in the model's action space {config.action_keys}")
    zoom_keys = zoom_keys or {}
    problems += pixel_zoom.zoom_problems(zoom_keys, zoom_range, config)
    unlisted = sorted(set(zoom_keys) - {k for k, _ in keys})
    if unlisted:
        problems.append(f"zoom keys {unlisted} are not among the world's keys")
    if still_mask and not config.paint_uncovered_only:
        problems.append("still_mask: a still mask outlines a sprite in the pixels a world keeps, for a model that "
                        "keeps its picture (ModelConfig.paint_uncovered_only); this one redraws its frames")
    elif still_mask:
        box = kept_pixels.still_box(config, ae_config.downscale)
        problems += [f"still_mask: {p}" for p in kept_pixels.still_mask_problems(still_mask_array(still_mask), box)]
    if match_picture and not config.paint_uncovered_only:
        problems.append("match_picture: it matches what a model that keeps its picture paints to that picture "
                        "(ModelConfig.paint_uncovered_only); this one redraws its frames")
    return problems


def still_mask_array(rows: Sequence[str]) -> np.ndarray | None:
    """Pixel rows ('#' marked, '.' not) -> [H, W] bool; None for no rows."""
    if not rows:
        return None
    return np.array([[c == "#" for c in row] for row in rows], bool)


def still_mask_rows(mask_HW: np.ndarray) -> tuple[str, ...]:
    """[H, W] bool -> the pixel rows world.json stores."""
    return tuple("".join(".#"[int(v)] for v in row) for row in np.asarray(mask_HW, bool))


# ----------------------------------------------------------------------------- samplers


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


# ----------------------------------------------------------------------------- writing and reading


def _keys_from(keys) -> tuple[tuple[str, str], ...]:
    """world.json's or a caller's keys ({key: meaning}, or key names) -> canonical (key, meaning) pairs."""
    if isinstance(keys, Mapping):
        pairs = list(keys.items())
    else:
        pairs = [(k, "") if isinstance(k, str) else tuple(k) for k in keys]
    return tuple((actions.canonical(k), str(m)) for k, m in pairs)


def _zoom_keys_from(zoom_keys, source=None) -> dict[str, float]:
    """world.json's or a caller's {key: scale per frame} -> canonical keys; a clear error for anything else."""
    if not zoom_keys:
        return {}
    where = f"{source}: " if source else ""
    if not isinstance(zoom_keys, Mapping):
        raise ValueError(f"{where}zoom_keys must be a mapping {{key: scale per frame}}, got {type(zoom_keys).__name__}")
    for key, scale in zoom_keys.items():
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise ValueError(f"{where}zoom_keys[{key!r}] must be a number (the scale per frame), got {scale!r}")
    return {actions.canonical(k): float(v) for k, v in zoom_keys.items()}


def _still_mask_from(rows, source=None) -> tuple[str, ...]:
    """world.json's or a caller's still mask (pixel rows of '#' and '.') -> a tuple of rows; a clear error otherwise."""
    if rows is None or (not isinstance(rows, str) and len(rows) == 0):
        return ()
    where = f"{source}: " if source else ""
    if isinstance(rows, str) or not all(isinstance(r, str) for r in rows):
        raise ValueError(f"{where}still_mask must be a list of pixel rows, strings of '#' (the sprite) and '.', "
                         f"got {type(rows).__name__}")
    if len({len(r) for r in rows}) != 1 or any(set(r) - {"#", "."} for r in rows):
        raise ValueError(f"{where}still_mask rows must all be as long and hold only '#' and '.'")
    return tuple(rows)


def _flag_from(value, field: str, source) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{source}: {field} must be true or false, got {value!r}")
    return value


def _zoom_range_from(zoom_range, source=None) -> tuple[float, float]:
    where = f"{source}: " if source else ""
    if (not isinstance(zoom_range, (list, tuple)) or len(zoom_range) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in zoom_range)):
        raise ValueError(f"{where}zoom_range must be [min, max] scales from the start frame, got {zoom_range!r}")
    return float(zoom_range[0]), float(zoom_range[1])


def _meta(info: WorldInfo, *, model: str, autoencoder_dir: str, start_image: str | None) -> dict:
    return {
        "format": FORMAT, "name": info.name, "description": info.description, "fps": info.fps,
        "keys": dict(info.keys),
        **({"zoom_keys": dict(info.zoom_keys), "zoom_range": list(info.zoom_range)} if info.zoom_keys else {}),
        **({"still_mask": list(info.still_mask)} if info.still_mask else {}),
        **({"match_picture": True} if info.match_picture else {}),
        "sampler": dataclasses.asdict(info.sampler), "model": model, "autoencoder": autoencoder_dir, "start_image": start_image,
        "provenance": dict(info.provenance),
    }


def save_world(directory, *, name: str, config: ModelConfig, params, ae_config: autoencoder.AutoencoderConfig,
               ae_variables, keys: Mapping[str, str] | Sequence[str], fps: float = 20.0,
               start_image: np.ndarray | None = None, description: str = "",
               sampler: SamplerConfig = SamplerConfig(), provenance: Mapping | None = None,
               zoom_keys: Mapping[str, float] | None = None, zoom_range=pixel_zoom.DEFAULT_RANGE,
               still_mask: Sequence[str] = (), match_picture: bool = False) -> pathlib.Path:
    """Write a world bundle (see the module docstring); `directory` must not hold one already.
    The start image (any size; default: a generated scene) is stored at the world's resolution."""
    directory = pathlib.Path(directory)
    if (directory / INFO_FILE).exists():
        raise FileExistsError(f"{directory} already holds a world ({INFO_FILE}); choose a new directory")
    info = WorldInfo(name=name, description=description, keys=_keys_from(keys), fps=float(fps), sampler=sampler,
                     provenance=dict(provenance or {}), zoom_keys=_zoom_keys_from(zoom_keys),
                     zoom_range=_zoom_range_from(zoom_range), still_mask=_still_mask_from(still_mask),
                     match_picture=bool(match_picture))
    # Checked before anything is written: a refused world leaves no half-written bundle.
    problems = pairing_problems(config, ae_config, info.keys, info.zoom_keys, info.zoom_range, info.still_mask,
                                info.match_picture)
    if problems:
        raise ValueError(f"world {name!r}: " + "; ".join(problems))
    resolution = frame_resolution(config, ae_config)
    start = images.fit(start_image, *resolution) if start_image is not None else images.default_scene(*resolution)
    directory.mkdir(parents=True, exist_ok=True)
    wm_model.save(str(directory / "model"), config, params)
    autoencoder.save(directory / "autoencoder", ae_config, ae_variables)
    (directory / "start.png").write_bytes(images.encode_png(start))
    meta = _meta(info, model="model", autoencoder_dir="autoencoder", start_image="start.png")
    (directory / INFO_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def link_world(directory, autoencoder_dir, *, name: str, keys: Mapping[str, str] | Sequence[str], fps: float = 20.0,
               description: str = "", sampler: SamplerConfig = SamplerConfig(),
               provenance: Mapping | None = None, zoom_keys: Mapping[str, float] | None = None,
               zoom_range=pixel_zoom.DEFAULT_RANGE) -> pathlib.Path:
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
    info = WorldInfo(name=name, description=description, keys=_keys_from(keys), fps=float(fps), sampler=sampler,
                     provenance=dict(provenance or {}), zoom_keys=_zoom_keys_from(zoom_keys),
                     zoom_range=_zoom_range_from(zoom_range))
    problems = pairing_problems(config, ae_config, info.keys, info.zoom_keys, info.zoom_range)
    if problems:
        raise ValueError(f"{directory} and autoencoder {autoencoder_dir} do not make a world: " + "; ".join(problems))
    meta = _meta(info, model=".", autoencoder_dir=os.path.relpath(autoencoder_dir.resolve(), directory.resolve()),
                 start_image=None)
    (directory / INFO_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return directory


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
        zoom_keys=_zoom_keys_from(meta.get("zoom_keys"), info_file),
        zoom_range=_zoom_range_from(meta.get("zoom_range", pixel_zoom.DEFAULT_RANGE), info_file),
        still_mask=_still_mask_from(meta.get("still_mask"), info_file),
        match_picture=_flag_from(meta.get("match_picture", False), "match_picture", info_file),
    )
    start = path / meta["start_image"] if meta.get("start_image") else None
    return info, path / meta.get("model", "model"), path / meta.get("autoencoder", "autoencoder"), start


# ----------------------------------------------------------------------------- finding bundles by name


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
