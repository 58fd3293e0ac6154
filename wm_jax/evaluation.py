"""Evaluation against held-out ground truth: the library behind `wm eval --data` and
`wm eval --long-horizon` (the metrics are `wm_jax.image_metrics`', the figures `wm_jax.plots`').

* `teacher_forced_latents` (every frame predicted from the ground-truth frames before it) and
  `autoregressive_latents` (from context frames onwards, the model feeds on its own frames);
* `evaluate`: both, decoded and scored per horizon beside the copy-last-frame and
  copy-first-frame baselines and the autoencoder's own reconstruction;
* `long_horizon`: a long rollout in scanned chunks; finite, resident memory, frame statistics.

Frames are float in [-1, 1], channels-last. Letters: B batch, T frames, H W height and width,
C channels, K action entries.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import kept_pixels, rollout
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig
from wm_jax.image_metrics import frame_metrics, frame_statistics

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


@functools.partial(jax.jit, static_argnames=("config", "sampler", "context", "zoom"))
def teacher_forced_latents(params, latents_BTHWC, actions_BTK, rng, *, config: ModelConfig, sampler: SamplerConfig, context: int = 1,
                           zoom=None):
    """Each frame t >= context generated from the ground-truth frames before it (the cache is
    filled with ground truth, never with the model's own frames) -> [B, T - context, h, w, c].
    zoom: a world's zoom keys (`pixel_zoom.make_zoom`), applied to the frame before as in play."""
    rng_prefill, rng_scan = jax.random.split(rng)
    state = rollout.init_state(config, params, latents_BTHWC[:, :context], actions_BTK[:, :context], rng=rng_prefill, sampler=sampler,
                               zoom=zoom)
    steps = latents_BTHWC.shape[1] - context

    def body(state, inputs):
        truth_BHWC, action_BK, rng_t = inputs
        rng_noise, rng_ctx = jax.random.split(rng_t)
        noise = jax.random.normal(rng_noise, truth_BHWC.shape)
        if zoom is not None:
            state = rollout.zoomed_previous(state, action_BK, zoom)
        pred = rollout.generate_frame(config, params, state.cache, action_BK, noise, sampler, jax.random.fold_in(rng_noise, 1))
        cache = rollout.append_frame(config, params, state.cache, truth_BHWC, action_BK, rng_ctx, sampler)
        return state.replace(cache=cache), pred

    xs = (jnp.swapaxes(latents_BTHWC[:, context:], 0, 1), jnp.swapaxes(actions_BTK[:, context:], 0, 1), jax.random.split(rng_scan, steps))
    _, pred_TBHWC = jax.lax.scan(body, state, xs)
    return jnp.swapaxes(pred_TBHWC, 0, 1)


@functools.partial(jax.jit, static_argnames=("config", "sampler", "context", "zoom"))
def autoregressive_latents(params, latents_BTHWC, actions_BTK, rng, *, config: ModelConfig, sampler: SamplerConfig, context: int = 1,
                           zoom=None):
    """From the first `context` ground-truth frames on, the model feeds on its own frames under
    the ground-truth actions -> [B, T - context, h, w, c]."""
    rng_prefill, rng_scan = jax.random.split(rng)
    state = rollout.init_state(config, params, latents_BTHWC[:, :context], actions_BTK[:, :context], rng=rng_prefill, sampler=sampler,
                               zoom=zoom)
    _, pred = rollout.rollout(params, state, actions_BTK[:, context:], rng_scan, config=config, sampler=sampler, zoom=zoom)
    return pred


def autoregressive_frames(params, frames_BTHWC, actions_BTK, rng, *, config: ModelConfig, sampler: SamplerConfig, encode, decode,
                          context: int = 1, zoom=None, keeper=None):
    """`autoregressive_latents` from the real frames' first `context`, as the player sees them
    (decoded, or the pixels a keeper keeps from the last real frame on: `kept_pixels`) ->
    [B, T - context, H, W, 3]."""
    frames_BTHWC = jnp.asarray(frames_BTHWC, jnp.float32)
    latents = autoregressive_latents(params, encode(frames_BTHWC), actions_BTK, rng, config=config, sampler=sampler, context=context,
                                     zoom=zoom)
    given = kept_pixels.given(frames_BTHWC[:, context - 1], keeper)
    return kept_pixels.shown_frames(keeper, decode, given, latents, actions_BTK[:, context:])[1]


# ----------------------------------------------------------------------------- evaluation


def evaluate(config: ModelConfig, params, sampler: SamplerConfig, frames_BTHWC, actions_BTK, *, encode, decode, rng,
             context: int = 1, with_lpips: bool = True, zoom=None, keeper=None) -> dict:
    """Teacher-forced and autoregressive metrics per horizon against ground truth, beside the
    baselines. frames: [B, T, H, W, 3] in [-1, 1]; encode/decode: frames <-> latents; keeper: the
    world's (`kept_pixels`), which shows the model's frames as the player sees them.

    Horizon k (1-based) is frame context - 1 + k. Rows:
      teacher_forced, autoregressive: the model, as the player sees it (decoded, or kept);
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
    kw = dict(config=config, sampler=sampler, context=context, zoom=zoom)
    truth = frames_BTHWC[:, context:]
    teacher_forced = teacher_forced_latents(params, latents, actions_BTK, rng_tf, **kw)
    predictions = {
        "teacher_forced": kept_pixels.shown_after_each(keeper, decode, frames_BTHWC[:, context - 1 : -1], teacher_forced,
                                                       actions_BTK[:, context:]),
        "autoregressive": kept_pixels.shown_frames(keeper, decode, kept_pixels.given(frames_BTHWC[:, context - 1], keeper),
                                                   autoregressive_latents(params, latents, actions_BTK, rng_ar, **kw),
                                                   actions_BTK[:, context:])[1],
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


# ----------------------------------------------------------------------------- long horizon


def random_held_keys(config: ModelConfig, frames: int, rng, hold: int = 8, batch: int = 1):
    """[B, frames, K] one random key (or none) held for `hold` frames at a time: a player's input."""
    segments = -(-frames // hold)
    choice = jax.random.randint(rng, (batch, segments), -1, min(config.action_dim - 1, 12))
    one_hot = jax.nn.one_hot(choice, config.action_dim)  # index -1 -> no key
    return jnp.repeat(one_hot, hold, axis=1)[:, :frames]


def long_horizon(config: ModelConfig, params, sampler: SamplerConfig, context_BTHWC, *, frames: int = 10_000, chunk: int = 250,
                 rng, decode=None, make_rollout=rollout.make_rollout, init_state=rollout.init_state, progress: bool = True,
                 zoom=None) -> dict:
    """A `frames`-long rollout in scanned chunks (one compile), under random held keys.

    Per chunk: whether every latent is finite, this process's resident memory after the chunk,
    and the chunk's mean frame statistics: of the decoded frames when `decode` (latents ->
    frames in [-1, 1]) is given, else of the latents. Memory is flat when the last chunks hold
    what the first held (the cache is a fixed ring buffer)."""
    from tqdm.auto import tqdm

    from wm_jax.machine import rss_bytes

    if frames % chunk:
        raise ValueError(f"frames ({frames}) must be a multiple of chunk ({chunk})")
    rng_state, rng_keys, rng_roll = jax.random.split(rng, 3)
    run = make_rollout(config, sampler, zoom)
    state = init_state(config, params, context_BTHWC, rng=rng_state, sampler=sampler, zoom=zoom)
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
