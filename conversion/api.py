"""Conversion as library calls, the same for every layout:

  converted = convert("DiT-XL-2-256x256.pt", "dit", heads=16)     # read, convert strictly
  errors = verify(converted, "reference.npz")                     # {part: max abs error}
  save(converted, "dit_xl")                                       # what `wm convert` writes

A source is a file (.pt/.pth/.safetensors, read by torch_reader: no torch, no pickle code run),
an in-memory state_dict {name: array}, or, for a layout with PARTS (taesd), {part: file}. The
options are the layout's own `convert` keyword arguments; one it does not take is refused
(`UnknownOptions`), naming the ones it does.
"""

from __future__ import annotations

import inspect
import os
import pathlib
from typing import Mapping

import numpy as np

from wm_jax.conversion import layouts, torch_reader
from wm_jax.conversion.converted import Converted

# The class table (all rows, the null class last) beside a converted DiT, for `wm sample`.
CLASS_TABLE_FILE = "class_table.npy"
# Provenance beside a converted model (an autoencoder keeps it inside autoencoder.json).
PROVENANCE_FILE = "conversion.json"


class UnknownOptions(ValueError):
    """Options a layout does not take; `names` those given, `accepted` the layout's."""

    def __init__(self, layout: str, names: list[str], accepted: list[str]):
        self.layout, self.names, self.accepted = layout, names, accepted
        super().__init__(f"option(s) {', '.join(names)} do not apply to layout {layout!r}; "
                         f"it takes: {', '.join(accepted) or 'none'}")


def options(layout: str) -> list[str]:
    """The option names a layout's `convert` takes (its keyword arguments after the state_dict)."""
    parameters = list(inspect.signature(layouts.get(layout).convert).parameters.values())[1:]
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _is_path(value) -> bool:
    return isinstance(value, (str, os.PathLike))


def read(source, key: str | None = None, parts: tuple[str, ...] = ()) -> tuple[dict[str, np.ndarray], dict]:
    """(state_dict, provenance) of a source: a file, {part: file}, or an in-memory state_dict.

    key: which entry of a training checkpoint to take (default: ema, else model). A source in
    parts is read part by part, each under "<part>."; `parts` are the names the layout takes.
    """
    if _is_path(source):
        loaded = torch_reader.load_state_dict(source, key=key)
        tensors, described, source_key = loaded.tensors, os.path.abspath(source), loaded.source_key
    elif isinstance(source, Mapping) and source and all(_is_path(v) for v in source.values()):
        if not parts:
            raise ValueError(f"a source in parts ({', '.join(source)}) is for layouts whose checkpoint comes as several "
                             "files (taesd: encoder, decoder); this layout reads one file")
        unknown = sorted(set(source) - set(parts))
        if unknown:
            raise ValueError(f"source parts {unknown} are not this layout's; its parts: {', '.join(parts)}")
        tensors, described, source_key = {}, {}, None
        for part, path in source.items():
            loaded = torch_reader.load_state_dict(path, key=key)
            tensors.update({f"{part}.{k}": v for k, v in loaded.tensors.items()})
            described[part] = os.path.abspath(path)
            source_key = source_key or loaded.source_key
    elif isinstance(source, Mapping):
        if key is not None:
            raise ValueError("key= picks an entry of a checkpoint file; an in-memory state_dict has none")
        tensors = {k: v if isinstance(v, np.ndarray) else np.asarray(v) for k, v in source.items()}
        described, source_key = "(in memory)", None
    else:
        raise TypeError(f"a source is a file path, {{part: path}} or a state_dict {{name: array}}, not {type(source).__name__}")
    provenance = {"source": described, "source_key": source_key,
                  "file_dtypes": sorted({str(v.dtype) for v in tensors.values()})}
    return tensors, provenance


def _to_jax_in_place(tree: dict) -> None:
    """Replace each numpy leaf by a jax array, one at a time, in its own dict.

    The converted numpy leaves are mostly views of the checkpoint's storages (transposes copy
    nothing); replacing them one by one lets each storage go as soon as its copy exists, so the
    source and the converted params never both exist in full. Orbax's save then adds one host
    copy; handing it numpy arrays instead would cost two.
    """
    import jax.numpy as jnp

    for key in list(tree):
        if isinstance(tree[key], dict):
            _to_jax_in_place(tree[key])
        else:
            tree[key] = jnp.asarray(tree[key])


def convert(source, layout: str, *, key: str | None = None, **layout_options) -> Converted:
    """Convert a PyTorch checkpoint strictly through `layout`'s table.

    Raises ValueError for an unknown layout (listing the known ones), an option the layout
    does not take (UnknownOptions), and every table problem at once (table.ConversionError,
    naming each key and shape).
    """
    module = layouts.get(layout)
    accepted = options(layout)
    foreign = [name for name in layout_options if name not in accepted]
    if foreign:
        raise UnknownOptions(layout, foreign, accepted)
    state_dict, provenance = read(source, key, getattr(module, "PARTS", ()))
    converted = module.convert(state_dict, **layout_options)
    del state_dict  # the source tensors: only the storages the params view stay alive
    converted.info = {"layout": layout, **provenance, **converted.info}
    _to_jax_in_place(converted.params)
    _to_jax_in_place(converted.collections)
    return converted


def verify(converted: Converted, reference) -> dict[str, float]:
    """{part: max abs error} of the converted model against `reference` (a .npz path or a
    mapping) holding inputs and outputs in PyTorch's layout, as the layout's `verify` reads them."""
    if _is_path(reference):
        with np.load(reference) as stored:
            reference = dict(stored)
    return layouts.get(converted.layout).verify(converted, reference)


def check_output_dir(out_dir) -> None:
    """Refuse an output directory that exists and is not empty (checked before converting, too)."""
    if os.path.exists(out_dir) and os.listdir(out_dir):
        raise ValueError(f"output directory {out_dir} exists and is not empty")


def save(converted: Converted, out_dir) -> pathlib.Path:
    """Write `converted` to a new directory: a model directory (wm_jax.model.save plus
    conversion.json) or an autoencoder directory (wm_jax.autoencoder.save, provenance inside),
    then the class table, the recorded sampler and the world link it carries. Returns the
    directory's absolute path."""
    from wm_jax import autoencoder
    from wm_jax import model as wm_model
    from wm_jax import bundle

    check_output_dir(out_dir)
    out = pathlib.Path(os.path.abspath(out_dir))
    if isinstance(converted.config, autoencoder.AutoencoderConfig):
        autoencoder.save(out, converted.config, converted.variables, info=converted.info)
    else:
        import json

        wm_model.save(str(out), converted.config, converted.params)
        (out / PROVENANCE_FILE).write_text(json.dumps(converted.info, indent=2, default=str))
    if converted.class_table is not None:  # wm sample conditions on any class with it
        np.save(out / CLASS_TABLE_FILE, converted.class_table)
    if converted.sampler is not None:  # sampled as the source samples it (wm rollout / wm play)
        bundle.record_sampler(out, converted.sampler)
    if converted.world is not None:
        source = converted.info.get("source")
        origin = f" converted from {os.path.basename(source)}" if isinstance(source, str) else " converted"
        sampler = {} if converted.sampler is None else {"sampler": converted.sampler}
        bundle.link_world(out, converted.world.autoencoder, name=out.name, keys=converted.world.keys,
                          fps=converted.world.fps, description=converted.world.title + origin,
                          provenance=converted.info, **sampler)
    return out


def describe_sampler(sampler) -> str:
    context = "clean, labelled" if not sampler.context_noised else "noised to"
    return (f"{sampler.method} {sampler.steps} steps, noise clamped at {sampler.noise_clamp:g}, "
            f"context {context} level {round(sampler.context_noise * 1000)}/1000")


def summary(converted: Converted) -> dict[str, object]:
    """What `wm convert` prints: the provenance, the config, the size, and the files beside the weights."""
    from wm_jax import bundle

    lines: dict[str, object] = {
        **converted.info,
        "config": converted.description,
        "parameters": converted.parameter_count,
        "stored_dtype": "float32",
    }
    if converted.class_table is not None:
        lines["class_table"] = f"{CLASS_TABLE_FILE} ({converted.class_table.shape[0]} rows, the last the null class)"
    if converted.sampler is not None:
        lines["sampler"] = f"{bundle.SAMPLER_FILE}: the source's own recipe ({describe_sampler(converted.sampler)})"
    if converted.world is not None:
        lines["world"] = f"{bundle.INFO_FILE}: autoencoder {os.path.abspath(converted.world.autoencoder)}"
    return lines
