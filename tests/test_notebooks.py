"""The course notebooks: stored clean, first cells by the convention, and executable.

Every ``notebooks/*.ipynb`` is checked, in sorted order (the order a learner reads them):

* (a) it is stored without outputs (``outputs == []`` and ``execution_count is None``);
* (b) cell 1 is markdown with a title and this notebook's "Open in Colab" badge, cell 2 is the
  shared setup cell (Colab install + ``glcic_lib.notebook.setup``), the same in every notebook;
  badge and setup cell use the repository URL of ``pyproject.toml`` (``[project.urls]``), and
  the setup cell's Colab part clones, re-runs after a restart, and fails with a way out (run
  here against local git repositories, with a stand-in ``google.colab`` module);
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
    'DIR = "/content/glcic-course"',
    'os.environ.get("GLCIC_REPO_URL", ',
    '"/glcic_lib/colab_install.py", DIR], check=True)',
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


def _setup_cells() -> dict[str, str]:
    return {p.name: _read(p).cells[1].source for p in NOTEBOOKS}


def _pyproject_repo_url() -> str:
    import tomllib

    return tomllib.loads((NOTEBOOK_DIR.parent / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def test_setup_cell_is_the_same_everywhere_and_uses_the_pyproject_url():
    from glcic_lib import config

    url = _pyproject_repo_url()
    assert url.startswith("https://github.com/") and config.REPO_URL == url
    cells = _setup_cells()
    first = cells[NOTEBOOKS[0].name]
    differ = [name for name, src in cells.items() if src != first]
    assert not differ, f"the setup cell of {differ} differs from {NOTEBOOKS[0].name}'s: keep them identical"
    assert f'os.environ.get("GLCIC_REPO_URL", "{url}")' in first
    assert "https://" not in first.replace(url, ""), "the setup cell names no other address"
    code = "\n".join(line.split("#")[0] for line in first.splitlines())  # without the comments
    assert "pip" not in code and "torch" not in code  # pip runs in glcic_lib/colab_install.py; torch untouched
    path = url.removeprefix("https://github.com/")
    for nb_path in NOTEBOOKS:
        badge_cell = _read(nb_path).cells[0].source
        links = [line for line in badge_cell.splitlines() if "colab.research.google.com/github/" in line]
        assert links == [colab_badge(nb_path.name)], f"{nb_path.name}: one badge, built from pyproject's URL"
        assert f"/github/{path}/blob/main/notebooks/{nb_path.name})" in links[0]


def _git(*args, cwd=None):
    import subprocess

    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd or "."), "PATH": __import__("os").environ["PATH"]})


def _run_colab_part(tmp_path, target, env):
    """Run the setup cell's Colab branch (up to the glcic_lib import) in a fresh Python with a
    stand-in google.colab module, cloning into ``target`` instead of /content/glcic-course."""
    import os
    import subprocess
    import sys

    source = _setup_cells()[NOTEBOOKS[0].name]
    assert source.count('"/content/glcic-course"') == 1
    colab_part = source.split("from glcic_lib.notebook import setup")[0].replace('"/content/glcic-course"', repr(str(target)))
    fake = tmp_path / "fake_colab"
    (fake / "google" / "colab").mkdir(parents=True, exist_ok=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "output.py").write_text("def enable_custom_widget_manager():\n    print('widgets on')\n")
    driver = "import sys, google.colab\n" + colab_part
    return subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(fake), **env})


def test_colab_setup_cell_clones_reruns_and_explains_a_failed_clone(tmp_path):
    # a stand-in for the course repository whose installer only records that it ran
    origin = tmp_path / "origin"
    (origin / "glcic_lib").mkdir(parents=True)
    (origin / "glcic_lib" / "colab_install.py").write_text(
        "import sys, pathlib\npathlib.Path(sys.argv[1], 'installed').open('a').write('x')\n")
    _git("init", "-q", "-b", "main", cwd=origin)
    _git("add", ".", cwd=origin)
    _git("commit", "-q", "-m", "c", cwd=origin)
    target = tmp_path / "content" / "glcic-course"
    for run in (1, 2):  # the second run is a re-run after a restart: the folder is already there
        res = _run_colab_part(tmp_path, target, {"GLCIC_REPO_URL": str(origin)})
        assert res.returncode == 0, res.stderr
        assert "widgets on" in res.stdout
        assert (target / "installed").read_text() == "x" * run
    # an uploaded folder (no .git) is used as it is
    uploaded = tmp_path / "up" / "glcic-course"
    (uploaded / "glcic_lib").mkdir(parents=True)
    (uploaded / "glcic_lib" / "colab_install.py").write_text((origin / "glcic_lib" / "colab_install.py").read_text())
    res = _run_colab_part(tmp_path, uploaded, {"GLCIC_REPO_URL": str(tmp_path / "nowhere")})
    assert res.returncode == 0, res.stderr
    # a clone that fails says why and what to do
    res = _run_colab_part(tmp_path, tmp_path / "new" / "glcic-course", {"GLCIC_REPO_URL": str(tmp_path / "nowhere")})
    assert res.returncode != 0
    assert f"RuntimeError: could not clone {tmp_path / 'nowhere'} into {tmp_path / 'new' / 'glcic-course'}. " \
           f"Either upload the project folder there" in res.stderr
    assert "os.environ['GLCIC_REPO_URL']" in res.stderr and "then run this cell again" in res.stderr


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
    _execute_in_smoke_mode(_read(path), path.name, tmp_path, monkeypatch)  # in memory: the file is never written


def _execute_in_smoke_mode(nb, label: str, tmp_path, monkeypatch) -> None:
    """Run every cell of ``nb`` in smoke mode, in ``notebooks/``, with runs under ``tmp_path``;
    a failing cell fails the test with its number, source and error."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    monkeypatch.setenv("GLCIC_SMOKE", "1")
    monkeypatch.setenv("GLCIC_CKPT", str(tmp_path / "runs"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            try:
                client.execute_cell(cell, index)
            except (CellExecutionError, CellTimeoutError) as e:
                pytest.fail(f"{label}, cell {index + 1} failed.\n--- source ---\n{cell.source}\n"
                            f"--- error ---\n{e}", pytrace=False)


SOLUTIONS_DIR = NOTEBOOK_DIR / "solutions"


def _solutions_for(path: Path) -> dict[str, str]:
    from glcic_lib.notebook import exercise_regions

    file = SOLUTIONS_DIR / f"{path.stem}.py"
    return exercise_regions(file.read_text()) if file.exists() else {}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_coding_exercise_has_a_solution_and_every_solution_an_exercise(path):
    from glcic_lib.notebook import exercise_regions

    nb = _read(path)
    asked = {}
    for c in nb.cells:
        if c.cell_type == "code":
            asked.update(exercise_regions(c.source))
    solved = _solutions_for(path)
    assert set(asked) == set(solved), (f"{path.name}: exercises {sorted(set(asked) - set(solved))} have no solution in "
                                       f"notebooks/solutions/{path.stem}.py; solutions {sorted(set(solved) - set(asked))} "
                                       f"have no exercise")


SOLVED = [p for p in NOTEBOOKS if (SOLUTIONS_DIR / f"{p.stem}.py").exists()]


@pytest.mark.notebook
@pytest.mark.parametrize("path", SOLVED, ids=[p.stem for p in SOLVED])
def test_executes_with_the_solutions_filled_in(path, tmp_path, monkeypatch):
    """The same notebook with every exercise region replaced by its solution, and the checks
    strict: a check that fails on the solution fails this test (so the checks are tested)."""
    from glcic_lib.notebook import fill_solutions

    monkeypatch.setenv("GLCIC_EXERCISES_STRICT", "1")
    nb = _read(path)
    solutions = _solutions_for(path)
    for c in nb.cells:
        if c.cell_type == "code":
            c.source = fill_solutions(c.source, solutions)
    _execute_in_smoke_mode(nb, f"{path.name} with solutions", tmp_path, monkeypatch)
