"""The inverse-dynamics model (IDM): which keys were pressed between two frames. Trained on real
recorded transitions, it then reads generated ones (`wm_jax.controllability` scores a world so).

    classes = ActionClasses.fit(actions)                        # each distinct key set is a class
    idm = train(prev, next, classes.encode(actions), classes.size, rng=...)
    accuracy(idm, prev, next, classes.encode(actions))           # share of key sets named exactly

Alignment (the project contract): action[t] is what was pressed between frame t-1 and frame t.
Frames: uint8 or float in [-1, 1], [N, H, W, 3]. Letters: N transitions, K action entries.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from wm_jax.motion import frames_as_float  # the IDM reads frames as the motion estimators do


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
        out = [np.asarray(apply(self.params, frames_as_float(prev[i : i + batch]), frames_as_float(nxt[i : i + batch]))) for i in range(0, len(prev), batch)]
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
    params = model.init(rng_init, frames_as_float(prev[:1]), frames_as_float(nxt[:1]))
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
        p, n = np.asarray(frames_as_float(prev[idx])), np.asarray(frames_as_float(nxt[idx]))
        if augmented:
            p, n = augment(p, n, order)
        params, opt_state, _ = update(params, opt_state, jnp.asarray(p), jnp.asarray(n), jnp.asarray(labels[idx]))
    return IDM(params=params, classes=classes, width=width)


def accuracy(idm: IDM, prev, nxt, labels_N) -> float:
    """Share of transitions whose key set the IDM names exactly (unseen key sets count as wrong)."""
    labels = np.asarray(labels_N)
    return float(np.mean(idm.predict(prev, nxt) == labels)) if len(labels) else float("nan")
