"""FSR_FAST inpainting (OpenCV-contrib's ``cv2.xphoto``) run in its own Python environment.

Frequency selective reconstruction (FSR; Seiler et al. 2015, Genser et al. 2018) models each
block around a hole as a sparse sum of Fourier basis functions fitted to the known pixels.
It is one of the strongest classical inpainting methods a user can install with ``pip``, so
the evaluation offers it as the baseline ``"fsr"`` beside Telea, Navier-Stokes and
biharmonic inpainting (:mod:`glcic_lib.evaluation`).

It lives in ``opencv-contrib-python-headless``, whose ``cv2`` module conflicts with the
``opencv-python-headless`` the course installs (both provide ``cv2``; installing one over the
other breaks it).  So FSR runs in a separate interpreter that has the contrib wheel:

    python3 -m venv .venv-fsr && .venv-fsr/bin/pip install opencv-contrib-python-headless numpy

:func:`find_python` looks for that interpreter (the environment variable
``GLCIC_FSR_PYTHON``, then ``.venv-fsr`` in the current folder and in the repository, then the
current interpreter if its ``cv2`` happens to have ``xphoto``); :func:`fsr_inpaint` sends it a
batch of images and holes in a temporary ``.npz`` file (no pickles) and reads the fills back.

Conventions of ``cv2.xphoto.inpaint`` (checked on small examples, see the tests):

* its mask is **non-zero where pixels are known** and 0 in the holes: the opposite of
  ``cv2.inpaint`` and of this course's masks (True = hole); this module inverts it;
* a 3-channel image is expected in **BGR** order (the function's documentation: "1-channel
  grayscale or 3-channel BGR image"; Lab is suggested only for the shift-map method).  FSR does
  not treat the channels independently, so the order matters a little; this module converts
  RGB to BGR and back, as a user following the documentation would.  (Mean hole PSNR on the 20
  bundled held-out photos: BGR 18.00 dB, YCrCb 17.98, RGB order 17.91, Lab 17.90: the
  documented order is also the best);
* pixels inside the holes are ignored; known pixels may come back changed by a grey level, so
  they are restored exactly;
* FSR works in blocks of 16 pixels and (in OpenCV-contrib 5.1) leaves the hole pixels of the
  last, partial block of a side that is not a multiple of 16 at 0: black.  This module pads
  the image and its mask on the bottom and right by reflection to a multiple of
  :data:`FSR_BLOCK` and crops the result (a 256x256 image is not changed by this).

This file imports only the standard library and numpy at the top, so the other interpreter
can run it as a script (``python -I fsr.py in.npz out.npz``) without the course's dependencies.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

#: Environment variable naming a Python interpreter whose ``cv2`` has ``xphoto``.
ENV_VAR = "GLCIC_FSR_PYTHON"
#: The default environment's folder, looked for in the current folder and the repository root.
DEFAULT_VENV = ".venv-fsr"
#: How to create that environment.
INSTALL_HINT = "python3 -m venv .venv-fsr && .venv-fsr/bin/pip install opencv-contrib-python-headless numpy"
#: Seconds allowed for probing an interpreter.
PROBE_TIMEOUT = 60
#: FSR's block size: images are padded to a multiple of it (see the module docstring).
FSR_BLOCK = 16
_PROBE = "import cv2, numpy; cv2.xphoto.inpaint; print(cv2.xphoto.INPAINT_FSR_FAST)"
#: Runs this file as a script in isolated mode (-I), so that neither the package folder nor the
#: current folder is on the other interpreter's path (glcic_lib's module names cannot shadow
#: anything numpy or cv2 import).
_RUN_SELF = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


class FSRUnavailable(RuntimeError):
    """No Python interpreter with ``cv2.xphoto`` was found (see :data:`INSTALL_HINT`)."""


# --------------------------------------------------------------------------- the work itself
def _fsr_arrays(images, holes) -> tuple[list[np.ndarray], list[float]]:
    """FSR_FAST on uint8 RGB images with boolean holes, in *this* interpreter (it needs
    ``cv2.xphoto``).  Returns the filled images and the seconds each took."""
    import cv2

    outs, seconds = [], []
    for image, hole in zip(images, holes):
        t0 = time.perf_counter()
        h, w = hole.shape
        pad_h, pad_w = -h % FSR_BLOCK, -w % FSR_BLOCK
        bgr = np.ascontiguousarray(image[..., ::-1])
        known = np.where(hole, 0, 255).astype(np.uint8)   # xphoto: non-zero = known pixel
        if pad_h or pad_w:  # a partial last block would stay black
            bgr = cv2.copyMakeBorder(bgr, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101)
            known = cv2.copyMakeBorder(known, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101)
        dst = np.zeros_like(bgr)
        cv2.xphoto.inpaint(bgr, known, dst, cv2.xphoto.INPAINT_FSR_FAST)
        out = np.ascontiguousarray(dst[:h, :w, ::-1])
        out[~hole] = image[~hole]
        seconds.append(time.perf_counter() - t0)
        outs.append(out)
    return outs, seconds


def _write_batch(path, images, holes) -> None:
    arrays = {}
    for i, (image, hole) in enumerate(zip(images, holes)):
        arrays[f"image{i}"], arrays[f"hole{i}"] = image, hole
    np.savez(path, n=np.array(len(images)), **arrays)


def _worker(in_path: str, out_path: str) -> None:
    """Script entry point: read a batch, fill it, write ``out<i>`` and ``seconds``."""
    with np.load(in_path, allow_pickle=False) as d:
        n = int(d["n"])
        images = [d[f"image{i}"] for i in range(n)]
        holes = [d[f"hole{i}"].astype(bool) for i in range(n)]
    outs, seconds = _fsr_arrays(images, holes)
    np.savez(out_path, seconds=np.array(seconds, dtype=np.float64), **{f"out{i}": o for i, o in enumerate(outs)})


# --------------------------------------------------------------------------- finding an interpreter
def _current_has_xphoto() -> bool:
    try:
        import cv2
    except Exception:  # noqa: BLE001 - no cv2 at all
        return False
    return hasattr(cv2, "xphoto") and hasattr(cv2.xphoto, "INPAINT_FSR_FAST")


@lru_cache(maxsize=None)
def _probe(python: str) -> bool:
    """Whether ``python`` runs and imports ``cv2.xphoto`` (cached per path)."""
    try:
        r = subprocess.run([python, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def _venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def candidates() -> list[str]:
    """Interpreters :func:`find_python` tries, in order (the current one is tried last, in process)."""
    out = []
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        out.append(env)
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        p = _venv_python(root / DEFAULT_VENV)
        if p.exists() and str(p) not in out:
            out.append(str(p))
    return out


def find_python() -> str | None:
    """A Python interpreter whose ``cv2`` has ``xphoto``, or ``None``.

    Tried in order: ``$GLCIC_FSR_PYTHON``, ``./.venv-fsr``, ``<repository>/.venv-fsr`` and the
    current interpreter (returned as :data:`sys.executable`; :func:`fsr_inpaint` then runs in
    process).  A ``GLCIC_FSR_PYTHON`` that does not work is passed over like a missing one;
    :func:`unavailable_note` says so.
    """
    for python in candidates():
        if _probe(python):
            return python
    return sys.executable if _current_has_xphoto() else None


def available() -> bool:
    """Whether FSR can run here (:func:`find_python` finds an interpreter)."""
    return find_python() is not None


def unavailable_note() -> str:
    """One line saying that FSR is skipped and how to install it."""
    env = os.environ.get(ENV_VAR, "").strip()
    bad = f" ({ENV_VAR}={env} does not import cv2.xphoto)" if env else ""
    return (f"note: FSR baseline skipped: no Python with OpenCV-contrib's cv2.xphoto found{bad}. It conflicts "
            f"with the course's opencv-python-headless, so give it its own environment in the repository "
            f"folder: {INSTALL_HINT}  (or point {ENV_VAR} at such an interpreter)")


# --------------------------------------------------------------------------- the entry point
def fsr_inpaint(images, holes, python: str | None = None, timeout: float | None = 600,
                with_seconds: bool = False):
    """Fill the holes of a batch of images with OpenCV-contrib's FSR_FAST.

    ``images``: uint8 RGB ``(H, W, 3)`` arrays (a list, or one ``(N, H, W, 3)`` array), sizes
    may differ; ``holes``: boolean ``(H, W)`` masks, True in the holes.  Returns the list of
    filled uint8 RGB images (pixels outside the holes exactly the input's), and with
    ``with_seconds`` also the seconds FSR took for each image (measured inside the worker, so
    without the interpreter's start-up, which :func:`fsr_inpaint` pays once per batch).

    ``python``: the interpreter to use (default :func:`find_python`).  Raises
    :class:`FSRUnavailable` when there is none, ``RuntimeError`` when the worker fails.
    """
    images = [np.asarray(i) for i in images]
    holes = [np.asarray(h).astype(bool) for h in holes]
    if len(images) != len(holes):
        raise ValueError(f"{len(images)} images but {len(holes)} masks")
    for i, (image, hole) in enumerate(zip(images, holes)):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image {i}: FSR needs uint8 RGB (H, W, 3), got {image.dtype} {image.shape}")
        if hole.shape != image.shape[:2]:
            raise ValueError(f"mask {i}: shape {hole.shape} differs from the image size {image.shape[:2]}")
    if not images:
        return ([], []) if with_seconds else []
    python = python or find_python()
    if python is None:
        raise FSRUnavailable(unavailable_note())
    if python == sys.executable and _current_has_xphoto():
        outs, seconds = _fsr_arrays(images, holes)
    else:
        outs, seconds = _run_worker(python, images, holes, timeout)
    return (outs, seconds) if with_seconds else outs


def _run_worker(python: str, images, holes, timeout) -> tuple[list[np.ndarray], list[float]]:
    with tempfile.TemporaryDirectory(prefix="glcic-fsr-") as tmp:
        in_path, out_path = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        _write_batch(in_path, images, holes)
        try:
            r = subprocess.run([python, "-I", "-c", _RUN_SELF, str(Path(__file__).resolve()), in_path, out_path],
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"FSR worker ({python}) did not finish within {timeout} s") from e
        if r.returncode != 0 or not os.path.exists(out_path):
            tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"FSR worker ({python}) failed with exit status {r.returncode}: " + " | ".join(tail))
        with np.load(out_path, allow_pickle=False) as d:
            outs = [d[f"out{i}"] for i in range(len(images))]
            seconds = [float(s) for s in d["seconds"]]
    return outs, seconds


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python fsr.py IN.npz OUT.npz  (run by glcic_lib.fsr.fsr_inpaint)")
    _worker(sys.argv[1], sys.argv[2])
