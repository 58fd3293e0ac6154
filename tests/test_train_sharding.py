"""8 host devices, Mesh data=2 x fsdp=4: params really sharded, same losses as one device."""

from __future__ import annotations

import json

import pytest

from train_helpers import SMOKE, bindings, record_pan, run_python
from wm_jax.train import config, loop
from wm_jax.train.metrics import read_metrics

SHARDED_SCRIPT = """
import json, sys
import jax
from wm_jax.train import config, loop
assert jax.device_count() == 8, jax.devices()
experiment, text = config.parse([sys.argv[1]], sys.argv[3:])
seen = {}
def after_step(step, state, checkpoints):
    kernel = state.params["spatial_0"]["mlp"]["fc1"]["kernel"]  # [width, hidden]
    seen["spec"] = [str(axis) for axis in kernel.sharding.spec]
    seen["shard_shape"] = list(kernel.addressable_shards[0].data.shape)
    seen["shape"] = list(kernel.shape)
    seen["devices"] = len(kernel.sharding.device_set)
loop.train(experiment, text, sys.argv[2], after_step=after_step)
print("SHARDING " + json.dumps(seen))
"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return record_pan(tmp_path_factory.mktemp("pan"))


def test_sharded_step_matches_single_device(dataset, tmp_path):
    common = {"Run.num_steps": 3, "Run.checkpoint_every": 3}
    experiment, text = config.parse([SMOKE], bindings(dataset, **common))
    loop.train(experiment, text, str(tmp_path / "single"))

    sharded = bindings(dataset, **common, **{"Mesh.data": 2, "Mesh.fsdp": 4})
    result = run_python(SHARDED_SCRIPT, SMOKE, str(tmp_path / "sharded"), *sharded,
                        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.split("SHARDING ")[1])
    assert seen["spec"][0] == "fsdp" and seen["devices"] == 8
    assert seen["shard_shape"] == [seen["shape"][0] // 4, seen["shape"][1]]  # each device holds 1/4

    want = {row["step"]: row["loss"] for row in read_metrics(str(tmp_path / "single"))}
    got = {row["step"]: row["loss"] for row in read_metrics(str(tmp_path / "sharded"))}
    assert sorted(got) == [1, 2, 3]
    for step in (1, 2, 3):
        # Reductions split over devices sum in another order: equal up to float32 rounding.
        assert got[step] == pytest.approx(want[step], rel=1e-5, abs=1e-6), f"step {step}"
