"""The sampler registry (`wm_jax.samplers`): every sampler declares the same interface, the CLI's
--sampler choices are the registry's, and a sampler registered from outside (one module, one
registry entry) is usable by `diffusion.sample` and the rollout without touching anything else."""

import argparse
import functools
import dataclasses
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wm_jax import cli, diffusion, rollout, samplers
from wm_jax.diffusion import Objective, SamplerConfig
from conftest import model_apply

SAMPLER_COMMANDS = ("sample", "rollout", "play", "eval", "bench")
EPSILON = Objective("epsilon", "linear")


def _sampler_flags() -> dict:
    """{command: its --sampler action} from a freshly built `wm` parser."""
    commands = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    return {name: next(a for a in commands[name]._actions if "--sampler" in a.option_strings) for name in SAMPLER_COMMANDS}


def _register(monkeypatch, name: str, **interface) -> types.ModuleType:
    """A sampler module made here and registered under `name`, both undone after the test."""
    module = types.ModuleType(f"toy_sampler_{name}")
    module.NAME, module.OPTIONS = name, ()
    for key, value in interface.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(samplers.SAMPLERS, name, module.__name__)
    return module


def _midpoint(calls):
    """A flow step the registry does not have (explicit midpoint), counting its calls."""

    def step(velocity_fn, x, t, s, z, config):
        calls.append(t)
        half = x + 0.5 * (s - t) * velocity_fn(x, t)
        return x + (s - t) * velocity_fn(half, 0.5 * (t + s))

    return step


def test_every_registered_sampler_declares_the_interface():
    fields = {f.name for f in dataclasses.fields(SamplerConfig)}
    for name in samplers.SAMPLERS:
        module = samplers.get(name)
        assert module.NAME == name
        assert module.FAMILY in samplers.FAMILIES
        assert callable(module.step) and callable(module.stochastic)
        assert set(module.OPTIONS) <= fields, f"{name}: OPTIONS must be SamplerConfig fields"
    assert samplers.fitting("flow") == ("euler", "heun")
    assert samplers.fitting("ddpm") == ("ddpm", "ddim")
    assert samplers.choices() == ("auto", "euler", "heun", "ddpm", "ddim")
    with pytest.raises(ValueError, match="unknown sampler 'rk4'; known samplers: euler, heun, ddpm, ddim"):
        samplers.get("rk4")


def test_each_family_default_is_one_of_its_own_samplers():
    for family in samplers.FAMILIES.values():
        module = __import__(family, fromlist=["DEFAULT"])
        assert module.DEFAULT in samplers.fitting(module.NAME)
    assert diffusion.default_method(diffusion.RECTIFIED_FLOW) == "euler"
    assert diffusion.default_method(EPSILON) == "ddim"


def test_stochastic_is_what_each_sampler_declares():
    assert not diffusion.is_stochastic(diffusion.RECTIFIED_FLOW, SamplerConfig(method="heun"))
    assert diffusion.is_stochastic(EPSILON, SamplerConfig(method="ddpm"))
    assert not diffusion.is_stochastic(EPSILON, SamplerConfig(method="ddim"))
    assert diffusion.is_stochastic(EPSILON, SamplerConfig(method="ddim", eta=0.5))


def test_the_cli_sampler_choices_are_the_registry(monkeypatch):
    for command, flag in _sampler_flags().items():
        assert tuple(flag.choices) == samplers.choices(), command
    _register(monkeypatch, "toy", FAMILY="flow", stochastic=lambda config: False, step=_midpoint([]))
    for command, flag in _sampler_flags().items():
        assert "toy" in flag.choices, f"wm {command} --sampler lists its choices by hand"


def test_a_registered_sampler_samples_through_diffusion_sample(monkeypatch):
    calls = []
    _register(monkeypatch, "toy", FAMILY="flow", stochastic=lambda config: False, step=_midpoint(calls))
    velocity_fn = lambda x, t: jnp.sin(3.0 * x) * (1.0 + t)  # not linear in x: midpoint != Euler
    noise = jax.random.normal(jax.random.key(0), (2, 4, 4, 3))
    got = diffusion.sample(velocity_fn, noise, SamplerConfig(steps=3, method="toy"))
    expected = noise
    for t, s in zip(diffusion.timesteps(3)[:-1], diffusion.timesteps(3)[1:]):
        half = expected + 0.5 * (s - t) * velocity_fn(expected, t)
        expected = expected + (s - t) * velocity_fn(half, 0.5 * (t + s))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    assert len(calls) == 3
    euler = diffusion.sample(velocity_fn, noise, SamplerConfig(steps=3, method="euler"))
    assert float(jnp.abs(got - euler).max()) > 1e-3
    # It joins its family: named among the flow samplers, refused for a DDPM objective.
    with pytest.raises(ValueError, match=r"sampler 'toy' does not fit .*DDPM epsilon.*'ddpm' or 'ddim'"):
        diffusion.sample(velocity_fn, noise, SamplerConfig(method="toy"), EPSILON)
    with pytest.raises(ValueError, match=r"sampler 'ddim' does not fit .*'euler' or 'heun' or 'toy'"):
        diffusion.sample(velocity_fn, noise, SamplerConfig(method="ddim"))
    monkeypatch.undo()
    with pytest.raises(ValueError, match="sampler method must be one of"):
        SamplerConfig(method="toy")


def test_a_stochastic_flow_sampler_gets_its_noise_from_the_loop(monkeypatch):
    """The family loop draws z = normal(fold_in(rng, k)) at step k (none at the last step)."""
    seen = []

    def step(velocity_fn, x, t, s, z, config):
        seen.append(z is not None)
        return x + (s - t) * velocity_fn(x, t) + (0.0 if z is None else 0.1 * z)

    _register(monkeypatch, "noisy", FAMILY="flow", stochastic=lambda config: True, step=step)
    config = SamplerConfig(steps=2, method="noisy")
    noise = jnp.ones((1, 2, 2, 1))
    with pytest.raises(ValueError, match="the 'noisy' sampler draws noise at every step: pass rng"):
        diffusion.sample(lambda x, t: x, noise, config)
    rng = jax.random.key(4)
    got = diffusion.sample(lambda x, t: x, noise, config, rng=rng)
    x = noise - 0.5 * noise + 0.1 * jax.random.normal(jax.random.fold_in(rng, 0), noise.shape)
    expected = x - 0.5 * x
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-6)
    assert seen == [True, False]


def test_an_option_is_refused_on_the_samplers_that_do_not_read_it(monkeypatch):
    _register(monkeypatch, "toy_ddpm", FAMILY="ddpm", OPTIONS=("eta",), stochastic=lambda config: True,
              step=lambda state, config, objective: state.x0)
    with pytest.raises(ValueError, match="eta 0.5 applies to the 'ddim' or 'toy_ddpm' sampler only, not 'ddpm'"):
        diffusion.sampler_method(EPSILON, SamplerConfig(method="ddpm", eta=0.5))
    assert diffusion.sampler_method(EPSILON, SamplerConfig(method="toy_ddpm", eta=0.5)) == "toy_ddpm"


def test_a_registered_sampler_runs_in_the_rollout(monkeypatch, tiny_config, tiny_random_params):
    """The rollout step with a sampler registered here is that sampler over the full model."""
    calls = []
    _register(monkeypatch, "toy", FAMILY="flow", stochastic=lambda config: False, step=_midpoint(calls))
    config, params, sampler = tiny_config, tiny_random_params, SamplerConfig(steps=2, method="toy")
    h, w = config.latent_size
    context = jax.random.normal(jax.random.key(0), (2, 2, h, w, config.in_channels))
    acts = jax.random.bernoulli(jax.random.key(1), 0.3, (2, 3, config.action_dim)).astype(jnp.float32)
    state = rollout.init_state(config, params, context, acts[:, :2], rng=jax.random.key(0), sampler=sampler)
    rng = jax.random.key(5)
    _, latent = rollout.make_step(config, sampler)(params, state, acts[:, 2], rng)
    assert len(calls) == 2  # traced once, two steps

    full = functools.partial(model_apply(config), params)

    def velocity_fn(x, t):
        clip = jnp.concatenate([context, x[:, None]], axis=1)
        t_BT = jnp.concatenate([jnp.zeros((2, 2)), jnp.full((2, 1), t)], axis=1)
        return full(clip, t_BT, acts)[:, -1]

    rng_noise, _ = jax.random.split(rng)
    expected = diffusion.sample(velocity_fn, jax.random.normal(rng_noise, latent.shape), sampler)
    assert float(jnp.abs(expected).max()) > 0.1
    np.testing.assert_allclose(np.asarray(latent), np.asarray(expected), atol=1e-4)
