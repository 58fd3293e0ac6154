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
    """

    def __init__(self, choices: Sequence, rng: np.random.Generator, weights: Sequence[float] | None = None,
                 min_hold: int = 4, max_hold: int = 20):
        if not 1 <= min_hold <= max_hold:
            raise ValueError(f"need 1 <= min_hold <= max_hold, got {min_hold}, {max_hold}")
        self.choices = list(choices)
        weights = np.ones(len(self.choices)) if weights is None else np.asarray(weights, np.float64)
        self.probabilities = weights / weights.sum()
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
