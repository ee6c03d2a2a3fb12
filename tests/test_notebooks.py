"""The notebooks in ``notebooks/``: stored without outputs, and each one runs from top to bottom.

Every notebook is executed with nbclient in a kernel of the interpreter that runs pytest (``python3``, the
kernelspec ipykernel installs into the same environment; the first executed cell checks that it is this
interpreter), from a temporary working directory, with a timeout per cell. A notebook that reads offline
dataset copies names them in its metadata (``"gnnlab": {"shared_data": ["Planetoid/Cora"]}``): it is marked
``shared_data`` and skips when they are absent (GNNLAB_SHARED_DATA, default ../shared/data, see conftest.py).
Install the runner with ``pip install -e ".[test]"`` (nbclient, nbformat, ipykernel).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# Seconds a cell may take (GNNLAB_NOTEBOOK_CELL_TIMEOUT). A whole notebook takes 20-75 s on two loaded CPU
# cores; the limit is wide so that a slow machine fails on errors, not on load.
CELL_TIMEOUT = int(os.environ.get("GNNLAB_NOTEBOOK_CELL_TIMEOUT", "600"))
# GNNLAB_NOTEBOOK_OUT=<folder>: also write the executed notebooks (with their outputs) there.


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _shared_data(path: Path) -> list[str]:
    return _read(path).get("metadata", {}).get("gnnlab", {}).get("shared_data", [])


def _params(slow: bool):
    for path in NOTEBOOKS:
        marks = [pytest.mark.slow] if slow else []
        if slow and _shared_data(path):
            marks.append(pytest.mark.shared_data)
        yield pytest.param(path, marks=marks, id=path.stem)


def _stored_outputs(nb: dict) -> list[str]:
    """What a stored notebook should not hold: outputs and execution counts of its code cells."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i} has {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i} has execution_count {cell['execution_count']}")
    return found


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 5, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", list(_params(slow=False)))
def test_notebook_is_stored_without_outputs(path):
    nb = _read(path)
    assert not _stored_outputs(nb), f"{path.name}: strip the outputs before committing: {_stored_outputs(nb)}"
    assert nb.get("metadata", {}).get("kernelspec", {}).get("name") == "python3", path.name


@pytest.mark.parametrize("path", list(_params(slow=True)))
def test_notebook_runs(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from gnnlab.data import shared_data_dir

    shared = shared_data_dir()
    for relative in _shared_data(path):
        if shared is None or not (shared / relative).exists():
            pytest.skip(f"offline copy {relative} not found (GNNLAB_SHARED_DATA, default ../shared/data)")

    nb = nbformat.read(path, as_version=4)
    assert not _stored_outputs(nb), f"{path.name}: {_stored_outputs(nb)}"
    # The kernel must be this interpreter (the project's environment), not a python3 registered elsewhere.
    check = nbformat.v4.new_code_cell(
        "import sys, os\n"
        f"assert os.path.realpath(sys.prefix) == {os.path.realpath(sys.prefix)!r}, sys.executable")
    nb.cells.insert(0, check)
    # A working directory of its own: relative paths in a notebook land in tmp_path, never in the checkout
    # ("work" one level down, so that a notebook's "../datasets" stays inside tmp_path as well).
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "WANDB_MODE": "offline",
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(workdir)}})
    before = sorted(p.name for p in NOTEBOOK_DIR.iterdir())
    start = time.perf_counter()
    try:
        client.execute(cwd=str(workdir), env=env)
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell failed:\n{err}", pytrace=False)
    print(f"{path.name}: executed in {time.perf_counter() - start:.1f} s")
    assert sorted(p.name for p in NOTEBOOK_DIR.iterdir()) == before, "the notebook wrote into notebooks/"
    if os.environ.get("GNNLAB_NOTEBOOK_OUT"):  # keep the executed copy (e.g. a CI artifact)
        keep = Path(os.environ["GNNLAB_NOTEBOOK_OUT"])
        keep.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, keep / path.name)
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
