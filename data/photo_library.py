"""The `pan` world's photograph library: hundreds of distinct pictures from installed packages.

    make photos                                   # the Debian packages (root); once
    .venv/bin/python -m wm_jax.datasets.photo_library --out recordings/pan_photos

makes OUT/train/ and OUT/heldout/, folders of links to the photographs and painted scenes that
the packages in SOURCES ship (Debian wallpaper and game-art packages, and the sample photographs
of scikit-image / scikit-learn / matplotlib / pygame), so that `wm record image_pan --input
OUT/train` records the world's training pans. OUT/manifest.json lists every picture with its
package, licence, split and source path.

Held out by source, never by picture: data.photo_split.HELD_OUT (the 64x64 worlds' held-out
photographs) and every picture of HELD_OUT_PACKAGE go to heldout/, all the rest to train/.

What counts as one picture:
  * readable by Pillow (png/jpg/webp; SVGs are not globbed), short side >= MIN_SIDE pixels;
  * not mostly transparent (a sprite or parallax layer), not flat (a solid colour or gradient:
    mean absolute gradient of the 64x64 grey thumbnail below MIN_DETAIL);
  * one per name stem and folder: `Elephants.jpg`, `Elephants_3840x2160.jpg` and
    `Elephants_5640x3172.jpg` are one picture, the largest kept; a file named only by its size
    (`contents/images/2560x1600.jpg`, KDE's layout) takes its stem from its folder;
  * one per near-duplicate group: a picture whose 64-bit difference hash (9x8 grey thumbnail) is
    within HASH_DISTANCE bits of an earlier one's, and whose 16x16 colour thumbnail is within
    THUMB_DISTANCE of it (smooth skies and dark scenes share hashes without being alike), is
    dropped; held-out pictures come first, so a picture that is held out can never reach train in
    another copy.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import importlib.util
import json
import pathlib
import re
import sys

import numpy as np
from PIL import Image

from wm_jax.datasets import photo_split
from wm_jax import images as wm_images

MIN_SIDE = 256
MIN_DETAIL = 2.0  # mean |d/dx| + |d/dy| of the 64x64 grey thumbnail, grey levels 0..255
MIN_CURVATURE = 0.75  # mean |d2/dx2| + |d2/dy2| of it: a linear ramp passes MIN_DETAIL, not this
MAX_TRANSPARENT = 0.05  # share of pixels with alpha < 128
HASH_DISTANCE = 6  # bits of 64
THUMB_DISTANCE = 20.0  # mean |difference| of the 16x16 colour thumbnails, grey levels 0..255
MIN_TRAIN = 200
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
HELD_OUT_PACKAGE = "lomiri-wallpapers-16.04"


@dataclasses.dataclass(frozen=True)
class Source:
    """One package's pictures.

    package: the Debian package, or the PyPI distribution when `module` is set.
    globs: absolute globs (Debian), or globs relative to the installed `module`'s folder (PyPI).
    exclude: fnmatch-style patterns (pathlib.PurePath.match) dropped from the globs' matches.
    held_out: always held out, whatever HELD_OUT_PACKAGE says.
    dpkg: a Debian package's matches are kept only where dpkg lists the package as their owner
      (folders such as /usr/share/backgrounds are shared); False for globs outside any package.
    """

    package: str
    globs: tuple[str, ...]
    licence: str
    module: str | None = None
    exclude: tuple[str, ...] = ()
    held_out: bool = False
    dpkg: bool = True

    @property
    def install(self) -> str:
        return f".venv/bin/pip install {self.package}" if self.module else f"apt-get install -y {self.package}"


_WESNOTH = "/usr/share/games/wesnoth/1.16/data"
# The campaigns whose story art passes the filters (the others ship only maps with transparent
# margins, and portraits).
_WESNOTH_CAMPAIGNS = ("did", "dm", "httt", "l", "sota", "trow", "tsg", "ttb")

SOURCES: tuple[Source, ...] = (
    # Desktop wallpapers: photographs (landscapes, plants, animals, cities) and some paintings.
    Source("plasma-workspace-wallpapers", ("/usr/share/wallpapers/*/contents/images*/*",),
           "GPL-2+ (KDE Visual Design Group)"),
    Source("mate-backgrounds", ("/usr/share/backgrounds/mate/nature/*", "/usr/share/backgrounds/mate/abstract/*",
                                "/usr/share/backgrounds/mate/desktop/*"),
           "GPL-2+ per file (debian/copyright; the CC-BY-SA-4.0 Ubuntu-Mate-* are excluded)",
           exclude=("*Stripes*", "*MATE*", "*Ubuntu-Mate*")),
    Source("ukui-wallpapers", ("/usr/share/backgrounds/*",), "CC-BY-SA-3.0 (Ubuntu Kylin community contributors)",
           exclude=("*ubuntukylin*",)),
    Source("lomiri-wallpapers-16.04", ("/usr/share/backgrounds/*",),
           "CC-BY-4.0 / CC-BY-SA-4.0 / CC0-1.0 per photograph (debian/copyright)"),
    Source("lomiri-wallpapers-20.04", ("/usr/share/backgrounds/*",),
           "CC-BY-4.0 / CC-BY-SA-4.0 per picture (debian/copyright)"),
    # Painted scenes from free games.
    Source("wesnoth-1.16-data", (f"{_WESNOTH}/core/images/story/*", f"{_WESNOTH}/core/images/maps/*"),
           "GPL-2+ (The Battle for Wesnoth artists)"),
    *(Source(f"wesnoth-1.16-{campaign}", (f"{_WESNOTH}/campaigns/*/images/story/*",
                                          f"{_WESNOTH}/campaigns/*/images/maps/*"),
             "GPL-2+ (The Battle for Wesnoth artists)") for campaign in _WESNOTH_CAMPAIGNS),
    Source("hedgewars-data", ("/usr/share/games/hedgewars/Data/Themes/*/Sky.png",),
           "GFDL-1.3 / GPL-2 per theme (Hedgewars project; debian/copyright)"),
    Source("supertux-data", ("/usr/share/games/supertux2/images/background/**/*",),
           "GPL-3+ / GPL-2+ / CC-BY-SA per file (SuperTux Devel Team; debian/copyright)", exclude=("*/misc/*",)),
    Source("tuxmath-data", ("/usr/share/tuxmath/images/backgrounds/*",),
           "backgrounds: NASA / Hubble photographs, public domain (debian/copyright)"),
    Source("tuxtype-data", ("/usr/share/tuxtype/images/backgrounds/*",), "GPL-2 (Tux4Kids)"),
    # Sample photographs inside PyPI wheels.
    Source("scikit-image", tuple(relative for package, relative in photo_split.TRAIN if package == "skimage"),
           "BSD-3-Clause; photographs public domain / CC0 (skimage.data docstrings)", module="skimage"),
    Source("scikit-learn", ("datasets/images/china.jpg", "datasets/images/flower.jpg"),
           "BSD-3-Clause; photographs CC-BY 2.0 (sklearn/datasets/images/README.txt)", module="sklearn"),
    # data.photo_split.HELD_OUT: held out for every world, so here too.
    *(Source({"skimage": "scikit-image", "pygame": "pygame-ce"}.get(package, package), (relative,),
             {"matplotlib": "PSF-style matplotlib licence; photograph public domain (US Navy)",
              "skimage": "BSD-3-Clause; photographs public domain / CC0 (skimage.data docstrings)",
              "pygame": "LGPL-2.1"}[package],
             module=package, held_out=True) for package, relative in photo_split.HELD_OUT),
)


@dataclasses.dataclass
class Picture:
    path: pathlib.Path
    source: Source
    stem: str
    pixels: int = 0
    hash: int = 0
    thumb: np.ndarray | None = None
    split: str = "train"
    name: str = ""


_SIZE = re.compile(r"[-_ .]*\d{3,5}x\d{3,5}")


def name_stem(path: pathlib.Path) -> str:
    """The picture's name without any WIDTHxHEIGHT part; a file named only by its size is named
    after the nearest folder that is not images/contents (an `images_dark` folder adds -dark)."""
    stem = _SIZE.sub("", path.stem).strip("-_ .")
    if stem:
        return stem
    suffix = ""
    for parent in path.parents:
        if parent.name in ("images", "contents"):
            continue
        if parent.name.startswith("images_"):
            suffix += "-" + parent.name[len("images_"):]
            continue
        return parent.name + suffix
    return path.stem


def _root(source: Source) -> pathlib.Path | None:
    if source.module is None:
        return pathlib.Path("/")
    try:
        spec = importlib.util.find_spec(source.module)
    except (ImportError, ValueError):
        return None
    return pathlib.Path(spec.origin).parent if spec and spec.origin else None


def _dpkg_files(package: str) -> set[str]:
    """The files an installed Debian package owns (dpkg's list); empty where it is not installed."""
    for name in (package, f"{package}:all", f"{package}:amd64", f"{package}:arm64"):
        listing = pathlib.Path("/var/lib/dpkg/info") / f"{name}.list"
        if listing.exists():
            return set(listing.read_text().split("\n"))
    return set()


def find(sources) -> tuple[list[Picture], list[Source]]:
    """Every readable-looking file the sources' globs match; and the sources that matched none."""
    pictures, missing = [], []
    for source in sources:
        root = _root(source)
        found = []
        owned = _dpkg_files(source.package) if source.module is None and source.dpkg else None
        if root is not None:
            for pattern in source.globs:
                for match in sorted(glob.glob(str(root / pattern), recursive=True)):
                    path = pathlib.Path(match)
                    if (path.suffix.lower() in SUFFIXES and path.is_file() and "l10n" not in path.parts
                            and (owned is None or match in owned)
                            and not any(path.match(pattern) for pattern in source.exclude)):
                        found.append(path)
        if not found:
            missing.append(source)
        seen = set()
        for path in found:
            if path not in seen:
                seen.add(path)
                pictures.append(Picture(path, source, name_stem(path)))
    return pictures, missing


def largest_per_stem(pictures: list[Picture]) -> list[Picture]:
    """One picture per (package, folder, stem): the one with the most pixels."""
    best: dict[tuple, Picture] = {}
    for picture in pictures:
        try:
            with Image.open(picture.path) as image:
                picture.pixels = image.size[0] * image.size[1]
        except (OSError, ValueError, Image.DecompressionBombError):
            picture.pixels = 0  # rejection() names it

        key = (picture.source.package, picture.path.parent, picture.stem.lower())
        if key not in best or picture.pixels > best[key].pixels:
            best[key] = picture
    return [picture for picture in pictures if best[(picture.source.package, picture.path.parent, picture.stem.lower())] is picture]


def rejection(path: pathlib.Path, min_side: int = MIN_SIDE) -> str | None:
    """Why this file is not a usable picture (too small, transparent, flat), or None."""
    try:
        with Image.open(path) as image:
            if min(image.size) < min_side:
                return f"small ({image.size[0]}x{image.size[1]})"
            image.draft("RGB", (256, 256))  # JPEG: decode at a reduced size
            thumb = image.copy()
            thumb.thumbnail((256, 256))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return f"unreadable ({error})"
    if thumb.mode in ("RGBA", "LA", "PA") or (thumb.mode == "P" and "transparency" in thumb.info):
        alpha = np.asarray(thumb.convert("RGBA"))[..., 3]
        if (alpha < 128).mean() > MAX_TRANSPARENT:
            return f"transparent ({(alpha < 128).mean():.0%})"
    grey = np.asarray(thumb.convert("RGB").convert("L").resize((64, 64), Image.BILINEAR), np.float32)
    detail = np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()
    curvature = np.abs(np.diff(grey, 2, axis=0)).mean() + np.abs(np.diff(grey, 2, axis=1)).mean()
    if detail < MIN_DETAIL or curvature < MIN_CURVATURE:
        return f"flat (detail {detail:.2f}, curvature {curvature:.2f})"
    return None


def fingerprint(path: pathlib.Path) -> tuple[int, np.ndarray]:
    """(64-bit dHash: is each pixel of the 9x8 grey thumbnail brighter than its right neighbour,
    16x16 RGB thumbnail as float32), transparent pixels on white as the recorder shows them."""
    with Image.open(path) as image:
        image.draft("RGB", (64, 64))
        rgb = Image.fromarray(wm_images.to_rgb(image))
    grey = np.asarray(rgb.convert("L").resize((9, 8), Image.LANCZOS), np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).ravel()
    return int("".join("1" if bit else "0" for bit in bits), 2), np.asarray(rgb.resize((16, 16), Image.BILINEAR), np.float32)


def near_duplicates(a: Picture, b: Picture) -> bool:
    return (bin(a.hash ^ b.hash).count("1") <= HASH_DISTANCE
            and float(np.abs(a.thumb - b.thumb).mean()) <= THUMB_DISTANCE)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "picture"


def select(sources, held_out_package: str | None = HELD_OUT_PACKAGE):
    """(kept pictures with .split set, rejected [(picture, reason)], sources that matched nothing)."""
    found, missing = find(sources)
    rejected = []
    candidates = []
    for picture in largest_per_stem(found):
        # data.photo_split.HELD_OUT stays held out whatever its size (pygame's photograph: 320x240).
        reason = rejection(picture.path, 0 if picture.source.held_out else MIN_SIDE)
        if reason:
            rejected.append((picture, reason))
            continue
        picture.split = "heldout" if picture.source.held_out or picture.source.package == held_out_package else "train"
        picture.hash, picture.thumb = fingerprint(picture.path)
        candidates.append(picture)
    # Held-out first: a near-duplicate of a held-out picture is dropped from train, never the reverse.
    candidates.sort(key=lambda picture: picture.split != "heldout")
    kept: list[Picture] = []
    for picture in candidates:
        twin = next((other for other in kept if near_duplicates(other, picture)), None)
        if twin is not None:
            rejected.append((picture, f"near-duplicate of {twin.path}"))
            continue
        kept.append(picture)
    names: set[str] = set()
    for picture in kept:
        base = _safe(f"{picture.source.package}--{picture.path.parent.name}--{picture.stem}")
        name, count = base + picture.path.suffix.lower(), 1
        while name in names:
            count += 1
            name = f"{base}-{count}{picture.path.suffix.lower()}"
        names.add(name)
        picture.name = name
    return kept, rejected, missing


def write(out: pathlib.Path, kept: list[Picture], rejected) -> None:
    """OUT/train/, OUT/heldout/ (links, emptied first) and OUT/manifest.json."""
    for split in ("train", "heldout"):
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            if old.is_symlink() or old.is_file():
                old.unlink()
    for picture in kept:
        (out / picture.split / picture.name).symlink_to(picture.path.resolve())
    manifest = {
        "rules": {"min_side": MIN_SIDE, "min_detail": MIN_DETAIL, "min_curvature": MIN_CURVATURE, "max_transparent": MAX_TRANSPARENT,
                  "hash_distance": HASH_DISTANCE, "thumb_distance": THUMB_DISTANCE},
        "pictures": [{"name": p.name, "split": p.split, "package": p.source.package, "licence": p.source.licence,
                      "source": str(p.path), "dhash": f"{p.hash:016x}"} for p in kept],
        "rejected": [{"package": p.source.package, "source": str(p.path), "why": why} for p, why in rejected],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def counts(kept: list[Picture], sources) -> dict[str, dict[str, int]]:
    table = {source.package: {"train": 0, "heldout": 0} for source in sources}
    for picture in kept:
        table[picture.source.package][picture.split] += 1
    return table


def missing_message(missing: list[Source]) -> str:
    apt = sorted({source.package for source in missing if source.module is None})
    pip = sorted({source.package for source in missing if source.module is not None})
    lines = ["packages with no pictures here (not installed?): " + ", ".join(apt + pip)]
    if apt:
        lines.append(f"  install them: make photos   (or, as root: apt-get install -y --no-install-recommends {' '.join(apt)})")
    if pip:
        lines.append(f"  and: .venv/bin/pip install {' '.join(pip)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="recordings/pan_photos", help="folder for train/, heldout/, manifest.json")
    parser.add_argument("--min-train", type=int, default=MIN_TRAIN, help=f"fail below this many train pictures ({MIN_TRAIN})")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    kept, rejected, missing = select(SOURCES)
    table = counts(kept, SOURCES)
    width = max(len(package) for package in table)
    print(f"{'package':<{width}}  train  heldout  licence")
    licences: dict[str, list[str]] = {}
    for source in SOURCES:
        if source.licence not in licences.setdefault(source.package, []):
            licences[source.package].append(source.licence)
    for package, row in table.items():
        print(f"{package:<{width}}  {row['train']:5d}  {row['heldout']:7d}  {'; '.join(licences[package])}")
    train = sum(row["train"] for row in table.values())
    heldout = sum(row["heldout"] for row in table.values())
    print(f"{'total':<{width}}  {train:5d}  {heldout:7d}   ({len(rejected)} files dropped: small, transparent, flat, "
          "smaller copy or near-duplicate; see manifest.json)")
    if missing:
        print(missing_message(missing), file=sys.stderr)
    if train < args.min_train:
        print(f"error: {train} distinct train pictures, fewer than {args.min_train}.", file=sys.stderr)
        if not missing:
            print("  every package in data.photo_library.SOURCES is installed; add sources to the table.", file=sys.stderr)
        return 1
    write(out, kept, rejected)
    print(f"{out / 'train'}: {train} pictures; {out / 'heldout'}: {heldout} pictures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
