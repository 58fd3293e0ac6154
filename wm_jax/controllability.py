"""Controllability: does the generated world answer the keys? An inverse-dynamics model (IDM)
trained on real recorded transitions says which keys were pressed between two frames.

    prev, next, actions = transitions(DATASET, episodes)       # real (frame t-1, frame t, action t)
    classes = ActionClasses.fit(actions)                         # each distinct key set is a class
    idm = train(prev, next, classes.encode(actions), classes.size, rng=...)
    ceiling = accuracy(idm, held-out real transitions)           # what the IDM can read at all
    score = accuracy(idm, generated transitions under the same actions)

For worlds whose keys pan the camera, `phase_shift` (FFT phase correlation) measures the motion
between two frames directly; `DirectionTable.fit` learns, from real transitions, which motion
direction each key set produces (so no sign convention is assumed), and `direction_accuracy`
scores generated transitions against it.

Alignment (the project contract): action[t] is what was pressed between frame t-1 and frame t.
Frames: uint8 or float in [-1, 1], [N, H, W, 3]. Letters: N transitions, K action entries.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

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


@dataclasses.dataclass(frozen=True)
class ActionClasses:
    """Each distinct multi-hot action vector seen in training is one class."""

    rows: tuple[tuple[float, ...], ...]

    @classmethod
    def fit(cls, actions_NK) -> "ActionClasses":
        return cls(tuple(tuple(float(x) for x in row) for row in np.unique(np.asarray(actions_NK) > 0.5, axis=0).astype(np.float32)))

    @property
    def size(self) -> int:
        return len(self.rows)

    def encode(self, actions_NK) -> np.ndarray:
        """[N] class ids; -1 for a key set never seen in training."""
        table = {row: i for i, row in enumerate(self.rows)}
        binary = (np.asarray(actions_NK) > 0.5).astype(np.float32)
        return np.array([table.get(tuple(float(x) for x in row), -1) for row in binary], np.int32)


def _as_float(frames) -> jnp.ndarray:
    frames = jnp.asarray(frames)
    return frames.astype(jnp.float32) / 127.5 - 1.0 if frames.dtype == jnp.uint8 else frames.astype(jnp.float32)


# ----------------------------------------------------------------------------- the model


class InverseDynamics(nn.Module):
    """(prev, next) frames -> logits over action classes. Sees both frames and their difference."""

    classes: int
    width: int = 32

    @nn.compact
    def __call__(self, prev_NHWC, next_NHWC):
        x = jnp.concatenate([prev_NHWC, next_NHWC, next_NHWC - prev_NHWC], axis=-1)
        for i, features in enumerate((self.width, 2 * self.width, 4 * self.width, 4 * self.width)):
            x = nn.relu(nn.Conv(features, (3, 3), strides=(2, 2), name=f"conv_{i}")(x))
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.classes, name="head")(nn.relu(nn.Dense(4 * self.width, name="hidden")(x)))


@dataclasses.dataclass
class IDM:
    params: dict
    classes: int
    width: int = 32

    def logits(self, prev, nxt, batch: int = 256) -> np.ndarray:
        apply = _apply_fn(self.classes, self.width)
        out = [np.asarray(apply(self.params, _as_float(prev[i : i + batch]), _as_float(nxt[i : i + batch]))) for i in range(0, len(prev), batch)]
        return np.concatenate(out)

    def predict(self, prev, nxt) -> np.ndarray:
        return self.logits(prev, nxt).argmax(-1)


@functools.lru_cache(maxsize=8)
def _apply_fn(classes: int, width: int):
    return jax.jit(InverseDynamics(classes, width).apply)


def augment(prev_NHWC, next_NHWC, gen: np.random.Generator):
    """The same random circular shift, channel order and contrast for both frames of a pair:
    changes what the picture is, never how it moved, so the IDM learns motion, not scenes."""
    n, h, w, _ = prev_NHWC.shape
    out_prev, out_next = np.empty_like(prev_NHWC), np.empty_like(next_NHWC)
    for i in range(n):
        shift = (int(gen.integers(h)), int(gen.integers(w)))
        perm = gen.permutation(3)
        gain, bias = gen.uniform(0.6, 1.2), gen.uniform(-0.2, 0.2)
        for src, dst in ((prev_NHWC, out_prev), (next_NHWC, out_next)):
            dst[i] = np.clip(np.roll(src[i], shift, axis=(0, 1))[..., perm] * gain + bias, -1, 1)
    return out_prev, out_next


def train(prev, nxt, labels_N, classes: int, *, rng, steps: int = 400, batch: int = 64, learning_rate: float = 1e-3,
          width: int = 32, augmented: bool = True, progress: bool = True) -> IDM:
    """Cross-entropy on random minibatches of real transitions (labels -1 are skipped), each
    pair `augment`ed unless augmented=False (a few thousand transitions of a few scenes are
    otherwise memorised: 95% train / 28% held-out accuracy on pan64 without it)."""
    from tqdm.auto import tqdm

    keep = np.asarray(labels_N) >= 0
    prev, nxt, labels = np.asarray(prev)[keep], np.asarray(nxt)[keep], np.asarray(labels_N)[keep]
    if len(labels) < batch:
        raise ValueError(f"{len(labels)} labelled transitions; need at least a batch of {batch}")
    model = InverseDynamics(classes, width)
    rng_init, rng_data = jax.random.split(rng)
    params = model.init(rng_init, _as_float(prev[:1]), _as_float(nxt[:1]))
    optimizer = optax.adamw(learning_rate, weight_decay=1e-4)
    opt_state = optimizer.init(params)

    @jax.jit
    def update(params, opt_state, p, n, y):
        def loss_fn(params):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(params, p, n), y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    order = np.random.default_rng(int(jax.random.randint(rng_data, (), 0, 2**31 - 1)))
    for _ in tqdm(range(steps), desc="inverse dynamics", disable=not progress):
        idx = order.integers(0, len(labels), batch)
        p, n = np.asarray(_as_float(prev[idx])), np.asarray(_as_float(nxt[idx]))
        if augmented:
            p, n = augment(p, n, order)
        params, opt_state, _ = update(params, opt_state, jnp.asarray(p), jnp.asarray(n), jnp.asarray(labels[idx]))
    return IDM(params=params, classes=classes, width=width)


def accuracy(idm: IDM, prev, nxt, labels_N) -> float:
    """Share of transitions whose key set the IDM names exactly (unseen key sets count as wrong)."""
    labels = np.asarray(labels_N)
    return float(np.mean(idm.predict(prev, nxt) == labels)) if len(labels) else float("nan")


# ----------------------------------------------------------------------------- phase correlation


def phase_shift(prev, nxt) -> np.ndarray:
    """[N, 2] (dy, dx) integer translation from prev to next by FFT phase correlation of the
    grey frames: the peak of the normalised cross-power spectrum's inverse transform."""
    a = np.asarray(_as_float(prev)).mean(-1)
    b = np.asarray(_as_float(nxt)).mean(-1)
    fa, fb = np.fft.fft2(a), np.fft.fft2(b)
    cross = fb * np.conj(fa)
    corr = np.fft.ifft2(cross / (np.abs(cross) + 1e-8)).real
    h, w = a.shape[-2:]
    peak = corr.reshape(len(corr), -1).argmax(-1)
    dy, dx = peak // w, peak % w
    return np.stack([np.where(dy > h // 2, dy - h, dy), np.where(dx > w // 2, dx - w, dx)], -1)


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
    a = np.asarray(_as_float(prev)).mean(-1)
    b = np.asarray(_as_float(nxt)).mean(-1)
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


ZOOM_TOLERANCE = 0.1  # a zoom is "the key's" when within 10% of the real frames' scale for that key
ZOOM_MIN = 1.02  # a key set zooms when its real frames' median scale is beyond 2% per frame


def zoom_by_key(keys_N, real_scale_N, generated_scale_N, direction_hit_N=None) -> dict:
    """Per key set (names joined with '+', "" for none): transitions, geometric-mean scale per
    frame of the real and the generated frames and, for key sets that zoom in the real frames
    (median scale beyond ZOOM_MIN either way), the share of transitions whose scale goes the
    key's way (at least half the key's real median zoom, in log scale) and the share that does
    so within ZOOM_TOLERANCE of that median; with direction_hit_N, the share of transitions whose
    phase-correlation direction is the real one (the pan keys' score)."""
    keys = np.asarray(keys_N)
    real, gen = np.log(np.asarray(real_scale_N, np.float64)), np.log(np.asarray(generated_scale_N, np.float64))
    report = {}
    for key in sorted(set(keys.tolist()), key=lambda k: (k == "", k)):
        m = keys == key
        row = {"transitions": int(m.sum()), "scale_real": float(np.exp(real[m].mean())), "scale_generated": float(np.exp(gen[m].mean()))}
        if direction_hit_N is not None:
            row["direction_accuracy"] = float(np.mean(np.asarray(direction_hit_N)[m]))
        reference = float(np.median(real[m]))
        if abs(reference) >= np.log(ZOOM_MIN):
            row["zooms"] = "in" if reference > 0 else "out"
            row["scale_key"] = float(np.exp(reference))
            for name, x in (("real", real[m]), ("generated", gen[m])):
                way = np.sign(x) == np.sign(reference)
                way &= np.abs(x) >= abs(reference) / 2
                close = np.abs(np.exp(x - reference) - 1) <= ZOOM_TOLERANCE
                row[f"zoom_way_{name}"] = float(np.mean(way))
                row[f"zoom_way_within_10pct_{name}"] = float(np.mean(way & close))
        report[key] = row
    return report


NO_MOTION = 4  # the direction code of a (0, 0) shift


def _direction(shift_N2) -> np.ndarray:
    """[N] a 3x3 direction code from the signs of (dy, dx): 4 is "no motion"."""
    s = np.sign(np.asarray(shift_N2))
    return ((s[:, 0] + 1) * 3 + (s[:, 1] + 1)).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class DirectionTable:
    """For each action class, the motion direction it most often produced in real data."""

    direction: dict

    @classmethod
    def fit(cls, shifts_N2, labels_N) -> "DirectionTable":
        codes, labels = _direction(shifts_N2), np.asarray(labels_N)
        return cls({int(c): int(np.bincount(codes[labels == c], minlength=9).argmax()) for c in np.unique(labels) if c >= 0})

    def moves(self, label: int) -> bool:
        """Whether the key set moved the picture in real data (its direction is not "no motion")."""
        return self.direction.get(int(label), NO_MOTION) != NO_MOTION

    def accuracy(self, shifts_N2, labels_N) -> float:
        """Over transitions whose key set moves the picture: a static model scores 0, not the
        share of key sets that do nothing visible (most of doom's at 64x64)."""
        codes, labels = _direction(shifts_N2), np.asarray(labels_N)
        hits = [codes[i] == self.direction[int(c)] for i, c in enumerate(labels) if self.moves(c)]
        return float(np.mean(hits)) if hits else float("nan")


def motion_equivalent_accuracy(idm: IDM, prev, nxt, labels_N, table: DirectionTable) -> float:
    """Share of transitions where the IDM's key set and the true one move the picture the same
    way (per `table`): different keys with one effect (pan64's 'd' and 'right') count as one.
    Scored over transitions whose key set moves the picture (else every still pair would match)."""
    pred, labels = idm.predict(prev, nxt), np.asarray(labels_N)
    hits = [table.direction.get(int(p), -1) == table.direction[int(t)] for p, t in zip(pred, labels) if table.moves(t)]
    return float(np.mean(hits)) if hits else float("nan")


# ----------------------------------------------------------------------------- the score


def evaluate(dataset_dir: str, config, params, sampler, *, encode, decode, rng, clip_len: int = 8, clips_per_episode: int = 2,
             idm_steps: int = 400, idm_datasets: list[str] | None = None, progress: bool = True) -> dict:
    """Train the IDM on real transitions and report its accuracy on held-out real transitions
    (the ceiling) and on the model's transitions generated from held-out start frames under the
    recorded actions (the score), with phase-correlation direction accuracy and the
    majority-class rate (chance) beside them.

    idm_datasets: the IDM trains on every episode of these (the world's training recordings) and
    every episode of dataset_dir is held out; without them dataset_dir is split by
    `split_episodes`."""
    from wm_jax import evaluation
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
    classes = ActionClasses.fit(acts)
    labels = classes.encode(acts)
    rng_idm, rng_gen = jax.random.split(rng)
    idm = train(prev, nxt, labels, classes.size, rng=rng_idm, steps=idm_steps, progress=progress)
    table = DirectionTable.fit(phase_shift(prev, nxt), labels)

    hprev, hnext, hacts = transitions(dataset_dir, held_ids)
    hlabels = classes.encode(hacts)
    # Generated transitions: from each held-out clip's real first frame, under its real actions.
    gprev, gnext, glabels = [], [], []
    for n, episode in enumerate(held_ids):
        length = int(store.lengths[episode])
        for start in range(0, min(length - clip_len, (clips_per_episode - 1) * clip_len) + 1, clip_len):
            frames, actions_TK = store.read_clip(episode, start, clip_len)
            real = _as_float(frames)[None]
            latents = encode(real)
            gen = decode(evaluation.autoregressive_latents(params, latents, jnp.asarray(actions_TK)[None], jax.random.fold_in(rng_gen, n * 1000 + start),
                                                           config=config, sampler=sampler, context=1))[0]
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
        "idm_train_accuracy": accuracy(idm, prev[:512], nxt[:512], labels[:512]),
        "idm_real_held_out_accuracy": accuracy(idm, hprev, hnext, hlabels),
        "idm_generated_accuracy": accuracy(idm, gprev, gnext, glabels),
        "idm_real_held_out_motion_equivalent_accuracy": motion_equivalent_accuracy(idm, hprev, hnext, hlabels, table),
        "idm_generated_motion_equivalent_accuracy": motion_equivalent_accuracy(idm, gprev, gnext, glabels, table),
        "generated_transitions": int(len(glabels)),
        "moving_key_sets": sorted(c for c in table.direction if table.moves(c)),
        "phase_direction_real_held_out_accuracy": table.accuracy(phase_shift(hprev, hnext), hlabels),
        "phase_direction_generated_accuracy": table.accuracy(phase_shift(gprev, gnext), glabels),
    }


# ----------------------------------------------------------------------------- camera worlds


def camera_motion(dataset_dir: str, config, params, sampler, *, encode, decode, rng, progress: bool = True) -> dict:
    """Pan worlds on held-out episodes (best: `wm record image_pan --script ...`, whose moves go
    out and back from each photograph's centre). Each episode is generated from its first real
    frame under its recorded keys.

    Direction: a generated transition matches when its phase-correlation direction is the real
    transition's (from the centre the camera never meets an edge, so that is the pressed key's).
    Revisit: wherever the real camera comes back to a view it showed earlier, at most
    `config.window - 1` frames before, the pixels that scrolled out of view in between and back
    in are compared with the real frame (PSNR) and with the model's own frame from before they
    left (did it keep what it showed?); beside them, the pixels at the farthest point that the
    earlier view did not show (the model can only invent those), the yardstick.
    Zoom (`e`/`q` in `image_pan`): `zoom_scale` of every real and generated transition, reported
    per key set beside the pan keys' direction accuracy (`per_key`, see `zoom_by_key`), and over
    all transitions of the key sets that zoom in the real frames (`zoom`).
    """
    from tqdm.auto import tqdm

    from wm_jax import actions as actions_lib
    from wm_jax import evaluation
    from wm_jax.data.episode_store import EpisodeStore

    store = EpisodeStore(dataset_dir)  # its actions are in the project's vocabulary (actions.DEFAULT)
    hits, moving_hits = [], []
    revisit_se, recall_se, fresh_se, revisits = [], [], [], []
    key_names, real_scales, gen_scales, direction_hits = [], [], [], []
    for episode in tqdm(range(len(store)), desc="camera motion", disable=not progress):
        frames, actions_TK = store.read_clip(episode, 0, int(store.lengths[episode]))
        real = np.asarray(_as_float(frames))
        latents = encode(jnp.asarray(real)[None])
        gen = decode(evaluation.autoregressive_latents(params, latents, jnp.asarray(actions_TK)[None], jax.random.fold_in(rng, episode),
                                                       config=config, sampler=sampler, context=1))[0]
        gen = np.concatenate([real[:1], np.clip(np.asarray(gen), -1, 1)])
        real_shifts = phase_shift(real[:-1], real[1:])
        real_codes = _direction(real_shifts)
        gen_codes = _direction(phase_shift(gen[:-1], gen[1:]))
        hits.extend(gen_codes == real_codes)
        moving_hits.extend((gen_codes == real_codes)[real_codes != 4])
        direction_hits.extend(gen_codes == real_codes)
        key_names.extend("+".join(actions_lib.DEFAULT.decode(a)) for a in np.asarray(actions_TK)[1:])
        real_scales.append(zoom_scale(real[:-1], real[1:]))
        gen_scales.append(zoom_scale(gen[:-1], gen[1:]))
        offsets = np.concatenate([[[0, 0]], np.cumsum(real_shifts, axis=0)])
        for t, s_ in _returns(real, offsets, config.window - 1):
            out_and_back, fresh_mask, farthest = _revisit_masks(offsets[s_:t + 1], real.shape[1:3])
            if out_and_back.any():
                revisit_se.append(((gen[t] - real[t]) ** 2)[out_and_back].mean())
                recall_se.append(((gen[t] - gen[s_]) ** 2)[out_and_back].mean())
                fresh_se.append(((gen[s_ + farthest] - real[s_ + farthest]) ** 2)[fresh_mask].mean())
                revisits.append({"episode": episode, "from": int(s_), "to": int(t), "pixels": int(out_and_back.sum())})
    per_key = zoom_by_key(key_names, np.concatenate(real_scales) if real_scales else [], np.concatenate(gen_scales) if gen_scales else [],
                          direction_hits)
    zooming = {k: row for k, row in per_key.items() if "zooms" in row}
    count = sum(row["transitions"] for row in zooming.values())
    zoom = {"keys": sorted(zooming), "transitions": count}
    for field in ("zoom_way_real", "zoom_way_generated", "zoom_way_within_10pct_real", "zoom_way_within_10pct_generated"):
        zoom[field] = sum(row[field] * row["transitions"] for row in zooming.values()) / count if count else float("nan")

    def to_psnr(squared_errors) -> float:  # data range 2
        if not squared_errors:
            return float("nan")
        mse = float(np.mean(squared_errors))
        return float("inf") if mse == 0 else float(10 * np.log10(4.0 / mse))

    return {
        "dataset": dataset_dir,
        "episodes": len(store),
        "transitions": len(hits),
        "moving_transitions": len(moving_hits),
        "direction_accuracy_moving": float(np.mean(moving_hits)) if moving_hits else float("nan"),
        "direction_accuracy_all": float(np.mean(hits)) if hits else float("nan"),
        "revisits": len(revisits),
        "revisit_psnr": to_psnr(revisit_se),
        "revisit_psnr_vs_own_earlier_frame": to_psnr(recall_se),
        "never_seen_psnr": to_psnr(fresh_se),
        "revisit_examples": revisits[:8],
        "per_key": per_key,
        "zoom": zoom,
    }


def _returns(real, offsets_T2, max_gap: int):
    """(t, s) pairs: at frame t the real view is back where it was at frame s (same camera offset,
    same pixels), having moved away in between, with t - s <= max_gap; the nearest s per t."""
    for t in range(len(real)):
        for s_ in range(t - 2, max(-1, t - max_gap - 1), -1):
            back = (offsets_T2[t] == offsets_T2[s_]).all() and np.abs(real[t] - real[s_]).max() < 1e-6
            moved = (offsets_T2[s_ + 1:t] != offsets_T2[s_]).any()
            if back and moved:
                yield t, s_
                break


def _revisit_masks(offsets_T2, size):
    """For a stretch whose last view equals its first: (pixels of the last frame that were out of
    view at some frame in between, pixels of the farthest frame that the first view does not
    show, the farthest frame's index within the stretch). Offsets are cumulative phase shifts:
    a pixel (y, x) of one view is at (y + dy, x + dx) in a view offset by (dy, dx)."""
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w]
    start = offsets_T2[0]
    out_and_back = np.zeros((h, w), bool)
    for offset in offsets_T2[1:-1]:
        dy, dx = offset - start  # a pixel at (y, x) of the first view is at (y + dy, x + dx) then
        out_and_back |= ~((0 <= ys + dy) & (ys + dy < h) & (0 <= xs + dx) & (xs + dx < w))
    distances = np.abs(offsets_T2 - start).sum(-1)
    far = int(distances.argmax())
    dy, dx = offsets_T2[far] - start
    never_seen = ~((0 <= ys - dy) & (ys - dy < h) & (0 <= xs - dx) & (xs - dx < w))
    return out_and_back, never_seen, far
