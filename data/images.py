"""Reading photographs of any mode (grayscale, RGBA, palette, 16-bit, CMYK) as uint8 RGB."""

from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_rgb(path: str | pathlib.Path) -> np.ndarray:
    """uint8 [H, W, 3]; raises ValueError naming the file if it cannot be read as an image."""
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                # Pillow's convert("RGB") clips 16-bit values at 255 instead of rescaling them.
                values = np.asarray(image, np.float64)
                peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
                gray = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=-1)
            return np.asarray(image.convert("RGB"))
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
