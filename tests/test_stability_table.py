"""experiments.stability_table: the horizons at which a rollout is below copying the first frame."""

from experiments.stability_table import horizons_below


def test_horizons_below_joins_runs_and_says_none():
    assert horizons_below([1, 1, 0, 0, 0, 1, 0], [0.5, 0.5, 1, 1, 1, 0, 1]) == "3-5, 7"
    assert horizons_below([0, 1, 0], [1, 0, 1]) == "1, 3"
    assert horizons_below([1.0, 1.0], [0.5, 1.0]) == "none"  # equal is not below
