"""How far reduced precision moves a completion network's pixels, measured once per model.

``complete(precision="auto")`` runs a model in bfloat16 (CPUs with AMX / AVX512-BF16) or
float16 (CUDA) only when the model's checkpoint says that this changes its completions by
little (:func:`glcic_lib.inpaint.precision_choice`).  This module takes that measurement:

* :func:`measure_precision` completes a few of the bundled held-out photographs
  (:func:`glcic_lib.data.load_heldout`, 256x256, their fixed holes) in float32 and in each
  reduced precision, through the same inference path as :func:`glcic_lib.complete` (no
  post-processing), and returns per precision the mean, the 99.9th percentile and the maximum
  of the absolute differences of the uint8 hole pixels (every channel), in grey levels (0-255):
  ``{"bfloat16": {"mean": 0.2, "p999": 3.0, "max": 9, "device": "cpu", "images": 8, ...}}``.
  The known pixels are the input's in every precision, so only the holes are compared.
* The result lives in the checkpoint's ``meta["reduced_precision"]``: training's final
  checkpoint, ``data/checkpoints/make_demo.py`` and ``glcic convert-torch7`` store it;
  :func:`add_measurement` (``glcic measure-precision CHECKPOINT ...``) adds it to an existing
  checkpoint, rewriting only its ``meta`` (atomically; the weights stay bit for bit).
  Re-run it whenever a checkpoint's weights are replaced by other means.

Which precisions are measured by default: bfloat16 on a CPU (torch runs it on any CPU, fast
where the hardware has it; float16 on a CPU is emulated, ~10x slower than float32, and never
picked by ``auto`` there), float16 (and bfloat16 where supported) on CUDA, float16 on MPS.
On a 2-core CPU a quarter-width model takes about a second for 8 images.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch

#: The key of the measurement in a checkpoint's ``meta``.
META_KEY = "reduced_precision"

#: Held-out photographs measured by default (spread over the set: rectangles, strokes, borders).
DEFAULT_IMAGES = 8


def default_precisions(device: torch.device) -> tuple[str, ...]:
    """The reduced precisions :func:`measure_precision` measures on ``device`` by default."""
    device = torch.device(device)
    if device.type == "cuda":
        return ("float16", "bfloat16") if torch.cuda.is_bf16_supported() else ("float16",)
    if device.type == "mps":
        return ("float16",)
    return ("bfloat16",)


def _pick(items: list, n: int | None) -> list:
    """``n`` items spread evenly over ``items`` (all of them when ``n`` is None or larger)."""
    if n is None or n >= len(items):
        return list(items)
    if n < 1:
        raise ValueError(f"images must be at least 1, got {n}")
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def measure_precision(model, device: str | torch.device | None = "cpu", precisions=None,
                      images: int | None = DEFAULT_IMAGES, heldout=None) -> dict:
    """The uint8 hole-pixel differences of ``model`` between float32 and each reduced precision.

    ``device``: where to run (default the CPU: what ``auto`` on a CPU decides from).
    ``precisions``: the reduced precisions to measure (default :func:`default_precisions`);
    ``"float32"`` is allowed and measures 0 (a check of the method).  ``images``: how many
    held-out photographs (spread over the set; None: all).  ``heldout``: the set, as
    :func:`glcic_lib.data.load_heldout` takes it (default the bundled photographs).

    Returns ``{precision: {"mean", "p999", "max", "pixels", "images", "device", "heldout",
    "overflowed"}}``: plain Python types, ready for a checkpoint's meta.  ``overflowed``: the
    reduced-precision pass gave non-finite values for some image (``complete`` then falls back
    to float32, so the difference would hide it); such a measurement never passes ``auto``.
    """
    from .data import load_heldout
    from .device import pick_device
    from .inpaint import PRECISIONS, complete

    device = pick_device(device)
    model = getattr(model, "module", model)
    precisions = tuple(precisions) if precisions is not None else default_precisions(device)
    bad = [p for p in precisions if p not in PRECISIONS or p == "auto"]
    if bad:
        raise ValueError(f"precisions must be among {PRECISIONS[1:]}, got {bad}")
    items = _pick(load_heldout(heldout), images)
    diffs: dict[str, list[np.ndarray]] = {p: [] for p in precisions}
    overflow = {p: False for p in precisions}
    for item in items:
        ref = complete(model, item.image, item.mask, device=device, precision="float32").astype(np.int16)
        for p in precisions:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out = complete(model, item.image, item.mask, device=device, precision=p).astype(np.int16)
            overflow[p] |= any("overflowed" in str(w.message) for w in caught)
            diffs[p].append(np.abs(out - ref)[item.mask].ravel())
    name = heldout if isinstance(heldout, str) or heldout is None else str(heldout)
    result = {}
    for p in precisions:
        d = np.concatenate(diffs[p]).astype(np.float64)
        result[p] = {"mean": round(float(d.mean()), 4), "p999": round(float(np.percentile(d, 99.9)), 3),
                     "max": int(d.max()), "pixels": int(d.size), "images": len(items), "device": device.type,
                     "heldout": name or "photos", "overflowed": bool(overflow[p])}
    return result


def add_measurement(path: str | Path, device: str | torch.device | None = "cpu", precisions=None,
                    images: int | None = DEFAULT_IMAGES) -> dict:
    """Measure the completion network of checkpoint ``path`` (:func:`measure_precision`) and
    store the result in its ``meta["reduced_precision"]``, merged with what is there (a CUDA
    float16 measurement next to a CPU bfloat16 one); return the stored dict.

    Only ``meta`` changes: everything else is written back as read (same tensors, checked
    after writing); the file is replaced atomically, and no ``.prev`` copy is kept."""
    from .checkpoint import CheckpointError, _load_file, _write, atomic_write, load_completion, read_checkpoint

    path = Path(path)
    ckpt = read_checkpoint(path, fallback=False)
    model = load_completion(path, ckpt)
    measured = measure_precision(model, device, precisions, images)
    meta = dict(ckpt.get("meta") or {})
    stored = dict(meta.get(META_KEY) or {})
    stored.update(measured)
    meta[META_KEY] = stored
    ckpt["meta"] = meta
    with atomic_write(path) as f:
        _write(ckpt, f)
    again = _load_file(path)
    before, after = ckpt["completion"]["state_dict"], again["completion"]["state_dict"]
    if before.keys() != after.keys() or not all(torch.equal(before[k], after[k]) for k in before):
        raise CheckpointError(f"{path}: the weights changed while rewriting its meta")  # pragma: no cover
    return stored


def describe(stored: dict | None) -> str:
    """One line per stored precision: ``bfloat16 on cpu: 0.21 mean, 3.0 p99.9, 9 max (8 images)``."""
    if not stored:
        return "no reduced-precision measurement"
    return "; ".join(f"{p} on {e.get('device', '?')}: {e['mean']:.2f} mean, {e['p999']:.1f} p99.9, "
                     f"{e.get('max', '?')} max grey levels in the holes ({e.get('images', '?')} images)"
                     + (", overflowed" if e.get("overflowed") else "") for p, e in stored.items())


# ---------------------------------------------------------------------------- command line

def configure_parser(p: argparse.ArgumentParser) -> None:
    """Arguments of ``measure-precision``."""
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                   help="glcic_lib checkpoints (.pt) whose meta gets the measurement (rewritten in place)")
    p.add_argument("--device", default="cpu", help="where to measure (default: cpu)")
    p.add_argument("--precisions", nargs="+", default=None, choices=("bfloat16", "float16", "float32"),
                   help="what to measure (default: bfloat16 on a CPU, float16 on CUDA / MPS)")
    p.add_argument("--images", type=int, default=DEFAULT_IMAGES,
                   help=f"held-out photographs to complete (default: {DEFAULT_IMAGES})")


def main(args: argparse.Namespace) -> int:
    """Run ``measure-precision``: measure each checkpoint, store it, say what ``auto`` now picks."""
    from .checkpoint import load_completion
    from .inpaint import precision_choice

    where = ["cpu"] + ([args.device] if torch.device(args.device).type != "cpu" else [])
    for path in args.checkpoints:
        stored = add_measurement(path, args.device, args.precisions, args.images)
        model = load_completion(path)
        print(f"{path}: {describe(stored)}")
        for d in where:
            print(f"  complete(precision='auto') on {d}: {precision_choice(model, d)[1]}")
    return 0


__all__ = ["DEFAULT_IMAGES", "META_KEY", "add_measurement", "default_precisions", "describe", "measure_precision",
           "configure_parser", "main"]
