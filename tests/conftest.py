"""Shared fixtures: the tiny configuration and its params, built once per session."""

import json
import os

# Tests run on the host CPU; a persistent compilation cache makes repeated runs fast.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "jax"))
# The suite compiles hundreds of small programs that then run for milliseconds: XLA's LLVM
# optimisation level 0 compiles them fastest (the whole suite: 8 min 51 s of pytest at level 0
# against 10 min 26 s at level 1; the default level costs ~3x level 1's compile time; BUILD_NOTES,
# "The test suite's time (sessions 15, 23)"). The autoencoder's training test, which runs 4x slower unoptimised,
# trains in a process of its own at level 1 (tests/test_train_ae.py). Set before jax starts, so the
# CLI subprocesses tests spawn inherit it.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax
import pytest

from wm_jax import configs
from wm_jax import model as wm_model



def pytest_collection_modifyitems(config, items):
    """The slowest files first (tests/file_seconds.json), each file's tests in their own order: with
    `--dist loadfile --no-loadscope-reorder` the two workers of `make test` take files from the top
    of this list as they free up, and finish together instead of one waiting on a long file."""
    with open(os.path.join(os.path.dirname(__file__), "file_seconds.json")) as f:
        seconds = json.load(f)
    items.sort(key=lambda item: -seconds.get(item.path.name, 0))


def randomize(params, rng, scale=0.1):
    """Every leaf drawn at random, so zero-initialised gates do not hide a broken path."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(rng, len(leaves))
    return jax.tree_util.tree_unflatten(tree, [scale * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)])


def model_apply(config):
    """The model's whole-clip pass, jitted: (params, x, t, actions, clean=None) -> output. Eager
    Flax applies dispatch op by op, which costs the suite more than compiling once."""
    return jax.jit(lambda params, x, t, a, clean=None: wm_model.WorldModel(config).apply({"params": params}, x, t, a, clean))


@pytest.fixture(scope="session")
def tiny_config():
    return configs.get_config("tiny")


@pytest.fixture(scope="session")
def tiny_params(tiny_config):
    return wm_model.init_params(tiny_config, jax.random.key(0))


@pytest.fixture(scope="session")
def tiny_random_params(tiny_params):
    return randomize(tiny_params, jax.random.key(1))


@pytest.fixture(scope="session")
def demo_world_dir(tmp_path_factory):
    """An untrained tiny world bundle (pixel space, 64x64, random weights), made once per session."""
    from wm_jax.demo_world import make_demo_world

    return make_demo_world(tmp_path_factory.mktemp("worlds") / "demo")
