"""Exact resume: a run SIGKILLed after a checkpoint and restarted matches an uninterrupted run."""

from __future__ import annotations

import signal

import pytest

from train_helpers import SMOKE, bindings, record_pan, run_python
from wm_jax.train import config, loop
from wm_jax.train.metrics import read_metrics

KILL_AT = 5  # after the checkpoint at step 3 is on disk, before the one at 6

KILL_SCRIPT = f"""
import os, signal, sys
from wm_jax.train import config, loop
experiment, text = config.parse([sys.argv[1]], sys.argv[3:])
def after_step(step, state, checkpoints):
    if step == {KILL_AT}:
        checkpoints.wait()  # the step-3 save is complete; nothing else is flushed
        os.kill(os.getpid(), signal.SIGKILL)
loop.train(experiment, text, sys.argv[2], after_step=after_step)
"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return record_pan(tmp_path_factory.mktemp("pan"))


def losses(workdir):
    return {row["step"]: row["loss"] for row in read_metrics(str(workdir))}


def test_sigkilled_run_resumes_to_the_same_loss(dataset, tmp_path):
    params = bindings(dataset, **{"Experiment.num_steps": 9})

    reference = tmp_path / "reference"
    experiment, text = config.parse([SMOKE], params)
    loop.train(experiment, text, str(reference))

    killed = tmp_path / "killed"
    result = run_python(KILL_SCRIPT, SMOKE, str(killed), *params)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert (killed / "checkpoints" / "3").is_dir()
    assert not (killed / "checkpoints" / "6").exists()
    assert max(losses(killed)) >= 4  # it had logged steps beyond the checkpoint

    experiment, text = config.parse([SMOKE], params)
    loop.train(experiment, text, str(killed))  # same workdir: resumes from step 3

    rows = read_metrics(str(killed))
    assert [row["step"] for row in rows] == list(range(1, 10)), "each step logged exactly once"
    want, got = losses(reference), losses(killed)
    for step in range(4, 10):
        assert got[step] == pytest.approx(want[step], abs=1e-6), f"step {step}"
    # And the resumed run is not trivially equal: the loss moved.
    assert want[9] != want[4]
