"""experiments.turn_probe: how far the picture slid sideways between two frames."""

from __future__ import annotations

import numpy as np

from experiments.turn_probe import horizontal_shift


def test_horizontal_shift_reads_a_sideways_slide_and_ignores_static_rows():
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 255, (64, 96, 3)).astype(np.uint8)
    prev = wide[:, 16:80]
    for slide in (-9, -3, 0, 4, 9):
        nxt = wide[:, 16 - slide : 80 - slide].copy()  # the view turned: content moved `slide` px right
        nxt[40:, 24:40] = prev[40:, 24:40]  # a static sprite reaching into the middle rows, as doom's weapon
        assert horizontal_shift(prev, nxt) == slide
