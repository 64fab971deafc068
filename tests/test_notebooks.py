"""The course notebooks: stored clean, first cells by the convention, and executable.

Every ``notebooks/*.ipynb`` is checked, in sorted order (the order a learner reads them):

* (a) it is stored without outputs (``outputs == []`` and ``execution_count is None``);
* (b) cell 1 is markdown with a title and this notebook's "Open in Colab" badge, cell 2 is the
  shared setup cell (Colab install + ``glcic_lib.notebook.setup``);
* (c) it executes top to bottom in smoke mode (``GLCIC_SMOKE=1``) with nbclient, in
  ``notebooks/`` as the working directory, with ``GLCIC_CKPT`` pointing at a pytest temporary
  folder so that no run ever writes into the repository.  A failing cell fails the test with
  the cell's number, its source and its error.

The execution tests carry the ``notebook`` marker: ``pytest -m "not notebook"`` skips them.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from glcic_lib.notebook import colab_badge

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]

#: The lines every notebook's second cell must contain (the shared setup cell).
SETUP_LINES = (
    'if "google.colab" in sys.modules:',
    "pip -q install -e /content/glcic-course",
    "output.enable_custom_widget_manager()",
    "from glcic_lib.notebook import setup",
    "DEVICE = setup(seed=0)",
)
CELL_TIMEOUT_S = 300


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert all(n.isdigit() for n in numbers), f"notebook names must start with two digits: {IDS}"
    assert len(set(numbers)) == len(numbers), f"two notebooks share a number: {IDS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_without_outputs(path):
    nb = _read(path)
    assert nb.nbformat == 4, f"{path.name}: nbformat {nb.nbformat}, expected 4"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernel must be python3"
    dirty = [i for i, c in enumerate(nb.cells, 1)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} are stored with outputs or execution counts; clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_cells_follow_the_convention(path):
    nb = _read(path)
    assert len(nb.cells) >= 3, f"{path.name} has only {len(nb.cells)} cells"
    first, second = nb.cells[0], nb.cells[1]
    assert first.cell_type == "markdown", f"{path.name}: cell 1 must be markdown (title, badge, goals)"
    assert first.source.lstrip().startswith("# "), f"{path.name}: cell 1 must start with a '# ' title"
    assert colab_badge(path.name) in first.source, f"{path.name}: cell 1 lacks its Open-in-Colab badge"
    assert "learning goals" in first.source.lower(), f"{path.name}: cell 1 must state the learning goals"
    assert second.cell_type == "code", f"{path.name}: cell 2 must be the setup code cell"
    missing = [line for line in SETUP_LINES if line not in second.source]
    assert not missing, f"{path.name}: the setup cell lacks {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_ends_with_summary_and_checkable_exercises(path):
    nb = _read(path)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Summary" in text, f"{path.name}: no '## Summary' section"
    assert "exercise" in text.lower(), f"{path.name}: no exercises"
    tail = [c for c in nb.cells[-3:] if c.cell_type == "code"]
    assert any("check_answer(" in c.source or "assert" in c.source for c in tail), \
        f"{path.name}: the last cells must let the learner check the exercises (check_answer or asserts)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_smoke_mode_comes_from_glcic_lib(path):
    """Smoke mode is read in one place (glcic_lib.config): no notebook reads the variable itself."""
    nb = _read(path)
    bad = [i for i, c in enumerate(nb.cells, 1) if c.cell_type == "code" and "GLCIC_SMOKE" in c.source]
    assert not bad, f"{path.name}: cells {bad} read GLCIC_SMOKE; use glcic_lib.config.pick / smoke_mode"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_executes_in_smoke_mode(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    monkeypatch.setenv("GLCIC_SMOKE", "1")
    monkeypatch.setenv("GLCIC_CKPT", str(tmp_path / "runs"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = _read(path)  # executed in memory: the stored file is never written
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            try:
                client.execute_cell(cell, index)
            except (CellExecutionError, CellTimeoutError) as e:
                pytest.fail(f"{path.name}, cell {index + 1} failed.\n--- source ---\n{cell.source}\n"
                            f"--- error ---\n{e}", pytrace=False)
