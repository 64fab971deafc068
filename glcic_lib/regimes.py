"""Hole regimes for honest comparisons: the same photographs, four kinds of holes.

A mean over one mixed set hides where a method wins and where it loses, so the comparison of
the demo model with classical inpainting is reported per regime (at 256x256):

``rects``
    1-2 rectangles, sides 48-96 px: the paper's kind of hole, a little smaller.
``large_rect``
    one rectangle, sides 96-128 px: the paper's training holes.
``free``
    free-form brush strokes covering 10-20% of the image (what a user paints over an object).
``border``
    a rectangle flush with one image edge (the paper's failure case).

Every mask is a pure function of ``(regime, image name, seed)``, so every method sees the same
holes and a rerun gives the same numbers.  :func:`regime_items` turns a folder of photographs
into items for :func:`glcic_lib.evaluation.evaluate`; :func:`compare` runs models and the
classical baselines on every regime and :func:`regime_table` prints the per-regime table.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from .evaluation import CLASSICAL
from .masks import border_hole, box_mask, free_form_mask, sample_hole

REGIMES = ("rects", "large_rect", "free", "border")
#: Free-form strokes are redrawn until their cover lies in this range (share of the image).
FREE_COVER = (0.10, 0.20)


def _rng(regime: str, name: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{regime}:{name}:{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def regime_mask(regime: str, height: int, width: int, name: str = "", seed: int = 0) -> np.ndarray:
    """The bool hole mask (True = hole) of ``regime`` for the image called ``name``."""
    if regime not in REGIMES:
        raise ValueError(f"unknown hole regime {regime!r}; choose from {REGIMES}")
    rng = _rng(regime, name, seed)
    scale = min(height, width) / 256
    if regime == "rects":
        lo, hi = max(1, int(48 * scale)), max(1, int(96 * scale))
        return box_mask([sample_hole((height, width), (lo, hi), rng) for _ in range(int(rng.integers(1, 3)))],
                        (height, width))
    if regime == "large_rect":
        return box_mask(sample_hole((height, width), (max(1, int(96 * scale)), max(1, int(128 * scale))), rng),
                        (height, width))
    if regime == "border":
        return border_hole(height, width, depth=float(rng.uniform(0.2, 0.3)), span=(0.3, 0.5), rng=rng)
    for _ in range(200):
        mask = free_form_mask(height, width, strokes=int(rng.integers(2, 6)), brush=(0.03, 0.07), rng=rng)
        if FREE_COVER[0] <= mask.mean() <= FREE_COVER[1]:
            return mask
    raise RuntimeError(f"could not draw free-form strokes covering {FREE_COVER} of a {height}x{width} image")


def load_photos(folder: str | Path, size: int = 256) -> list[tuple[str, np.ndarray]]:
    """``(name, uint8 RGB image)`` for every picture in ``folder``: the shorter side scaled to
    ``size``, then the centre ``size`` x ``size`` crop.  Unreadable files are skipped and counted
    in a printed note, never silently."""
    from .data import EXTENSIONS
    from .imageio import ImageReadError, read_image

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder of photographs at {folder}")
    out, bad = [], []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS):
        try:
            img = read_image(path)
        except (ImageReadError, OSError, ValueError):
            bad.append(path.name)
            continue
        h, w = img.shape[:2]
        s = size / min(h, w)
        if s != 1:
            img = cv2.resize(img, (max(size, round(w * s)), max(size, round(h * s))),
                             interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        h, w = img.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        out.append((path.stem, np.ascontiguousarray(img[top:top + size, left:left + size])))
    if bad:
        print(f"note: {len(bad)} unreadable file(s) in {folder} skipped: {', '.join(bad[:5])}"
              + (" ..." if len(bad) > 5 else ""))
    if not out:
        raise ValueError(f"no readable photographs in {folder}")
    return out


def regime_items(photos, regime: str, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, image, mask)`` items of one regime for :func:`glcic_lib.evaluation.evaluate`.
    ``photos``: a folder (:func:`load_photos`) or a list of ``(name, image)``."""
    if isinstance(photos, (str, Path)):
        photos = load_photos(photos)
    return [(name, img, regime_mask(regime, img.shape[0], img.shape[1], name, seed)) for name, img in photos]


def compare(models: dict, photos, regimes=REGIMES, baselines=CLASSICAL,
            postprocess="both", seed: int = 0, cache_dir=None, progress: bool = False) -> dict:
    """``{regime: EvalResult}``: each model of ``models`` (name -> network, checkpoint path or
    ``"demo"``; raw and post-processed) and the baselines, on the same photographs and holes,
    regime by regime.  ``cache_dir``: keep the baselines' results there
    (``baselines_<regime>.json``) and reuse them on the next call (FSR and biharmonic take
    minutes on a CPU); delete the files after changing the photographs or the seed."""
    from .evaluation import EvalResult, evaluate

    if isinstance(photos, (str, Path)):
        photos = load_photos(photos)
    results = {}
    for regime in regimes:
        items = regime_items(photos, regime, seed)
        res = None
        for name, model in models.items():
            r = evaluate(model, items, postprocess=postprocess, name=name, device="cpu", progress=progress)
            res = r if res is None else res.merge(r)
        if baselines:
            cache = Path(cache_dir) / f"baselines_{regime}.json" if cache_dir is not None else None
            base = EvalResult.from_json(cache) if cache is not None and cache.exists() else None
            missing = [b for b in baselines if base is None or b not in base.methods]
            if missing:   # only what the cache lacks (a baseline added since, or no cache)
                extra = evaluate(None, items, baselines=missing, progress=progress)
                base = extra if base is None else base.merge(extra)
                if cache is not None:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    base.to_json(cache)
            res = base if res is None else res.merge(base)
        if res is None:
            raise ValueError("nothing to compare: give some models or baselines")
        results[regime] = res
    return results


def best_baseline(result, metric: str = "psnr_hole", methods=None, select=None) -> str:
    """The classical method (:data:`glcic_lib.evaluation.CLASSICAL`: not the ``smooth`` fill, which
    is the demo network's own starting point) with the best mean ``metric`` in ``result``
    (higher is better); ``select``: a boolean array over ``result.image_names`` to average over
    those images only."""
    names = [m for m in (methods or result.methods) if m in CLASSICAL]
    if not names:
        raise ValueError("the result holds no classical baseline")
    pick = slice(None) if select is None else np.asarray(select, bool)
    return max(names, key=lambda m: float(np.nanmean(result.values(m, metric)[pick])))


def regime_table(results: dict, method: str, metric: str = "psnr_hole") -> tuple[str, list[dict]]:
    """A Markdown table, one row per regime: every method's mean ``metric``, the best baseline,
    ``method`` minus it and on how many images ``method`` is ahead; and the rows as dicts."""
    rows, lines = [], []
    first = next(iter(results.values()))
    methods = list(first.methods)
    lines.append("| holes | " + " | ".join(methods) + " | best classical | difference | ahead on |")
    lines.append("|---" * (len(methods) + 4) + "|")
    for regime, res in results.items():
        means = {m: float(np.nanmean(res.values(m, metric))) for m in methods}
        best = best_baseline(res, metric)
        mine, theirs = res.values(method, metric), res.values(best, metric)
        row = {"regime": regime, **means, "best": best, "diff": means[method] - means[best],
               "ahead": int((mine > theirs).sum()), "n": len(mine)}
        rows.append(row)
        lines.append(f"| {regime} | " + " | ".join(f"{means[m]:.2f}" for m in methods)
                     + f" | {best} | {row['diff']:+.2f} | {row['ahead']}/{row['n']} |")
    return "\n".join(lines), rows
