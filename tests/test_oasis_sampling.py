"""Oasis' sampling recipe through the KV cache (issue 16): a converted tiny Oasis, rolled out by
wm_jax with `diffusion.OASIS_SAMPLER`, against Oasis' own sliding-window loop written in PyTorch
from its public description (tests/torch_reference_oasis_sampling.py): same weights, same
starting noise (drawn by wm_jax, injected into torch), for rollouts shorter and longer than the
window. MAX_FRAMES = 3 stands for Oasis' 32.

Tolerance: every frame within ATOL = 1e-5 of the torch float32 loop (measured: 6e-7 at most; fp32
on both sides; the ᾱ differ by < 2e-6, torch's float32 against wm_jax's float64).
"""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wm_jax.conversion.layouts import oasis
from wm_jax import diffusion, rollout
from wm_jax.diffusion import SamplerConfig

torch = pytest.importorskip("torch")
from torch_reference_oasis import OasisDiT  # noqa: E402
from torch_reference_oasis_sampling import oasis_rollout  # noqa: E402

PATCH, CHANNELS, WIDTH, DEPTH, HEADS, ACTIONS = 2, 3, 32, 2, 4, 25
LATENT = (4, 6)  # a 2x3 token grid
MAX_FRAMES = 3  # the window: 2 context frames + the new one (Oasis: 32)
PROMPT, GENERATED, BATCH, STEPS = 1, 5, 2, 3  # 6 frames: 3 inside the first window, 3 past it
# Exercises the clamp (Oasis' 20 never bites on Gaussian draws this few); the torch loop gets the same.
CLAMP = 1.5
ATOL = 1e-5


@pytest.fixture(scope="module")
def models():
    return tiny_oasis()


def tiny_oasis():
    """(the torch reference, its wm_jax config, the converted params)."""
    torch.manual_seed(0)
    reference = OasisDiT(PATCH, CHANNELS, WIDTH, DEPTH, HEADS, action_dim=ACTIONS).eval()
    sd = {k: v.detach().numpy().copy() for k, v in reference.state_dict().items()}
    converted = oasis.convert(sd, heads=HEADS, latent_size=LATENT, max_frames=MAX_FRAMES)
    return reference, converted.config, jax.tree_util.tree_map(jnp.asarray, converted.params)


def _inputs():
    gen = np.random.default_rng(1)
    prompt = gen.standard_normal((BATCH, PROMPT, *LATENT, CHANNELS)).astype(np.float32)
    actions = (gen.uniform(size=(BATCH, PROMPT + GENERATED, ACTIONS)) < 0.3).astype(np.float32)
    actions[..., 15:17] = gen.uniform(-1, 1, (BATCH, PROMPT + GENERATED, 2))  # cameraX/Y: continuous
    return prompt, actions


def _nchw(x_BTHWC):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x_BTHWC).transpose(0, 1, 4, 2, 3)))


def _wm_rollout(config, params, sampler, prompt, actions, rng):
    """wm_jax's frames [B, P + F, h, w, c] and the starting noise each new frame drew (unclamped)."""
    state = rollout.init_state(config, params, jnp.asarray(prompt), jnp.asarray(actions[:, :PROMPT]),
                               rng=jax.random.key(9), sampler=sampler)
    _, latents = rollout.make_rollout(config, sampler)(params, state, jnp.asarray(actions[:, PROMPT:]), rng)
    # `rollout.step` draws frame i's starting noise from the first half of its rng's split.
    rngs = jax.random.split(rng, GENERATED)
    noises = [rollout.frame_noise(config, SamplerConfig(), jax.random.split(r)[0], BATCH) for r in rngs]
    return np.concatenate([prompt, np.asarray(latents)], axis=1), noises


def _torch_rollout(reference, prompt, actions, noises):
    out = oasis_rollout(reference, _nchw(prompt), torch.from_numpy(actions),
                        [torch.from_numpy(np.array(z).transpose(0, 3, 1, 2)) for z in noises],
                        STEPS, MAX_FRAMES, noise_abs_max=CLAMP)
    return out.numpy().transpose(0, 1, 3, 4, 2)


def _errors(got, expected):
    """Max |difference| per frame."""
    return np.abs(got - expected).reshape(got.shape[0], got.shape[1], -1).max(axis=(0, 2))


def test_oasis_sampler_is_oasis_recipe():
    s = diffusion.OASIS_SAMPLER
    assert (s.steps, s.method, s.eta, s.noise_clamp, s.context_noised) == (10, "ddim", 0.0, 20.0, False)
    assert round(s.context_noise * 1000) == 14  # stabilization_level - 1, the level the model is told
    assert list(diffusion.ddpm_timesteps(1000, s.steps)) == list(range(999, 0, -100))  # linspace(-1, 999, 11)


@pytest.mark.parametrize("rebuild", [False, True], ids=["cache_once", "rebuild_context"])
def test_cached_oasis_recipe_matches_oasis_sliding_window_loop(models, rebuild):
    """Within the window, writing each frame once into the cache is Oasis' loop exactly; past it,
    `rebuild_context` is, and the plain cache differs (Oasis' window drops the oldest frames from
    every context frame's history, a cache written once keeps them)."""
    reference, config, params = models
    assert config.window == MAX_FRAMES - 1
    sampler = dataclasses.replace(diffusion.OASIS_SAMPLER, steps=STEPS, noise_clamp=CLAMP, rebuild_context=rebuild)
    prompt, actions = _inputs()
    got, noises = _wm_rollout(config, params, sampler, prompt, actions, jax.random.key(3))
    assert max(float(np.abs(z).max()) for z in noises) > CLAMP  # the clamp bites
    expected = _torch_rollout(reference, prompt, actions, noises)
    assert np.abs(expected[:, PROMPT:]).max() > 0.3 and np.all(np.isfinite(got))  # real frames
    errors = _errors(got, expected)
    inside = MAX_FRAMES  # frames 0 .. MAX_FRAMES - 1 never leave the first window
    assert errors[:inside].max() < ATOL, errors
    if rebuild:
        assert errors.max() < ATOL, errors
    else:
        assert errors[inside:].min() > 1e-3, errors  # the test can tell the two apart


def test_context_is_labelled_not_noised(models):
    """context_noised=False writes the frame itself, labelled at the context level: the cache
    holds the clean latent; with context_noised=True it holds a noised one."""
    _, config, params = models
    prompt, actions = _inputs()
    for noised in (False, True):
        sampler = dataclasses.replace(diffusion.OASIS_SAMPLER, context_noised=noised)
        state = rollout.init_state(config, params, jnp.asarray(prompt), jnp.asarray(actions[:, :1]),
                                   rng=jax.random.key(0), sampler=sampler)
        same = np.allclose(np.asarray(state.cache.previous_Bhwc), prompt[:, -1])
        assert same != noised


def test_converted_oasis_records_its_sampler_and_loads_with_it(tmp_path, models, capsys):
    from test_conversion_dit import convert_cli
    from wm_jax import bundle
    from wm_jax import world as wm_world

    reference, _, _ = models
    torch.save(reference.state_dict(), tmp_path / "oasis.pt")
    argv = [tmp_path / "oasis.pt", tmp_path / "m", "--layout", "oasis", "--heads", HEADS, "--latent-size", "4x6",
            "--max-frames", MAX_FRAMES]
    assert convert_cli(argv) == 0
    recorded = json.loads((tmp_path / "m" / bundle.SAMPLER_FILE).read_text())
    assert bundle.sampler_from_fields(recorded) == diffusion.OASIS_SAMPLER
    world = wm_world.load_world(tmp_path / "m", autoencoder_spec="pixel_p1")
    assert world.info.sampler == diffusion.OASIS_SAMPLER
    world = wm_world.load_world(tmp_path / "m", autoencoder_spec="pixel_p1", sampler_steps=4)
    assert world.info.sampler == dataclasses.replace(diffusion.OASIS_SAMPLER, steps=4)
    (tmp_path / "m" / bundle.SAMPLER_FILE).unlink()  # converted before samplers were recorded: still Oasis'
    assert bundle.recorded_sampler(tmp_path / "m") == diffusion.OASIS_SAMPLER
    (tmp_path / "m" / "conversion.json").unlink()  # a model trained here: the default
    assert bundle.recorded_sampler(tmp_path / "m") == SamplerConfig()


def test_wm_rollout_samples_a_converted_oasis_with_its_recipe(tmp_path, models, capsys):
    from wm_jax import cli
    from test_conversion_dit import convert_cli

    reference, _, _ = models
    torch.save(reference.state_dict(), tmp_path / "oasis.pt")
    assert convert_cli([tmp_path / "oasis.pt", tmp_path / "m", "--layout", "oasis", "--heads", HEADS, "--latent-size",
                        "4x6", "--max-frames", MAX_FRAMES]) == 0
    capsys.readouterr()
    argv = ["rollout", "--checkpoint", str(tmp_path / "m"), "--autoencoder", "pixel_p1", "--keys", "w,a+space,d,w*2",
            "--steps", "2", "--out", str(tmp_path / "o.png")]
    assert cli.main(argv + ["--rebuild-context"]) == 0
    printed = capsys.readouterr().out
    assert "2 denoising steps (ddim; context clean, labelled level 0.014; noise clamped at 20; the cache rebuilt" in printed
    from PIL import Image

    assert Image.open(tmp_path / "o.png").size == (6 * LATENT[1], LATENT[0])  # the start frame + 5, pixel_p1: 4x6


def test_rebuild_context_needs_a_state_made_for_it(models):
    _, config, params = models
    prompt, actions = _inputs()
    state = rollout.init_state(config, params, jnp.asarray(prompt), jnp.asarray(actions[:, :1]), rng=jax.random.key(0),
                               sampler=diffusion.OASIS_SAMPLER)
    step = rollout.make_step(config, dataclasses.replace(diffusion.OASIS_SAMPLER, rebuild_context=True))
    with pytest.raises(ValueError, match="rebuild_context needs the window's frames"):
        step(params, state, jnp.asarray(actions[:, 1]), jax.random.key(1))
