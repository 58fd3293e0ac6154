"""DiT layout (DiT / SiT / REPA naming): torch.save'd reference DiTs through `wm convert`, compared
with the PyTorch reference (tests/torch_dit_reference.py); the image prior as a world model;
strictness; the fixed position table check; --verify.

Weights are PyTorch's default init (non-zero everywhere, adaLN included), so no path hides."""

from __future__ import annotations

import json
import struct

import jax
import numpy as np
import pytest

from wm_jax.conversion import table as T
from wm_jax.conversion.layouts import dit
from wm_jax import configs
from wm_jax import model as wm_model

torch = pytest.importorskip("torch")
from torch_dit_reference import DiT  # noqa: E402

SIZE, PATCH, CHANNELS, WIDTH, DEPTH, HEADS, CLASSES = 8, 2, 4, 64, 2, 4, 10
NULL = CLASSES  # the null class is the table's last row
TOL = 1e-4


def write_safetensors(path, tensors: dict[str, np.ndarray]) -> None:
    """The safetensors format by hand (no dependency): u64 header length, JSON header, raw bytes."""
    tags = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int64): "I64"}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, value in tensors.items():
        value = np.ascontiguousarray(value)
        header[name] = {"dtype": tags[value.dtype], "shape": list(value.shape), "data_offsets": [offset, offset + value.nbytes]}
        blobs.append(value.tobytes())
        offset += value.nbytes
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def reference_dit(learn_sigma=True, seed=0, depth=DEPTH):
    torch.manual_seed(seed)
    return DiT(SIZE, PATCH, CHANNELS, WIDTH, depth, HEADS, CLASSES, learn_sigma).eval()


def numpy_sd(module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def torch_out(reference, x_BCHW, t_B, y_B) -> np.ndarray:
    with torch.no_grad():
        return reference(torch.from_numpy(x_BCHW), torch.from_numpy(t_B.astype(np.float32)), torch.from_numpy(y_B)).numpy()


def inputs(batch=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, CHANNELS, SIZE, SIZE)).astype(np.float32)
    t = rng.integers(0, 1000, (batch,)).astype(np.int64)
    return x, t


def run_image_model(config, params, x_BCHW, t_B, actions=None):
    b = x_BCHW.shape[0]
    x = x_BCHW.transpose(0, 2, 3, 1)[:, None]
    t = (t_B / 1000.0).astype(np.float32)[:, None]
    a = np.zeros((b, 1, config.action_dim), np.float32) if actions is None else actions
    out = jax.jit(wm_model.WorldModel(config).apply)({"params": params}, x, t, a)
    return np.asarray(out)[:, 0].transpose(0, 3, 1, 2)


def convert_cli(argv) -> int:
    from wm_jax import cli

    return cli.main(["convert", *map(str, argv)])


# ----------------------------------------------------------------------------- shapes and table


@pytest.mark.parametrize("learn_sigma", [True, False])
def test_infer_shape_reads_everything_but_heads(learn_sigma):
    shape = dit.infer_shape(numpy_sd(reference_dit(learn_sigma)))
    assert (shape.width, shape.depth, shape.patch_size, shape.in_channels) == (WIDTH, DEPTH, PATCH, CHANNELS)
    assert shape.latent_size == (SIZE, SIZE) and shape.learn_sigma == learn_sigma
    assert shape.out_channels == (2 if learn_sigma else 1) * CHANNELS
    assert (shape.mlp_hidden, shape.qkv_bias, shape.class_rows) == (4 * WIDTH, True, CLASSES + 1)
    config = dit.image_config(shape, HEADS)
    assert (config.temporal_every, config.pos_embed, config.spatial_rope, config.num_heads) == (0, True, False, HEADS)


def test_table_covers_exactly_the_checkpoint_leaves_of_several_configs():
    """Every target leaf is written by one row or initialised by a declared FROM_INIT pattern."""
    for cfg in (
        configs.get_config("tiny", temporal_every=0),
        configs.get_config("tiny", depth=3, qkv_bias=False, out_channels=8),
        configs.get_config("wm_516m"),
    ):
        ckpt, init = dit.split_target(wm_model.abstract_params(cfg), ("action_embed/kernel", "temporal_*"))
        rows = dit.table(cfg, class_rows=11).rows
        assert sorted(r.flax_path for r in rows) == sorted(T.flatten_target(ckpt))
        assert {p[0] for p in init} == {"action_embed", *(f"temporal_{i}" for i in range(len(cfg.temporal_layers)))}


def test_world_config_keeps_temporal_settings_and_lists_overrides():
    shape = dit.infer_shape(numpy_sd(reference_dit()))
    config, overridden = dit.world_config(shape, configs.get_config("wm_516m"), HEADS)
    assert (config.temporal_every, config.temporal_mlp, config.window, config.max_frames) == (4, True, 12, 13)
    assert (config.width, config.depth, config.latent_size, config.out_channels) == (WIDTH, DEPTH, (SIZE, SIZE), 2 * CHANNELS)
    assert overridden["width"] == (1024, WIDTH) and overridden["num_heads"] == (16, HEADS)
    assert "qkv_bias" not in overridden  # unchanged fields are not listed


# ----------------------------------------------------------------------------- parity through the CLI


@pytest.mark.parametrize("fmt", ["pt", "safetensors", "wrapped"])
def test_cli_converts_and_matches_pytorch(tmp_path, fmt, capsys):
    learn_sigma = fmt != "safetensors"
    reference = reference_dit(learn_sigma, seed=1)
    sd = reference.state_dict()
    if fmt == "pt":
        src = tmp_path / "dit.pt"
        torch.save(sd, src)
    elif fmt == "safetensors":
        src = tmp_path / "dit.safetensors"
        write_safetensors(src, {k: v.numpy() for k, v in sd.items()})
    else:  # a training checkpoint: the model entry is garbage, ema is taken by default
        src = tmp_path / "train.pt"
        torch.save({"model": {k: torch.zeros_like(v) for k, v in sd.items()}, "ema": sd, "opt": {}}, src)

    x, t = inputs()
    y = np.array([NULL, 3, NULL])
    np.savez(tmp_path / "ref.npz", x=x, t=t, y=y, out=torch_out(reference, x, t, y))
    out_dir = tmp_path / "model"
    assert convert_cli([src, out_dir, "--layout", "dit", "--heads", HEADS, "--verify", tmp_path / "ref.npz"]) == 0
    printed = capsys.readouterr().out
    assert "max abs error: dit" in printed and "(the null class)" in printed

    config, params = wm_model.load(str(out_dir))
    assert config.num_heads == HEADS and config.output_channels == (2 if learn_sigma else 1) * CHANNELS
    null = np.full(3, NULL)
    expected = torch_out(reference, x, t, null)
    assert np.abs(expected).max() > 0.5
    np.testing.assert_allclose(run_image_model(config, params, x, t), expected, atol=TOL, rtol=0)
    np.testing.assert_array_equal(np.asarray(params["action_embed"]["kernel"]), 0)
    provenance = json.loads((out_dir / "conversion.json").read_text())
    assert provenance["layout"] == "dit" and provenance["pos_embed_diff"] < 1e-6
    # DiT's objective is recorded (issue 16): DDPM ε, linear betas, 1000 steps, sigma learned iff C_out = 2C.
    assert (config.prediction, config.noise_schedule, config.diffusion_steps) == ("epsilon", "linear", 1000)
    assert config.objective.learned_sigma == learn_sigma and provenance["objective"] == config.objective.describe()


def test_verify_fails_above_tolerance(tmp_path, capsys):
    reference = reference_dit(seed=2)
    torch.save(reference.state_dict(), tmp_path / "dit.pt")
    x, t = inputs(2)
    y = np.array([NULL, 0])
    np.savez(tmp_path / "bad.npz", x=x, t=t, y=y, out=torch_out(reference, x, t, y) + 1e-3)
    assert convert_cli([tmp_path / "dit.pt", tmp_path / "m", "--layout", "dit", "--heads", HEADS,
                        "--verify", tmp_path / "bad.npz"]) == 1
    assert "verification failed" in capsys.readouterr().err


def test_class_label_bakes_that_row_in(tmp_path):
    reference = reference_dit(learn_sigma=False, seed=3)
    torch.save(reference.state_dict(), tmp_path / "dit.pt")
    assert convert_cli([tmp_path / "dit.pt", tmp_path / "m", "--layout", "dit", "--heads", HEADS, "--class-label", 7]) == 0
    config, params = wm_model.load(str(tmp_path / "m"))
    x, t = inputs(2, seed=4)
    got = run_image_model(config, params, x, t)
    np.testing.assert_allclose(got, torch_out(reference, x, t, np.array([7, 7])), atol=TOL, rtol=0)
    assert np.abs(got - torch_out(reference, x, t, np.array([NULL, NULL]))).max() > 1e-2  # the row matters


def test_image_prior_as_world_model_generates_every_frame_as_the_image_model(tmp_path, capsys):
    """--to-world-model tiny: temporal blocks at identity, actions change nothing, every frame = the DiT's output."""
    reference = reference_dit(seed=5)
    torch.save(reference.state_dict(), tmp_path / "dit.pt")
    assert convert_cli([tmp_path / "dit.pt", tmp_path / "wm", "--layout", "dit", "--heads", HEADS,
                        "--to-world-model", "tiny"]) == 0
    assert "overridden" in capsys.readouterr().out
    config, params = wm_model.load(str(tmp_path / "wm"))
    assert config.temporal_layers == (0, 1) and config.temporal_mlp and config.max_frames == 8
    assert not np.any(np.asarray(params["temporal_0"]["adaLN"]["linear"]["kernel"]))

    frames = 5
    rng = np.random.default_rng(6)
    x_BTCHW = rng.standard_normal((2, frames, CHANNELS, SIZE, SIZE)).astype(np.float32)
    t_BT = rng.integers(0, 1000, (2, frames))
    actions = (rng.uniform(size=(2, frames, config.action_dim)) < 0.3).astype(np.float32)
    got = jax.jit(wm_model.WorldModel(config).apply)(
        {"params": params}, x_BTCHW.transpose(0, 1, 3, 4, 2), (t_BT / 1000.0).astype(np.float32), actions
    )
    got = np.asarray(got).transpose(0, 1, 4, 2, 3)
    expected = torch_out(reference, x_BTCHW.reshape(-1, CHANNELS, SIZE, SIZE), t_BT.reshape(-1), np.full(2 * frames, NULL))
    np.testing.assert_allclose(got.reshape(expected.shape), expected, atol=TOL, rtol=0)


# ----------------------------------------------------------------------------- refusals


def test_pos_embed_that_is_not_ours_is_refused(tmp_path, capsys):
    reference = reference_dit(seed=7)
    sd = reference.state_dict()
    sd["pos_embed"] = sd["pos_embed"] + 1e-3  # e.g. a learned or interpolated table
    torch.save(sd, tmp_path / "dit.pt")
    assert convert_cli([tmp_path / "dit.pt", tmp_path / "m", "--layout", "dit", "--heads", HEADS]) == 2
    assert "pos_embed differs" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_heads_that_do_not_divide_the_width_are_refused(tmp_path, capsys):
    torch.save(reference_dit().state_dict(), tmp_path / "dit.pt")
    assert convert_cli([tmp_path / "dit.pt", tmp_path / "m", "--layout", "dit", "--heads", 5]) == 2
    assert "--heads" in capsys.readouterr().err


def test_every_strictness_problem_is_listed_and_repa_projectors_are_ignorable():
    sd = numpy_sd(reference_dit())
    sd["projectors.0.0.weight"] = np.zeros((8, WIDTH), np.float32)  # REPA's training-only head: ignored
    dit.convert(sd, heads=HEADS)
    del sd["blocks.1.mlp.fc2.bias"]
    sd["blocks.0.attn.q_norm.weight"] = np.ones((WIDTH // HEADS,), np.float32)  # a qk-norm variant: not ours
    sd["final_layer.adaLN_modulation.1.bias"] = np.zeros((3 * WIDTH,), np.float32)
    with pytest.raises(T.ConversionError) as info:
        dit.convert(sd, heads=HEADS)
    problems = {(p.kind, p.name, p.expected, p.found) for p in info.value.problems}
    assert problems == {
        ("missing", "blocks.1.mlp.fc2.bias", (WIDTH,), None),
        ("unexpected", "blocks.0.attn.q_norm.weight", None, (WIDTH // HEADS,)),
        ("shape", "final_layer.adaLN_modulation.1.bias", (2 * WIDTH,), (3 * WIDTH,)),
    }


def test_class_label_outside_the_table_and_not_a_dit_are_refused():
    sd = numpy_sd(reference_dit())
    with pytest.raises(ValueError, match="outside the class table"):
        dit.convert(sd, heads=HEADS, class_label=CLASSES + 1)
    with pytest.raises(ValueError, match="not a DiT-layout checkpoint"):
        dit.convert({k: v for k, v in sd.items() if k != "pos_embed"}, heads=HEADS)


def test_unconditional_checkpoint_gets_zero_constant_conditioning():
    sd = numpy_sd(reference_dit())
    del sd["y_embedder.embedding_table.weight"]
    converted = dit.convert(sd, heads=HEADS)
    assert converted.class_table is None and converted.info["class_row"] == "none (unconditional checkpoint)"
    assert "action_embed/bias" in converted.info["from_init"]
    np.testing.assert_array_equal(converted.params["action_embed"]["bias"], 0)
    jax.tree_util.tree_map(lambda a, b: None, converted.params, wm_model.abstract_params(converted.config))  # same tree


def test_timestep_scale_flag_reaches_the_model(tmp_path, capsys):
    """SiT/REPA checkpoints feed t unscaled; --timestep-scale 1 records that in the config. Their
    objective is not DiT's and not in the weights: without --prediction the conversion refuses."""
    import torch
    from torch_dit_reference import DiT

    from wm_jax import cli
    from wm_jax import model as wm_model

    torch.manual_seed(0)
    torch.save(DiT(8, 2, 4, 64, 1, 4, 3, False).state_dict(), tmp_path / "sit.pt")
    argv = ["convert", str(tmp_path / "sit.pt"), str(tmp_path / "out"), "--layout", "dit", "--heads", "4",
            "--timestep-scale", "1"]
    assert cli.main(argv) == 2
    assert "does not say its objective" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert cli.main(argv + ["--prediction", "velocity"]) == 0
    config, _ = wm_model.load(str(tmp_path / "out"))
    assert config.timestep_scale == 1.0
    assert (config.prediction, config.noise_schedule) == ("velocity", "flow")
