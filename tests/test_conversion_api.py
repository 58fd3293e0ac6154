"""wm_jax.conversion as a library (no CLI): one `convert` / `verify` / `save` for every layout,
the layout registry, and its refusals. Tiny PyTorch references (default init, non-zero
everywhere) give the outputs the converted models must reproduce."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from wm_jax import autoencoder as ae
from wm_jax import conversion
from wm_jax import model as wm_model
from wm_jax.conversion import layouts

torch = pytest.importorskip("torch")
from torch_dit_reference import DiT  # noqa: E402
from torch_reference_taesd import ref_decoder, ref_encoder  # noqa: E402

SIZE, PATCH, CHANNELS, WIDTH, DEPTH, HEADS, CLASSES = 8, 2, 4, 32, 1, 4, 5
TOL = 1e-4


def _numpy(module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def test_every_registered_layout_has_the_interface():
    assert set(layouts.NAMES) == {"taesd", "dit", "oasis", "oasis-vae"}
    for name in layouts.NAMES:
        module = layouts.get(name)
        assert module.NAME == name
        first = next(iter(inspect.signature(module.convert).parameters))
        assert first == "state_dict", name  # convert(state_dict, **options)
        assert list(inspect.signature(module.verify).parameters) == ["converted", "reference"], name
    assert conversion.options("oasis-vae") == ["heads", "frame_size"]


def test_unknown_layout_is_refused_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown layout 'sd-vae'; known layouts: dit, oasis, oasis-vae, taesd"):
        conversion.convert({"w": np.zeros(2, np.float32)}, "sd-vae")


def test_dit_from_a_state_dict_in_memory_verifies_and_saves(tmp_path):
    torch.manual_seed(0)
    reference = DiT(SIZE, PATCH, CHANNELS, WIDTH, DEPTH, HEADS, CLASSES, True).eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, CHANNELS, SIZE, SIZE)).astype(np.float32)
    t, y = np.array([10, 900]), np.array([CLASSES, 2])  # the null class and a class
    with torch.no_grad():
        out = reference(torch.from_numpy(x), torch.from_numpy(t.astype(np.float32)), torch.from_numpy(y)).numpy()

    converted = conversion.convert(_numpy(reference), "dit", heads=HEADS)
    assert converted.layout == "dit" and converted.info["layout"] == "dit" and converted.info["source"] == "(in memory)"
    assert converted.config.num_heads == HEADS and converted.class_table.shape == (CLASSES + 1, WIDTH)
    errors = conversion.verify(converted, {"x": x, "t": t, "y": y, "out": out})
    assert np.abs(out).max() > 0.5 and errors["dit"] < TOL
    wrong = conversion.verify(converted, {"x": x, "t": t, "y": y, "out": out + 1e-2})
    assert wrong["dit"] > 1e-3  # verify can fail

    written = conversion.save(converted, tmp_path / "dit")
    config, params = wm_model.load(str(written))
    assert config == converted.config
    np.testing.assert_array_equal(np.asarray(params["final"]["linear"]["kernel"]),
                                  np.asarray(converted.params["final"]["linear"]["kernel"]))
    np.testing.assert_array_equal(np.load(written / conversion.CLASS_TABLE_FILE), converted.class_table)
    assert json.loads((written / conversion.PROVENANCE_FILE).read_text())["class_row"] == f"{CLASSES} of {CLASSES + 1} (the null class)"
    with pytest.raises(ValueError, match="exists and is not empty"):
        conversion.save(converted, written)


def test_taesd_from_two_files_as_parts_verifies_and_saves(tmp_path):
    torch.manual_seed(1)
    enc, dec = ref_encoder(4, width=8, levels=2, blocks=1).eval(), ref_decoder(4, width=8, levels=2, blocks=1).eval()
    torch.save(enc.state_dict(), tmp_path / "e.pth")
    torch.save(dec.state_dict(), tmp_path / "d.pth")
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32)
    latent = rng.standard_normal((1, 4, 4, 4)).astype(np.float32)
    with torch.no_grad():
        reference = {"image": image, "latent": enc(torch.from_numpy(image)).numpy(), "random_latent": latent,
                     "decoded_random": dec(torch.from_numpy(latent)).numpy()}

    converted = conversion.convert({"encoder": tmp_path / "e.pth", "decoder": tmp_path / "d.pth"}, "taesd")
    assert converted.info["source"] == {"encoder": str(tmp_path / "e.pth"), "decoder": str(tmp_path / "d.pth")}
    errors = conversion.verify(converted, reference)
    assert set(errors) == {"encoder", "decoder"} and max(errors.values()) < TOL
    written = conversion.save(converted, tmp_path / "ae")
    config, variables = ae.load(written)
    assert config == converted.config and (config.latent_channels, config.downscale, config.width) == (4, 4, 8)
    np.testing.assert_allclose(np.asarray(ae.encode(variables, image.transpose(0, 2, 3, 1) * 2 - 1, config)),
                               reference["latent"].transpose(0, 2, 3, 1), atol=TOL, rtol=0)


def test_options_and_parts_a_layout_does_not_take_are_refused(tmp_path):
    sd = {"w": np.zeros(2, np.float32)}
    with pytest.raises(conversion.UnknownOptions, match=r"latent_size do not apply to layout 'oasis-vae'; it takes: heads, "
                                                        r"frame_size") as info:
        conversion.convert(sd, "oasis-vae", latent_size=(3, 5))
    assert info.value.names == ["latent_size"]
    (tmp_path / "a.pt").write_bytes(b"")  # never read: the parts are refused first
    with pytest.raises(ValueError, match="this layout reads one file"):
        conversion.convert({"encoder": tmp_path / "a.pt", "decoder": tmp_path / "a.pt"}, "dit")
    with pytest.raises(ValueError, match=r"source parts \['body'\] are not this layout's; its parts: encoder, decoder"):
        conversion.convert({"encoder": tmp_path / "a.pt", "body": tmp_path / "a.pt"}, "taesd")
