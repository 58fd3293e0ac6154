"""Two real processes on 127.0.0.1 (CPU collectives), two devices each, one 2x2 mesh."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from train_helpers import ROOT, SMOKE, bindings, record_pan


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_together_and_agree_on_the_loss(tmp_path):
    dataset = record_pan(tmp_path / "pan")
    port = _free_port()
    argv = [sys.executable, "-m", "wm_jax.cli", "train", "--gin_file", SMOKE, "--workdir", str(tmp_path / "run")]
    for binding in bindings(dataset, **{"Run.num_steps": 4, "Run.checkpoint_every": 2, "Mesh.fsdp": 2}):
        argv += ["--gin_param", binding]
    procs = []
    for rank in range(2):
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
               "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(rank)}
        procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=400) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    losses = [re.search(r"final loss ([0-9.e+-]+);", out).group(1) for out, _ in outputs]
    assert losses[0] == losses[1]
    assert "mesh {'data': 2, 'fsdp': 2}" in outputs[0][1] + outputs[0][0]
    data_files = sorted(os.listdir(tmp_path / "run" / "checkpoints" / "4" / "data"))
    assert "process_0-of-2.json" in data_files and "process_1-of-2.json" in data_files  # Grain state per process
