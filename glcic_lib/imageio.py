"""Reading and writing images and masks, with clear errors (OpenCV underneath, RGB order)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


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


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3); grey and RGBA files are converted."""
    img = _decode(path, "image")
    if img.dtype != np.uint8:  # 16-bit PNG/TIFF
        img = (img / (65535.0 if img.dtype == np.uint16 else img.max() or 1) * 255).round().astype(np.uint8)
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
    if m.ndim == 3:
        m = m[..., :3].max(axis=2) if m.shape[2] >= 3 else m[..., 0]
    return hole_mask(m)


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write a uint8 RGB (or grey/bool mask) array; the format follows the extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(image)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        raise TypeError(f"write_image expects uint8 (or bool) data, got {arr.dtype}")
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ext = path.suffix.lower() or ".png"
    ok, buf = cv2.imencode(ext, arr)
    if not ok:
        raise ValueError(f"cannot encode an image as {ext!r} for {path}")
    buf.tofile(str(path))
    return path
