"""The untrained demo world (`wm play --demo`): the play machinery without a trained model.

Kept in the library, not only in the tests, because `wm play --demo` serves it (the play-server
benchmarks time the server on it: benchmarks/play_server.py, benchmarks/play_load.py); the tests'
`demo_world_dir` fixture makes it too. It is no world to play: its frames are moving noise.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import autoencoder, configs
from wm_jax import model as wm_model
from wm_jax.bundle import save_world
from wm_jax.diffusion import SamplerConfig


def make_demo_world(directory, *, seed: int = 0, randomize: float = 0.1) -> pathlib.Path:
    """An untrained `tiny`-sized world bundle in pixel space (64x64 frames) at `directory`.

    The params are drawn at random (scale `randomize`; 0 keeps the identity init, whose frames
    are pure sampler noise), so keys do change the frames, but nothing here is learned.
    """
    config = configs.get_config("tiny", latent_size=(16, 16), in_channels=48)
    ae_config = autoencoder.get_config("pixel_p4")
    if randomize:
        # Drawn with numpy over the abstract shapes: no init to compile, seconds saved per test run.
        gen = np.random.default_rng(seed)
        params = jax.tree_util.tree_map(lambda x: jnp.asarray(randomize * gen.standard_normal(x.shape), x.dtype),
                                        wm_model.abstract_params(config))
    else:
        params = wm_model.init_params(config, jax.random.key(seed))
    return save_world(
        directory, name="demo (untrained)", config=config, params=params, ae_config=ae_config,
        ae_variables=autoencoder.init(ae_config, jax.random.key(0)),
        keys={"w": "forward", "a": "left", "s": "back", "d": "right", "up": "look up", "down": "look down",
              "left": "look left", "right": "look right", "space": "jump", "shift": "run"},
        fps=20.0, sampler=SamplerConfig(steps=4),
        description="Untrained tiny model with random weights: shows the play machinery, not a world.",
        provenance={"made_by": "wm_jax.demo_world.make_demo_world", "seed": seed, "randomize": randomize},
    )
