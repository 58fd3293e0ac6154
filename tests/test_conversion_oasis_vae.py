"""Oasis ViT autoencoder: an independent PyTorch reference (tests/torch_reference_oasis_vae.py) at a
small config, randomly initialised (PyTorch defaults, non-zero biases and norms), saved as
.safetensors, converted with `wm convert --layout oasis-vae --verify`, and compared on encode and
decode. Non-square grid, so swapped rotary axes would show; head_dim 16 rotates half its features."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wm_jax.conversion import table as T
from wm_jax.conversion.layouts import oasis_vae
from wm_jax import autoencoder as ae

torch = pytest.importorskip("torch")
from test_conversion_dit import convert_cli, write_safetensors  # noqa: E402
from torch_reference_oasis_vae import OasisViTVAE  # noqa: E402

LATENT, PATCH, FRAME = 4, 4, (12, 20)  # a 3x5 token grid
ENC, DEC, HEADS = (32, 2), (48, 2), 2  # width, depth; head_dim 16 and 24
TOL = 1e-4  # float32 on both sides; measured 3.6e-7 (encode) and 6.0e-7 (decode); swapped rotary axes give 0.13


def reference_vae(seed=0):
    torch.manual_seed(seed)
    vae = OasisViTVAE(LATENT, *FRAME, PATCH, ENC[0], ENC[1], HEADS, DEC[0], DEC[1], HEADS).eval()
    with torch.no_grad():  # PyTorch inits LayerNorms to (1, 0): perturb them so a swapped scale/bias shows
        for name, p in vae.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn_like(p))
    return vae


def numpy_sd(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def reference_npz(vae, path, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.uniform(-1, 1, (2, 3, *FRAME)).astype(np.float32)
    random_latent = rng.standard_normal((2, (FRAME[0] // PATCH) * (FRAME[1] // PATCH), LATENT)).astype(np.float32)
    with torch.no_grad():
        latent = vae.encode(torch.from_numpy(image)).numpy()
        decoded = vae.decode(torch.from_numpy(random_latent)).numpy()
    np.savez(path, image=image, latent=latent, random_latent=random_latent, decoded_random=decoded)
    return image, latent, random_latent, decoded


def test_cli_converts_and_matches_pytorch_encode_and_decode(tmp_path, capsys):
    vae = reference_vae()
    write_safetensors(tmp_path / "vae.safetensors", numpy_sd(vae))
    image, latent, random_latent, decoded = reference_npz(vae, tmp_path / "ref.npz")
    assert np.abs(latent).max() > 0.3 and np.abs(decoded).max() > 0.3  # the paths are live
    argv = [tmp_path / "vae.safetensors", tmp_path / "ae", "--layout", "oasis-vae", "--heads", HEADS,
            "--frame-size", f"{FRAME[0]}x{FRAME[1]}", "--verify", tmp_path / "ref.npz"]
    assert convert_cli(argv) == 0
    printed = capsys.readouterr().out
    assert "max abs error: encoder" in printed and "max abs error: decoder" in printed

    config, variables = ae.load(tmp_path / "ae")
    assert (config.kind, config.downscale, config.latent_channels, config.frame_size) == ("vit", PATCH, LATENT, FRAME)
    assert (config.width, config.blocks, config.decoder_width, config.decoder_blocks) == (*ENC, *DEC)
    # Normalised latents are Oasis' DiT latents: the posterior mean times its scaling factor.
    h, w = FRAME[0] // PATCH, FRAME[1] // PATCH
    z = np.asarray(ae.encode(variables, image.transpose(0, 2, 3, 1), config))
    np.testing.assert_allclose(z, latent.reshape(2, h, w, LATENT) * oasis_vae.SCALING_FACTOR, atol=TOL, rtol=0)
    x = np.asarray(ae.decode(variables, random_latent.reshape(2, h, w, LATENT) * oasis_vae.SCALING_FACTOR, config))
    np.testing.assert_allclose(x, decoded.transpose(0, 2, 3, 1), atol=TOL, rtol=0)
    info = json.loads((tmp_path / "ae" / "autoencoder.json").read_text())["info"]
    assert info["layout"] == "oasis-vae"


def test_verify_fails_loudly_on_a_wrong_reference(tmp_path, capsys):
    vae = reference_vae()
    write_safetensors(tmp_path / "vae.safetensors", numpy_sd(vae))
    reference_npz(reference_vae(seed=1), tmp_path / "other.npz")  # another network's outputs
    argv = [tmp_path / "vae.safetensors", tmp_path / "ae", "--layout", "oasis-vae", "--heads", HEADS,
            "--frame-size", f"{FRAME[0]}x{FRAME[1]}", "--verify", tmp_path / "other.npz"]
    assert convert_cli(argv) == 1
    assert "verification failed" in capsys.readouterr().err


def test_every_strictness_problem_is_listed():
    sd = numpy_sd(reference_vae())
    del sd["decoder.1.mlp.fc2.bias"]
    sd["encoder.0.attn.qkv.weight"] = np.zeros((3 * ENC[0], ENC[0] + 1), np.float32)
    sd["encoder.0.attn.rotary_freqs"] = np.zeros((3, 5, 8), np.float32)  # a buffer Oasis never stores
    with pytest.raises(T.ConversionError) as info:
        oasis_vae.convert(sd, heads=HEADS, frame_size=FRAME)
    problems = {(p.kind, p.name, p.expected, p.found) for p in info.value.problems}
    assert problems == {
        ("missing", "decoder.1.mlp.fc2.bias", (DEC[0],), None),
        ("shape", "encoder.0.attn.qkv.weight", (3 * ENC[0], ENC[0]), (3 * ENC[0], ENC[0] + 1)),
        ("unexpected", "encoder.0.attn.rotary_freqs", None, (3, 5, 8)),
    }


def test_wrong_sizes_and_non_vae_checkpoints_are_refused():
    converted = oasis_vae.convert(numpy_sd(reference_vae()), heads=HEADS, frame_size=FRAME)
    config, variables = converted.config, converted.variables
    with pytest.raises(ValueError, match=r"runs at 12x20 frames only .* got 16x20"):
        ae.encode(variables, np.zeros((1, 16, 20, 3), np.float32), config)
    with pytest.raises(ValueError, match=r"decodes 3x5 latents only"):
        ae.decode(variables, np.zeros((1, 4, 5, LATENT), np.float32), config)
    with pytest.raises(ValueError, match="not an Oasis ViT-VAE checkpoint"):
        oasis_vae.infer_config({"encoder.0.weight": np.zeros((8, 3, 3, 3))})
    with pytest.raises(ValueError, match="head_dim divisible by 8"):
        oasis_vae.convert(numpy_sd(reference_vae()), heads=3, frame_size=FRAME)


def test_flags_of_other_layouts_are_refused(tmp_path, capsys):
    write_safetensors(tmp_path / "vae.safetensors", numpy_sd(reference_vae()))
    argv = [tmp_path / "vae.safetensors", tmp_path / "ae", "--layout", "oasis-vae", "--heads", HEADS,
            "--frame-size", f"{FRAME[0]}x{FRAME[1]}", "--latent-size", "3x5"]
    assert convert_cli(argv) == 2
    assert "--latent-size" in capsys.readouterr().err and not (tmp_path / "ae").exists()


def test_released_config_shapes():
    """The released ViT-VAE-L/20's shapes, from its description: ~ 4 x 12.6M per block-pair, no compute."""
    cfg = oasis_vae.OASIS_VIT_L20
    shapes = ae.abstract_variables(cfg)["params"]
    assert shapes["encoder"]["patch_embed"]["kernel"].shape == (20, 20, 3, 1024)
    assert shapes["encoder"]["quant"]["kernel"].shape == (1024, 32)
    assert shapes["decoder"]["predictor"]["kernel"].shape == (1024, 1200)
    assert len([k for k in shapes["decoder"] if k.startswith("block_")]) == 12
    assert cfg.latent_grid == (18, 32)
    rows = oasis_vae.table(cfg).rows
    assert len(rows) == 2 + 6 * 12 + 2 + 2 + 2 + 12 * 12 + 2 + 2 == 228  # 12 tensors a block, 18 blocks, and the ends
