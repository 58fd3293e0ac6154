"""The `pan` photograph library: dedup, filters and the by-source train / held-out split, on
synthetic pictures (no wallpaper packages needed)."""

import json
import pathlib

import numpy as np
from PIL import Image

from wm_jax.datasets import photo_library, photo_split
from wm_jax.datasets.photo_library import Source


def _scene(seed: int, size=(640, 400)) -> Image.Image:
    """A textured picture unlike any other seed's: smooth blobs plus noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize(size, Image.BICUBIC), np.float32)
    noise = rng.normal(0, 12, base.shape)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def _library(root: pathlib.Path):
    wall = root / "wallpapers"
    (wall / "Lake" / "contents" / "images").mkdir(parents=True)
    # One picture at three resolutions, KDE-style (named by size only): counts once, largest kept.
    lake = _scene(1, (1280, 800))
    for size in ((1280, 800), (800, 500), (640, 400)):
        lake.resize(size).save(wall / "Lake" / "contents" / "images" / f"{size[0]}x{size[1]}.jpg", quality=95)
    # One picture at two resolutions by stem, and a near-duplicate (recompressed, brightened) copy.
    forest = _scene(2, (1600, 1000))
    forest.save(wall / "Forest_1600x1000.png")
    forest.resize((800, 500)).save(wall / "Forest.png")
    Image.fromarray(np.clip(np.asarray(forest, np.int16) + 6, 0, 255).astype(np.uint8)).save(wall / "forest-copy.jpg", quality=80)
    _scene(3).save(wall / "hills.jpg")
    # Rejected: tiny, flat gradient, mostly transparent.
    _scene(4, (200, 150)).save(wall / "icon.png")
    gradient = np.repeat(np.linspace(0, 255, 640, dtype=np.float32)[None, :, None], 400, 0).repeat(3, 2)
    Image.fromarray(gradient.astype(np.uint8)).save(wall / "gradient.png")
    sprite = np.zeros((400, 640, 4), np.uint8)
    sprite[150:250, 250:390] = 200
    Image.fromarray(sprite, "RGBA").save(wall / "sprite.png")
    (wall / "logo.svg").write_text("<svg xmlns=\"http://www.w3.org/2000/svg\"/>")  # not Pillow-readable: never globbed

    held = root / "heldpkg"
    held.mkdir()
    _scene(10).save(held / "a.jpg")
    _scene(11).save(held / "b.jpg")
    # The same picture as the held-out package's a.jpg, shipped by a train package: must not reach train.
    _scene(10).resize((600, 375)).save(wall / "a-again.jpg", quality=90)

    single = root / "single"
    single.mkdir()
    small_held_out = _scene(20, (320, 240))  # a held-out photograph below MIN_SIDE is still held out
    small_held_out.save(single / "keep_out.jpg")

    return (
        Source("wallpapers", (f"{wall}/*", f"{wall}/*/contents/images/*"), "GPL-2+", dpkg=False),
        Source("heldpkg", (f"{held}/*",), "CC0-1.0", dpkg=False),
        Source("single", (f"{single}/keep_out.jpg",), "CC0-1.0", dpkg=False, held_out=True),
        Source("absent", (f"{root}/nowhere/*",), "GPL-2+", dpkg=False),
    )


def test_name_stem():
    stem = photo_library.name_stem
    assert stem(pathlib.Path("/b/mate/Elephants_3840x2160.jpg")) == stem(pathlib.Path("/b/mate/Elephants.jpg")) == "Elephants"
    assert stem(pathlib.Path("/w/Altai/contents/images/5120x2880.png")) == "Altai"
    assert stem(pathlib.Path("/w/Flow/contents/images_dark/720x1440.jpg")) == "Flow-dark"


def test_dedup_filters_and_split(tmp_path):
    sources = _library(tmp_path / "pkgs")
    kept, rejected, missing = photo_library.select(sources, held_out_package="heldpkg")
    by_split = {split: sorted(p.path.name for p in kept if p.split == split) for split in ("train", "heldout")}
    assert by_split["train"] == ["1280x800.jpg", "Forest_1600x1000.png", "hills.jpg"]
    assert by_split["heldout"] == ["a.jpg", "b.jpg", "keep_out.jpg"]
    why = {p.path.name: reason for p, reason in rejected}
    assert why["icon.png"].startswith("small") and why["gradient.png"].startswith("flat")
    assert why["sprite.png"].startswith("transparent")
    assert why["forest-copy.jpg"].startswith("near-duplicate") and why["a-again.jpg"].startswith("near-duplicate")
    assert [source.package for source in missing] == ["absent"]
    assert "absent" in photo_library.missing_message(missing)

    out = tmp_path / "out"
    photo_library.write(out, kept, rejected)
    train = sorted(out.joinpath("train").iterdir())
    assert len(train) == 3 and all(link.is_symlink() and link.resolve().exists() for link in train)
    assert len(list(out.joinpath("heldout").iterdir())) == 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert {p["split"] for p in manifest["pictures"] if p["package"] == "heldpkg"} == {"heldout"}
    # Running again replaces the links rather than adding to them.
    photo_library.write(out, kept, rejected)
    assert len(list(out.joinpath("train").iterdir())) == 3


def test_table_keeps_photo_split_held_out():
    held = {(source.module, glob) for source in photo_library.SOURCES if source.held_out for glob in source.globs}
    assert held == set(photo_split.HELD_OUT)
    train_globs = {glob for source in photo_library.SOURCES if not source.held_out for glob in source.globs}
    assert not {relative for _, relative in photo_split.HELD_OUT} & train_globs
    assert photo_library.HELD_OUT_PACKAGE in {source.package for source in photo_library.SOURCES}


def test_too_few_pictures_fails_with_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(photo_library, "SOURCES", (
        Source("no-such-wallpapers", (f"{tmp_path}/none/*",), "GPL-2+"),
        Source("no-such-wheel", ("data/*.png",), "BSD-3-Clause", module="no_such_module_xyz"),
    ))
    assert photo_library.main(["--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "no-such-wallpapers" in error and "apt-get install" in error and "pip install no-such-wheel" in error
    assert not (tmp_path / "out").exists()
