"""The built wheel installs `wm_jax` alone (issue 17): no top-level `data`, `conversion` or
`experiments` packages to collide with other projects in site-packages."""

import pathlib
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_wheel_holds_wm_jax_alone_with_the_cli_page_and_worlds(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "--quiet", "--wheel-dir", str(tmp_path)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("wm_jax-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    dist_info = {name for name in top_level if name.endswith(".dist-info")}
    assert top_level - dist_info == {"wm_jax"}
    for required in ("wm_jax/cli/__init__.py", "wm_jax/cli/convert.py",
                     "wm_jax/conversion/layouts/oasis.py", "wm_jax/datasets/sources/doom.py",
                     "wm_jax/serve/page/index.html", "wm_jax/worlds/pan/world.json"):
        assert required in names, required
    # A shipped world installs what playing needs; its training logs and reports stay in the repository.
    in_bundles = {name.split("/")[3] for name in names if name.startswith("wm_jax/worlds/") and name.count("/") >= 3}
    assert in_bundles == {"world.json", "model", "autoencoder", "start.png"}, in_bundles
    (entry_points,) = [name for name in names if name.endswith("entry_points.txt")]
    assert "wm = wm_jax.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
