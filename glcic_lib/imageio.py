"""Reading and writing images and masks, with clear errors (OpenCV underneath, RGB order).

What :func:`read_image` does with each kind of sample, so that no file is silently changed:

* 8-bit: as stored.  16-bit unsigned (PNG, TIFF): divided by 65535, then rounded to 8 bits.
* floating point (e.g. a float32 TIFF): the values are read as intensities in [0, 1], never
  rescaled by the image's own maximum.  Values at most :data:`FLOAT_TOLERANCE` (half an 8-bit
  grey level) outside [0, 1] are clipped: they round to 0 or 255 anyway.  Anything further out
  (HDR or linear radiance, a 0-255 image stored as float, ringing from a resize) is an
  :class:`ImageReadError` naming the file and the range found, and so is a NaN or an infinity.
* any other sample type (signed or 32-bit integers) is an :class:`ImageReadError`.

:func:`write_image` writes atomically (a temporary file, then a rename), so a full disk or a
crash never leaves a truncated image at the target; :func:`check_output_path` finds the usual
reasons a write would fail (unknown extension, a folder in the way, no permission) before any
work is done.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

#: How far outside [0, 1] a float image may stray and still be read (clipped): half an 8-bit
#: grey level, so clipping never changes the uint8 result by more than rounding already does.
FLOAT_TOLERANCE = 0.5 / 255


class ImageReadError(ValueError):
    """A file could not be read as an image."""


def _decode(path: str | Path, what: str) -> np.ndarray:
    """Decode a file with OpenCV as stored (any channels and depth); clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        article = "an" if what[0] in "aeiou" else "a"
        raise ImageReadError(f"cannot read {path} as {article} {what} (unsupported or corrupt file)")
    return img


def _float_to_uint8(img: np.ndarray, path: str | Path) -> np.ndarray:
    """A float image in [0, 1] (see the module docstring) -> uint8; a clear error otherwise."""
    finite = np.isfinite(img)
    if not finite.all():
        n_nan, n_inf = int(np.isnan(img).sum()), int(np.isinf(img).sum())
        y, x = (int(v) for v in np.argwhere(~finite)[0][:2])
        what = " and ".join(f"{n} {name}" for n, name in ((n_nan, "NaN"), (n_inf, "infinite")) if n)
        raise ImageReadError(f"{path}: the float image holds {what} sample value(s) (the first at x={x}, "
                             f"y={y}); a float image must hold finite intensities in [0, 1]: fix or "
                             f"re-export it (e.g. as an 8-bit PNG)")
    lo, hi = float(img.min()), float(img.max())
    if lo < -FLOAT_TOLERANCE or hi > 1 + FLOAT_TOLERANCE:
        if hi > 2:
            hint = " (it looks like 0-255 values stored as float: divide by 255 or save it as 8-bit)"
        else:
            hint = " (HDR or linear values? tone-map or clip them to [0, 1] first, e.g. np.clip)"
        raise ImageReadError(f"{path}: float image values must lie in [0, 1] (within {FLOAT_TOLERANCE:.2g}), "
                             f"found [{lo:.4g}, {hi:.4g}]{hint}")
    return (np.clip(img.astype(np.float64), 0.0, 1.0) * 255).round().astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3); grey and RGBA files are converted.

    16-bit files are divided by 65535; float files must hold values in [0, 1] (see the module
    docstring: no rescaling by the maximum, NaN/inf and out-of-range values are errors)."""
    img = _decode(path, "image")
    if img.dtype == np.uint16:  # 16-bit PNG/TIFF
        img = (img / 65535.0 * 255).round().astype(np.uint8)
    elif img.dtype.kind == "f":  # float TIFF (float32, float64)
        img = _float_to_uint8(img, path)
    elif img.dtype != np.uint8:
        raise ImageReadError(f"{path}: unsupported sample type {img.dtype} (read: 8- or 16-bit unsigned "
                             f"integers, or floats in [0, 1]); convert the image to 8-bit")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _half_white(m: np.ndarray) -> np.ndarray:
    """Pixels at least half white: >= 0.5 for floats, >= 128 for 8-bit (any integer type but
    16-bit), >= 32768 for 16-bit samples."""
    if m.dtype.kind == "f":
        return m >= 0.5
    return m >= (32768 if m.dtype == np.uint16 else 128)


def hole_mask(mask) -> np.ndarray:
    """The holes of a mask array as bool: what every function that takes a mask uses.

    * bool: as it is (True = hole);
    * integers that are all 0 or 1: 1 = hole;
    * any other integers: a mask *image*, 8-bit (16-bit for uint16): a hole is a pixel at least
      half white (>= 128 of 255), so the faint compression noise of a JPEG-saved mask, or the
      grey anti-aliased rim of a drawn stroke, is not a hole;
    * floats: >= 0.5 is a hole (white is 1.0).
    """
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask
    if mask.dtype.kind in "iu" and mask.size and 0 <= mask.min() and mask.max() <= 1:
        return mask != 0
    if mask.dtype.kind not in "iuf":
        raise TypeError(f"mask must be bool, integer or float, got dtype {mask.dtype}")
    return _half_white(mask)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask file -> bool (H, W): a pixel is a hole when it is at least half white
    (the brightest of its colour channels >= 128 of 255; >= 0.5 in float files; >= 32768 in
    16-bit files), or, in a file that holds only 0 and 1, when it is 1 (:func:`hole_mask`).
    Not "non-zero": a JPEG-saved mask has compression noise everywhere."""
    m = _decode(path, "mask image")
    if m.dtype.kind == "f" and np.isnan(m).any():
        raise ImageReadError(f"{path}: the mask holds NaN values, which are neither hole nor known; "
                             f"use 0 (black) for known pixels and 1 (white) for holes")
    if m.ndim == 3:
        m = m[..., :3].max(axis=2) if m.shape[2] >= 3 else m[..., 0]
    return hole_mask(m)


def check_output_path(path: str | Path) -> Path:
    """Check, before any work, that an image can be written to ``path``; a ``ValueError`` names
    the problem otherwise.

    The extension must be one OpenCV can encode (it chooses the format); ``path`` must not be a
    folder, nor an existing read-only file; its folder must exist and be writable, or be
    creatable (its nearest existing ancestor a writable folder, not a file).  Nothing is
    created.  A write can still fail later (e.g. the disk fills up): :func:`write_image` then
    raises an ``OSError`` and leaves no partial file."""
    path = Path(path)
    ext = path.suffix.lower()
    if path.is_dir():
        raise ValueError(f"output {path} is an existing folder: give a file name, e.g. {path / ('out' + (ext or '.png'))}")
    if not ext:
        raise ValueError(f"output file {path} has no extension, which chooses the image format: "
                         f"add one ({', '.join(IMAGE_EXTENSIONS)})")
    if not cv2.haveImageWriter("x" + ext):
        raise ValueError(f"cannot write {path}: OpenCV has no encoder for {ext!r} files; use one of "
                         f"{', '.join(IMAGE_EXTENSIONS)}")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"output file {path} exists and is read-only: choose another name or make it writable")
    ancestor = path.parent
    while not ancestor.exists():  # the nearest existing ancestor decides whether the folder can be made
        if ancestor == ancestor.parent:
            break
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise ValueError(f"cannot write {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        what = "the folder" if ancestor == path.parent else "cannot create its folder: the folder"
        raise ValueError(f"cannot write {path}: {what} {ancestor} is not writable (read-only or no "
                         f"permission); choose another output folder")
    return path


def describe_os_error(e: OSError) -> str:
    """One line for an ``OSError`` from reading or writing a file: what failed, on which file, and
    what to do (a full disk says "no space left on device")."""
    if e.errno is None:  # raised with a message of its own
        return str(e)
    target = e.filename if e.filename is not None else "the file"
    hints = {
        errno.ENOSPC: f"no space left on device (writing {target}): free some space or choose another location",
        errno.EDQUOT: f"disk quota exceeded (writing {target}): free some space or choose another location",
        errno.EROFS: f"{target} is on a read-only file system: choose another location",
        errno.EACCES: f"permission denied: {target}; choose a file or folder you can access",
        errno.EPERM: f"operation not permitted: {target}; choose a file or folder you can access",
        errno.EISDIR: f"{target} is a folder, not a file",
        errno.ENOTDIR: f"part of the path {target} is a file, not a folder",
        errno.ENOENT: f"no such file or folder: {target}",
    }
    return hints.get(e.errno, f"{e.strerror or e}: {target}")


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write a uint8 RGB (or grey/bool mask) array; the format follows the extension.

    Atomic: the file is written under a temporary name in the same folder and renamed, so a
    failure (``OSError``, e.g. ``errno.ENOSPC`` for a full disk) leaves no partial file and an
    existing ``path`` untouched."""
    from .checkpoint import atomic_write

    path = Path(path)
    arr = np.asarray(image)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        raise TypeError(f"write_image expects uint8 (or bool) data, got {arr.dtype}")
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ext = path.suffix.lower() or ".png"
    try:
        ok, buf = cv2.imencode(ext, arr)
    except cv2.error:  # no encoder for this extension
        ok = False
    if not ok:
        raise ValueError(f"cannot encode an image as {ext!r} for {path}")
    try:
        with atomic_write(path) as f:
            f.write(buf.tobytes())
    except OSError as e:
        if e.filename is None and e.errno is not None:  # a failed write or flush names no file: name it
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from e
        raise
    return path
