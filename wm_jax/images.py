"""Start images for a world: decode untrusted bytes safely, and fit any size to the world's frame.

Fitting is "center-crop, then resize": the largest centred crop with the world's aspect ratio is
cut out (nothing is padded, so no black bars enter the model's input), then resized with a
Lanczos filter (antialiased when shrinking) to exactly (height, width). EXIF rotation is applied
first, so phone photographs come out upright.

Images: uint8 [H, W, 3] RGB.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

# Uploads come from a browser page; these bound what one may cost to decode.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 40-megapixel photograph decodes to 120 MB of RGB; larger is refused


class ImageError(ValueError):
    """The bytes are not an image this module can use; the message is meant for the user."""


def decode(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Bytes of a PNG/JPEG/WebP/GIF/BMP/TIFF file -> uint8 [H, W, 3]; raises ImageError."""
    if not data:
        raise ImageError("the upload is empty")
    if len(data) > max_bytes:
        raise ImageError(f"the image is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            # Check the header's size before decoding pixels: a small file can claim a huge image.
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(f"the image is {width}x{height} pixels; the limit is {max_pixels / 1e6:.0f} megapixels")
            image.load()
            return to_rgb(image)
    except ImageError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageError("the upload is not an image this server can read (PNG, JPEG, WebP, GIF, BMP, TIFF)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        # Pillow raises UnidentifiedImageError (an OSError) for non-images, OSError/SyntaxError
        # for truncated or corrupt files.
        raise ImageError(f"the upload is not a readable image ({type(error).__name__}: {error})") from None


def to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode (grayscale, palette, RGBA, 16-bit, CMYK) -> uint8 [H, W, 3], upright."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # convert("RGB") would clip 16-bit values at 255 instead of rescaling them.
        values = np.asarray(image, np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels become white, as a browser shows them on a plain page.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def read(path) -> np.ndarray:
    """An image file -> uint8 [H, W, 3]; raises ImageError naming the file."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_UPLOAD_BYTES + 1)
    except OSError as error:
        raise ImageError(f"cannot read image {str(path)!r}: {error}") from None
    try:
        return decode(data)
    except ImageError as error:
        raise ImageError(f"{str(path)!r}: {error}") from None


def fit(image_HWC: np.ndarray, height: int, width: int) -> np.ndarray:
    """Center-crop to the aspect ratio height:width, then resize to exactly [height, width, 3]."""
    image_HWC = np.asarray(image_HWC)
    if image_HWC.ndim != 3 or image_HWC.shape[-1] != 3 or image_HWC.dtype != np.uint8:
        raise ImageError(f"expected a uint8 [H, W, 3] image, got {image_HWC.dtype} {tuple(image_HWC.shape)}")
    h, w = image_HWC.shape[:2]
    # Largest crop with the target aspect: compare h/w with height/width without rounding twice.
    if h * width > w * height:  # too tall: crop rows
        crop_h, crop_w = max(1, round(w * height / width)), w
    else:  # too wide (or exact): crop columns
        crop_h, crop_w = h, max(1, round(h * width / height))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    cropped = image_HWC[top : top + crop_h, left : left + crop_w]
    if cropped.shape[:2] == (height, width):
        return np.ascontiguousarray(cropped)
    resized = Image.fromarray(cropped).resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(resized)


def encode_png(image_HWC: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image_HWC, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def default_scene(height: int, width: int) -> np.ndarray:
    """A plain landscape (sky, sun, hills, ground) for worlds that ship no start image."""
    y = np.linspace(0.0, 1.0, height)[:, None]
    x = np.linspace(0.0, 1.0, width)[None, :]
    sky = np.stack([0.45 + 0.3 * y, 0.65 + 0.2 * y, 0.95 - 0.1 * y], -1) * np.ones((1, width, 1))
    horizon = 0.62 + 0.06 * np.sin(2 * np.pi * (1.3 * x + 0.1)) + 0.03 * np.sin(2 * np.pi * 4.1 * x)
    ground = np.stack([0.25 + 0.2 * y, 0.55 - 0.15 * y, 0.2 + 0.0 * y], -1) * np.ones((1, width, 1))
    image = np.where((y > horizon)[..., None], ground, sky)
    sun = ((x - 0.75) ** 2 + ((y - 0.25) * height / width) ** 2) < 0.01
    image = np.where(sun[..., None], np.array([1.0, 0.9, 0.5]), image)
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
