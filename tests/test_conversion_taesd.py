"""TAESD layout: real taef2 weights through our reader and table vs a PyTorch reference; strictness; CLI."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

from wm_jax.conversion import table as T
from wm_jax.conversion import torch_reader
from wm_jax.conversion.layouts import taesd
from wm_jax import autoencoder as ae

torch = pytest.importorskip("torch")
from torch_reference_taesd import ref_decoder, ref_encoder  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
# CI clones the repo with shared/ beside it; WM_WEIGHTS_DIR points elsewhere.
WEIGHTS = pathlib.Path(os.environ.get("WM_WEIGHTS_DIR", REPO.parent / "shared" / "weights")) / "taef2"
ENC, DEC = WEIGHTS / "taef2_encoder.pth", WEIGHTS / "taef2_decoder.pth"
needs_weights = pytest.mark.skipif(
    not (ENC.exists() and DEC.exists()), reason=f"taef2 weights not found at {WEIGHTS} (set WM_WEIGHTS_DIR)"
)
TOL = 1e-5  # max abs difference, fp32 on both sides (the fp16 files are cast up exactly); measured ~3e-6


@pytest.fixture(scope="module")
def taef2():
    enc = torch_reader.load_state_dict(ENC).tensors
    dec = torch_reader.load_state_dict(DEC).tensors
    sd = taesd.join(enc, dec)
    cfg = taesd.infer_config(sd)
    params = T.apply(taesd.table(cfg), sd, ae.abstract_variables(cfg)["params"])
    variables = {**ae.init(cfg, np.zeros(2, np.uint32)), "params": params}
    return cfg, variables, sd


@pytest.fixture(scope="module")
def torch_ref():
    enc, dec = ref_encoder(32, midblock_gn=True), ref_decoder(32, midblock_gn=True)
    # torch's own strict load: the reference's key names are the checkpoint's.
    enc.load_state_dict(torch.load(ENC, map_location="cpu", weights_only=True))
    dec.load_state_dict(torch.load(DEC, map_location="cpu", weights_only=True))
    return enc.float().eval(), dec.float().eval()


@needs_weights
def test_infer_config_of_taef2_is_the_named_config(taef2):
    cfg, _, _ = taef2
    assert cfg == ae.get_config("taef2")


@needs_weights
def test_taef2_parity_with_pytorch_reference(taef2, torch_ref):
    cfg, variables, _ = taef2
    enc, dec = torch_ref
    rng = np.random.default_rng(0)
    image_01 = rng.uniform(0, 1, (2, 3, 64, 48)).astype(np.float32)  # NCHW, TAESD's [0, 1]
    latent_in = rng.normal(0, 1.5, (2, 32, 8, 6)).astype(np.float32)
    with torch.no_grad():
        ref_latent = enc(torch.from_numpy(image_01)).numpy()
        ref_decoded = dec(torch.from_numpy(latent_in)).numpy()
    # Ours: channels-last, frames in [-1, 1], decoder output in [-1, 1].
    z = np.asarray(ae.encode(variables, image_01.transpose(0, 2, 3, 1) * 2 - 1, cfg))
    x = np.asarray(ae.decode(variables, latent_in.transpose(0, 2, 3, 1), cfg))
    assert z.shape == (2, 8, 6, 32) and x.shape == (2, 64, 48, 3)
    enc_err = np.abs(z - ref_latent.transpose(0, 2, 3, 1)).max()
    dec_err = np.abs((x + 1) / 2 - ref_decoded.transpose(0, 2, 3, 1)).max()
    assert np.abs(ref_latent).max() > 0.5 and np.abs(ref_decoded).std() > 0.05  # outputs are not trivial
    assert enc_err < TOL, enc_err
    assert dec_err < TOL, dec_err


@needs_weights
def test_real_weights_reconstruct_a_smooth_image(taef2):
    """Not a parity check: the converted pair actually autoencodes (catches a swapped pair)."""
    cfg, variables, _ = taef2
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    image = np.stack([np.sin(3 * xx), np.cos(2 * yy), xx * yy], -1).astype(np.float32) * 0.8
    recon = np.asarray(ae.decode(variables, ae.encode(variables, image, cfg), cfg))
    assert np.abs(recon - image).mean() < 0.1


@needs_weights
def test_strict_table_lists_every_problem(taef2):
    cfg, _, sd = taef2
    broken = dict(sd)
    del broken["encoder.3.conv.2.bias"]
    del broken["decoder.19.weight"]
    broken["encoder.99.weight"] = np.zeros((4, 4), np.float16)
    broken["decoder.1.weight"] = np.zeros((64, 16, 3, 3), np.float16)  # a 16-channel latent
    with pytest.raises(T.ConversionError) as info:
        T.apply(taesd.table(cfg), broken, ae.abstract_variables(cfg)["params"])
    problems = {(p.kind, p.name, p.expected, p.found) for p in info.value.problems}
    assert problems == {
        ("missing", "encoder.3.conv.2.bias", (64,), None),
        ("missing", "decoder.19.weight", (3, 64, 3, 3), None),
        ("unexpected", "encoder.99.weight", None, (4, 4)),
        ("shape", "decoder.1.weight", (64, 32, 3, 3), (64, 16, 3, 3)),
    }
    message = str(info.value)
    for name in ("encoder.3.conv.2.bias", "decoder.19.weight", "encoder.99.weight", "(64, 16, 3, 3)"):
        assert name in message


def test_table_covers_every_param_of_other_configs():
    """The generated table writes each leaf exactly once, for configs other than taef2 too."""
    for name in ("taesd", "tiny_f4c8", "small_f8c16"):
        cfg = ae.get_config(name)
        target = T.flatten_target(ae.abstract_variables(cfg)["params"])
        rows = taesd.table(cfg).rows
        assert sorted(r.flax_path for r in rows) == sorted(target), name


def test_random_torch_reference_round_trip_other_shape(tmp_path):
    """A non-taef2 family member (4 latent channels, no GN branch, f4, 2 blocks): torch.save -> convert -> parity."""
    torch.manual_seed(0)
    enc = ref_encoder(4, width=16, levels=2, blocks=2)
    dec = ref_decoder(4, width=16, levels=2, blocks=2)
    torch.save(enc.state_dict(), tmp_path / "e.pth")
    torch.save(dec.state_dict(), tmp_path / "d.pth")
    sd = taesd.join(torch_reader.load_state_dict(tmp_path / "e.pth").tensors, torch_reader.load_state_dict(tmp_path / "d.pth").tensors)
    cfg = taesd.infer_config(sd)
    assert (cfg.latent_channels, cfg.downscale, cfg.width, cfg.blocks, cfg.midblock_gn) == (4, 4, 16, 2, False)
    variables = {**ae.init(cfg, np.zeros(2, np.uint32)), "params": T.apply(taesd.table(cfg), sd, ae.abstract_variables(cfg)["params"])}
    image = np.random.default_rng(1).uniform(0, 1, (1, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        ref_z = enc(torch.from_numpy(image))
        ref_x = dec(ref_z).numpy()
    z = np.asarray(ae.encode(variables, image.transpose(0, 2, 3, 1) * 2 - 1, cfg))
    np.testing.assert_allclose(z, ref_z.numpy().transpose(0, 2, 3, 1), atol=1e-5)
    x = np.asarray(ae.decode(variables, z, cfg))
    np.testing.assert_allclose((x + 1) / 2, ref_x.transpose(0, 2, 3, 1), atol=1e-5)


def test_infer_config_refuses_non_taesd_state_dicts():
    with pytest.raises(ValueError, match="not a TAESD-family"):
        taesd.infer_config({"encoder.0.weight": np.zeros((4, 3, 3, 3)), "encoder.1.weight": np.zeros((4, 4, 3, 3)), "decoder.1.weight": np.zeros((4, 4, 3, 3))})


@needs_weights
def test_wm_convert_cli_writes_a_checkpoint_that_load_reads_and_verifies(tmp_path, torch_ref, capsys):
    from wm_jax import cli

    enc, dec = torch_ref
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 1, (1, 3, 32, 32)).astype(np.float32)
    random_latent = rng.normal(0, 1, (1, 32, 4, 4)).astype(np.float32)
    with torch.no_grad():
        ref = {
            "image": image,
            "latent": enc(torch.from_numpy(image)).numpy(),
            "random_latent": random_latent,
            "decoded_random": dec(torch.from_numpy(random_latent)).numpy(),
        }
    np.savez(tmp_path / "ref.npz", **ref)
    out = tmp_path / "ae"
    argv = ["convert", "--layout", "taesd", "--encoder", str(ENC), "--decoder", str(DEC), "--out", str(out)]
    assert cli.main(argv + ["--verify", str(tmp_path / "ref.npz"), "--tolerance", str(TOL)]) == 0
    printed = capsys.readouterr().out
    assert "parameters: 2677027" in printed and "max abs error: encoder" in printed

    cfg, variables = ae.load(out)
    assert cfg == ae.get_config("taef2")
    z = np.asarray(ae.encode(variables, image.transpose(0, 2, 3, 1) * 2 - 1, cfg))
    np.testing.assert_allclose(z, ref["latent"].transpose(0, 2, 3, 1), atol=TOL)

    # A reference the model does not match fails the command.
    ref["decoded_random"] = ref["decoded_random"] + 0.01
    np.savez(tmp_path / "bad.npz", **ref)
    argv[-1] = str(tmp_path / "ae2")
    assert cli.main(argv + ["--verify", str(tmp_path / "bad.npz")]) == 1
    assert "verification failed" in capsys.readouterr().err


@needs_weights
def test_wm_convert_cli_reports_strict_errors(tmp_path, capsys):
    from wm_jax import cli

    # Encoder and decoder swapped: nothing fits, and the command says so instead of writing.
    argv = ["convert", str(DEC), str(tmp_path / "out"), "--layout", "taesd", "--decoder", str(ENC)]
    assert cli.main(argv) == 2
    assert "were encoder and decoder swapped?" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_wm_convert_single_file_training_checkpoint(tmp_path):
    """One .pt holding {"model", "ema"} with encoder.*/decoder.* keys: ema is taken by default."""
    from wm_jax import cli

    torch.manual_seed(1)
    enc, dec = ref_encoder(4, width=8, levels=2, blocks=1), ref_decoder(4, width=8, levels=2, blocks=1)
    both = {**{f"encoder.{k}": v for k, v in enc.state_dict().items()}, **{f"decoder.{k}": v for k, v in dec.state_dict().items()}}
    torch.save({"model": {k: torch.zeros_like(v) for k, v in both.items()}, "ema": both, "opt": {}}, tmp_path / "train.pt")
    assert cli.main(["convert", str(tmp_path / "train.pt"), str(tmp_path / "ae"), "--layout", "taesd"]) == 0
    cfg, variables = ae.load(tmp_path / "ae")
    assert (cfg.latent_channels, cfg.downscale, cfg.width, cfg.blocks) == (4, 4, 8, 1)
    kernel = variables["params"]["encoder"]["conv_in"]["kernel"]
    np.testing.assert_array_equal(np.asarray(kernel), enc[0].weight.detach().numpy().transpose(2, 3, 1, 0))


def test_table_ignore_patterns_and_transforms():
    """Generic machinery the dit/oasis layouts will use: ignorable keys, split + transpose rows."""
    qkv = np.arange(6 * 2, dtype=np.float32).reshape(6, 2)  # torch [3*out, in]
    table = T.Table(
        name="demo",
        rows=tuple(
            T.Row("qkv.weight", (name, "kernel"), T.Compose((T.Slice(0, 2 * i, 2 * i + 2, parts=3), T.LINEAR)))
            for i, name in enumerate(("q", "k", "v"))
        ),
        ignore=(("*.freqs", "rotary tables are recomputed from the config"),),
    )
    target = {n: {"kernel": np.zeros((2, 2), np.float32)} for n in ("q", "k", "v")}
    out = T.apply(table, {"qkv.weight": qkv, "rope.freqs": np.zeros(3)}, target)
    np.testing.assert_array_equal(out["k"]["kernel"], qkv[2:4].T)
    with pytest.raises(T.ConversionError) as info:
        T.apply(table, {"qkv.weight": np.zeros((9, 2), np.float32)}, target)
    assert [(p.kind, p.expected, p.found) for p in info.value.problems] == [("shape", (6, 2), (9, 2))] * 3
