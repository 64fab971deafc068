"""Helpers for the first cell of every notebook: device line, seeding, smoke mode, figures."""
from __future__ import annotations

import sys

import torch

from .config import smoke_mode
from .device import describe_device, pick_device, seed_everything


def in_colab() -> bool:
    return "google.colab" in sys.modules


def setup(seed: int = 0, quiet: bool = False) -> torch.device:
    """Seed everything, pick the device and print one line about the environment.

    Returns the device the notebook should use.  In smoke mode (``GLCIC_SMOKE=1``) the line
    says so: the notebook then runs with small sizes and few iterations.
    """
    seed_everything(seed)
    device = pick_device()
    if not quiet:
        where = "Colab" if in_colab() else "local Jupyter"
        print(f"{describe_device(device)} | {where} | seed {seed}")
        if smoke_mode():
            print("smoke mode: small images, narrow networks and few iterations (unset GLCIC_SMOKE for the full run)")
    return device


def colab_badge(notebook: str) -> str:
    """Markdown for an "Open in Colab" badge pointing at ``notebooks/<notebook>``."""
    from .config import REPO_URL

    path = REPO_URL.replace("https://github.com/", "")
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{path}/blob/main/notebooks/{notebook})")


# ---------------------------------------------------------------------------- exercises
#: Prefix of the digests written by :func:`answer_digest` (and recognised by :func:`check_answer`).
DIGEST_PREFIX = "sha256:"


def _canonical(value, decimals: int | None = None) -> str:
    """One text form per answer, so that ``4``, ``4.0`` and ``np.int64(4)`` agree, ``"Telea "``
    and ``"telea"`` agree, and a list equals the tuple with the same items."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        if decimals is not None:
            text = f"{float(value):.{decimals}f}"
            return "0" + text[2:] if text.startswith("-0") and not text.strip("-0.") else text
        if float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(_canonical(v, decimals) for v in value) + ")"
    return repr(value)


def answer_digest(value, decimals: int | None = None) -> str:
    """A short fingerprint of an answer, to store in a notebook instead of the answer itself.

    ``decimals`` rounds numbers first (for answers asked "to 3 decimals"); pass the same value
    to :func:`check_answer`.  Example: ``answer_digest(4)`` -> ``"sha256:…"`` (16 hex digits).
    """
    import hashlib

    text = "glcic-course:" + _canonical(value, decimals)
    return DIGEST_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]


def check_answer(name: str, given, expected, hint: str = "", decimals: int | None = None,
                 rel_tol: float | None = None) -> bool | None:
    """Check a learner's answer and print the verdict (``None`` = not answered yet).

    ``expected`` is either a digest from :func:`answer_digest` (the answer itself is then not in
    the notebook) or a value computed in the notebook (for answers that depend on a run, e.g.
    a measured ratio).  ``decimals`` rounds numbers before comparing (both sides);
    ``rel_tol`` accepts numbers within that relative distance of a plain ``expected`` value.
    A wrong answer prints ``hint`` and does not raise, so one cell can check every exercise.
    Returns True (right), False (wrong) or None (not answered).
    """
    if given is None:
        print(f"{name}: not answered yet - replace None with your answer and run this cell again")
        return None
    if isinstance(expected, str) and expected.startswith(DIGEST_PREFIX):
        ok = answer_digest(given, decimals) == expected
    elif rel_tol is not None:
        try:
            ok = abs(float(given) - float(expected)) <= rel_tol * abs(float(expected))
        except (TypeError, ValueError):
            ok = False
    else:
        ok = _canonical(given, decimals) == _canonical(expected, decimals)
    if ok:
        print(f"{name}: correct!")
    else:
        print(f"{name}: {given!r} is not right yet." + (f" Hint: {hint}" if hint else
                                                      " Look again at the section it comes from."))
    return ok
