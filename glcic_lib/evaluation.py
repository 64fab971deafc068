"""Evaluation: complete a held-out set with fixed holes and measure every result.

:func:`evaluate` is the one function behind the ``evaluate`` command, the ablation and the
notebooks.  It runs one or more *methods* on every held-out image and scores each result with
:func:`glcic_lib.metrics.all_metrics`:

* the completion network, raw (``"network"``) and/or with the paper's post-processing
  (``"network+post"``: fast marching, then Poisson blending, :mod:`glcic_lib.postprocess`);
* classical baselines that need no training (:data:`BASELINE_NAMES`, described in
  :data:`BASELINE_INFO`): OpenCV's fast marching method (``"telea"``, Telea 2004, radius
  :data:`BASELINE_RADIUS`; ``"telea5"``, radius 5), its Navier-Stokes method (``"ns"``,
  Bertalmio et al. 2001), scikit-image's biharmonic inpainting (``"biharmonic"``, Damelin and
  Hoang 2018) and OpenCV-contrib's frequency selective reconstruction (``"fsr"``, FSR_FAST,
  Genser et al. 2018; run in its own environment by :mod:`glcic_lib.fsr`, and skipped with a
  note where that environment is missing).  The first four propagate the border's colours
  into the hole: smooth, seamless and blurry; FSR continues the border's dominant frequencies,
  so it also continues regular texture.  Together they are the floor a learned method must
  clear; the best of them, not the weakest, is the honest comparison.

Holes are *fixed* (stored with the held-out images), so numbers from different runs and
different methods are comparable image by image.

The result, an :class:`EvalResult`, holds one row per (image, method), a summary (mean,
standard deviation and median over images), the completed images for figures, and writes
itself as CSV, JSON, a Markdown table and two figures (an image grid and a bar chart).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from .imageio import hole_mask
from .metrics import GT_REFERENCE, HIGHER_IS_BETTER, METRIC_NAMES, UNITS, all_metrics, detail, grid_energy, seam

#: ``cv2.inpaint`` radius of the baselines: the neighbourhood (in pixels) each newly filled
#: pixel averages over.  3 is OpenCV's documented example value; the post-processing uses 1,
#: as the authors' code does, because there it only provides a starting point for blending.
BASELINE_RADIUS = 3
#: Every ``cv2.inpaint`` baseline: name -> (flag, radius).
OPENCV_BASELINES = {"telea": (cv2.INPAINT_TELEA, BASELINE_RADIUS), "telea5": (cv2.INPAINT_TELEA, 5),
                    "ns": (cv2.INPAINT_NS, BASELINE_RADIUS)}
#: The OpenCV baselines evaluated by default (``ablation`` and older code iterate over it):
#: name -> ``cv2.inpaint`` flag, radius :data:`BASELINE_RADIUS`.
BASELINES = {name: OPENCV_BASELINES[name][0] for name in ("telea", "ns")}
#: One line per baseline :func:`evaluate` knows.
BASELINE_INFO = {
    "telea": f"OpenCV fast marching (Telea 2004), radius {BASELINE_RADIUS}",
    "telea5": "OpenCV fast marching (Telea 2004), radius 5",
    "ns": f"OpenCV Navier-Stokes (Bertalmio et al. 2001), radius {BASELINE_RADIUS}",
    "biharmonic": "scikit-image biharmonic inpainting (smooth, solves a biharmonic equation in the hole)",
    "fsr": "OpenCV-contrib frequency selective reconstruction, FSR_FAST (its own environment: glcic_lib.fsr)",
    "smooth": "the push-pull fill with Jacobi relaxation alone (glcic_lib.pushpull.push_pull_fill): the "
              "start of networks with input_mode 'smooth'",
    "harmonic": "the harmonic (membrane) fill alone (glcic_lib.pushpull.harmonic_fill): what the demo network "
                "starts from",
}
#: Every baseline :func:`evaluate` knows, in table order (the ``evaluate`` command runs them all).
BASELINE_NAMES = tuple(BASELINE_INFO)
#: The classical methods a user would pick instead of a network ("the best classical method" of
#: every comparison); ``smooth`` and ``harmonic`` are left out: they are the networks' own first step.
CLASSICAL = ("telea", "telea5", "ns", "biharmonic", "fsr")
#: The metrics the bar chart shows by default (the hole metrics, the seam, the detail ratio and
#: the grid energy).
PLOT_METRICS = ("l1_hole", "psnr_hole", "ssim_hole", "seam", "detail", "grid")
#: Per-row numbers beside the metrics: the ground truth's own seam, detail and grid on the same holes.
REFERENCE_NAMES = tuple(f"{k}_gt" for k in GT_REFERENCE)
_POST_SUFFIX = "+post"
#: Table arrows: higher is better, lower is better, closest to the ground truth's level is best.
_ARROWS = {True: "↑", False: "↓", None: "→gt"}


# --------------------------------------------------------------------------- methods
def opencv_inpaint(image: np.ndarray, mask: np.ndarray, method: str = "telea",
                   radius: int | None = None) -> np.ndarray:
    """Fill the holes with OpenCV's classical inpainting (``"telea"``, ``"telea5"`` or ``"ns"``).

    ``radius``: the neighbourhood ``cv2.inpaint`` averages over; ``None`` takes the method's
    own (:data:`OPENCV_BASELINES`: 3, or 5 for ``"telea5"``).
    """
    if method not in OPENCV_BASELINES:
        raise ValueError(f"unknown OpenCV inpainting method {method!r}; choose one of {tuple(OPENCV_BASELINES)}")
    flag, default_radius = OPENCV_BASELINES[method]
    image, hole = _check_item("image", image, mask)
    out = cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255,
                      default_radius if radius is None else radius, flag)
    out[~hole] = image[~hole]  # cv2 leaves them alone; make it a guarantee
    return out


def biharmonic_inpaint(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the holes with scikit-image's biharmonic inpainting
    (:func:`skimage.restoration.inpaint_biharmonic`, each colour channel on [0, 1], every
    connected hole solved on its own), rounded back to uint8.  Smooth like Telea, but it
    continues gradients through the hole instead of flattening them."""
    from skimage.restoration import inpaint_biharmonic

    image, hole = _check_item("image", image, mask)
    out = inpaint_biharmonic(image.astype(np.float64) / 255.0, hole, channel_axis=-1, split_into_regions=True)
    out = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
    out[~hole] = image[~hole]
    return out


def smooth_inpaint(image: np.ndarray, mask: np.ndarray, solver: str = "jacobi") -> np.ndarray:
    """Fill the holes with :func:`glcic_lib.pushpull.push_pull_fill` alone, rounded back to uint8:
    ``solver="jacobi"`` is the input of networks with ``input_mode="smooth"``, ``"sor"`` the
    harmonic fill of ``input_mode="harmonic"`` (:func:`glcic_lib.pushpull.harmonic_fill`)."""
    import torch

    from .pushpull import harmonic_fill, push_pull_fill

    image, hole = _check_item("image", image, mask)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(hole)[None, None].float()
    if solver == "sor":
        out = harmonic_fill(x, m)
    else:
        out = push_pull_fill(x, m, solver=solver)
    out = np.clip(np.rint(out[0].permute(1, 2, 0).numpy() * 255.0), 0, 255).astype(np.uint8)
    out[~hole] = image[~hole]
    return out


def baseline_inpaint(image: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """Any baseline of :data:`BASELINE_NAMES` on one image (``"fsr"`` through :mod:`glcic_lib.fsr`,
    which raises :class:`glcic_lib.fsr.FSRUnavailable` where it cannot run)."""
    if method in OPENCV_BASELINES:
        return opencv_inpaint(image, mask, method)
    if method == "biharmonic":
        return biharmonic_inpaint(image, mask)
    if method in ("smooth", "harmonic"):
        return smooth_inpaint(image, mask, "jacobi" if method == "smooth" else "sor")
    if method == "fsr":
        from .fsr import fsr_inpaint

        image, hole = _check_item("image", image, mask)
        return fsr_inpaint([image], [hole])[0]
    raise ValueError(f"unknown baseline {method!r}; choose from {BASELINE_NAMES}")


def _check_item(name: str, image, mask) -> tuple[np.ndarray, np.ndarray]:
    image, mask = np.asarray(image), np.asarray(mask)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: the image must be uint8 RGB (H, W, 3), got {image.dtype} {image.shape}")
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.shape != image.shape[:2]:
        raise ValueError(f"{name}: mask {mask.shape} differs from the image size {image.shape[:2]}")
    hole = hole_mask(mask)
    if not hole.any():
        raise ValueError(f"{name}: the mask has no hole pixels, there is nothing to evaluate")
    if hole.all():
        raise ValueError(f"{name}: the mask covers the whole image, there is no context to complete from")
    return image, hole


# --------------------------------------------------------------------------- data
def _items(data) -> list:
    """Held-out items as a list of ``(name, image, mask)``: see :func:`evaluate`."""
    if data is None or isinstance(data, (str, Path)):
        from .data import load_heldout

        data = load_heldout(data)
    out = []
    for i, item in enumerate(data):
        if hasattr(item, "image") and hasattr(item, "mask"):
            name, image, mask = getattr(item, "name", f"image{i:03d}"), item.image, item.mask
        elif isinstance(item, (tuple, list)) and len(item) == 3:
            name, image, mask = item
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            (image, mask), name = item, f"image{i:03d}"
        else:
            raise TypeError(f"held-out item {i} must be a HeldoutItem, (name, image, mask) or (image, mask), "
                            f"got {type(item).__name__}")
        image, hole = _check_item(f"held-out item {name!r}", image, mask)
        out.append((str(name), image, hole))
    if not out:
        raise ValueError("the held-out set is empty: nothing to evaluate")
    names = [n for n, _, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"held-out image names must be unique, got duplicates in {names}")
    return out


def resize_item(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale an image and its holes so that the shorter side is ``size`` pixels.

    Used to evaluate a model at the resolution it was trained at (a network trained on 64x64
    crops has only seen holes a quarter of the size of the 256x256 ones).  The image is
    area-averaged (or bilinearly enlarged); the mask keeps every output pixel whose area is at
    least half hole, so thin strokes stay thin rather than vanishing or swelling.
    """
    h, w = mask.shape
    scale = size / min(h, w)
    new = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))  # cv2: (W, H)
    if new == (w, h):
        return image, mask
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, new, interpolation=interp)
    m = cv2.resize(mask.astype(np.float32), new, interpolation=interp)
    return small, m >= 0.5


def _load_model(model_or_checkpoint):
    from .models import CompletionNetwork

    if isinstance(model_or_checkpoint, (str, Path)):
        from .pretrained import load_pretrained

        return load_pretrained(str(model_or_checkpoint))
    model = getattr(model_or_checkpoint, "module", model_or_checkpoint)
    if not isinstance(model, CompletionNetwork):
        raise TypeError(f"model_or_checkpoint must be a CompletionNetwork, a checkpoint path, 'demo' or None "
                        f"(baselines only), got {type(model_or_checkpoint).__name__}")
    return model


def _post_modes(postprocess) -> tuple[bool, ...]:
    if postprocess == "both":
        return (False, True)
    if isinstance(postprocess, (bool, np.bool_)):
        return (bool(postprocess),)
    raise ValueError(f"postprocess must be False, True or 'both', got {postprocess!r}")


# --------------------------------------------------------------------------- results
@dataclass
class EvalResult:
    """Per-image rows and their summary.

    ``rows``: one dict per (image, method) with ``image``, ``method``, every metric of
    :data:`glcic_lib.metrics.METRIC_NAMES`, ``seam_gt``, ``detail_gt`` and ``grid_gt`` (the
    seam, detail and grid measures of the ground truth on the same holes: the levels a perfect
    completion would reach) and ``seconds``.  Results saved before a metric existed read it back as NaN.
    ``images``: name -> ``{"target", "mask", <method>: completed}`` (uint8), for figures.
    """

    rows: list[dict]
    methods: list[str]
    images: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    meta: dict = field(default_factory=dict)

    @property
    def image_names(self) -> list[str]:
        seen = []
        for r in self.rows:
            if r["image"] not in seen:
                seen.append(r["image"])
        return seen

    def values(self, method: str, metric: str) -> np.ndarray:
        """The per-image values of one metric for one method (in image order)."""
        if method not in self.methods:
            raise KeyError(f"no method {method!r} in this result; it has {self.methods}")
        return np.array([r.get(metric, math.nan) for r in self.rows if r["method"] == method], dtype=np.float64)

    @property
    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """method -> metric -> {"mean", "std", "median", "n"} over images.

        Infinite PSNRs (a perfect completion) are left out of mean/std/median; ``n`` counts the
        finite values used.
        """
        out = {}
        for m in self.methods:
            out[m] = {}
            for k in METRIC_NAMES + REFERENCE_NAMES + ("seconds",):
                v = self.values(m, k)
                v = v[np.isfinite(v)]
                out[m][k] = ({"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v)),
                              "n": int(v.size)} if v.size else
                             {"mean": math.nan, "std": math.nan, "median": math.nan, "n": 0})
        return out

    def merge(self, other: "EvalResult") -> "EvalResult":
        """One result with the methods of both (same images; method names must differ)."""
        clash = set(self.methods) & set(other.methods)
        if clash:
            raise ValueError(f"cannot merge results that both have the methods {sorted(clash)}")
        if self.image_names != other.image_names:
            raise ValueError("cannot merge results on different held-out images")
        images = {n: {**self.images.get(n, {}), **other.images.get(n, {})} for n in self.image_names}
        return EvalResult(self.rows + other.rows, self.methods + other.methods, images,
                          {**self.meta, **other.meta})

    def renamed(self, mapping: dict[str, str]) -> "EvalResult":
        """A copy with methods renamed (``{"network": "both"}``, ...)."""
        ren = lambda m: mapping.get(m, m)  # noqa: E731
        rows = [{**r, "method": ren(r["method"])} for r in self.rows]
        images = {n: {ren(k): v for k, v in d.items()} for n, d in self.images.items()}
        return EvalResult(rows, [ren(m) for m in self.methods], images, dict(self.meta))

    def table(self, metrics: Iterable[str] = METRIC_NAMES, spread: bool = True) -> str:
        """A Markdown table: one row per method, ``mean ± std`` over images per metric."""
        metrics = list(metrics)
        s = self.summary
        arrows = {k: _ARROWS[HIGHER_IS_BETTER[k]] for k in metrics if k in HIGHER_IS_BETTER}
        head = "| method | " + " | ".join(f"{k} {arrows.get(k, '')}".strip() for k in metrics) + " |"
        lines = [head, "|" + "---|" * (len(metrics) + 1)]
        for m in self.methods:
            cells = []
            for k in metrics:
                st = s[m][k]
                digits = 3 if k.startswith("ssim") else 2
                cells.append(f"{st['mean']:.{digits}f}" + (f" ± {st['std']:.{digits}f}" if spread else ""))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    # ---------------------------------------------------------------- files
    def to_csv(self, path) -> Path:
        """Per-image rows as CSV (one line per image and method)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fields = ["image", "method", *METRIC_NAMES, *REFERENCE_NAMES, "seconds"]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            for r in self.rows:
                w.writerow(r)
        return path

    def to_json(self, path) -> Path:
        """Rows, summary and meta as JSON (``Infinity`` for infinite PSNR, as Python writes it)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"methods": self.methods, "summary": self.summary, "rows": self.rows,
                                    "meta": self.meta}, indent=1))
        return path

    @classmethod
    def from_json(cls, path) -> "EvalResult":
        """Read back what :meth:`to_json` wrote (without images)."""
        d = json.loads(Path(path).read_text())
        return cls(d["rows"], d["methods"], {}, d.get("meta", {}))

    def save(self, out_dir, figures: bool = True, prefix: str = "") -> dict[str, Path]:
        """Write ``{prefix}rows.csv``, ``{prefix}results.json``, ``{prefix}table.md`` and, with
        ``figures``, ``{prefix}grid.png`` and ``{prefix}metrics.png`` into ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {"csv": self.to_csv(out_dir / f"{prefix}rows.csv"),
                 "json": self.to_json(out_dir / f"{prefix}results.json")}
        paths["table"] = out_dir / f"{prefix}table.md"
        paths["table"].write_text(self.table() + "\n")
        if figures:
            import matplotlib.pyplot as plt

            for key, fig in (("grid", plot_grid(self) if self.images else None), ("metrics", plot_metrics(self))):
                if fig is None:
                    continue
                paths[key] = out_dir / f"{prefix}{key}.png"
                fig.savefig(paths[key], dpi=100, bbox_inches="tight")
                plt.close(fig)
        return paths


# --------------------------------------------------------------------------- evaluate
def evaluate(model_or_checkpoint=None, data=None, postprocess=False, *, name: str = "network",
             baselines: Iterable[str] = (), device=None, keep_images: bool = True, limit: int | None = None,
             size: int | None = None, progress: bool = True) -> EvalResult:
    """Complete every held-out image and score it.

    * ``model_or_checkpoint``: a :class:`~glcic_lib.models.CompletionNetwork`, a checkpoint
      path, ``"demo"`` (the bundled model), or ``None`` to run only the baselines.
    * ``data``: ``None`` for the bundled held-out set (:func:`glcic_lib.data.load_heldout`), a
      folder in that layout, or a list of :class:`~glcic_lib.data.HeldoutItem` /
      ``(name, image, mask)`` / ``(image, mask)``.
    * ``postprocess``: ``False`` (raw network output, method ``name``), ``True`` (with the
      paper's post-processing, method ``name + "+post"``) or ``"both"``.
    * ``baselines``: any of :data:`BASELINE_NAMES`: ``"telea"``, ``"telea5"``, ``"ns"`` (OpenCV,
      radius 3, 5, 3), ``"biharmonic"`` (scikit-image), ``"fsr"`` (OpenCV-contrib FSR_FAST in
      its own environment, :mod:`glcic_lib.fsr`: one worker process for all images; where no
      such environment exists it is left out of the result and a note says how to install it).
      A baseline's ``seconds`` is its time per image (for FSR measured inside the worker,
      without the worker's start-up).
    * ``limit``: evaluate only the first ``limit`` images.
    * ``size``: first scale every image and its holes so the shorter side is ``size``
      (:func:`resize_item`); ``None`` keeps the stored size.

    The network runs once per image; post-processing starts from that same raw result.
    """
    baselines = list(baselines)
    for b in baselines:
        if b not in BASELINE_INFO:
            raise ValueError(f"unknown baseline {b!r}; choose from {BASELINE_NAMES}")
    if len(set(baselines)) != len(baselines):
        raise ValueError(f"baselines must not repeat, got {baselines}")
    model = None if model_or_checkpoint is None else _load_model(model_or_checkpoint)
    if model is None and not baselines:
        raise ValueError("nothing to evaluate: pass a model or checkpoint, or some baselines")
    modes = _post_modes(postprocess) if model is not None else ()
    methods = [name + (_POST_SUFFIX if p else "") for p in modes] + baselines
    items = _items(data)
    if limit is not None:
        items = items[:limit]
    if size is not None:
        items = [(n, *resize_item(img, hole, int(size))) for n, img, hole in items]
        items = [(n, *_check_item(f"held-out item {n!r} at size {size}", img, hole)) for n, img, hole in items]

    fsr_fills = fsr_seconds = None
    skipped = []
    if "fsr" in baselines:
        from . import fsr

        python = fsr.find_python()
        if python is None:  # a note, not an error: the other methods still run
            print(fsr.unavailable_note())
            baselines.remove("fsr")
            methods.remove("fsr")
            skipped.append("fsr")
            if not methods:
                return EvalResult([], [], {}, {"n_images": len(items), "baseline_radius": BASELINE_RADIUS,
                                               "size": size, "skipped": skipped})
        else:  # one worker process for the whole set
            fsr_fills, fsr_seconds = fsr.fsr_inpaint([img for _, img, _ in items], [h for _, _, h in items],
                                                     python=python, with_seconds=True)

    from tqdm.auto import tqdm

    from .inpaint import complete
    from .postprocess import postprocess as _post

    rows, images = [], {}
    for index, (item_name, image, hole) in enumerate(tqdm(items, desc=f"evaluate {', '.join(methods)}",
                                                          disable=not progress, leave=False)):
        outputs, seconds = {}, {}
        if model is not None:
            t0 = time.perf_counter()
            raw = complete(model, image, hole, postprocess=False, device=device)
            t_raw = time.perf_counter() - t0
            if False in modes:
                outputs[name], seconds[name] = raw, t_raw
            if True in modes:
                t0 = time.perf_counter()
                outputs[name + _POST_SUFFIX] = _post(raw, hole)
                seconds[name + _POST_SUFFIX] = t_raw + time.perf_counter() - t0
        for b in baselines:
            if b == "fsr":
                outputs[b], seconds[b] = fsr_fills[index], fsr_seconds[index]
                continue
            t0 = time.perf_counter()
            outputs[b] = baseline_inpaint(image, hole, b)
            seconds[b] = time.perf_counter() - t0
        reference = {"seam_gt": seam(image, hole), "detail_gt": detail(image, hole),
                     "grid_gt": grid_energy(image, hole)}
        for m in methods:
            rows.append({"image": item_name, "method": m, **all_metrics(outputs[m], image, hole),
                         **reference, "seconds": seconds[m]})
        if keep_images:
            images[item_name] = {"target": image, "mask": hole, **outputs}
    meta = {"n_images": len(items), "baseline_radius": BASELINE_RADIUS, "size": size}
    if skipped:
        meta["skipped"] = skipped
    return EvalResult(rows, methods, images, meta)


# --------------------------------------------------------------------------- flat colours
#: The named colours :func:`flat_fill_error` fills by default (RGB).
FLAT_COLOURS = {"grey": (128, 128, 128), "blue": (20, 100, 160), "green": (60, 140, 60), "red": (200, 50, 50),
                "near-black": (10, 10, 10), "near-white": (245, 245, 245)}


def flat_colours(n_random: int = 4, seed: int = 0) -> dict[str, tuple[int, int, int]]:
    """:data:`FLAT_COLOURS` and ``n_random`` random colours (uniform on [0, 255] per channel,
    seeded, named ``random0``, ``random1``, ...)."""
    rng = np.random.default_rng(seed)
    out = dict(FLAT_COLOURS)
    for i in range(int(n_random)):
        out[f"random{i}"] = tuple(int(v) for v in rng.integers(0, 256, 3))
    return out


def flat_hole_masks(size: int = 256, hole: tuple[int, int] | None = (64, 96),
                    small_holes: int = 6, small: int = 8) -> dict[str, np.ndarray]:
    """The hole layouts of :func:`flat_fill_error`: label -> boolean ``(size, size)`` mask.

    ``"HxW"``: one ``hole = (height, width)`` rectangle in the centre; ``"<n>x<s>px"``:
    ``small_holes`` squares of ``small`` pixels, centred on a grid of 2 rows and
    ``ceil(n / 2)`` columns spread evenly over the image (``small_holes=0`` leaves it out).
    """
    size = int(size)
    out = {}
    if hole is not None:
        h, w = (int(v) for v in hole)
        if not (0 < h < size and 0 < w < size):
            raise ValueError(f"the hole {hole} must fit inside the {size}x{size} image with context around it")
        m = np.zeros((size, size), bool)
        y0, x0 = (size - h) // 2, (size - w) // 2
        m[y0:y0 + h, x0:x0 + w] = True
        out[f"{h}x{w}"] = m
    if small_holes:
        n, s = int(small_holes), int(small)
        cols = -(-n // 2)
        if s < 1 or s * max(cols, 2) * 2 > size:
            raise ValueError(f"{n} holes of {s} px do not fit apart in a {size}x{size} image")
        m = np.zeros((size, size), bool)
        for k in range(n):
            cy = size * (1 + 2 * (k // cols)) // 4                      # rows at 1/4 and 3/4
            cx = size * (1 + 2 * (k % cols)) // (2 * cols)               # columns evenly spread
            m[cy - s // 2:cy - s // 2 + s, cx - s // 2:cx - s // 2 + s] = True
        out[f"{n}x{s}px"] = m
    if not out:
        raise ValueError("no holes: give hole=(height, width) and/or small_holes > 0")
    return out


def flat_fill_error(model="demo", colours=None, size: int = 256, hole: tuple[int, int] | None = (64, 96),
                    small_holes: int = 0, small: int = 8, device=None, precision: str = "float32") -> list[dict]:
    """Does the network copy a flat colour into a hole?  The first thing a completion network
    trained with an MSE loss should learn; a colour cast here shows up in every photo.

    Fills flat ``size x size`` images of every colour (``colours``: name -> RGB, a list of
    RGB triples, or ``None`` for :func:`flat_colours`) with each hole layout of
    :func:`flat_hole_masks` (one ``hole`` rectangle, 64x96 by default, and, with
    ``small_holes=6`` say, a second image per colour with that many squares of ``small``
    pixels) and measures the *raw* fill (no post-processing) in grey levels.  Returns one dict per (colour, layout)::

        {"colour": name, "rgb": (r, g, b), "holes": "64x96", "fill": (mean R, G, B in the holes),
         "max_channel_error": max over channels |mean fill - colour|,   # the cast
         "mae": mean |fill - colour| over hole pixels and channels}     # cast + blotches

    ``model``: a :class:`~glcic_lib.models.CompletionNetwork`, a checkpoint path or ``"demo"``
    (run through :func:`glcic_lib.complete` as one batch; ``precision`` float32 by default so
    the numbers do not depend on the CPU), or any other callable
    ``fill(images, holes) -> images`` on uint8 ``(N, H, W, 3)`` and boolean ``(N, H, W)`` arrays.
    The default run (10 colours, one hole) takes a quarter-width network about 0.7 s on one CPU
    thread; :func:`flat_fill_table` prints the rows.
    """
    if colours is None:
        colours = flat_colours()
    elif not isinstance(colours, dict):
        colours = {f"({r},{g},{b})": (r, g, b) for r, g, b in (tuple(int(v) for v in c) for c in colours)}
    if not colours:
        raise ValueError("no colours to fill")
    rgbs = {}
    for name, c in colours.items():
        c = tuple(int(v) for v in c)
        if len(c) != 3 or not all(0 <= v <= 255 for v in c):
            raise ValueError(f"colour {name!r} must be an RGB triple on [0, 255], got {colours[name]!r}")
        rgbs[name] = c
    layouts = flat_hole_masks(size, hole, small_holes, small)
    keys = [(n, lab) for lab in layouts for n in rgbs]
    images = np.stack([np.broadcast_to(np.array(rgbs[n], np.uint8), (size, size, 3)) for n, _ in keys])
    holes = np.stack([layouts[lab] for _, lab in keys])
    filled = _fill_batch(model, images, holes, device, precision)
    rows = []
    for (n, lab), out, hole_ in zip(keys, filled, holes):
        fill = out[hole_].astype(np.float64)                     # (pixels, 3)
        target = np.array(rgbs[n], np.float64)
        mean = fill.mean(axis=0)
        rows.append({"colour": n, "rgb": rgbs[n], "holes": lab, "fill": tuple(float(v) for v in mean),
                     "max_channel_error": float(np.abs(mean - target).max()),
                     "mae": float(np.abs(fill - target).mean())})
    return rows


def _fill_batch(model, images: np.ndarray, holes: np.ndarray, device, precision) -> np.ndarray:
    """Raw fills of a batch: through :func:`glcic_lib.complete` for a network, else ``model(images, holes)``."""
    import torch

    from .models import CompletionNetwork

    net = getattr(model, "module", model)
    if isinstance(model, (str, Path)) or isinstance(net, CompletionNetwork):
        from .inpaint import complete

        net = _load_model(model)
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        m = torch.from_numpy(holes[:, None]).float()
        out = complete(net, x, m, postprocess=False, device=device, precision=precision)
        out = (out.float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    elif callable(model):
        out = np.asarray(model(images.copy(), holes.copy()))
    else:
        raise TypeError(f"model must be a CompletionNetwork, a checkpoint path, 'demo' or a callable "
                        f"fill(images, holes), got {type(model).__name__}")
    if out.shape != images.shape or out.dtype != np.uint8:
        raise ValueError(f"the fill must be uint8 {images.shape}, got {out.dtype} {out.shape}")
    return out


def flat_fill_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`flat_fill_error`'s rows (one line per colour and hole layout)."""
    lines = ["| colour | RGB | holes | mean fill | max channel error | mean abs error |", "|---|---|---|---|---|---|"]
    for r in rows:
        fill = "(" + ", ".join(f"{v:.0f}" for v in r["fill"]) + ")"
        lines.append(f"| {r['colour']} | {tuple(r['rgb'])} | {r['holes']} | {fill} | "
                     f"{r['max_channel_error']:.1f} | {r['mae']:.1f} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures
def masked_input(image: np.ndarray, mask: np.ndarray, fill=(255, 255, 255)) -> np.ndarray:
    """The network's view of an image: the holes painted in a flat colour (white by default)."""
    out = image.copy()
    out[hole_mask(mask)] = fill
    return out


def plot_grid(result: EvalResult, methods: Iterable[str] | None = None, images: Iterable[str] | None = None,
              max_images: int = 6, titles: dict[str, str] | None = None, cell: float = 2.2):
    """Image grid: one row per held-out image; columns = input (holes in white), every method,
    ground truth.  Each method's title carries its hole PSNR on that image."""
    import matplotlib.pyplot as plt

    if not result.images:
        raise ValueError("this result kept no images (evaluate(..., keep_images=True) keeps them)")
    methods = list(methods) if methods is not None else list(result.methods)
    names = list(images) if images is not None else result.image_names[:max_images]
    titles = titles or {}
    psnr = {(r["image"], r["method"]): r["psnr_hole"] for r in result.rows}
    cols = ["input"] + methods + ["ground truth"]
    fig, axes = plt.subplots(len(names), len(cols), figsize=(cell * len(cols), cell * len(names)), squeeze=False)
    for i, n in enumerate(names):
        d = result.images[n]
        for j, c in enumerate(cols):
            ax = axes[i, j]
            if c == "input":
                ax.imshow(masked_input(d["target"], d["mask"]))
                label = "input (hole white)"
            elif c == "ground truth":
                ax.imshow(d["target"])
                label = "ground truth"
            else:
                ax.imshow(d[c])
                label = f"{titles.get(c, c)}\n{psnr[(n, c)]:.1f} dB in hole"
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0 or c not in ("input", "ground truth"):
                ax.set_title(label, fontsize=8)
            if j == 0:
                ax.set_ylabel(n, fontsize=8)
    fig.suptitle("Held-out images with fixed holes: rows = images, columns = methods", fontsize=10)
    fig.tight_layout()
    return fig


def plot_metrics(result: EvalResult, metrics: Iterable[str] = PLOT_METRICS, methods: Iterable[str] | None = None):
    """Bar chart, one panel per metric: bar = mean over images, error bar = standard deviation,
    dots = the individual images (the spread).  The seam panel has a dashed line at the ground
    truth's own seam level."""
    import matplotlib.pyplot as plt

    metrics = list(metrics)
    methods = list(methods) if methods is not None else list(result.methods)
    s = result.summary
    ncols = min(2, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(3.2, 0.55 * len(methods) + 1.2) * ncols, 3.6 * nrows),
                             squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    x = np.arange(len(methods))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rng = np.random.default_rng(0)  # jitter of the dots only
    for ax, k in zip(axes.flat, metrics):
        means = [s[m][k]["mean"] for m in methods]
        stds = [s[m][k]["std"] for m in methods]
        ax.bar(x, means, yerr=stds, capsize=3, color=[colors[i % len(colors)] for i in range(len(methods))],
               alpha=0.75)
        for i, m in enumerate(methods):
            v = result.values(m, k)
            v = v[np.isfinite(v)]
            ax.scatter(i + rng.uniform(-0.18, 0.18, v.size), v, s=8, color="k", zorder=3)
        if k in GT_REFERENCE:
            gt = s[methods[0]][f"{k}_gt"]["mean"]
            if np.isfinite(gt):
                ax.axhline(gt, color="k", ls="--", lw=1, label="ground truth")
                ax.legend(fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels(methods, rotation=45, ha="right", fontsize=8)
        unit = UNITS.get(k, "")
        ax.set_ylabel(f"{k}" + (f" ({unit})" if unit else ""))
        better = {True: "higher is better", False: "lower is better", None: "ground truth's level is best"}
        ax.set_title(f"{k} ({better[HIGHER_IS_BETTER.get(k, True)]})", fontsize=9)
    fig.suptitle(f"Mean over {len(result.image_names)} held-out images; error bar = std, dots = images",
                 fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- command line
def configure_parser(p: argparse.ArgumentParser) -> None:
    """Arguments of ``evaluate``."""
    p.add_argument("--checkpoint", default="demo",
                   help="checkpoint to evaluate (.pt or the authors' .t7), 'demo' (default) or 'none' (baselines only)")
    p.add_argument("--data", default=None, help="held-out folder (images + fixed hole masks); default: the bundled set")
    p.add_argument("--out", default=None, help="folder for rows.csv, results.json, table.md, grid.png, metrics.png")
    p.add_argument("--postprocess", choices=("off", "on", "both"), default="both",
                   help="evaluate the raw output, the post-processed one, or both (default)")
    p.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True,
                   help="also evaluate the classical baselines: Telea (radius 3 and 5), Navier-Stokes, "
                        "biharmonic and FSR (FSR only where its environment exists, see glcic_lib.fsr) "
                        "(default: on)")
    p.add_argument("--limit", type=int, default=None, help="only the first N held-out images")
    p.add_argument("--size", type=int, default=None,
                   help="scale images and holes to this shorter side first (default: as stored)")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")


def main(args: argparse.Namespace) -> int:
    """Run ``evaluate``: print the table, write files when ``--out`` is given."""
    model = None if str(args.checkpoint).lower() == "none" else args.checkpoint
    post = {"off": False, "on": True, "both": "both"}[args.postprocess]
    result = evaluate(model, args.data, post, baselines=BASELINE_NAMES if args.baselines else (),
                      device=args.device, limit=args.limit, size=args.size, keep_images=args.out is not None)
    print(result.table())
    if args.out:
        paths = result.save(args.out)
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
