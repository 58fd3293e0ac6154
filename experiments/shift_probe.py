"""Does a pan world move the picture the pressed key's way, or copy the last frame?

    python -m experiments.shift_probe --world wm_jax/worlds/pan --data recordings/ae/pan64x8_train --pan-step 8

Takes clips whose last transition is a single held arrow/WASD key that changed the picture,
gives the model the 7 earlier frames clean and the last one as pure noise (t = 1, where
sampling starts), and reads its one-step x0 prediction. In latent space, it compares that
prediction with the previous frame shifted each of the five ways (still, or one pan step
left/right/up/down) and reports which one it resembles most, beside the same choice for the
real next frame. A model that copies answers "still" throughout; a model that has learned the
keys answers the key's way about as often as the real frames do.

Needs zoom level 0 for exact shifts, so most but not all real frames match their key (the
camera sometimes sits at an edge or is zoomed). The pan step must be a multiple of the
autoencoder's downscale.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import autoencoder, diffusion
from wm_jax import world as world_lib
from wm_jax.data.episode_store import EpisodeStore
from wm_jax.model import WorldModel

MOVES = {"still": (0, 0), "right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}
ALIASES = {"a": "left", "d": "right", "w": "up", "s": "down"}


def recorded_episodes(store: EpisodeStore):
    """(frames, actions) of every episode of a recorded dataset, one at a time."""
    for episode in range(len(store.lengths)):
        yield store.read_clip(episode, 0, int(store.lengths[episode]))


def moving_clips(episodes, key_names, clip_len: int, count: int):
    """(frames uint8 [B, T, H, W, 3], actions [B, T, K], key per clip) ending in a one-key move;
    episodes: (frames [T, H, W, 3], actions [T, K]) pairs."""
    frames, actions, keys = [], [], []
    for episode_frames, episode_actions in episodes:
        for start in range(0, len(episode_frames) - clip_len, clip_len):
            last = start + clip_len - 1
            held = {key_names[i] for i in np.nonzero(episode_actions[last] > 0.5)[0]}
            move = {ALIASES.get(k, k) for k in held} & set(MOVES)
            if len(held) == 1 and move and not np.array_equal(episode_frames[last - 1], episode_frames[last]):
                frames.append(episode_frames[start:last + 1])
                actions.append(episode_actions[start:last + 1])
                keys.append(move.pop())
            if len(keys) == count:
                return np.stack(frames), np.stack(actions), keys
    if not keys:
        raise ValueError("no clip ends in a single held arrow/WASD key that moved the picture")
    return np.stack(frames), np.stack(actions), keys


def nearest_moves(reference_BHWC, candidate_BHWC, step: int) -> list[str]:
    """Per example, which shift of `reference` is closest to `candidate` (2-latent-pixel border ignored)."""
    inner = (slice(None), slice(2, -2), slice(2, -2))
    errors = {
        name: jnp.mean(jnp.square(jnp.roll(reference_BHWC, (-dy * step, -dx * step), axis=(1, 2))[inner] - candidate_BHWC[inner]), axis=(1, 2, 3))
        for name, (dx, dy) in MOVES.items()
    }
    table = np.stack([np.asarray(e) for e in errors.values()], axis=1)
    return [list(errors)[i] for i in table.argmin(axis=1)]


def guess_last_latent(world, latents_BThwc, actions_BTK, noise_Bhwc):
    """The model's one-step x0 guess of each clip's last latent from pure noise (t = 1), the
    earlier ones clean: x0 = x_1 - v, whatever the head predicts (velocity or x0)."""
    config = world.config
    b, t = latents_BThwc.shape[:2]
    levels = jnp.zeros((b, t)).at[:, -1].set(1.0)
    out = WorldModel(config).apply({"params": world.params}, latents_BThwc.at[:, -1].set(noise_Bhwc), levels,
                                   actions_BTK)[:, -1, ..., : config.in_channels]
    return noise_Bhwc - diffusion.to_velocity(out, noise_Bhwc, jnp.ones((b,)), config.prediction)


def probe(world, episodes, pan_step: int, clips: int = 48, seed: int = 0) -> dict:
    config = world.config
    if pan_step % world.ae_config.downscale:
        raise ValueError(f"--pan-step {pan_step} is not a multiple of the autoencoder's downscale {world.ae_config.downscale}")
    frames, actions, keys = moving_clips(episodes, config.action_space.names, min(8, config.max_frames), clips)
    latents = autoencoder.encode(world.ae_variables, jnp.asarray(frames, jnp.float32) / 127.5 - 1.0, world.ae_config)
    b = latents.shape[0]
    noise = jax.random.normal(jax.random.key(seed), latents.shape[:1] + latents.shape[2:])
    predicted = guess_last_latent(world, latents, jnp.asarray(actions), noise)
    step = pan_step // world.ae_config.downscale
    real = nearest_moves(latents[:, -2], latents[:, -1], step)
    generated = nearest_moves(latents[:, -2], predicted, step)
    return {
        "clips": b,
        "real_matches_key": float(np.mean([r == k for r, k in zip(real, keys)])),
        "prediction_matches_key": float(np.mean([g == k for g, k in zip(generated, keys)])),
        "prediction_still": float(np.mean([g == "still" for g in generated])),
        "x0_mse": float(jnp.mean(jnp.square(predicted - latents[:, -1]))),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", required=True, help="world bundle directory")
    parser.add_argument("--data", required=True, help="image_pan recording (wm record image_pan --out DIR)")
    parser.add_argument("--pan-step", type=int, required=True, help="the recording's --pan-step in pixels")
    parser.add_argument("--clips", type=int, default=48, help="clips to probe (default 48)")
    args = parser.parse_args(argv)
    result = probe(world_lib.load_world(args.world), recorded_episodes(EpisodeStore(args.data)), args.pan_step, args.clips)
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
