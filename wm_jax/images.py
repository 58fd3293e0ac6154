"""Start images for a world: decode untrusted bytes safely, and fit any size to the world's frame.

Fitting is "center-crop, then resize": the largest centred crop with the world's aspect ratio is
cut out (nothing is padded, so no black bars enter the model's input), then resized with a
Lanczos filter (antialiased when shrinking) to exactly (height, width). EXIF rotation is applied
first, so phone photographs come out upright.

Untrusted uploads are bounded three ways before any pixel is decoded: file bytes, pixels (a small
file can claim a huge image), and the bytes the decoded bitmap will occupy in Pillow's own layout
(16-bit and RGB images cost 2 and 4 bytes a pixel). Given the size they are for (`fit_to`), they
are decoded small: JPEG's DCT scaling (`draft`), then `Image.reduce` by an integer factor that
keeps at least twice the target's pixels for the final Lanczos, in the image's narrowest dtype
(never float64). At most MAX_CONCURRENT_DECODES decodes run at once, so N sessions uploading
together cannot multiply the peak.

Images: uint8 [H, W, 3] RGB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import threading

import numpy as np
from PIL import Image, ImageOps

# Uploads come from a browser page; these bound what one may cost to decode.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 40-megapixel photograph; larger is refused from the header alone
MAX_DECODED_BYTES = 100_000_000  # Pillow's bitmap after JPEG scaling: a 25-megapixel RGB PNG, a 40-MP 16-bit gray one
MAX_CONCURRENT_DECODES = 2
_decode_slots = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
_STRIP_ROWS = 256  # rows of a 16-bit image converted to 8 bits at a time
_TRIM_AFTER_BYTES = 16_000_000  # decodes at least this large hand their freed memory back
_last_decoded_bytes = threading.local()  # this thread's last decode, for the trim decision


def _find_malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None


_malloc_trim = _find_malloc_trim()


def _release_freed_memory() -> None:
    """glibc keeps memory freed by threads in its per-thread arenas, so a server's RSS stays at
    its highest upload for good; malloc_trim hands the free pages back to the system."""
    if _malloc_trim is not None:
        _malloc_trim(0)


class ImageError(ValueError):
    """The bytes are not an image this module can use; the message is meant for the user."""


def decode(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS,
           max_decoded_bytes: int = MAX_DECODED_BYTES, fit_to: tuple[int, int] | None = None,
           source: str = "the upload") -> np.ndarray:
    """Bytes of a PNG/JPEG/WebP/GIF/BMP/TIFF file -> uint8 [H, W, 3]; raises ImageError.

    fit_to: (height, width) to center-crop and resize to (see `fit`); the image is then decoded
    and reduced at the smallest scale that still serves that size, never held whole in RGB.
    source: what the bytes are, as the messages name it ("the upload", "the file").
    """
    if not data:
        raise ImageError(f"{source} is empty")
    if len(data) > max_bytes:
        raise ImageError(f"{source} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    with _decode_slots:
        try:
            return _decode_within(data, max_pixels, max_decoded_bytes, fit_to)
        except ImageError:
            raise
        except Image.UnidentifiedImageError:
            raise ImageError(f"{source} is not an image (readable: PNG, JPEG, WebP, GIF, BMP, TIFF)") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            # Pillow raises UnidentifiedImageError (an OSError) for non-images, OSError/SyntaxError
            # for truncated or corrupt files.
            raise ImageError(f"{source} is not a readable image ({type(error).__name__}: {error})") from None
        finally:
            if len(data) > _TRIM_AFTER_BYTES or _last_decoded_bytes.value >= _TRIM_AFTER_BYTES:
                _release_freed_memory()


def _decode_within(data: bytes, max_pixels: int, max_decoded_bytes: int, fit_to) -> np.ndarray:
    _last_decoded_bytes.value = 0
    with Image.open(io.BytesIO(data)) as image:
        # Check the header's size before decoding pixels: a small file can claim a huge image.
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(f"the image is {width}x{height} pixels; the limit is {max_pixels / 1e6:.0f} megapixels")
        factor = _reduction(image.size, fit_to)
        if factor > 1:
            image.draft("RGB", (width // factor, height // factor))  # JPEG only; others ignore it
        decoded = _decoded_bytes(image)
        if decoded > max_decoded_bytes:
            raise ImageError(f"the image ({width}x{height}, {image.mode}) decodes to {decoded / 1e6:.0f} MB; "
                             f"the limit is {max_decoded_bytes / 1e6:.0f} MB")
        _last_decoded_bytes.value = decoded
        image.load()
        rgb = to_rgb(image, reduce_by=_reduction(image.size, fit_to))
    return fit(rgb, *fit_to) if fit_to else rgb


def _reduction(size: tuple[int, int], fit_to: tuple[int, int] | None) -> int:
    """The integer downscale that leaves at least twice the target's size on each side, in
    either orientation (EXIF may turn the image after decoding); 1 without a target."""
    if not fit_to:
        return 1
    width, height = size
    target = max(fit_to)
    return max(1, min(width, height) // (2 * target))


def _decoded_bytes(image: Image.Image) -> int:
    """What the decoded bitmap occupies in Pillow: 1 byte a pixel for 8-bit gray, bilevel and
    palette, 2 for 16-bit gray, 4 for everything else (Pillow pads RGB to 4 bytes)."""
    per_pixel = 1 if image.mode in ("1", "L", "P") else 2 if image.mode in _SIXTEEN_BIT else 4
    return image.size[0] * image.size[1] * per_pixel


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    """A 16-bit gray image as 8-bit "L", rescaled (convert() would clip at 255), a strip of
    rows at a time so no full-size wide array exists."""
    width, height = image.size
    out = np.empty((height, width), np.uint8)
    for top in range(0, height, _STRIP_ROWS):
        strip = np.asarray(image.crop((0, top, width, min(height, top + _STRIP_ROWS))), np.uint32)
        out[top : top + len(strip)] = (strip * 255 + 32767) // 65535
    converted = Image.fromarray(out, "L")
    converted.info = dict(image.info)  # keeps EXIF, so the orientation still applies
    return converted


def to_rgb(image: Image.Image, reduce_by: int = 1) -> np.ndarray:
    """Any Pillow mode (grayscale, palette, RGBA, 16-bit, CMYK) -> uint8 [H, W, 3], upright.

    reduce_by: shrink by this integer factor first (box filter), in the image's own dtype.
    """
    if image.mode in _SIXTEEN_BIT:
        image = _sixteen_to_eight(image)
    elif image.mode in ("1", "P") and reduce_by > 1:  # modes Image.reduce does not take
        image = image.convert("RGBA" if "transparency" in image.info else "L" if image.mode == "1" else "RGB")
    if reduce_by > 1:
        image = image.reduce(reduce_by)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "F"):
        # convert("RGB") would clip values above 255 instead of rescaling them; reduced first,
        # so this float array is small when the image was large.
        values = np.asarray(image, np.float32)
        peak = 65535.0 if values.max() > 255 else 255.0
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
        return decode(data, source="the file")
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
