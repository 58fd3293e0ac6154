"""Seconds to lower and compile the step, measured in fresh processes: cold, and again with
JAX's persistent compilation cache filled by the first (what a second `wm play` start pays)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile

from wm_jax.configs import ModelConfig
from wm_jax.diffusion import SamplerConfig
from wm_jax.model import config_to_dict

# Run by a fresh interpreter: the config and sampler arrive as JSON arguments, the seconds leave
# as the last line of stdout.
_COMPILE_SNIPPET = """
import json, sys, time
from wm_jax import configs, info
from wm_jax.diffusion import SamplerConfig
config = configs.ModelConfig(**json.loads(sys.argv[1]))
start = time.perf_counter()
info.compiled_step(config, SamplerConfig(**json.loads(sys.argv[2])))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def compile_times(config: ModelConfig, sampler: SamplerConfig) -> dict:
    """Seconds to lower + compile the step in a fresh process, twice, sharing a fresh persistent
    compilation cache: the first is cold, the second reads JAX's persistent cache."""
    with tempfile.TemporaryDirectory(prefix="wm_bench_jaxcache_") as cache_dir:
        env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache_dir, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
        args = [json.dumps(config_to_dict(config)), json.dumps(dataclasses.asdict(sampler))]
        runs = [_compile_seconds(args, env) for _ in range(2)]
        cache_files = sum(len(files) for _, _, files in os.walk(cache_dir))
    return {"cold_s": round(runs[0], 3), "persistent_cache_s": round(runs[1], 3), "cache_entries": cache_files}


def _compile_seconds(args: list[str], env: dict) -> float:
    """One fresh interpreter's compile of the step, in seconds."""
    out = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET, *args], env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"compile-time subprocess failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
