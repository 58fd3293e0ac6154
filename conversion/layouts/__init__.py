"""The layouts: one module per source model family, by name.

Every layout module exposes the same interface (see conversion/api.py, which calls it):

  NAME                                   its name here
  convert(state_dict, **options)         -> conversion.Converted; state_dict: {torch key: numpy array},
                                         options: keyword arguments with defaults (the layout's own)
  verify(converted, reference)           -> {part: max abs error} against outputs in PyTorch's layout
  PARTS (optional)                       names of a source that comes as several files (taesd:
                                         encoder, decoder), each read under "<part>." in state_dict

Each converts through one strict table (conversion/table.py). Modules are named by import
path and imported on use: listing the names (`wm convert --help`) imports no jax.
"""

from __future__ import annotations

import importlib

# Adding a layout: one module in this folder, one line here.
LAYOUTS: dict[str, str] = {
    "taesd": "wm_jax.conversion.layouts.taesd",  # the TAESD family of conv autoencoders
    "dit": "wm_jax.conversion.layouts.dit",  # DiT / SiT / REPA naming
    "oasis": "wm_jax.conversion.layouts.oasis",  # the open Oasis spatio-temporal DiT
    "oasis-vae": "wm_jax.conversion.layouts.oasis_vae",  # the open Oasis ViT autoencoder
}
NAMES = tuple(sorted(LAYOUTS))


def get(name: str):
    """The layout module called `name`; an unknown name is refused, listing the known ones."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; known layouts: {', '.join(NAMES)}")
    return importlib.import_module(LAYOUTS[name])
