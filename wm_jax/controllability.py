"""Controllability: does the generated world answer the keys? (`wm eval --controllability`)
An inverse-dynamics model (`wm_jax.inverse_dynamics`) trained on real recorded transitions says
which keys were pressed between two frames:

    prev, next, actions = transitions(DATASET, episodes)       # real (frame t-1, frame t, action t)
    ceiling = IDM accuracy on held-out real transitions          # what the IDM can read at all
    score = IDM accuracy on generated transitions under the same actions

beside, from `wm_jax.motion`, the phase-correlation direction each key set produced in real
data against the one it produces in generated frames (no sign convention assumed).

Alignment (the project contract): action[t] is what was pressed between frame t-1 and frame t.
Frames: uint8 or float in [-1, 1], [N, H, W, 3]. Letters: N transitions, K action entries.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import evaluation, inverse_dynamics, motion

# ----------------------------------------------------------------------------- data


def transitions(dataset_dir: str, episodes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prev uint8 [N, H, W, 3], next uint8 [N, H, W, 3], action float32 [N, K]) from every
    consecutive frame pair of the given episodes of a recorded dataset."""
    from wm_jax.data.episode_store import EpisodeStore

    store = EpisodeStore(dataset_dir)
    prev, nxt, acts = [], [], []
    for episode in episodes:
        frames, actions_TK = store.read_clip(int(episode), 0, int(store.lengths[episode]))
        prev.append(frames[:-1])
        nxt.append(frames[1:])
        acts.append(actions_TK[1:])
    return np.concatenate(prev), np.concatenate(nxt), np.concatenate(acts)


def split_episodes(count: int, held_out_fraction: float = 0.25) -> tuple[list[int], list[int]]:
    """(train, held-out) episode indices: the last ceil(fraction * count) episodes are held out,
    so the split is the same on every machine and no clip straddles it."""
    held = max(1, int(np.ceil(held_out_fraction * count)))
    if held >= count:
        raise ValueError(f"{count} episodes cannot be split into train and held-out")
    return list(range(count - held)), list(range(count - held, count))


# ----------------------------------------------------------------------------- the score


def motion_equivalent_accuracy(idm: inverse_dynamics.IDM, prev, nxt, labels_N, table: motion.DirectionTable) -> float:
    """Share of transitions where the IDM's key set and the true one move the picture the same
    way (per `table`): different keys with one effect (pan64's 'd' and 'right') count as one.
    Scored over transitions whose key set moves the picture (else every still pair would match)."""
    pred, labels = idm.predict(prev, nxt), np.asarray(labels_N)
    hits = [table.direction.get(int(p), -1) == table.direction[int(t)] for p, t in zip(pred, labels) if table.moves(t)]
    return float(np.mean(hits)) if hits else float("nan")


def evaluate(dataset_dir: str, config, params, sampler, *, encode, decode, rng, clip_len: int = 8, clips_per_episode: int = 2,
             idm_steps: int = 400, idm_datasets: list[str] | None = None, progress: bool = True, zoom=None, keeper=None) -> dict:
    """Train the IDM on real transitions and report its accuracy on held-out real transitions
    (the ceiling) and on the model's transitions generated from held-out start frames under the
    recorded actions (the score), with phase-correlation direction accuracy and the
    majority-class rate (chance) beside them.

    idm_datasets: the IDM trains on every episode of these (the world's training recordings) and
    every episode of dataset_dir is held out; without them dataset_dir is split by
    `split_episodes`."""
    from wm_jax.data.episode_store import EpisodeStore

    store = EpisodeStore(dataset_dir)
    h, w = config.latent_size
    if idm_datasets:
        train_ids, held_ids = [], list(range(len(store)))
        parts = [transitions(d, range(len(EpisodeStore(d)))) for d in idm_datasets]
        prev, nxt, acts = (np.concatenate(column) for column in zip(*parts))
    else:
        train_ids, held_ids = split_episodes(len(store))
        prev, nxt, acts = transitions(dataset_dir, train_ids)
    if prev.shape[1:3] != tuple(decode(jnp.zeros((1, h, w, config.in_channels))).shape[1:3]):
        raise ValueError(f"dataset frames are {prev.shape[1:3]}; the model's frames are not: record at the world's resolution")
    classes = inverse_dynamics.ActionClasses.fit(acts)
    labels = classes.encode(acts)
    rng_idm, rng_gen = jax.random.split(rng)
    idm = inverse_dynamics.train(prev, nxt, labels, classes.size, rng=rng_idm, steps=idm_steps, progress=progress)
    table = motion.DirectionTable.fit(motion.phase_shift(prev, nxt), labels)

    hprev, hnext, hacts = transitions(dataset_dir, held_ids)
    hlabels = classes.encode(hacts)
    # Generated transitions: from each held-out clip's real first frame, under its real actions.
    gprev, gnext, glabels = [], [], []
    for n, episode in enumerate(held_ids):
        length = int(store.lengths[episode])
        for start in range(0, min(length - clip_len, (clips_per_episode - 1) * clip_len) + 1, clip_len):
            frames, actions_TK = store.read_clip(episode, start, clip_len)
            real = motion.frames_as_float(frames)[None]
            gen = evaluation.autoregressive_frames(params, real, jnp.asarray(actions_TK)[None], jax.random.fold_in(rng_gen, n * 1000 + start),
                                                   config=config, sampler=sampler, encode=encode, decode=decode, zoom=zoom,
                                                   keeper=keeper)[0]
            seq = jnp.concatenate([real[0, :1], jnp.clip(gen, -1, 1)], axis=0)
            gprev.append(np.asarray(seq[:-1]))
            gnext.append(np.asarray(seq[1:]))
            glabels.append(classes.encode(actions_TK[1:]))
    gprev, gnext, glabels = np.concatenate(gprev), np.concatenate(gnext), np.concatenate(glabels)
    counts = np.bincount(labels[labels >= 0], minlength=classes.size)
    return {
        "dataset": dataset_dir,
        "idm_datasets": list(idm_datasets or [dataset_dir]),
        "train_episodes": train_ids if not idm_datasets else "all episodes of idm_datasets",
        "held_out_episodes": held_ids,
        "action_classes": classes.size,
        "train_transitions": int(len(labels)),
        "chance_majority_class": float(np.mean(hlabels == counts.argmax())),
        "idm_train_accuracy": inverse_dynamics.accuracy(idm, prev[:512], nxt[:512], labels[:512]),
        "idm_real_held_out_accuracy": inverse_dynamics.accuracy(idm, hprev, hnext, hlabels),
        "idm_generated_accuracy": inverse_dynamics.accuracy(idm, gprev, gnext, glabels),
        "idm_real_held_out_motion_equivalent_accuracy": motion_equivalent_accuracy(idm, hprev, hnext, hlabels, table),
        "idm_generated_motion_equivalent_accuracy": motion_equivalent_accuracy(idm, gprev, gnext, glabels, table),
        "generated_transitions": int(len(glabels)),
        "moving_key_sets": sorted(c for c in table.direction if table.moves(c)),
        "phase_direction_real_held_out_accuracy": table.accuracy(motion.phase_shift(hprev, hnext), hlabels),
        "phase_direction_generated_accuracy": table.accuracy(motion.phase_shift(gprev, gnext), glabels),
    }
