"""Oasis layout: an independent PyTorch Oasis-style spatio-temporal DiT (tests/torch_reference_oasis.py),
randomly initialised (PyTorch defaults, non-zero everywhere), saved as .pt / .safetensors / a
training checkpoint, converted with `wm convert --layout oasis`, and compared on multi-frame clips
(causal temporal attention, axial RoPE on a non-square grid, per-frame noise levels and actions)."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from wm_jax.conversion import table as T
from wm_jax.conversion.layouts import oasis
from wm_jax import model as wm_model

torch = pytest.importorskip("torch")
from test_conversion_dit import convert_cli, write_safetensors  # noqa: E402
from torch_reference_oasis import OasisDiT  # noqa: E402

PATCH, CHANNELS, WIDTH, DEPTH, HEADS, ACTIONS = 2, 4, 64, 2, 4, 25
LATENT = (6, 8)  # a 3x4 token grid: non-square, so swapped axial halves would show
FRAMES, MAX_FRAMES = 4, 8
TOL = 1e-4


def reference_oasis(seed=0, **kw):
    torch.manual_seed(seed)
    return OasisDiT(PATCH, CHANNELS, WIDTH, DEPTH, HEADS, action_dim=ACTIONS, **kw).eval()


def numpy_sd(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def clip(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, FRAMES, CHANNELS, *LATENT)).astype(np.float32)
    t = rng.integers(0, 1000, (batch, FRAMES)).astype(np.int64)
    cond = (rng.uniform(size=(batch, FRAMES, ACTIONS)) < 0.3).astype(np.float32)
    cond[..., 15:17] = rng.uniform(-1, 1, (batch, FRAMES, 2))  # cameraX/Y are continuous
    return x, t, cond


def torch_out(reference, x, t, cond):
    with torch.no_grad():
        return reference(torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(cond)).numpy()


def run_model(config, params, x, t, cond):
    out = jax.jit(wm_model.WorldModel(config).apply)(
        {"params": params}, x.transpose(0, 1, 3, 4, 2), (t / 1000.0).astype(np.float32), cond
    )
    return np.asarray(out).transpose(0, 1, 4, 2, 3)


def test_reference_state_dict_has_oasis_keys():
    keys = set(reference_oasis().state_dict())
    assert {"blocks.1.s_attn.to_qkv.weight", "blocks.1.t_attn.to_out.bias", "blocks.0.t_mlp.fc2.weight",
            "blocks.0.s_adaLN_modulation.1.weight", "external_cond.weight", "x_embedder.proj.weight",
            "t_embedder.mlp.2.bias", "final_layer.adaLN_modulation.1.weight", "spatial_rotary_emb.freqs",
            "blocks.1.t_attn.rotary_emb.freqs"} <= keys
    assert "blocks.0.s_attn.to_qkv.bias" not in keys


def test_infer_config_is_the_oasis_layout():
    config = oasis.infer_config(numpy_sd(reference_oasis()), heads=HEADS, latent_size=LATENT, max_frames=MAX_FRAMES)
    assert (config.spatial_rope, config.pos_embed, config.qkv_bias, config.temporal_every, config.temporal_mlp) == (
        True, False, False, 1, True)
    assert (config.width, config.depth, config.patch_size, config.in_channels, config.window) == (
        WIDTH, DEPTH, PATCH, CHANNELS, MAX_FRAMES - 1)
    assert len(config.action_keys) == 25 and config.action_keys == oasis.ACTION_KEYS
    # Keys are named so the player maps them: W is Oasis' "forward" (index 11), space "jump" (17).
    vector = config.action_space.encode(["w", " "])
    assert list(np.flatnonzero(vector)) == [11, 17]


@pytest.mark.parametrize("fmt", ["pt", "safetensors_without_freqs", "wrapped"])
def test_cli_converts_and_matches_pytorch_on_a_clip(tmp_path, fmt, capsys):
    reference = reference_oasis(seed=1)
    sd = reference.state_dict()
    if fmt == "pt":
        src = tmp_path / "oasis.pt"
        torch.save(sd, src)
    elif fmt == "safetensors_without_freqs":  # as the released checkpoint: no rotary tables stored
        src = tmp_path / "oasis.safetensors"
        write_safetensors(src, {k: v.numpy() for k, v in sd.items() if not k.endswith("freqs")})
    else:
        src = tmp_path / "train.pt"
        torch.save({"ema": {k: torch.zeros_like(v) for k, v in sd.items()}, "model": sd}, src)

    x, t, cond = clip()
    expected = torch_out(reference, x, t, cond)
    assert np.abs(expected).max() > 0.5
    np.savez(tmp_path / "ref.npz", x=x, t=t, cond=cond, out=expected)
    argv = [src, tmp_path / "m", "--layout", "oasis", "--heads", HEADS, "--latent-size", "6x8",
            "--max-frames", MAX_FRAMES, "--verify", tmp_path / "ref.npz"]
    if fmt == "wrapped":
        argv += ["--key", "model"]
    assert convert_cli(argv) == 0
    printed = capsys.readouterr().out
    assert "max abs error: oasis" in printed

    config, params = wm_model.load(str(tmp_path / "m"))
    np.testing.assert_allclose(run_model(config, params, x, t, cond), expected, atol=TOL, rtol=0)
    info = json.loads((tmp_path / "m" / "conversion.json").read_text())
    assert info["rotary_tables_checked"] == (0 if fmt.startswith("safetensors") else 2 + 2 * DEPTH)
    # Oasis' objective is recorded, so every sampler samples it as Oasis does (issue 16).
    assert (config.prediction, config.noise_schedule, config.diffusion_steps) == ("v_prediction", "sigmoid", 1000)
    assert info["objective"] == config.objective.describe() and not config.objective.learned_sigma


def test_causal_and_action_paths_are_live():
    """Guards the parity test itself: later frames and actions do change the output, earlier frames don't see the future."""
    reference = reference_oasis(seed=2)
    converted = oasis.convert(numpy_sd(reference), heads=HEADS, latent_size=LATENT, max_frames=MAX_FRAMES)
    config, params = converted.config, converted.params
    x, t, cond = clip(1, seed=3)
    base = run_model(config, params, x, t, cond)
    x2 = x.copy()
    x2[:, -1] += 1.0
    moved = run_model(config, params, x2, t, cond)
    np.testing.assert_allclose(moved[:, :-1], base[:, :-1], atol=1e-5)  # causal: the past ignores the last frame
    assert np.abs(moved[:, -1] - base[:, -1]).max() > 1e-2
    x3 = x.copy()
    x3[:, 0] += 1.0
    assert np.abs(run_model(config, params, x3, t, cond)[:, 1:] - base[:, 1:]).max() > 1e-3  # the future sees the past
    cond2 = cond.copy()
    cond2[:, 2, 11] = 1 - cond2[:, 2, 11]
    assert np.abs(run_model(config, params, x, t, cond2)[:, 2] - base[:, 2]).max() > 1e-3


def test_rotary_tables_that_wm_jax_cannot_express_are_refused():
    sd = numpy_sd(reference_oasis(spatial_max_freq=128.0))
    with pytest.raises(ValueError, match="RoPE frequency tables") as info:
        oasis.convert(sd, heads=HEADS, latent_size=LATENT, max_frames=MAX_FRAMES)
    assert "spatial_rotary_emb.freqs" in str(info.value) and "blocks.1.s_attn.rotary_emb.freqs" in str(info.value)
    assert "temporal_rotary_emb" not in str(info.value)
    sd = numpy_sd(reference_oasis(temporal_theta=500.0))
    with pytest.raises(ValueError, match="temporal_rotary_emb.freqs"):
        oasis.convert(sd, heads=HEADS, latent_size=LATENT, max_frames=MAX_FRAMES)


def test_every_strictness_problem_is_listed():
    sd = numpy_sd(reference_oasis())
    del sd["blocks.1.t_mlp.fc1.weight"]
    sd["blocks.0.t_attn.to_qkv.weight"] = np.zeros((3 * WIDTH, WIDTH + 1), np.float32)
    sd["blocks.0.t_attn.time_pos_embedding.weight"] = np.zeros((4,), np.float32)
    sd["blocks.0.s_attn.some_other.freqs"] = np.zeros((4,), np.float32)  # only the known rotary tables are ignorable
    with pytest.raises(T.ConversionError) as info:
        oasis.convert(sd, heads=HEADS, latent_size=LATENT, max_frames=MAX_FRAMES)
    problems = {(p.kind, p.name, p.expected, p.found) for p in info.value.problems}
    assert problems == {
        ("missing", "blocks.1.t_mlp.fc1.weight", (4 * WIDTH, WIDTH), None),
        ("shape", "blocks.0.t_attn.to_qkv.weight", (3 * WIDTH, WIDTH), (3 * WIDTH, WIDTH + 1)),
        ("unexpected", "blocks.0.t_attn.time_pos_embedding.weight", None, (4,)),
        ("unexpected", "blocks.0.s_attn.some_other.freqs", None, (4,)),
    }


def test_oasis_refuses_dit_only_flags_and_non_oasis_checkpoints(tmp_path, capsys):
    torch.save(reference_oasis().state_dict(), tmp_path / "o.pt")
    assert convert_cli([tmp_path / "o.pt", tmp_path / "m", "--layout", "oasis", "--to-world-model", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "--to-world-model do(es) not apply to --layout oasis" in err and "--latent-size" in err  # and what does
    with pytest.raises(ValueError, match="not an Oasis-layout checkpoint"):
        oasis.infer_config({"x_embedder.proj.weight": np.zeros((8, 4, 2, 2))})
