"""Run-wide settings read from the environment, in one place.

``GLCIC_SMOKE=1`` turns on *smoke mode*: every notebook and command shrinks image sizes,
network widths, data and iteration counts so that the whole course executes on a CPU in
minutes (this is what CI does).  The cells and commands stay the same; only the numbers
returned by :func:`scaled` and friends change.

``GLCIC_DATA`` and ``GLCIC_CKPT`` point at the data and checkpoint folders; they default to
the bundled ``data/`` folder and ``runs/`` next to it.
"""
from __future__ import annotations

import os
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}

#: Repository root (the folder that holds ``glcic_lib``), used to find bundled data.
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def _is_on(value: str) -> bool:
    return value.strip().lower() in _TRUE


def env_flag(name: str) -> bool:
    """True when the environment variable ``name`` is set to 1/true/yes/on (read at call time)."""
    return _is_on(os.environ.get(name, ""))


def smoke_mode() -> bool:
    """True when ``GLCIC_SMOKE`` is set to 1/true/yes/on (read at call time)."""
    return _is_on(os.environ.get("GLCIC_SMOKE", ""))


def bundled_data_dir() -> Path:
    """The ``data/`` folder shipped with the project (images, held-out set, demo model).

    Installed copies (pip install without the repository) find it inside the package as
    ``glcic_lib/_data`` when it was packaged there.
    """
    for cand in (REPO_DIR / "data", PACKAGE_DIR / "_data"):
        if cand.is_dir():
            return cand
    return REPO_DIR / "data"


def data_dir() -> Path:
    """``$GLCIC_DATA`` or the bundled data folder."""
    env = os.environ.get("GLCIC_DATA")
    return Path(env).expanduser() if env else bundled_data_dir()


def checkpoint_dir() -> Path:
    """``$GLCIC_CKPT`` or ``runs/`` in the repository (created on demand by writers)."""
    env = os.environ.get("GLCIC_CKPT")
    return Path(env).expanduser() if env else REPO_DIR / "runs"


def pick(full, smoke):
    """Return ``smoke`` in smoke mode, else ``full``: the one switch notebooks use for numbers."""
    return smoke if smoke_mode() else full


#: The ``[project.urls]`` key that holds the course's address.
REPO_URL_KEY = "Repository"


def _pyproject_repo_url(path: Path) -> str | None:
    """``[project.urls] Repository`` of a glcic_lib ``pyproject.toml``, or None."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the two lines needed, read by hand
        import re

        section = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        found = section and re.search(rf'^{REPO_URL_KEY}\s*=\s*"([^"]+)"', section.group(1), re.M)
        named = re.search(r'^name\s*=\s*"glcic_lib"', text, re.M)
        return found.group(1) if found and named else None
    project = tomllib.loads(text).get("project", {})
    return project.get("urls", {}).get(REPO_URL_KEY) if project.get("name") == "glcic_lib" else None


def _metadata_repo_url() -> str | None:
    """The Repository URL in the installed package's metadata (``Project-URL``), or None."""
    from importlib import metadata

    try:
        urls = metadata.metadata("glcic_lib").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == REPO_URL_KEY.lower():
            return url.strip()
    return None


def repository_url() -> str:
    """Where the course lives: ``[project.urls] Repository`` of ``pyproject.toml``, the one place
    it is written.

    Read from the repository's ``pyproject.toml`` when the package runs from a checkout (an
    editable install's metadata is only refreshed by reinstalling), else from the installed
    package's metadata.  The notebooks' Colab badges and Colab setup cells use the same URL.
    """
    url = _pyproject_repo_url(REPO_DIR / "pyproject.toml") or _metadata_repo_url()
    if not url:
        raise RuntimeError(f"glcic_lib's repository URL is unknown: neither {REPO_DIR / 'pyproject.toml'} nor the "
                           f"installed package's metadata has [project.urls] {REPO_URL_KEY}; reinstall the project")
    return url


def __getattr__(name: str):
    # REPO_URL is read on first use, so that importing config never fails on a broken install
    if name == "REPO_URL":
        return repository_url()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
