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
    params = bindings(dataset, **{"Run.num_steps": 9})

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


# -- a damaged newest checkpoint (issue 18): found, named, moved aside, the one before resumed ----


def _two_checkpoints(directory):
    import grain
    import jax.numpy as jnp

    from wm_jax.train.checkpoint import Checkpoints

    checkpoints = Checkpoints(str(directory), async_save=False)
    iterator = iter(grain.MapDataset.range(100).to_iter_dataset())
    for step in (1, 2):
        next(iterator)
        checkpoints.save(step, {"w": step * jnp.arange(1000, dtype=jnp.float32)}, iterator, {"step": step})
    checkpoints.close()


def _damage(step_dir, kind):
    import glob
    import os

    if kind == "truncated array file":
        path = max(glob.glob(str(step_dir / "state" / "ocdbt.process_0" / "d" / "*")), key=os.path.getsize)
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    elif kind == "empty _METADATA":
        (step_dir / "state" / "_METADATA").write_bytes(b"")
    else:
        (step_dir / "data" / "process_0-of-1.json").write_bytes(b"")


@pytest.mark.parametrize("kind, why", [
    ("truncated array file", "Exception"),
    ("empty _METADATA", "state/_METADATA is empty"),
    ("empty iterator state", "data/process_0-of-1.json is empty"),
])
def test_a_damaged_newest_checkpoint_is_moved_aside_and_the_one_before_resumed(tmp_path, caplog, kind, why):
    import grain
    import jax
    import jax.numpy as jnp

    from wm_jax.train.checkpoint import Checkpoints

    _two_checkpoints(tmp_path / "checkpoints")
    _damage(tmp_path / "checkpoints" / "2", kind)
    checkpoints = Checkpoints(str(tmp_path / "checkpoints"), async_save=False)
    iterator = iter(grain.MapDataset.range(100).to_iter_dataset())
    with caplog.at_level("WARNING"):
        step, state = checkpoints.restore_newest_intact({"w": jax.ShapeDtypeStruct((1000,), jnp.float32)}, iterator)
    assert step == 1 and float(state["w"][1]) == 1.0 and next(iterator) == 1  # step 1's data position
    warning = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
    assert len(warning) == 1 and "step 2 is broken" in warning[0] and why in warning[0], warning
    assert checkpoints.all_steps() == [1]
    assert (tmp_path / "checkpoints.broken" / "2" / "state").is_dir()  # moved, not deleted
    checkpoints.close()


def test_when_no_checkpoint_restores_nothing_is_moved(tmp_path):
    import jax
    import jax.numpy as jnp

    from wm_jax.train.checkpoint import Checkpoints

    _two_checkpoints(tmp_path / "checkpoints")
    for step in ("1", "2"):
        _damage(tmp_path / "checkpoints" / step, "empty _METADATA")
    checkpoints = Checkpoints(str(tmp_path / "checkpoints"), async_save=False)
    with pytest.raises(ValueError, match="no checkpoint .* restores: step 2: state/_METADATA is empty; step 1"):
        checkpoints.restore_newest_intact({"w": jax.ShapeDtypeStruct((1000,), jnp.float32)})
    assert checkpoints.all_steps() == [1, 2] and not (tmp_path / "checkpoints.broken").exists()
    checkpoints.close()
