"""World bundles on disk (wm_jax.bundle): writing, reading back, refusing a model and an
autoencoder that do not pair, and finding bundles by name."""

import json

import jax
import numpy as np
import pytest

from wm_jax import autoencoder, bundle, configs, images
from wm_jax import model as wm_model
from wm_jax import world as wm_world
from wm_jax.demo_world import make_demo_world


@pytest.fixture(scope="module")
def demo(demo_world_dir):
    return wm_world.load_world(demo_world_dir)


def test_bundle_round_trip(demo_world_dir, demo):
    meta = json.loads((demo_world_dir / "world.json").read_text())
    assert meta["format"] == bundle.FORMAT
    assert demo.resolution == (64, 64)
    assert demo.config == configs.get_config("tiny", latent_size=(16, 16), in_channels=48)
    assert demo.ae_config == autoencoder.get_config("pixel_p4")
    assert [k for k, _ in demo.info.keys][:4] == ["w", "a", "s", "d"]
    assert demo.info.fps == 20.0 and demo.info.sampler.steps == 4
    # Params come back bit-exact, and the start image is the one saved.
    _, params = wm_model.load(str(demo_world_dir / "model"))
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(demo.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert demo.start_image.shape == (64, 64, 3) and demo.start_image.dtype == np.uint8
    np.testing.assert_array_equal(images.read(demo_world_dir / "start.png"), demo.start_image)
    with pytest.raises(FileExistsError):
        make_demo_world(demo_world_dir)


def test_read_bundle_reads_the_json_alone(demo_world_dir):
    info, model_dir, ae_dir, start = bundle.read_bundle(demo_world_dir)
    assert info.name == "demo (untrained)" and info.sampler.steps == 4
    assert (model_dir, ae_dir, start) == (demo_world_dir / "model", demo_world_dir / "autoencoder",
                                          demo_world_dir / "start.png")


def test_save_world_refuses_a_pair_that_is_no_world_and_writes_nothing(tmp_path):
    config = configs.get_config("tiny", latent_size=(16, 16), in_channels=48)
    params = jax.tree_util.tree_map(lambda x: np.zeros(x.shape, x.dtype), wm_model.abstract_params(config))
    p4, p1 = autoencoder.get_config("pixel_p4"), autoencoder.get_config("pixel_p1")
    cases = [(p4, ["w", "teleport"], r"keys \['teleport'\] are not in the model's action space"),
             (p1, ["w"], "the autoencoder makes 3-channel latents, the model expects 48")]
    for i, (ae_config, keys, message) in enumerate(cases):
        out = tmp_path / f"world{i}"
        with pytest.raises(ValueError, match=message):
            bundle.save_world(out, name="x", config=config, params=params, ae_config=ae_config,
                              ae_variables={"params": {}}, keys=keys)
        assert not out.exists()  # checked from the configs before anything is written


def test_save_world_stores_the_start_image_at_the_world_s_resolution(tmp_path):
    config = configs.get_config("tiny", latent_size=(8, 4), in_channels=3)
    params = jax.tree_util.tree_map(lambda x: np.zeros(x.shape, x.dtype), wm_model.abstract_params(config))
    ae_config = autoencoder.get_config("pixel_p1")
    out = bundle.save_world(tmp_path / "w", name="w", config=config, params=params, ae_config=ae_config,
                            ae_variables=autoencoder.init(ae_config, jax.random.key(0)), keys={"w": "forward"},
                            start_image=np.zeros((90, 30, 3), np.uint8))
    assert images.read(out / "start.png").shape == (8, 4, 3)
    assert sorted(p.name for p in out.iterdir()) == ["autoencoder", "model", "start.png", "world.json"]


def test_world_search(tmp_path, monkeypatch, demo_world_dir):
    monkeypatch.setattr(bundle, "SHIPPED_DIR", tmp_path / "none")
    monkeypatch.setenv(bundle.PATH_ENV, str(demo_world_dir.parent))
    assert bundle.available_worlds() == {"demo": demo_world_dir}
    assert bundle.resolve("demo") == demo_world_dir
    assert bundle.locate("demo") == demo_world_dir and bundle.locate(str(demo_world_dir)) == demo_world_dir
    assert bundle.default_world(["zeta", "doom", "alpha"]) == "doom"
    assert bundle.default_world(["b", "a"]) == "a" and bundle.default_world([]) is None
    with pytest.raises(KeyError, match="available: demo"):
        bundle.resolve("nowhere")
    monkeypatch.setenv(bundle.PATH_ENV, "")
    with pytest.raises(KeyError, match="none found"):
        bundle.resolve("pan")
