"""The worlds' photograph split: disjoint folders of readable photographs."""

from wm_jax.datasets import images, photo_split


def test_split_is_disjoint_and_readable(tmp_path):
    photo_split.main(["--out", str(tmp_path)])
    train = {p.name for p in (tmp_path / "photos_train").iterdir()}
    held_out = {p.name for p in (tmp_path / "photos_heldout").iterdir()}
    assert len(train) >= 10 and len(held_out) >= 2
    assert not train & held_out
    for path in images.list_images(tmp_path / "photos_heldout"):
        assert images.load_rgb(path).ndim == 3
