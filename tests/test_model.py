"""The world model: streaming equals the full causal pass, identity of fresh temporal blocks,
causality, and clear errors for bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wm_jax import configs
from wm_jax import model as wm_model
from wm_jax.model import WorldModel

from conftest import model_apply, randomize


def _inputs(config, batch, frames, seed=0):
    h, w = config.latent_size
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(k1, (batch, frames, h, w, config.in_channels))
    t = jax.random.uniform(k2, (batch, frames))
    a = jax.random.bernoulli(k3, 0.2, (batch, frames, config.action_dim)).astype(jnp.float32)
    return x, t, a


def _stream_all(config, params, x, t, a):
    """Run frames one by one through `stream`, writing each frame's keys and values."""
    cache = wm_model.empty_cache(config, x.shape[0])
    model = WorldModel(config)
    stream = jax.jit(lambda p, x, t, a, c: model.apply(
        {"params": p}, x, t, a, model.apply({"params": p}, c, method="read_cache"), method="stream"
    ))
    outputs = []
    for i in range(x.shape[1]):
        out, (k, v) = stream(params, x[:, i], t[:, i], a[:, i], cache)
        cache = cache.write(k, v, x[:, i])
        outputs.append(out)
    return jnp.stack(outputs, axis=1)


@pytest.mark.parametrize("frames", [3, 8])  # shorter than the window (4), and twice as long
def test_streaming_equals_full_causal_pass(tiny_config, tiny_random_params, frames):
    config = tiny_config.replace(max_frames=frames)
    x, t, a = _inputs(config, 2, frames)
    full = model_apply(config)(tiny_random_params, x, t, a)
    streamed = _stream_all(config, tiny_random_params, x, t, a)
    assert float(jnp.abs(full).max()) > 0.1  # a real signal, not zeros compared with zeros
    np.testing.assert_array_less(np.abs(np.asarray(full - streamed)).max(), 1e-4)


def test_window_limits_what_a_frame_sees(tiny_config):
    """With one temporal layer, a frame more than `window` frames back no longer influences the
    output (with L temporal layers the receptive field is L·window, as with any stack of
    sliding windows; the cache holds exactly what that needs)."""
    config = tiny_config.replace(max_frames=7, temporal_every=2)
    assert len(config.temporal_layers) == 1
    params = randomize(wm_model.init_params(config, jax.random.key(0)), jax.random.key(3))
    x, t, a = _inputs(config, 1, 7)
    apply = lambda x: model_apply(config)(params, x, t, a)
    changed = apply(x.at[:, 0].add(1.0)) - apply(x)
    span = config.window  # frame 0 is seen by frames 0..window
    assert float(jnp.abs(changed[:, span]).max()) > 1e-4
    assert float(jnp.abs(changed[:, span + 1:]).max()) == 0.0


def test_fresh_temporal_blocks_are_identity(tiny_config, tiny_params):
    """Random spatial weights, temporal blocks and action embedding at init: every frame's
    output equals the image model's output for that frame alone."""
    spatial = {k: v for k, v in tiny_params.items() if not k.startswith("temporal_") and k != "action_embed"}
    spatial = randomize(spatial, jax.random.key(7))
    bias = 0.1 * jax.random.normal(jax.random.key(8), tiny_params["action_embed"]["bias"].shape)
    world_params = {**tiny_params, **spatial, "action_embed": {**tiny_params["action_embed"], "bias": bias}}
    image_config = tiny_config.replace(temporal_every=0, max_frames=1)
    image_params = {**spatial, "action_embed": world_params["action_embed"]}
    x, t, a = _inputs(tiny_config, 2, 5)
    world = model_apply(tiny_config)(world_params, x, t, a)
    for i in range(5):
        image = model_apply(image_config)(image_params, x[:, i:i + 1], t[:, i:i + 1], a[:, i:i + 1])
        np.testing.assert_allclose(world[:, i], image[:, 0], atol=1e-5)
    assert float(jnp.abs(world).max()) > 0.1


@pytest.mark.parametrize("what", ["frame", "action", "noise_level"])
def test_causality(tiny_config, tiny_random_params, what):
    x, t, a = _inputs(tiny_config, 1, 6)
    apply = functools.partial(model_apply(tiny_config), tiny_random_params)
    base = apply(x, t, a)
    changed = {
        "frame": lambda: apply(x.at[:, 3].add(1.0), t, a),
        "action": lambda: apply(x, t, a.at[:, 3].set(1.0 - a[:, 3])),
        "noise_level": lambda: apply(x, t.at[:, 3].set(1.0 - t[:, 3]), a),
    }[what]()
    np.testing.assert_array_equal(np.asarray(base[:, :3]), np.asarray(changed[:, :3]))
    assert float(jnp.abs(base[:, 3:] - changed[:, 3:]).max()) > 1e-4


def test_output_channels_follow_learn_sigma(tiny_params):
    config = configs.get_config("tiny", out_channels=8, temporal_every=0, max_frames=1)
    params = wm_model.init_params(config, jax.random.key(0))
    x, t, a = _inputs(config, 1, 1)
    assert model_apply(config)(params, x, t, a).shape == (1, 1, 8, 8, 8)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(x_shape=(1, 2, 8, 8, 3)), r"latents have shape \(1, 2, 8, 8, 3\); this model expects \[B, T, 8, 8, 4\]"),
        (dict(x_shape=(1, 2, 16, 16, 4)), r"latents have shape .*expects \[B, T, 8, 8, 4\]"),
        (dict(x_shape=(2, 8, 8, 4)), r"latents have shape \(2, 8, 8, 4\)"),
        (dict(a_dim=5), r"actions have shape \(1, 2, 5\); expected \(1, 2, 35\)"),
        (dict(frames=9), r"clip has 9 frames; .* max_frames=8"),
    ],
)
def test_bad_input_is_refused_clearly(tiny_config, tiny_params, change, message):
    frames = change.get("frames", 2)
    x_shape = change.get("x_shape", (1, frames, 8, 8, 4))
    x = jnp.zeros(x_shape)
    t = jnp.zeros(x_shape[:-3])
    a = jnp.zeros(x_shape[:-3] + (change.get("a_dim", tiny_config.action_dim),))
    with pytest.raises(ValueError, match=message):
        WorldModel(tiny_config).apply({"params": tiny_params}, x, t, a)


def test_unknown_configuration_name():
    with pytest.raises(KeyError, match="unknown model configuration 'wm_9b'; known: .*tiny"):
        configs.get_config("wm_9b")


@pytest.mark.parametrize("name, expected", [("image_420m", 420e6), ("wm_516m", 516e6), ("wm_800m", 800e6)])
def test_named_configuration_sizes(name, expected):
    count = wm_model.count_params(wm_model.abstract_params(configs.get_config(name)))
    assert abs(count / expected - 1) < 0.02, f"{name} has {count:,} parameters"


def test_save_and_load_round_trip(tmp_path, tiny_config, tiny_random_params):
    wm_model.save(str(tmp_path / "m"), tiny_config, tiny_random_params)
    config, params = wm_model.load(str(tmp_path / "m"))
    assert config == tiny_config
    jax.tree_util.tree_map(np.testing.assert_array_equal, params, tiny_random_params)


def test_load_names_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a wm_jax model directory"):
        wm_model.load(str(tmp_path / "nothing"))


@pytest.mark.parametrize(
    "variant",
    [
        # The open Oasis layout: axial spatial RoPE, no absolute positions, no qkv bias, temporal MLP.
        dict(spatial_rope=True, pos_embed=False, qkv_bias=False, temporal_every=1, temporal_mlp=True),
        dict(remat=True),
        dict(temporal_every=2, temporal_mlp=False),
        dict(temporal_neighbourhood=1, window=3),
        dict(previous_frame_input=True, window=3),
        dict(prediction="x0_residual", temporal_neighbourhood=1, window=3),
        dict(temporal_neighbourhood=1, keys_steer_offsets=True, window=3),
        dict(prediction="x0_residual", key_moves=(("left", 0, 1, 0), ("e", 0, 0, 0.1)), previous_frame_input=True, window=3),
        dict(prediction="x0_residual", key_moves=(("left", 0, 2, 0), ("q", 0, 0, -0.1)), paint_uncovered_only=True,
             uncovered_fill="mirror", previous_frame_input=True, window=3),
        dict(prediction="x0_residual", key_moves=(("left", 0, 2, 0),), paint_uncovered_only=True,
             uncovered_fill="mirror", still_region=(5, 2, 8, 5), previous_frame_input=True, window=3),
    ],
    ids=["oasis_layout", "remat", "every_2nd_attention_only", "neighbourhood_1", "previous_frame_input",
         "x0_residual_without_input", "keys_steer_offsets", "x0_residual_key_moves", "paint_uncovered_only_mirror",
         "still_region"],
)
def test_variants_stream_like_the_full_pass(tiny_config, variant):
    config = tiny_config.replace(max_frames=6, **variant)
    params = randomize(wm_model.init_params(config, jax.random.key(0)), jax.random.key(2))
    x, t, a = _inputs(config, 1, 6)
    full = model_apply(config)(params, x, t, a)
    np.testing.assert_array_less(np.abs(np.asarray(full - _stream_all(config, params, x, t, a))).max(), 1e-4)


def test_previous_frame_input_feeds_exactly_the_frame_before(tiny_config):
    """Without temporal blocks, a frame's output depends on its own input and the one before it
    (zeros for the first), never on earlier frames; the extra patch-embedding channels are the
    previous frame's."""
    config = tiny_config.replace(temporal_every=0, max_frames=4, previous_frame_input=True)
    params = randomize(wm_model.init_params(config, jax.random.key(0)), jax.random.key(2))
    assert params["patch_embed"]["proj"]["kernel"].shape[2] == 2 * config.in_channels
    x, t, a = _inputs(config, 1, 4)
    apply = lambda x: model_apply(config)(params, x, t, a)
    changed = np.abs(np.asarray(apply(x.at[:, 1].add(1.0)) - apply(x))).max(axis=(0, 2, 3, 4))
    assert changed[0] == 0 and changed[1] > 1e-3 and changed[2] > 1e-3 and changed[3] == 0
    first_alone = model_apply(config)(params, x[:, :1], t[:, :1], a[:, :1])
    np.testing.assert_allclose(apply(x)[:, 0], first_alone[:, 0], atol=1e-6)


def test_unknown_prediction_is_refused(tiny_config):
    with pytest.raises(ValueError, match="prediction must be one of"):
        tiny_config.replace(prediction="sample")


def test_bfloat16_compute_keeps_fp32_params_and_tracks_fp32(tiny_config, tiny_random_params):
    config = tiny_config.replace(compute_dtype="bfloat16")
    params = wm_model.init_params(config, jax.random.key(0))
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(params)} == {jnp.dtype("float32")}
    x, t, a = _inputs(config, 1, 3)
    low = model_apply(config)(tiny_random_params, x, t, a)
    high = model_apply(tiny_config)(tiny_random_params, x, t, a)
    assert low.dtype == jnp.float32
    relative = float(jnp.linalg.norm(low - high) / jnp.linalg.norm(high))
    assert 0 < relative < 0.05


def test_action_gain_scales_the_action_embedding_only(tiny_config, tiny_random_params):
    """gain g with the action embedding divided by g is the same function (experiments.action_gain)."""
    import dataclasses

    x = jax.random.normal(jax.random.key(0), (1, 2, *tiny_config.latent_size, tiny_config.in_channels))
    t = jnp.array([[0.0, 0.7]])
    actions = jnp.asarray(np.stack([tiny_config.action_space.encode(k) for k in (["w"], ["a", "shift"])]))[None]
    gained = dataclasses.replace(tiny_config, action_gain=16.0)
    params = dict(tiny_random_params)
    params["action_embed"] = jax.tree.map(lambda p: p / 16.0, params["action_embed"])
    reference = model_apply(tiny_config)(tiny_random_params, x, t, actions)
    np.testing.assert_allclose(model_apply(gained)(params, x, t, actions), reference, atol=1e-5)
    # ...and the gain really multiplies: with the undivided embedding the output differs.
    assert not np.allclose(model_apply(gained)(tiny_random_params, x, t, actions), reference, atol=1e-3)


def test_neighbours_are_the_tokens_around_each_token_and_zero_off_the_grid():
    """Both forms of the neighbourhood: the gather (whole clips) and the offset map (streaming)."""
    from wm_jax.blocks import neighbour_offsets, neighbours, offset_index_NM, on_grid_NS

    grid = (3, 4)
    ids = jnp.arange(1, 13, dtype=jnp.float32).reshape(1, 1, 12, 1, 1)  # token id + 1, row-major
    around = np.asarray(neighbours(ids, grid, 1))[0, 0, :, :, 0, 0]  # [N, S]
    on_grid = on_grid_NS(grid, 1)
    for n in range(12):
        row, col = divmod(n, 4)
        for s, (dy, dx) in enumerate(neighbour_offsets(1)):
            inside = 0 <= row + dy < 3 and 0 <= col + dx < 4
            assert on_grid[n, s] == inside
            assert around[n, s] == ((row + dy) * 4 + col + dx + 1 if inside else 0)
    index = offset_index_NM(grid, 1)
    for n in range(12):
        assert sorted(index[n][index[n] >= 0].tolist()) == np.nonzero(on_grid[n])[0].tolist()
        for m in np.nonzero(index[n] >= 0)[0]:
            assert around[n, index[n, m]] == m + 1


def test_neighbourhood_block_starts_near_same_place_attention_and_can_look_aside(tiny_config):
    """The offset bias starts at -4 off-centre: close to, not equal to, the same-place block; a
    large bias towards one offset makes each token read its neighbour there."""
    config = tiny_config.replace(max_frames=4, temporal_every=1)
    wide = config.replace(temporal_neighbourhood=1)
    params = randomize(wm_model.init_params(config, jax.random.key(0)), jax.random.key(2))
    wide_params = wm_model.init_params(wide, jax.random.key(0))
    merged = jax.tree_util.tree_map_with_path(
        lambda path, leaf: _lookup(params, path) if _has(params, path) else leaf, wide_params
    )
    x, t, a = _inputs(config, 1, 4)
    same = model_apply(config)(params, x, t, a)
    near = model_apply(wide)(merged, x, t, a)
    relative = float(jnp.linalg.norm(near - same) / jnp.linalg.norm(same))
    assert 0 < relative < 0.5
    leaning = jax.tree_util.tree_map_with_path(
        lambda path, leaf: leaf.at[:, 5].set(8.0).at[:, 4].set(-8.0) if "offset_bias" in str(path) else leaf, merged
    )
    assert float(jnp.linalg.norm(model_apply(wide)(leaning, x, t, a) - near)) > 0.1 * float(jnp.linalg.norm(near - same))


def _keys(path):
    return [getattr(p, "key", getattr(p, "name", None)) for p in path]


def _has(tree, path):
    node = tree
    for key in _keys(path):
        if key not in node:
            return False
        node = node[key]
    return True


def _lookup(tree, path):
    node = tree
    for key in _keys(path):
        node = node[key]
    return node


def test_keys_steer_the_neighbourhood_offsets(tiny_config):
    """A key's offset scores move the output only when that key is held; fresh, they are zero."""
    config = tiny_config.replace(max_frames=4, window=3, temporal_neighbourhood=1, keys_steer_offsets=True)
    params = randomize(wm_model.init_params(config, jax.random.key(0)), jax.random.key(2))
    fresh = wm_model.init_params(config, jax.random.key(0))
    assert not np.any(np.asarray(fresh["temporal_0"]["offset_action"]))
    x, t, _ = _inputs(config, 1, 4)
    left = config.action_space.encode(["left"])
    held = jnp.broadcast_to(jnp.asarray(left, jnp.float32), (1, 4, config.action_dim))
    none = jnp.zeros_like(held)
    k = config.action_keys.index("left")
    steered = jax.tree_util.tree_map(lambda p: p, params)
    steered["temporal_0"]["offset_action"] = params["temporal_0"]["offset_action"].at[k, :, 0].add(1.0)  # one offset: a uniform shift is no preference
    apply = lambda p, a: model_apply(config)(p, x, t, a)
    assert float(jnp.abs(apply(steered, held) - apply(params, held)).max()) > 1e-3
    np.testing.assert_array_equal(np.asarray(apply(steered, none)), np.asarray(apply(params, none)))
    with pytest.raises(ValueError, match="needs temporal_neighbourhood"):
        tiny_config.replace(keys_steer_offsets=True)


def test_x0_residual_training_adds_the_change_to_the_clean_frame_before(tiny_config):
    """Training passes the clean latents: a fresh (silent-headed) x0_residual model's guess is
    then the clean frame before, not the input's noised copy of it; without them, the input's."""
    config = tiny_config.replace(prediction="x0_residual", max_frames=3)
    params = wm_model.init_params(config, jax.random.key(0))
    clean = jax.random.normal(jax.random.key(1), (1, 3, *config.latent_size, config.in_channels))
    noisy = clean + 0.3 * jax.random.normal(jax.random.key(2), clean.shape)
    t, a = jnp.zeros((1, 3)), jnp.zeros((1, 3, config.action_dim))
    out = model_apply(config)(params, noisy, t, a, clean)
    np.testing.assert_array_equal(np.asarray(out[:, 1:]), np.asarray(clean[:, :-1]))
    out = model_apply(config)(params, noisy, t, a)
    np.testing.assert_array_equal(np.asarray(out[:, 1:]), np.asarray(noisy[:, :-1]))
