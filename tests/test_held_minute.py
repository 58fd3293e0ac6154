"""experiments.held_minute's start views: a picture at the scale the pan recorder shows it."""

import types

import numpy as np
from PIL import Image

from experiments.held_minute import picture_view, scaled_detail
from wm_jax import images, stability


def test_picture_view_shows_the_short_side_whole_at_scale_1_and_its_middle_third_at_3(tmp_path):
    rows = np.broadcast_to(np.linspace(0, 255, 120)[:, None, None], (120, 160, 3)).astype(np.uint8)  # brighter downwards
    Image.fromarray(rows).save(tmp_path / "rows.png")
    world = types.SimpleNamespace(resolution=(16, 16), fit=lambda picture: images.fit(picture, 16, 16))
    whole = picture_view(str(tmp_path / "rows.png"), 1.0, world).astype(float)[..., 0]
    third = picture_view(str(tmp_path / "rows.png"), 3.0, world).astype(float)[..., 0]
    assert whole.shape == third.shape == (16, 16)
    assert whole[0].mean() < 15 and whole[-1].mean() > 240  # top to bottom of the picture
    assert 75 < third[0].mean() < 95 and 160 < third[-1].mean() < 180  # its middle third
    np.testing.assert_array_equal(picture_view(str(tmp_path / "rows.png"), None, world), images.fit(rows, 16, 16))


def test_scaled_detail_softens_below_1_and_sharpens_above_it():
    frames = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    sharpness = lambda f: stability.colour_statistics(f.astype(np.float32) / 127.5 - 1.0)["sharpness"]
    assert np.abs(scaled_detail(frames, 1.0).astype(int) - frames).max() <= 1  # gain 1: the frames
    softer, sharper = sharpness(scaled_detail(frames, 0.5)) / sharpness(frames), sharpness(scaled_detail(frames, 1.3)) / sharpness(frames)
    assert np.all(softer < 0.5) and np.all(sharper > 1.2)
