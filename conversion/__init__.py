"""Import PyTorch checkpoints into wm_jax: safe readers plus one strict layout table per model.

The library calls (api.py), the same for every layout:

  from wm_jax import conversion
  converted = conversion.convert(path, "oasis", latent_size=(18, 32))   # -> Converted
  conversion.verify(converted, "reference.npz")                        # {part: max abs error}
  conversion.save(converted, "oasis_dir")                              # what `wm convert` writes

`torch_reader` reads .pt/.pth and .safetensors files into numpy without torch and without
running pickle code; `table` is the strict rename/transpose machinery the layouts share;
`layouts/<name>.py` holds one table per source model family, registered by name in
`layouts.LAYOUTS`; `converted.Converted` is what each layout's `convert` returns.
"""

from wm_jax.conversion.api import (  # noqa: F401
    CLASS_TABLE_FILE,
    PROVENANCE_FILE,
    UnknownOptions,
    check_output_dir,
    convert,
    options,
    save,
    summary,
    verify,
)
from wm_jax.conversion.converted import Converted, WorldLink  # noqa: F401
from wm_jax.conversion.layouts import LAYOUTS, NAMES  # noqa: F401
