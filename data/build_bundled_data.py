"""Rebuild the bundled images in data/train and data/heldout from scikit-image's own images.

    python data/build_bundled_data.py

Every source image ships inside the scikit-image wheel (``skimage/data``) and is public domain
or CC0 (see data/README.md).  Each source is cut into a grid of non-overlapping square tiles;
each tile is resized to 256x256.  One tile of eight of the sources goes to the held-out set, all
other tiles are training images, so no held-out pixel is ever seen in training.  Held-out
masks are fixed (seeded) and stored as PNGs.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import skimage

from glcic_lib import masks
from glcic_lib.imageio import read_image, write_image

HERE = Path(__file__).resolve().parent
SK = Path(skimage.__file__).parent / "data"
SIZE = 256

#: source file -> (grid rows, grid cols, tile side as a fraction of the shorter side,
#:                 index of the held-out tile in row-major order or None)
SOURCES = {
    "astronaut.png": (2, 2, 0.5, 3),
    "chelsea.png": (1, 2, 1.0, 1),
    "coffee.png": (2, 3, 0.5, 4),
    "rocket.jpg": (2, 3, 0.5, 1),
    "hubble_deep_field.jpg": (2, 2, 0.5, None),
    "retina.jpg": (2, 2, 0.5, None),
    "brick.png": (2, 2, 0.5, 0),
    "grass.png": (2, 2, 0.5, 2),
    "gravel.png": (2, 2, 0.5, 1),
    "camera.png": (2, 2, 0.5, 2),
}
#: Held-out mask kind per held-out image (cycled), all seeded.
MASK_KINDS = ("rect", "free_form", "border", "rect", "free_form", "border", "free_form", "rect")


def tiles(image: np.ndarray, rows: int, cols: int, frac: float):
    h, w = image.shape[:2]
    side = int(min(h, w) * frac)
    if rows * side > h or cols * side > w:
        side = min(h // rows, w // cols)
    y0, x0 = (h - rows * side) // 2, (w - cols * side) // 2
    for r in range(rows):
        for c in range(cols):
            t = image[y0 + r * side:y0 + (r + 1) * side, x0 + c * side:x0 + (c + 1) * side]
            yield cv2.resize(t, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def heldout_mask(kind: str, seed: int) -> np.ndarray:
    if kind == "rect":
        return masks.rect_holes(SIZE, SIZE, count=3, size_range=(0.15, 0.28), rng=seed)
    if kind == "free_form":
        return masks.free_form_mask(SIZE, SIZE, strokes=4, rng=seed)
    return masks.border_hole(SIZE, SIZE, depth=0.22, rng=seed)


def main() -> None:
    train, hi, hm = HERE / "train", HERE / "heldout" / "images", HERE / "heldout" / "masks"
    for d in (train, hi, hm):
        d.mkdir(parents=True, exist_ok=True)
        for f in d.iterdir():
            f.unlink()
    k = 0
    for name, (rows, cols, frac, held) in SOURCES.items():
        image = read_image(SK / name)
        stem = Path(name).stem.replace("_deep_field", "")
        for i, tile in enumerate(tiles(image, rows, cols, frac)):
            if i == held:
                kind = MASK_KINDS[k]
                write_image(hi / f"{stem}.png", tile)
                write_image(hm / f"{stem}.png", heldout_mask(kind, seed=100 + k))
                k += 1
            else:
                ok, buf = cv2.imencode(".jpg", cv2.cvtColor(tile, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
                buf.tofile(str(train / f"{stem}_{i:02d}.jpg"))
    n = len(list(train.iterdir()))
    size = sum(f.stat().st_size for d in (train, hi, hm) for f in d.iterdir())
    print(f"{n} training images, {k} held-out images, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
