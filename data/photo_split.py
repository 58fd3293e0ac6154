"""The train / held-out photograph split of the 64x64 worlds, as folders of links.

    .venv/bin/python -m wm_jax.datasets.photo_split --out recordings/ae

makes recordings/ae/photos_train/ and recordings/ae/photos_heldout/, each holding links to
photographs that installed packages ship (scikit-image, matplotlib, pygame), so that
`wm record image_pan --input FOLDER` records the worlds' training and held-out pans. The
held-out photographs are never used in training (autoencoder or world model).
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys

# (package, path inside it)
TRAIN = [("skimage", f"data/{name}") for name in (
    "astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
    "gravel.png", "hubble_deep_field.jpg", "moon.png", "motorcycle_left.png", "rocket.jpg",
)]
HELD_OUT = [
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ("skimage", "data/retina.jpg"),
    ("skimage", "data/ihc.png"),
    ("pygame", "docs/generated/_images/camera_rgb.jpg"),
]


def _package_dir(name: str) -> pathlib.Path | None:
    spec = importlib.util.find_spec(name)
    return pathlib.Path(spec.origin).parent if spec and spec.origin else None


def link_photos(entries, folder: pathlib.Path) -> list[str]:
    """Links in `folder` to each photograph that exists; returns the missing ones."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = []
    for package, relative in entries:
        root = _package_dir(package)
        source = root / relative if root else None
        if source is None or not source.exists():
            missing.append(f"{package}/{relative}")
            continue
        target = folder / source.name
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(source)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="recordings/ae", help="parent folder (default recordings/ae)")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    for name, entries in (("photos_train", TRAIN), ("photos_heldout", HELD_OUT)):
        missing = link_photos(entries, out / name)
        print(f"{out / name}: {len(entries) - len(missing)} photographs")
        for item in missing:
            print(f"  missing (package not installed or file moved): {item}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
