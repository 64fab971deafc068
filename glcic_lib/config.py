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


def smoke_mode() -> bool:
    """True when ``GLCIC_SMOKE`` is set to 1/true/yes/on (read at call time)."""
    return os.environ.get("GLCIC_SMOKE", "").strip().lower() in _TRUE


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


#: Where the course lives (the Colab badges and the Colab setup cell clone it from here).
REPO_URL = "https://github.com/glcic-course/glcic-course"
