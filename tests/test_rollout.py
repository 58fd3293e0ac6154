"""The KV-cache rollout: same frames as the full model, compiled once, constant memory."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wm_jax import diffusion, kv_cache, rollout
from wm_jax import model as wm_model
from wm_jax.diffusion import SamplerConfig

from conftest import model_apply, randomize

SAMPLER = SamplerConfig(steps=3)


def _latents(config, batch, frames, seed=0):
    h, w = config.latent_size
    return jax.random.normal(jax.random.key(seed), (batch, frames, h, w, config.in_channels))


def _actions(config, batch, frames, seed=1):
    return jax.random.bernoulli(jax.random.key(seed), 0.3, (batch, frames, config.action_dim)).astype(jnp.float32)


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_step_equals_sampling_with_the_full_model(tiny_config, tiny_random_params, temperature):
    """A generated frame is what the sampler gives when every velocity comes from the full
    causal model run over [context frames, the frame being denoised], starting from noise of
    standard deviation `temperature`."""
    config, params = tiny_config, tiny_random_params
    sampler = SamplerConfig(steps=3, temperature=temperature)
    context, acts = _latents(config, 2, 3), _actions(config, 2, 4)
    state = rollout.init_state(config, params, context, acts[:, :3], rng=jax.random.key(0), sampler=sampler)
    rng = jax.random.key(5)
    _, latent = rollout.make_step(config, sampler)(params, state, acts[:, 3], rng)

    full = functools.partial(model_apply(config), params)

    def velocity_fn(x, t):
        clip = jnp.concatenate([context, x[:, None]], axis=1)
        t_BT = jnp.concatenate([jnp.zeros((2, 3)), jnp.full((2, 1), t)], axis=1)
        return full(clip, t_BT, acts)[:, -1]

    rng_noise, _ = jax.random.split(rng)
    expected = diffusion.sample(velocity_fn, temperature * jax.random.normal(rng_noise, latent.shape), sampler)
    assert float(jnp.abs(expected).max()) > 0.1
    np.testing.assert_allclose(np.asarray(latent), np.asarray(expected), atol=1e-4)


def test_scan_rollout_equals_repeated_steps(tiny_config, tiny_random_params):
    config, params = tiny_config, tiny_random_params
    acts = _actions(config, 1, 6)
    start = lambda: rollout.init_state(config, params, _latents(config, 1, 1), rng=jax.random.key(0), sampler=SAMPLER)
    rng = jax.random.key(3)
    _, scanned = rollout.make_rollout(config, SAMPLER)(params, start(), acts, rng)
    step = rollout.make_step(config, SAMPLER)
    state, stepped = start(), []
    for i, rng_i in enumerate(jax.random.split(rng, 6)):
        state, latent = step(params, state, acts[:, i], rng_i)
        stepped.append(latent)
    np.testing.assert_allclose(np.asarray(scanned), np.asarray(jnp.stack(stepped, 1)), atol=1e-5)


def test_step_compiles_once_and_state_size_is_constant(tiny_config, tiny_random_params):
    config, params = tiny_config, tiny_random_params
    step = rollout.make_step(config, SAMPLER)
    state = rollout.init_state(config, params, _latents(config, 1, 2), rng=jax.random.key(0), sampler=SAMPLER)
    shapes = jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), state)
    for i in range(2 * config.window + 1):
        state, _ = step(params, state, _actions(config, 1, 1, seed=i)[:, 0], jax.random.key(i))
        assert jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), state) == shapes
    assert step._cache_size() == 1
    assert int(state.frame_count) == 2 + 2 * config.window + 1


def test_thousand_frame_rollout_stays_finite(tiny_config, tiny_random_params):
    config, params = tiny_config, tiny_random_params
    state = rollout.init_state(config, params, _latents(config, 1, 1), rng=jax.random.key(0), sampler=SAMPLER)
    before = state.cache.nbytes
    state, latents = rollout.make_rollout(config, SAMPLER)(params, state, _actions(config, 1, 1000), jax.random.key(1))
    assert latents.shape == (1, 1000, 8, 8, 4)
    assert bool(jnp.isfinite(latents).all())
    assert state.cache.nbytes == before
    assert int(state.frame_count) == 1001
    # Slots hold exactly the last `window` frames.
    assert sorted(np.asarray(state.cache.frame_W).tolist()) == list(range(1001 - config.window, 1001))


def test_guidance_with_the_null_action_changes_nothing(tiny_config, tiny_random_params):
    config, params = tiny_config, tiny_random_params
    state = rollout.init_state(config, params, _latents(config, 1, 2), rng=jax.random.key(0), sampler=SAMPLER)
    null = jnp.asarray(config.action_space.null())[None]
    guided = SamplerConfig(steps=3, guidance=3.0)
    step, guided_step = rollout.make_step(config, SAMPLER), rollout.make_step(config, guided)
    copy = lambda: jax.tree_util.tree_map(jnp.copy, state)  # steps donate their state
    plain = step(params, copy(), null, jax.random.key(2))[1]
    same = guided_step(params, copy(), null, jax.random.key(2))[1]
    np.testing.assert_allclose(np.asarray(plain), np.asarray(same), atol=1e-5)
    pressed = _actions(config, 1, 1)[:, 0]
    a = step(params, copy(), pressed, jax.random.key(2))[1]
    b = guided_step(params, copy(), pressed, jax.random.key(2))[1]
    assert float(jnp.abs(a - b).max()) > 1e-4


@pytest.mark.parametrize("variant, min_level", [({}, 0.0), (dict(temporal_neighbourhood=1), 0.0),
                                                (dict(previous_frame_input=True), 0.0),
                                                (dict(previous_frame_input=True, prediction="x0_residual",
                                                      key_moves=(("left", 0, 1, 0),)), 0.0),
                                                ({}, 0.75)],
                         ids=["same_place", "neighbourhood_1", "previous_frame_input", "x0_residual_key_moves",
                              "guided_at_t1_only"])
def test_guided_step_equals_sampling_with_guided_full_model_velocities(tiny_config, variant, min_level):
    """Guidance runs its conditional and null branches as one batch over the one cache; that
    equals mixing the full model's two velocities, null + g (cond - null), for every element of
    a batch of two (each element must read its own cache, whichever branch it is in). With a
    guidance_min_level only the steps starting at or above it mix; the others are conditional."""
    config = tiny_config.replace(**variant)
    params = randomize(wm_model.init_params(config, jax.random.key(0)), jax.random.key(1))
    sampler = SamplerConfig(steps=2, guidance=2.5, guidance_min_level=min_level)
    context, acts = _latents(config, 2, 3), _actions(config, 2, 4)
    state = rollout.init_state(config, params, context, acts[:, :3], rng=jax.random.key(0), sampler=sampler)
    rng = jax.random.key(5)
    _, latent = rollout.make_step(config, sampler)(params, state, acts[:, 3], rng)

    full = functools.partial(model_apply(config), params)
    null_acts = acts.at[:, 3].set(jnp.asarray(config.action_space.null()))

    def velocity_fn(x, t):
        clip = jnp.concatenate([context, x[:, None]], axis=1)
        t_BT = jnp.concatenate([jnp.zeros((2, 3)), jnp.full((2, 1), t)], axis=1)
        as_velocity = lambda out: diffusion.to_velocity(out, x, jnp.full((2,), t), config.prediction)
        cond, null = as_velocity(full(clip, t_BT, acts)[:, -1]), as_velocity(full(clip, t_BT, null_acts)[:, -1])
        return null + (sampler.guidance if t >= min_level else 1.0) * (cond - null)

    rng_noise, _ = jax.random.split(rng)
    expected = diffusion.sample(velocity_fn, jax.random.normal(rng_noise, latent.shape), sampler)
    assert float(jnp.abs(expected).max()) > 0.1
    np.testing.assert_allclose(np.asarray(latent), np.asarray(expected), atol=1e-4)


def test_recompute_baseline_matches_cached_step_once_the_window_is_full(tiny_config, tiny_random_params):
    config, params = tiny_config, tiny_random_params
    context, acts = _latents(config, 1, config.window), _actions(config, 1, config.window + 1)
    state = rollout.init_state(config, params, context, acts[:, :-1], rng=jax.random.key(0), sampler=SAMPLER)
    window_state = rollout.init_window_state(config, context, acts[:, :-1])
    rng_noise, _ = jax.random.split(jax.random.key(4))
    cached = rollout.make_step(config, SAMPLER)(params, state, acts[:, -1], jax.random.key(4))[1]
    recompute = jax.jit(functools.partial(rollout.recompute_step, config=config, sampler=SAMPLER))
    recomputed = recompute(params, window_state, acts[:, -1], rng_noise)[1]
    np.testing.assert_allclose(np.asarray(cached), np.asarray(recomputed), atol=1e-4)


def test_a_temperature_outside_its_range_is_refused():
    for temperature in (0.0, -1.0, 2.5):
        with pytest.raises(ValueError, match="sampling temperature must be in"):
            SamplerConfig(temperature=temperature)


def test_wrong_action_size_is_refused(tiny_config, tiny_params):
    state = rollout.init_state(tiny_config, tiny_params, _latents(tiny_config, 1, 1), rng=jax.random.key(0))
    with pytest.raises(ValueError, match=r"actions have shape \(1, 3\); expected \(1, 35\)"):
        rollout.step(tiny_params, state, jnp.zeros((1, 3)), jax.random.key(0), config=tiny_config)


def test_context_of_wrong_rank_is_refused(tiny_config, tiny_params):
    with pytest.raises(ValueError, match=r"context latents have shape \(8, 8, 4\); expected \[B, T, 8, 8, 4\]"):
        rollout.init_state(tiny_config, tiny_params, jnp.zeros((8, 8, 4)), rng=jax.random.key(0))


def test_context_noise_reaches_the_cache(tiny_config, tiny_random_params):
    """Cached keys come from the frame noised to the context level (clean when it is 0)."""
    config, params = tiny_config, tiny_random_params
    context = _latents(config, 1, 2)
    clean = rollout.init_state(config, params, context, rng=jax.random.key(0), sampler=SAMPLER)
    noisy_sampler = SamplerConfig(steps=3, context_noise=0.2)
    noisy = rollout.init_state(config, params, context, rng=jax.random.key(0), sampler=noisy_sampler)
    assert max(float(jnp.abs(a - b).max()) for a, b in zip(clean.cache.k_BHNWE, noisy.cache.k_BHNWE)) > 1e-3
    _, latent = rollout.make_step(config, noisy_sampler)(params, noisy, _actions(config, 1, 1)[:, 0], jax.random.key(1))
    assert bool(jnp.isfinite(latent).all())


def test_x0_residual_model_with_a_silent_head_copies_the_last_frame(tiny_config):
    """A freshly initialised head outputs zero (adaLN-Zero), so an x0_residual model's clean-frame
    guess is the previous frame, and each Euler step keeps x on the line to it, so sampling lands on
    it exactly (3 guided steps here): a still scene stays still
    however long the rollout. A velocity model at init lands on noise instead."""
    config = tiny_config.replace(previous_frame_input=True, prediction="x0_residual")
    params = wm_model.init_params(config, jax.random.key(0))
    sampler = SamplerConfig(steps=3, guidance=3.0)  # any sampler: each step lands on the guess exactly
    context = _latents(config, 2, 2)
    state = rollout.init_state(config, params, context, rng=jax.random.key(0), sampler=sampler)
    _, latents = rollout.make_rollout(config, sampler)(params, state, _actions(config, 2, 5), jax.random.key(3))
    np.testing.assert_allclose(np.asarray(latents), np.broadcast_to(np.asarray(context[:, -1:]), latents.shape), atol=1e-5)
    velocity_config = tiny_config.replace(previous_frame_input=True)
    velocity_params = wm_model.init_params(velocity_config, jax.random.key(0))
    state = rollout.init_state(velocity_config, velocity_params, context, rng=jax.random.key(0), sampler=sampler)
    _, drifting = rollout.make_rollout(velocity_config, sampler)(velocity_params, state, _actions(config, 2, 5), jax.random.key(3))
    assert float(jnp.abs(drifting[:, -1] - context[:, -1]).max()) > 0.5


def test_cache_holds_each_frame_in_its_slot_heads_and_tokens_first():
    """One [B, H, N, W, E] buffer per layer: frame f's keys [L, B, N, H, E] land in slot f % W,
    and the ring evicts the oldest frame."""
    layers, batch, window, tokens, heads, dim = 2, 1, 3, 4, 2, 6
    cache = kv_cache.empty(layers, batch, window, tokens, heads, dim, (2, 2, 1))
    frames = [jax.random.normal(jax.random.key(f), (layers, batch, tokens, heads, dim)) for f in range(4)]
    for k in frames:
        cache = cache.write(k, -k, jnp.zeros((batch, 2, 2, 1)))
    assert len(cache.k_BHNWE) == layers and cache.k_BHNWE[0].shape == (batch, heads, tokens, window, dim)
    for f, slot in ((1, 1), (2, 2), (3, 0)):  # frame 0 was evicted by frame 3
        for layer in range(layers):
            np.testing.assert_array_equal(cache.k_BHNWE[layer][:, :, :, slot], jnp.swapaxes(frames[f][layer], 1, 2))
            np.testing.assert_array_equal(cache.v_BHNWE[layer][:, :, :, slot], -jnp.swapaxes(frames[f][layer], 1, 2))
    offsets, valid = cache.offsets()
    np.testing.assert_array_equal(offsets, [1, 3, 2])
    assert bool(valid.all())


def _big_copies(hlo_text: str, elements: int) -> list[str]:
    """The copy and transpose ops of an optimised HLO text with at least `elements` elements."""
    found = []
    for line in hlo_text.splitlines():
        match = re.search(r"= [a-z0-9]+\[([0-9,]*)\]\S* (copy|transpose)\(", line)
        if match and int(np.prod([int(d) for d in match.group(1).split(",") if d])) >= elements:
            found.append(line.strip()[:200])
    return found


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_step_reads_the_cache_without_moving_it(tiny_config, tiny_random_params, guidance):
    """The compiled step holds no copy or transpose as large as one layer's cached keys: read
    in place, the cache costs what attention over it costs, not a pass over the whole buffer per
    frame or per denoising step (issue 20: a slot-major cache was transposed every frame, which
    made the step's cost follow the window's size, not how full it was)."""
    config = tiny_config.replace(window=8, max_frames=9)
    sampler = SamplerConfig(steps=2, guidance=guidance)
    state = rollout.init_state(config, tiny_random_params, _latents(config, 1, 2), rng=jax.random.key(0), sampler=sampler)
    step = rollout.make_step(config, sampler)
    hlo = step.lower(tiny_random_params, state, _actions(config, 1, 1)[:, 0], jax.random.key(1)).compile().as_text()
    per_layer = int(np.prod(state.cache.k_BHNWE[0].shape))
    assert _big_copies(hlo, per_layer) == []
