"""Oasis end to end (issue 16): its 25 action entries as keys (the camera entries driven by the
arrow keys), and a converted Oasis world played and rolled out through its converted ViT
autoencoder. Tiny random-weight PyTorch references (tests/torch_reference_oasis*.py) are written
as .safetensors, converted with `wm convert`, and run with `wm rollout --checkpoint
--autoencoder` and `world.load_world` (what `wm play --checkpoint DIR --autoencoder AE` loads)."""

from __future__ import annotations

import numpy as np
import pytest

from wm_jax.conversion.layouts import oasis
from wm_jax import actions, images
from wm_jax import world as wm_world
from wm_jax.bundle import link_world
from wm_jax.configs import ModelConfig

torch = pytest.importorskip("torch")
from test_conversion_dit import convert_cli, write_safetensors  # noqa: E402
from torch_reference_oasis import OasisDiT  # noqa: E402
from torch_reference_oasis_vae import OasisViTVAE  # noqa: E402

FRAME, VAE_PATCH, LATENT = (16, 24), 4, 4  # latents 4x6x4; the DiT's patch 2 makes a 2x3 token grid
STEPS = 2


# ----------------------------------------------------------------------------- the key mapping


def test_oasis_keys_map_to_its_25_entries_and_the_arrows_turn_the_camera():
    config = ModelConfig(latent_size=(4, 6), in_channels=LATENT, width=64, num_heads=4, pos_embed=False,
                         spatial_rope=True, action_keys=oasis.ACTION_KEYS, action_axes=oasis.CAMERA_AXES)
    space = config.action_space
    assert space.size == 25
    names = dict(oasis.OASIS_ACTIONS)  # Oasis' own name -> ours
    index = {ours: i for i, ours in enumerate(oasis.ACTION_KEYS)}
    assert (index[names["cameraX"]], index[names["cameraY"]]) == (15, 16)
    vector = space.encode(["w", "left", "ArrowUp", "space"])
    expected = np.zeros(25, np.float32)
    expected[[index[names["forward"]], index[names["jump"]]]] = 1.0
    expected[16], expected[15] = -0.25, -0.125  # turn left 5 degrees, look up 2.5 degrees
    np.testing.assert_array_equal(vector, expected)
    assert space.encode(["right", "down"])[[15, 16]].tolist() == [0.125, 0.25]
    assert space.encode(["left", "right"])[16] == 0.0  # both held: no turn
    assert space.encode(["camera_yaw"]).sum() == 0  # an axis entry is not a key
    with pytest.raises(KeyError, match="camera_yaw"):
        space.encode(["camera_yaw"], strict=True)
    assert set(space.decode(space.encode(["left", "down", "e"]))) == {"left", "down", "e"}
    keys = dict(space.meanings())
    assert keys["left"] == "camera_yaw -0.25" and keys["down"] == "camera_pitch +0.125" and keys["w"] == ""
    assert "camera_yaw" not in keys and len(keys) == 23 + 4  # 23 plain entries, 2 axes x 2 keys
    # The axes survive config.json (lists) and stay hashable.
    from wm_jax import model as wm_model

    again = wm_model.config_from_dict({**__import__("dataclasses").asdict(config),
                                       "action_axes": [list(a) for a in oasis.CAMERA_AXES]})
    assert again == config and hash(again) == hash(config)


def test_bad_axes_are_refused():
    with pytest.raises(ValueError, match="not an entry"):
        actions.ActionSpace(("w", "a"), (actions.Axis("yaw", "left", "right", 1.0),))
    with pytest.raises(ValueError, match="clashing: \\['a'\\]"):
        actions.ActionSpace(("w", "a", "yaw"), (actions.Axis("yaw", "a", "right", 1.0),))
    with pytest.raises(ValueError, match="amount must be > 0"):
        actions.ActionSpace(("yaw",), (actions.Axis("yaw", "left", "right", 0.0),))


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(model dir, autoencoder dir) of a tiny random Oasis DiT + ViT-VAE, converted by `wm convert`."""
    tmp = tmp_path_factory.mktemp("oasis_e2e")
    torch.manual_seed(0)
    dit = OasisDiT(2, LATENT, 64, 2, 4, action_dim=25).eval()
    sd = {k: v.numpy() for k, v in dit.state_dict().items()
          if not k.endswith("freqs") or k == "temporal_rotary_emb.freqs"}  # a safetensors export: one table
    write_safetensors(tmp / "oasis.safetensors", sd)
    vae = OasisViTVAE(LATENT, *FRAME, VAE_PATCH, 32, 1, 2, 32, 1, 2).eval()
    write_safetensors(tmp / "vae.safetensors", {k: v.numpy() for k, v in vae.state_dict().items()})
    h, w = FRAME[0] // VAE_PATCH, FRAME[1] // VAE_PATCH
    assert convert_cli([tmp / "oasis.safetensors", tmp / "oasis", "--layout", "oasis", "--latent-size", f"{h}x{w}",
                        "--max-frames", 8]) == 0  # heads read from the temporal table: 4
    assert convert_cli([tmp / "vae.safetensors", tmp / "vae", "--layout", "oasis-vae", "--heads", 2,
                        "--frame-size", f"{FRAME[0]}x{FRAME[1]}"]) == 0
    assert convert_cli([tmp / "oasis.safetensors", tmp / "world", "--layout", "oasis", "--latent-size", f"{h}x{w}",
                        "--max-frames", 8, "--autoencoder", tmp / "vae"]) == 0  # a bundle: world.json -> ../vae
    return tmp / "oasis", tmp / "vae"


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (*FRAME, 3), dtype=np.uint8)


def test_converted_oasis_world_plays_with_the_arrow_keys(converted):
    model_dir, vae_dir = converted
    world = wm_world.load_world(model_dir, autoencoder_spec=str(vae_dir), sampler_steps=STEPS)
    assert world.config.num_heads == 4 and world.ae_config.kind == "vit" and world.resolution == FRAME
    keys = dict(world.info.keys)
    assert keys["left"] == "camera_yaw -0.25" and keys["up"] == "camera_pitch -0.125" and "w" in keys
    assert world.config.objective.prediction == "v_prediction"

    def roll(script, seed=0):
        return world.rollout(_image(), script, seed=seed)

    base = roll([("w",), ("left",), ("left",)])
    assert base.shape == (4, *FRAME, 3) and base.dtype == np.uint8
    np.testing.assert_array_equal(base[0], _image())  # frame 0 is the start image
    assert base[1:].std() > 1.0  # generated and decoded, not a constant
    np.testing.assert_array_equal(roll([("w",), ("left",), ("left",)]), base)  # a function of (seed, keys)
    turned = roll([("w",), ("right",), ("right",)])
    np.testing.assert_array_equal(turned[:2], base[:2])  # the same until the keys differ
    assert np.abs(turned[2:].astype(int) - base[2:]).max() > 0  # the camera keys reach the model

    state = world.start(_image(1), seed=3)  # what `wm play` does per frame
    state, frame = world.step(state, {"up", "shift"})
    assert frame.shape == (*FRAME, 3)


def test_wm_rollout_on_a_converted_oasis_world(converted, tmp_path, capsys):
    model_dir, vae_dir = converted
    (tmp_path / "start.png").write_bytes(images.encode_png(_image()))
    from wm_jax import cli

    out = tmp_path / "strip.png"
    argv = ["rollout", "--checkpoint", str(model_dir), "--autoencoder", str(vae_dir), "--image",
            str(tmp_path / "start.png"), "--keys", "w left*2 up+right", "--steps", str(STEPS), "--out", str(out)]
    assert cli.main(argv) == 0
    strip = images.read(out)
    assert strip.shape == (FRAME[0], 5 * FRAME[1], 3)  # the start image and 4 generated frames in a row
    assert "v-prediction" in capsys.readouterr().out
    assert cli.main([*argv[:-2], "--out", str(tmp_path / "bad.png"), "--keys", "w mouse_middle"]) == 2  # not scriptable


def test_converted_with_its_autoencoder_plays_without_flags(converted, tmp_path, capsys):
    model_dir, vae_dir = converted
    bundle = model_dir.parent / "world"
    world = wm_world.load_world(bundle, sampler_steps=STEPS)  # `wm play --checkpoint DIR`, nothing else
    assert world.ae_config.kind == "vit" and world.info.sampler.noise_clamp == 20.0  # Oasis' recipe, from world.json
    keys = dict(world.info.keys)
    assert keys["w"] == "forward" and keys["space"] == "jump" and keys["left"] == "turn left (camera_yaw -0.25, 5 deg a frame)"
    from wm_jax import cli

    out = tmp_path / "strip.png"
    assert cli.main(["rollout", "--checkpoint", str(bundle), "--keys", "w right", "--steps", str(STEPS), "--out", str(out)]) == 0
    assert images.read(out).shape == (FRAME[0], 3 * FRAME[1], 3)
    capsys.readouterr()
    # An autoencoder whose latents do not fit the model is refused before anything is written.
    wrong = tmp_path / "ae4x4"
    from wm_jax import autoencoder as ae

    cfg = ae.get_config("pixel_p2")
    ae.save(wrong, cfg, ae.init(cfg, __import__("jax").random.key(0)))
    with pytest.raises(ValueError, match="12-channel latents, the model expects 4"):
        link_world(model_dir, wrong, name="x", keys={"w": "forward"})
    assert not (model_dir / "world.json").exists()
