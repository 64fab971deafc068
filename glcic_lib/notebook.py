"""Helpers for the first cell of every notebook: device line, seeding, smoke mode, figures."""
from __future__ import annotations

import sys

import torch

from .config import env_flag, smoke_mode
from .device import describe_device, pick_device, seed_everything


def in_colab() -> bool:
    return "google.colab" in sys.modules


def setup(seed: int = 0, quiet: bool = False) -> torch.device:
    """Seed everything, pick the device and print one line about the environment.

    It also sets torch's CPU thread count (:func:`glcic_lib.threads.choose_threads`: the
    faster of one thread and one per core, measured here in under a second; ``GLCIC_THREADS=N``
    or ``OMP_NUM_THREADS=N`` fix it instead) and says which it chose.
    Returns the device the notebook should use.  In smoke mode (``GLCIC_SMOKE=1``) the line
    says so: the notebook then runs with small sizes and few iterations.
    """
    from .threads import choose_threads

    threads = choose_threads()          # measured once per process; GLCIC_THREADS=N overrides
    seed_everything(seed)
    device = pick_device()
    if not quiet:
        where = "Colab" if in_colab() else "local Jupyter"
        print(f"{describe_device(device)} | {where} | seed {seed} | {threads.describe()}")
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


# ---------------------------------------------------------------------------- coding exercises
#: The lines that open and close the learner's part of an exercise cell.  Between them the
#: stored notebook holds a skeleton (``raise NotImplementedError`` or ``return None`` where the
#: code goes); ``notebooks/solutions/NN_name.py`` holds the same region filled in, which the
#: tests substitute (:func:`fill_solutions`) to check that every check passes on a solution.
EXERCISE_BEGIN = "# --- your code below ("
EXERCISE_END = "# --- your code above"


class NotAttempted(Exception):
    """Raised by a check when the learner has not written the exercise yet."""


def check_code(name: str, check, hint: str = "") -> bool | None:
    """Run ``check()`` (a function of asserts on the learner's code) and print the verdict.

    * the learner's function still raises ``NotImplementedError`` (or returns ``None`` where a
      value is due, or ``check`` raises :class:`NotAttempted`): "not attempted yet", ``None``;
    * every assert holds: "correct!", ``True``;
    * an assert fails: its message and the ``hint``, ``False``; a wrong solution never stops the
      notebook (the next cells run as well), so "Run All" still works.

    Set ``GLCIC_EXERCISES_STRICT=1`` to make a failed check raise (the tests use it to run the
    notebooks with the solutions filled in, so the checks themselves are tested).
    """
    strict = env_flag("GLCIC_EXERCISES_STRICT")
    try:
        check()
    except (NotImplementedError, NotAttempted):
        print(f"{name}: not attempted yet - write your code in the exercise cell and run it and this cell again")
        if strict:
            raise AssertionError(f"{name}: the solution was not filled in")
        return None
    except AssertionError as e:
        msg = str(e) or "an assert failed"
        print(f"{name}: not right yet: {msg}" + (f"\n  Hint: {hint}" if hint else ""))
        if strict:
            raise
        return False
    except Exception as e:   # the learner's code crashed: show what, not a long traceback
        print(f"{name}: your code raised {type(e).__name__}: {e}" + (f"\n  Hint: {hint}" if hint else ""))
        if strict:
            raise
        return False
    print(f"{name}: correct!")
    return True


def attempted(value):
    """``value``, or :class:`NotAttempted` when it is ``None`` (a skeleton's ``return None``)."""
    if value is None:
        raise NotAttempted()
    return value


def _region_name(stripped: str) -> str:
    """The name in a ``# --- your code below (name)`` line (already stripped)."""
    return stripped[len(EXERCISE_BEGIN):].split(")")[0].strip()


def exercise_regions(source: str) -> dict[str, str]:
    """``{name: code}`` for each ``# --- your code below (name)`` ... ``# --- your code above``
    region of a cell or solutions file."""
    regions, name, lines = {}, None, []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(EXERCISE_BEGIN):
            name, lines = _region_name(stripped), []
        elif stripped.startswith(EXERCISE_END) and name is not None:
            regions[name] = "\n".join(lines)
            name = None
        elif name is not None:
            lines.append(line)
    return regions


def fill_solutions(cell_source: str, solutions: dict[str, str]) -> str:
    """The cell with each exercise region replaced by its solution (regions without one stay)."""
    out, skipping = [], False
    for line in cell_source.splitlines():
        stripped = line.strip()
        if stripped.startswith(EXERCISE_BEGIN):
            name = _region_name(stripped)
            out.append(line)
            if name in solutions:
                out.append(solutions[name])
                skipping = True
            continue
        if stripped.startswith(EXERCISE_END):
            skipping = False
        if not skipping:
            out.append(line)
    return "\n".join(out)


# ---------------------------------------------------------------------------- checked claims
#: Set to 1 to make a failed :func:`claim` print instead of raise in a full run too.
CLAIMS_SOFT_ENV = "GLCIC_CLAIMS_SOFT"
#: How each verdict line starts (``tools/run_notebooks.py`` collects them from the outputs).
CLAIM_OK, CLAIM_FAILED = "CLAIM ok: ", "CLAIM FAILED: "


def claim(text: str, ok: bool) -> bool:
    """Check a sentence of the notebook's text against this run's numbers and print the verdict.

    Prints ``CLAIM ok: <text>`` or ``CLAIM FAILED: <text>``.  A failed claim raises an
    ``AssertionError`` in a full run (so a rerun that changes the result stops at the sentence it
    contradicts); in smoke mode (small, barely trained runs) or with ``GLCIC_CLAIMS_SOFT=1`` it
    only prints.  Returns ``ok`` (as a bool)."""
    ok = bool(ok)
    print((CLAIM_OK if ok else CLAIM_FAILED) + text)
    if not ok and not smoke_mode() and not env_flag(CLAIMS_SOFT_ENV):
        raise AssertionError(f"the notebook claims '{text}', but this run's numbers do not show it "
                             f"(set {CLAIMS_SOFT_ENV}=1 to go on anyway)")
    return ok
