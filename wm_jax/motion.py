"""Motion between two frames, measured from the pixels: the translation (`phase_shift`, FFT phase
correlation), the zoom (`zoom_scale`), and which way each key set moves the picture in real
data (`DirectionTable`). No model is involved, so these read real and generated frames alike.

Frames: uint8 or float in [-1, 1], [N, H, W, 3]. Letters: N transitions.
"""

from __future__ import annotations

import dataclasses
import itertools

import jax.numpy as jnp
import numpy as np


def frames_as_float(frames) -> jnp.ndarray:
    """uint8 frames -> float32 in [-1, 1]; float frames pass through (as float32)."""
    frames = jnp.asarray(frames)
    return frames.astype(jnp.float32) / 127.5 - 1.0 if frames.dtype == jnp.uint8 else frames.astype(jnp.float32)


# ----------------------------------------------------------------------------- translation


def phase_shift(prev, nxt) -> np.ndarray:
    """[N, 2] (dy, dx) integer translation from prev to next by FFT phase correlation of the
    grey frames: the peak of the normalised cross-power spectrum's inverse transform."""
    a = np.asarray(frames_as_float(prev)).mean(-1)
    b = np.asarray(frames_as_float(nxt)).mean(-1)
    fa, fb = np.fft.fft2(a), np.fft.fft2(b)
    cross = fb * np.conj(fa)
    corr = np.fft.ifft2(cross / (np.abs(cross) + 1e-8)).real
    h, w = a.shape[-2:]
    peak = corr.reshape(len(corr), -1).argmax(-1)
    dy, dx = peak // w, peak % w
    return np.stack([np.where(dy > h // 2, dy - h, dy), np.where(dx > w // 2, dx - w, dx)], -1)


NO_MOTION = 4  # the direction code of a (0, 0) shift


def direction_code(shift_N2) -> np.ndarray:
    """[N] a 3x3 direction code from the signs of (dy, dx): 4 is "no motion"."""
    s = np.sign(np.asarray(shift_N2))
    return ((s[:, 0] + 1) * 3 + (s[:, 1] + 1)).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class DirectionTable:
    """For each action class, the motion direction it most often produced in real data."""

    direction: dict

    @classmethod
    def fit(cls, shifts_N2, labels_N) -> "DirectionTable":
        codes, labels = direction_code(shifts_N2), np.asarray(labels_N)
        return cls({int(c): int(np.bincount(codes[labels == c], minlength=9).argmax()) for c in np.unique(labels) if c >= 0})

    def moves(self, label: int) -> bool:
        """Whether the key set moved the picture in real data (its direction is not "no motion")."""
        return self.direction.get(int(label), NO_MOTION) != NO_MOTION

    def accuracy(self, shifts_N2, labels_N) -> float:
        """Over transitions whose key set moves the picture: a static model scores 0, not the
        share of key sets that do nothing visible (most of doom's at 64x64)."""
        codes, labels = direction_code(shifts_N2), np.asarray(labels_N)
        hits = [codes[i] == self.direction[int(c)] for i, c in enumerate(labels) if self.moves(c)]
        return float(np.mean(hits)) if hits else float("nan")


# ----------------------------------------------------------------------------- zoom


def zoom_scale(prev, nxt, *, max_scale: float = 1.4, count: int = 49, max_shift: int = 12, lowpass: float = 0.12) -> np.ndarray:
    """[N] per-frame scale factor from prev to next: > 1 when next shows prev magnified (zoom
    in), < 1 zoomed out, 1 for a pure pan. A search over scales about the frame's centre: prev is
    resampled (bilinear) at each of `count` log-spaced scales in [1/max_scale, max_scale], and
    each is phase-correlated with next (whitened cross-power spectrum weighted by a Gaussian
    low-pass of `lowpass` cycles/pixel, peak within `max_shift` pixels, so a pan beside the zoom
    does not matter) over the central region that every candidate keeps in view, tapered to zero
    at its edge; the best scale is refined by a parabola through its neighbours' peaks.
    The low-pass keeps fixed-grid detail (an autoencoder's or a token grid's artefacts, which do
    not zoom) from pulling the estimate to 1: through the project's autoencoder, true 1.1x zooms
    read 1.048 without it, 1.091 with it. On `image_pan`'s own 64x64 frames (8-px pans, 1.1x
    zooms) it is within 3% of the recorder's scale on every transition (BUILD_NOTES, "Zoom")."""
    a = np.asarray(frames_as_float(prev)).mean(-1)
    b = np.asarray(frames_as_float(nxt)).mean(-1)
    n, h, w = a.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ry, rx = h / 2 / max_scale - 1, w / 2 / max_scale - 1  # the region in view at every scale
    taper = (np.sin(np.pi / 2 * np.clip(1 - np.abs(ys - cy) / ry, 0, 1)) ** 2
             * np.sin(np.pi / 2 * np.clip(1 - np.abs(xs - cx) / rx, 0, 1)) ** 2)

    def spectrum(x):
        x = (x - (x * taper).sum((-2, -1), keepdims=True) / taper.sum()) * taper
        return np.fft.fft2(x)

    # Two hypotheses for the centre: where it was, or moved by the frames' phase-correlation shift
    # (a pan: the scales then compare the same content; alone, a textured photograph's zoom can
    # read as a spurious shift). The better peak of the two counts.
    shifts = (np.zeros((n, 2), np.float32), phase_shift(prev, nxt).astype(np.float32))
    conj_b = np.conj(spectrum(b))
    fy, fx = np.fft.fftfreq(h), np.fft.fftfreq(w)  # cycles per pixel
    weight = np.exp(-(fy[:, None] ** 2 + fx[None, :] ** 2) / (2 * lowpass ** 2))
    near = (np.abs(fy * h)[:, None] <= max_shift) & (np.abs(fx * w)[None, :] <= max_shift)  # shifts in pixels
    logs = np.linspace(-np.log(max_scale), np.log(max_scale), count)
    peaks = np.full((n, count), -np.inf, np.float32)
    for (i, log_scale), shift in itertools.product(enumerate(logs), shifts):
        sy = cy + (ys - cy) / np.exp(log_scale) - shift[:, :1, None]
        sx = cx + (xs - cx) / np.exp(log_scale) - shift[:, 1:, None]
        y0, x0 = np.clip(np.floor(sy).astype(int), 0, h - 2), np.clip(np.floor(sx).astype(int), 0, w - 2)
        wy, wx = np.clip(sy - y0, 0, 1), np.clip(sx - x0, 0, 1)
        rows = np.arange(n)[:, None, None]
        resampled = (a[rows, y0, x0] * (1 - wy) * (1 - wx) + a[rows, y0 + 1, x0] * wy * (1 - wx)
                     + a[rows, y0, x0 + 1] * (1 - wy) * wx + a[rows, y0 + 1, x0 + 1] * wy * wx)
        cross = spectrum(resampled) * conj_b
        corr = np.fft.ifft2(cross / (np.abs(cross) + 1e-8) * weight).real
        peaks[:, i] = np.maximum(peaks[:, i], np.where(near, corr, -np.inf).reshape(n, -1).max(-1))
    best = peaks.argmax(-1)
    inner = np.clip(best, 1, count - 2)
    left, centre, right = (peaks[np.arange(n), inner + d] for d in (-1, 0, 1))
    curvature = left - 2 * centre + right
    offset = np.where((best == inner) & (curvature < 0), 0.5 * (left - right) / np.where(curvature < 0, curvature, -1.0), 0.0)
    return np.exp(logs[best] + np.clip(offset, -0.5, 0.5) * (logs[1] - logs[0]))
