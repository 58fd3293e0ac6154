"""A world at play: the pure start/step interface, rollouts, loading, image fitting, key scripts.
The bundle format and finding bundles by name: test_bundle.py."""

import io

import jax
import numpy as np
import pytest
from PIL import Image

from wm_jax import autoencoder, configs, images, keyscript
from wm_jax import bundle
from wm_jax import model as wm_model
from wm_jax import world as wm_world


@pytest.fixture(scope="module")
def demo(demo_world_dir):
    return wm_world.load_world(demo_world_dir)


def test_step_is_deterministic_and_keys_matter(demo):
    def play(keys, seed=0, n=3):
        state = demo.start(seed=seed)
        frames = []
        for _ in range(n):
            state, frame = demo.step(state, keys)
            frames.append(frame)
        return np.stack(frames)

    w = play(["KeyW"])  # browser spellings are canonicalised
    assert w.shape == (3, 64, 64, 3) and w.dtype == np.uint8
    np.testing.assert_array_equal(w, play(["w"]))
    assert (w != play(["a"])).mean() > 0.1, "different keys must give different frames"
    assert (w != play(["w"], seed=1)).mean() > 0.1


def test_rollout_frames_and_determinism(demo):
    script = keyscript.parse("w*10 a*8")
    frames = demo.rollout(None, script, seed=3)
    assert frames.shape == (19, 64, 64, 3)  # the start frame + 18 generated (two chunks, padded)
    np.testing.assert_array_equal(frames[0], demo.start_image)
    np.testing.assert_array_equal(frames, demo.rollout(None, script, seed=3))
    other = demo.rollout(None, keyscript.parse("w*10 d*8"), seed=3)
    np.testing.assert_array_equal(other[:11], frames[:11])  # causal: the same keys so far, the same frames
    assert (other[11:] != frames[11:]).mean() > 0.1
    # nor on how many follow (a second chunk padded or not): experiments.held_minute reads one long rollout
    np.testing.assert_array_equal(demo.rollout(None, script[:12], seed=3), frames[:13])


def test_start_from_any_image_size(demo):
    tall = np.zeros((300, 100, 3), np.uint8)
    state = demo.start(tall)
    state, frame = demo.step(state, ())
    assert frame.shape == (64, 64, 3)


def test_fit_center_crops_then_resizes():
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, :100] = (0, 0, 255)  # blue borders left and right are cropped away
    wide[:, 100:200] = (255, 0, 0)
    wide[:, 200:] = (0, 0, 255)
    fitted = images.fit(wide, 32, 32)
    assert fitted.shape == (32, 32, 3)
    assert fitted[..., 0].min() > 240 and fitted[..., 2].max() < 15
    tall = np.transpose(wide, (1, 0, 2))
    assert images.fit(tall, 16, 32).shape == (16, 32, 3)
    same = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    np.testing.assert_array_equal(images.fit(same, 8, 8), same)


def _png(array, mode=None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_decode_validates_uploads():
    ok = _png(np.full((10, 20, 3), 7, np.uint8))
    assert images.decode(ok).shape == (10, 20, 3)
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent -> white, as a browser shows it
    assert images.decode(_png(rgba)).min() == 255
    assert images.decode(_png(np.full((5, 5), 9, np.uint8))).shape == (5, 5, 3)
    for bad, message in [(b"", "empty"), (b"hello, not an image", "not an image"), (ok[: len(ok) // 2], "image")]:
        with pytest.raises(images.ImageError, match=message):
            images.decode(bad)
    with pytest.raises(images.ImageError, match="limit"):
        images.decode(ok, max_bytes=10)
    with pytest.raises(images.ImageError, match="megapixels"):
        images.decode(ok, max_pixels=100)


def test_bare_model_directory_and_errors(tmp_path, demo):
    wm_model.save(str(tmp_path / "model"), demo.config, demo.params)
    bare = wm_world.load_world(tmp_path / "model")  # 48 channels: pixel_p4 is picked
    assert bare.ae_config.downscale == 4 and bare.resolution == (64, 64)
    assert "w" in [k for k, _ in bare.info.keys]
    tiny = configs.get_config("tiny")  # 4-channel latents: no pixel autoencoder fits
    zeros = jax.tree_util.tree_map(lambda x: np.zeros(x.shape, x.dtype), wm_model.abstract_params(tiny))
    wm_model.save(str(tmp_path / "tiny"), tiny, zeros)
    with pytest.raises(ValueError, match="--autoencoder"):
        wm_world.load_world(tmp_path / "tiny")
    with pytest.raises(FileNotFoundError, match="neither"):
        wm_world.load_world(tmp_path)
    with pytest.raises(ValueError, match="action space"):
        wm_world.World(bundle.WorldInfo("x", keys=(("nope", ""),)), demo.config, demo.params, demo.ae_config, demo.ae_variables)
    with pytest.raises(ValueError, match="48-channel latents"):
        wm_world.World(bundle.WorldInfo("x"), tiny, demo.params, demo.ae_config, demo.ae_variables)


def test_conv_autoencoder_world(tmp_path):
    """The shipped worlds will live in a trained conv autoencoder's latents: same interface."""
    config = configs.get_config("tiny", in_channels=8, action_keys=("up", "down", "<unknown>"))
    ae_config = autoencoder.get_config("tiny_f4c8")
    path = bundle.save_world(
        tmp_path / "conv", name="conv", config=config, params=wm_model.init_params(config, jax.random.key(0)),
        ae_config=ae_config, ae_variables=autoencoder.init(ae_config, jax.random.key(1)), keys=["up", "down"],
        start_image=np.full((50, 80, 3), 128, np.uint8),
    )
    loaded = wm_world.load_world(path, sampler_steps=1, fps=7)
    assert loaded.resolution == (32, 32) and loaded.info.sampler.steps == 1 and loaded.info.fps == 7
    # Keys outside the model's action space do nothing, rather than failing mid-game.
    np.testing.assert_array_equal(loaded.action(["w", "ArrowUp"]), loaded.action(["up"]))
    state, frame = loaded.step(loaded.start(), ["ArrowUp"])
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8


def test_key_scripts():
    assert keyscript.parse("w,w,a,,d") == [("w",), ("w",), ("a",), (), ("d",)]
    assert keyscript.parse("W*2 A*1 _*2") == [("w",), ("w",), ("a",), (), ()]
    assert keyscript.parse("w+shift*2, ArrowUp") == [("w", "shift"), ("w", "shift"), ("up",)]
    assert keyscript.parse("") == []
    frames = keyscript.parse("w*3 _ a+d*2")
    assert keyscript.parse(keyscript.format_frames(frames)) == frames
    jsonl = '["w"]\n\n{"keys": ["a", "space"], "repeat": 2}\n[]\n'
    assert keyscript.parse_jsonl(jsonl) == [("w",), ("a", "space"), ("a", "space"), ()]
    for bad in ["w*0", "foo", "w+", "w*x"]:
        with pytest.raises((ValueError, KeyError)):
            keyscript.parse(bad)
    for bad in ["not json", '{"keys": "w"}', '["w"', '{"keys": ["w"], "repeat": -1}']:
        with pytest.raises(ValueError):
            keyscript.parse_jsonl(bad)


def test_int8_world_keeps_int8_kernels_and_tracks_fp32(demo_world_dir):
    from wm_jax import quantize

    full = wm_world.load_world(demo_world_dir)
    small = wm_world.load_world(demo_world_dir, quantization="int8")
    assert small.quantized and not full.quantized
    assert quantize.nbytes(small.params) < 0.5 * quantize.nbytes(full.params)
    frames = [world.rollout(None, [("w",), ("a",), ()], seed=1) for world in (full, small)]
    difference = np.abs(frames[0].astype(np.int16) - frames[1].astype(np.int16))
    assert difference.max() <= 8 and difference.mean() < 1.0  # same noise, int8 weights: nearly the same frames
    state = small.start(seed=0)
    _, frame = small.step(state, {"w"})
    assert frame.shape == (*small.resolution, 3)
    with pytest.raises(ValueError, match="quantization must be None or 'int8'"):
        wm_world.load_world(demo_world_dir, quantization="int4")
