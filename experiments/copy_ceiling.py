"""What a world that keeps every pixel it has shown can score at best, teacher-forced.

    python -m experiments.copy_ceiling --model wm_jax/worlds/doom/model \\
        --autoencoder wm_jax/worlds/doom/autoencoder \\
        --data recordings/ae/doom64_heldout_MAP04 recordings/ae/doom64_heldout_MAP13 recordings/ae/doom64_heldout_MAP14

A `paint_uncovered_only` world predicts the next frame as the frame before (as its autoencoder
drew it), moved the way the keys held move the camera, plus a painted strip where the move
uncovers the picture. For every recorded transition this scores, against the real next frame
(PSNR in dB per frame, then averaged; LPIPS), the predictions such a world is built from:

  copy_last         the real frame before (the baseline `wm eval` calls teacher_forced_copy_last)
  latent_copy       decode(encode(frame before)): what the world shows when no key moves it
  latent_move       decode(the encoded frame before moved by the keys, mirror-filled): the world
                    with its painter switched off
  autoencoder       decode(encode(real next frame)): the autoencoder's own ceiling

Also over the transitions that changed the picture alone: where the recorded frame did not change
at all, copy_last scores the PSNR cap (100 dB), which no world drawn through a lossy autoencoder
can reach, so a few per cent of such frames decide the average.

latent_copy against copy_last is what the autoencoder costs a world that copies; latent_move
against latent_copy what the keys' moves earn. Both before any painting: the world's own
teacher-forced figure is `wm eval`'s. Only the model's config is read (its key_moves and fill),
so any autoencoder with the same latent shape can be scored under the same moves.
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from experiments.shift_probe import recorded_episodes
from wm_jax import autoencoder, image_metrics, model, warp
from wm_jax import world as world_lib
from wm_jax.data.episode_store import EpisodeStore

PREDICTIONS = ("copy_last", "latent_copy", "latent_move", "autoencoder")


def transitions(stores, limit: int):
    """(frames before, frames after, actions after) of recorded transitions, uint8 / float."""
    before, after, acts = [], [], []
    for store in stores:
        for frames, actions_TK in recorded_episodes(store):
            before.append(frames[:-1])
            after.append(frames[1:])
            acts.append(actions_TK[1:])  # actions[t] is the input that led to frame t
    before, after, acts = (np.concatenate(x)[:limit] for x in (before, after, acts))
    return before, after, acts


def score(config, ae_config, ae_variables, before, after, acts, batch: int = 64) -> dict:
    moves_K3 = jnp.asarray(model.key_move_table(config))
    fill = config.uncovered_fill
    encode = lambda frames: autoencoder.encode(ae_variables, frames, ae_config)
    decode = lambda latents: jnp.clip(autoencoder.decode(ae_variables, latents, ae_config), -1.0, 1.0)

    @jax.jit
    def predict(before_N, after_N, acts_N):
        prev, nxt = (x.astype(jnp.float32) / 127.5 - 1.0 for x in (before_N, after_N))
        latent = encode(prev)
        move_N3 = acts_N.astype(jnp.float32) @ moves_K3
        moved = warp.shift_and_zoom(latent, move_N3[:, :2], move_N3[:, 2], fill)
        return nxt, {"copy_last": prev, "latent_copy": decode(latent), "latent_move": decode(moved),
                     "autoencoder": decode(encode(nxt))}

    sums = {k: [[], []] for k in PREDICTIONS}
    for i in tqdm(range(0, len(before), batch), desc="transitions"):
        truth, preds = predict(before[i:i + batch], after[i:i + batch], acts[i:i + batch])
        for k, pred in preds.items():
            sums[k][0].append(np.asarray(image_metrics.capped_psnr(pred, truth)))
            sums[k][1].append(np.asarray(image_metrics.lpips(pred, truth)))
    changed = np.any(before != after, axis=(1, 2, 3))

    def summary(values, where):
        return round(float(np.mean(np.concatenate(values)[where])), 4)

    return {"unchanged_share": round(float(1.0 - changed.mean()), 4),
            **{k: {"psnr": summary(p, slice(None)), "lpips": summary(l, slice(None)),
                   "psnr_changed": summary(p, changed), "lpips_changed": summary(l, changed)} for k, (p, l) in sums.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a model directory (config.json): its key_moves and uncovered_fill")
    parser.add_argument("--autoencoder", required=True, help="an autoencoder directory, or a pixel configuration's name (pixel_p4)")
    parser.add_argument("--data", nargs="+", required=True, help="held-out recorded datasets (episode stores)")
    parser.add_argument("--limit", type=int, default=2048, help="transitions scored at most (default 2048)")
    args = parser.parse_args(argv)
    with open(os.path.join(args.model, "config.json")) as f:  # the config alone: the weights play no part
        config = model.config_from_dict(json.load(f))
    ae_config, ae_variables = world_lib.load_autoencoder(args.autoencoder)
    before, after, acts = transitions([EpisodeStore(d) for d in args.data], args.limit)
    result = {"model": args.model, "autoencoder": args.autoencoder, "data": args.data, "transitions": int(len(before)),
              "scores": score(config, ae_config, ae_variables, before, after, acts)}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
