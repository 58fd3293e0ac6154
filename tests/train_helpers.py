"""Shared by the tests/test_train_*.py modules: a tiny recorded dataset and a small config."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "experiments", "configs", "smoke.gin")


def record_pan(out) -> str:
    """Six 24-frame image_pan episodes at 16x16 (about half a second)."""
    from wm_jax.datasets.recording import iter_episodes
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder
    from wm_jax.datasets.tfds_builder import write_episodes

    recorder = ImagePanRecorder(resolution=(16, 16), allow_zoom=False)
    write_episodes(out, iter_episodes(recorder, episodes=6, steps=24, seed=0))
    return str(out)


def bindings(dataset: str, **changes) -> list[str]:
    """smoke.gin shrunk for tests: few steps, small clips, a schedule that ignores num_steps."""
    values = {
        "Data.datasets": {dataset: 1.0},
        "Data.clip_len": 4,
        "Data.batch_size": 8,
        "Run.num_steps": 6,
        "Run.log_every": 1,
        "Run.checkpoint_every": 3,
        "Optimizer.decay_steps": 100,
        "Optimizer.warmup_steps": 2,
        "Evaluation.every": 0,
        **changes,
    }
    return [f"{key} = {value!r}" for key, value in values.items()]


def run_python(code: str, *args: str, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
    full_env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(ROOT, ".cache", "jax"))
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
