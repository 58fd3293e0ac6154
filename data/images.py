"""Reading photographs of any mode (grayscale, RGBA, palette, 16-bit, CMYK) as uint8 RGB."""

from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image

from wm_jax import images as wm_images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_rgb(path: str | pathlib.Path) -> np.ndarray:
    """uint8 [H, W, 3]; raises ValueError naming the file if it cannot be read as an image.

    No size limit here (photographs a user points the recorder at are trusted input); mode
    conversion is the play server's, so a photograph looks the same recorded and uploaded.
    """
    try:
        with Image.open(path) as image:
            return wm_images.to_rgb(image)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot read image {str(path)!r}: {error}") from error


def list_images(folder: str | pathlib.Path) -> list[pathlib.Path]:
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {str(folder)!r} does not exist")
    paths = sorted(path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {str(folder)!r}")
    return paths


def bundled_photographs() -> list[pathlib.Path]:
    """Colour photographs that ship inside the scikit-image wheel (no download)."""
    import skimage  # only the sources extra needs it

    folder = pathlib.Path(skimage.__file__).parent / "data"
    names = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg"]
    paths = [folder / name for name in names if (folder / name).exists()]
    if not paths:
        raise FileNotFoundError(f"scikit-image sample photographs not found in {str(folder)!r}; pass --input FOLDER")
    return paths
