"""An exploring policy that holds each choice for several frames, like a person on a keyboard.

Random per-frame jitter averages out to standing still, so a model trained on it never sees
sustained motion; holding a key for 4-20 frames gives clear, learnable cause and effect.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


class HoldPolicy:
    """Chooses among `choices` (weighted), each held for a duration drawn from [min_hold, max_hold].

    choices: any values (e.g. tuples of key names); weights: relative probabilities.
    still_share: if given, the probability of the no-key choice `()` (which must be among the
    choices), the others keeping their relative weights. Exploring policies rarely stand still, and
    a world trained on them knows "no key" least (BUILD_NOTES, "Worlds that hold together").
    """

    def __init__(self, choices: Sequence, rng: np.random.Generator, weights: Sequence[float] | None = None,
                 min_hold: int = 4, max_hold: int = 20, still_share: float | None = None):
        if not 1 <= min_hold <= max_hold:
            raise ValueError(f"need 1 <= min_hold <= max_hold, got {min_hold}, {max_hold}")
        self.choices = list(choices)
        weights = np.ones(len(self.choices)) if weights is None else np.asarray(weights, np.float64)
        self.probabilities = weights / weights.sum()
        if still_share is not None:
            self.probabilities = _with_still_share(self.choices, self.probabilities, still_share)
        self.rng, self.min_hold, self.max_hold = rng, min_hold, max_hold
        self.current, self.remaining = None, 0

    def interrupt(self) -> None:
        """Forces a new choice at the next step (e.g. the agent is stuck against a wall)."""
        self.remaining = 0

    def __call__(self):
        if self.remaining <= 0:
            self.current = self.choices[self.rng.choice(len(self.choices), p=self.probabilities)]
            self.remaining = int(self.rng.integers(self.min_hold, self.max_hold + 1))
        self.remaining -= 1
        return self.current


def _with_still_share(choices: list, probabilities: np.ndarray, still_share: float) -> np.ndarray:
    if not 0.0 <= still_share < 1.0:
        raise ValueError(f"still_share must be in [0, 1), got {still_share}")
    if () not in choices:
        raise ValueError("still_share needs the no-key choice () among the choices")
    still = np.array([choice == () for choice in choices])
    moving = np.where(still, 0.0, probabilities)
    return np.where(still, still_share / still.sum(), moving / moving.sum() * (1.0 - still_share))
