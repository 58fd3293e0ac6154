"""How close is a world's one-step guess of the next frame to copying the last one? By key.

    python -m experiments.one_step_probe --world wm_jax/worlds/doom --data recordings/ae/doom64_heldout_MAP04

Every `--stride` frames of every recorded episode, a clip of `--frames` frames has its last frame
replaced by pure noise (t = 1) and the earlier ones kept clean; the model's x0 prediction from
there (x0 = x1 - v, one Euler step: the mean of what it expects next) is decoded and scored by
PSNR against the real frame, per held key set, beside copying the last frame and the
autoencoder's reconstruction (the ceiling). On the stillest transitions (latent change below
`--still`) it also reports the latent error of the guess and of copying: a model that can see the
last frame yet scores far below copying there hedges between "still" and "moving". On the
transitions made with one key of `--swap` (left/right) held it reports the guess's latent error
with the keys as recorded and with the pair exchanged: equal errors mean the keys are ignored.
"""

from __future__ import annotations

import argparse
import collections
import json

import jax
import jax.numpy as jnp
import numpy as np

from experiments.shift_probe import guess_last_latent
from wm_jax import autoencoder, image_metrics
from wm_jax import bundle
from wm_jax import world as world_lib
from wm_jax.data.episode_store import EpisodeStore


def psnr_uint8(x_NHWC, y_NHWC) -> np.ndarray:
    """Per frame; identical frames give +inf (capped when averaged)."""
    return np.asarray(image_metrics.psnr(x_NHWC, y_NHWC, data_range=255.0))


def decode_uint8(world, latents_BHWC) -> np.ndarray:
    return np.asarray(world_lib.to_uint8(autoencoder.decode(world.ae_variables, latents_BHWC, world.ae_config)))


def encode_clips(world, frames_BTHWC, rng):
    """(the clips' latents [B, T, h, w, c], the noise [B, h, w, c] their last frame starts from)."""
    latents = autoencoder.encode(world.ae_variables, jnp.asarray(frames_BTHWC, jnp.float32) / 127.5 - 1, world.ae_config)
    return latents, jax.random.normal(rng, (latents.shape[0], *latents.shape[2:]))


def swap_keys(actions_BTK, key_names, pair) -> np.ndarray:
    """The last frame's keys with the two keys of `pair` exchanged."""
    a, b = (key_names.index(k) for k in pair)
    swapped = np.array(actions_BTK, np.float32)
    swapped[:, -1, [a, b]] = swapped[:, -1, [b, a]]
    return swapped


def probe(world, frames_BTHWC, actions_BTK, *, still: float = 0.05, batch: int = 16, seed: int = 0,
          swap: tuple[str, str] = ("left", "right")) -> dict:
    per_keys = collections.defaultdict(lambda: {"model": [], "copy_last": [], "autoencoder": []})
    still_errors = {"model": [], "copy_last": []}
    swapped_errors = {"recorded_keys": [], "swapped_keys": []}
    names = list(world.config.action_space.names)
    for i in range(0, len(frames_BTHWC), batch):
        frames, actions = frames_BTHWC[i : i + batch], actions_BTK[i : i + batch]
        latents, noise = encode_clips(world, frames, jax.random.key(seed + i))  # once: both key sets read them
        guess = guess_last_latent(world, latents, jnp.asarray(actions, jnp.float32), noise)
        one_of_pair = [set(world.config.action_space.decode(a[-1])) in ({swap[0]}, {swap[1]}) for a in actions]
        if any(one_of_pair) and set(swap) <= set(names):
            swapped = guess_last_latent(world, latents, jnp.asarray(swap_keys(actions, names, swap)), noise)
            for name, g in (("recorded_keys", guess), ("swapped_keys", swapped)):
                error = np.asarray(jnp.mean((g - latents[:, -1]) ** 2, axis=(1, 2, 3)))
                swapped_errors[name] += [float(e) for e, chosen in zip(error, one_of_pair) if chosen]
        truth = frames[:, -1]
        scores = {"model": psnr_uint8(decode_uint8(world, guess), truth), "copy_last": psnr_uint8(frames[:, -2], truth),
                  "autoencoder": psnr_uint8(decode_uint8(world, latents[:, -1]), truth)}
        change = np.asarray(jnp.mean((latents[:, -2] - latents[:, -1]) ** 2, axis=(1, 2, 3)))
        error = np.asarray(jnp.mean((guess - latents[:, -1]) ** 2, axis=(1, 2, 3)))
        for j in range(len(frames)):
            keys = "+".join(world.config.action_space.decode(actions[j, -1])) or "none"
            for name, values in scores.items():
                per_keys[keys][name].append(float(values[j]))
            if change[j] < still:
                still_errors["model"].append(float(error[j]))
                still_errors["copy_last"].append(float(change[j]))
    mean = lambda xs: float(np.mean(np.minimum(xs, 100.0))) if xs else float("nan")
    return {
        "psnr_by_keys": {k: {"transitions": len(v["model"]), **{n: round(mean(x), 2) for n, x in v.items()}}
                         for k, v in sorted(per_keys.items(), key=lambda kv: -len(kv[1]["model"]))},
        "still_latent_mse": {"transitions": len(still_errors["model"]),
                             **{n: round(mean(x), 4) for n, x in still_errors.items()}},
        # Does the guess depend on the keys? Held one key of the pair: its error with the keys as
        # recorded against with the pair exchanged (equal: the model ignores the keys).
        "swap_latent_mse": {"pair": "/".join(swap), "transitions": len(swapped_errors["recorded_keys"]),
                            **{n: round(mean(x), 4) for n, x in swapped_errors.items()}},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="world bundle directory or shipped name")
    parser.add_argument("--data", required=True, help="held-out recording (wm record ... --out DIR)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip, the last one guessed (default 8)")
    parser.add_argument("--stride", type=int, default=3, help="recorded frames between clip starts (default 3)")
    parser.add_argument("--still", type=float, default=0.05, help="latent MSE below which a transition is still")
    parser.add_argument("--swap", default="left,right", help="two keys exchanged in the key test (default left,right)")
    args = parser.parse_args(argv)
    world = world_lib.load_world(bundle.locate(args.world))
    frames, actions = EpisodeStore(args.data).clips_in_order(args.frames, args.stride)
    print(json.dumps(probe(world, frames, actions, still=args.still, swap=tuple(args.swap.split(",")))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
