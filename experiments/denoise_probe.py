"""Does a world's model predict the next frame better than copying it, at each noise level?

    python -m experiments.denoise_probe --world runs/proxy_doom_moves_world_g1 --data recordings/ae/doom64_heldout_MAP04

Held-out clips, real (clean, level 0) context, the last frame at level t from its own noise:
the model's x_0 estimate (`diffusion.readout` read back as x_0: x_t - t·v) against the real last
latent, beside the estimate of copying the frame before (and, with `key_moves`, copying it
moved by the keys held). Mean squared error in latent space, and PSNR of the decoded frames
against the real frames; with `key_moves`, also the latent error where the keys' move brought in
content from beyond the frame (`warp.uncovered`, over the clips whose last move uncovers any),
which the moved copy fills as the model does (`ModelConfig.uncovered_fill`: the border
repeated or reflected). A model trained on the posterior mean should
beat copying at every level; one that does not at t = 1 cannot start a frame well, whatever the
sampler.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import autoencoder, bundle, diffusion, image_metrics, warp
from wm_jax import model as wm_model
from wm_jax import world as world_lib
from wm_jax.data.episode_store import EpisodeStore

LEVELS = (1.0, 0.75, 0.5, 0.25, 0.1)


def clips(store: EpisodeStore, length: int, count: int):
    """(frames uint8 [B, T, H, W, 3], actions [B, T, K]): `count` non-overlapping clips spread over the episodes."""
    frames, acts = store.clips_in_order(length, stride=length)
    pick = np.linspace(0, len(frames) - 1, min(count, len(frames))).astype(int)
    return frames[pick], acts[pick]


def psnr(a, b) -> float:
    """Of the whole batch (one pooled mean squared error), frames in [-1, 1] clipped."""
    return float(image_metrics.psnr_from_mse(np.mean(np.square(np.clip(a, -1, 1) - np.clip(b, -1, 1)))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="world bundle directory or shipped name")
    parser.add_argument("--data", required=True, help="held-out recording directory")
    parser.add_argument("--clips", type=int, default=32, help="held-out clips, spread over the episodes (default 32)")
    parser.add_argument("--clip-len", type=int, default=8, help="frames per clip; the last is predicted (default 8)")
    parser.add_argument("--draws", type=int, default=1,
                        help="noises per level whose estimates are averaged (default 1). A model trained with a sample "
                             "score draws a different frame from each noise; the mean of several is what it expects "
                             "(a well-spread model's single draw has about twice its mean's squared error)")
    parser.add_argument("--levels", type=float, nargs="+", default=LEVELS,
                        help=f"noise levels of the last frame (default {' '.join(map(str, LEVELS))})")
    args = parser.parse_args(argv)
    world = world_lib.load_world(bundle.locate(args.world))
    config, params = world.config, world.params
    frames_BTHWC, actions_BTK = clips(EpisodeStore(args.data), args.clip_len, args.clips)
    x = frames_BTHWC.astype(np.float32) / 127.5 - 1.0
    latents = autoencoder.encode(world.ae_variables, x, world.ae_config)
    real_last = latents[:, -1]
    previous = latents[:, -2]
    forward = jax.jit(wm_model.WorldModel(config).apply)  # one compile: every level and draw has the same shapes
    objective = config.objective
    decode = lambda z: np.asarray(autoencoder.decode(world.ae_variables, z, world.ae_config))
    real_pixels = x[:, -1]
    rows = []
    baselines = {"copy last": previous}
    region = None
    if config.key_moves:
        down_right, log_zoom = (jnp.asarray(m) for m in _moves(config, actions_BTK[:, -1]))
        baselines["copy moved"] = warp.shift_and_zoom(previous, down_right, log_zoom, config.uncovered_fill)
        region = warp.uncovered(*real_last.shape[1:3], down_right, log_zoom, margin=0)

    def row(name, level, estimate):
        error = jnp.square(estimate - real_last)
        uncovered = float(jnp.sum(error * region) / jnp.maximum(jnp.sum(region) * error.shape[-1], 1)) if region is not None else float("nan")
        return name, level, float(jnp.mean(error)), uncovered, psnr(decode(estimate), real_pixels)

    for name, estimate in baselines.items():
        rows.append(row(name, "-", estimate))
    def estimate_from(level, draw):
        noise = jax.random.normal(jax.random.key(draw), real_last.shape)
        t_BT = jnp.zeros(latents.shape[:2]).at[:, -1].set(level)
        x_t = latents.at[:, -1].set(diffusion.add_noise(real_last, noise, jnp.full(real_last.shape[:1], level)))
        output = forward({"params": params}, x_t, t_BT, jnp.asarray(actions_BTK, jnp.float32))
        velocity = diffusion.readout(objective, output[:, -1], x_t[:, -1], jnp.full(real_last.shape[:1], level))
        return x_t[:, -1] - level * velocity

    name = "model" if args.draws == 1 else f"model /{args.draws}"
    for level in args.levels:
        rows.append(row(name, level, sum(estimate_from(level, draw) for draw in range(args.draws)) / args.draws))
    print(f"{'estimate':<12} {'level':>6} {'latent MSE':>11} {'uncovered':>10} {'pixel PSNR':>11}")
    for name, level, mse, uncovered, p in rows:
        print(f"{name:<12} {level!s:>6} {mse:11.4f} {uncovered:10.4f} {p:11.2f}")
    return 0


def _moves(config, actions_BK):
    move_B3 = np.asarray(actions_BK, np.float32) @ wm_model.key_move_table(config)
    return move_B3[:, :2], move_B3[:, 2]


if __name__ == "__main__":
    raise SystemExit(main())
