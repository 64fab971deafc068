"""Install the course on Colab without touching Colab's own torch: ``python colab_install.py DIR``.

Every notebook's first cell clones (or updates) the repository into ``/content/glcic-course``
and then runs this file *as a script*, by its path: ``glcic_lib`` is not importable yet, and
importing it would pull in packages that may still be missing.  So this file uses the standard
library only (plus ``packaging`` when present, to compare versions) and imports nothing from
the package.

What it does:

1. ``pip install --no-deps -e DIR``: the project itself, editable, so that a later ``git
   pull`` (the first cell does one when re-run) updates the code in place;
2. for each dependency in ``DIR/pyproject.toml``: skip torch (Colab's CUDA build stays) and
   JupyterLab (Colab is the notebook server); keep what is installed and recent enough (any
   OpenCV distribution provides ``cv2``); install the rest with a constraint that pins the
   installed torch, so that no dependency can reinstall it.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

#: Dependencies Colab never needs from us: its torch build, and JupyterLab (Colab runs notebooks).
SKIP = ("torch", "jupyterlab")

#: A requirement on the left is met by any of the distributions on the right (all provide ``cv2``).
ALTERNATIVES = {
    "opencv-python-headless": ("opencv-python-headless", "opencv-python", "opencv-contrib-python",
                               "opencv-contrib-python-headless"),
}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def dependencies(project_dir: str | Path) -> list[str]:
    """The ``[project] dependencies`` of ``project_dir/pyproject.toml``."""
    text = (Path(project_dir) / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: read the list by hand
        block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.M | re.S)
        return re.findall(r'"([^"]+)"', block.group(1)) if block else []
    return list(tomllib.loads(text)["project"].get("dependencies", []))


def _satisfied(requirement: str, version: str) -> bool:
    try:
        from packaging.requirements import Requirement
    except ImportError:  # no packaging: any installed version will do
        return True
    return Requirement(requirement).specifier.contains(version, prereleases=True)


def missing(requirements: list[str], installed: dict[str, str]) -> list[str]:
    """The requirements to install: not in :data:`SKIP`, and not met by ``installed``
    (distribution name -> version; names lower case with dashes)."""
    todo = []
    for req in requirements:
        name = _name(req)
        if name in SKIP:
            continue
        found = [installed[alt] for alt in ALTERNATIVES.get(name, (name,)) if alt in installed]
        if not any(_satisfied(req, version) for version in found):
            todo.append(req)
    return todo


def installed_distributions() -> dict[str, str]:
    """Distribution name (lower case, dashes) -> version, of everything installed."""
    return {(d.metadata["Name"] or "").lower().replace("_", "-"): d.version for d in metadata.distributions()}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python colab_install.py PROJECT_DIR", file=sys.stderr)
        return 2
    project = Path(argv[0])
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["--no-deps", "-e", str(project)], check=True)
    installed = installed_distributions()
    todo = missing(dependencies(project), installed)
    if not todo:
        print("glcic_lib installed; every dependency was already there (torch", installed.get("torch", "?") + ")")
        return 0
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
        if "torch" in installed:
            pins.write(f"torch=={installed['torch']}\n")  # whatever the others need, torch stays
    print("installing", ", ".join(todo))
    subprocess.run(pip + ["-c", pins.name] + todo, check=True)
    print("glcic_lib installed (torch", installed.get("torch", "?") + ", untouched)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
