"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel (nbclient)."""

import os
import pathlib

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    # The kernel inherits this process's environment: CPU JAX and the shared compilation cache.
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=dict(os.environ))
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    printed = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", []))
    assert "frames generated: 4" in printed
    assert "shipped world pan: 44 frames of 64x64" in printed
    assert "-- pan:" in printed and "-- doom:" in printed  # the held-out reports, read from experiments/worlds/
    assert "-- pan:" in printed and "-- doom:" in printed  # the held-out reports, read from experiments/worlds/
