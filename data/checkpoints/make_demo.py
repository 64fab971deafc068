"""Turn a training run into the bundled demo model, and measure it on the held-out set.

    python data/checkpoints/make_demo.py runs/demo/checkpoint.pt --command "python -m glcic_lib train ..."

Writes ``data/checkpoints/demo_completion.pt``: the completion network only (no
discriminator, no optimiser state), with the command, the schedule, the wall time and the
held-out metrics in its ``meta``.  Prints a Markdown table for ``README.md``.

Metrics are computed *inside the holes only* (the pixels outside are the input's for every
method), with scikit-image: PSNR from the mean squared error over the hole pixels, and SSIM as
the mean of scikit-image's full SSIM map over the hole pixels (7x7 windows, colour channels).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from skimage.metrics import structural_similarity

from glcic_lib.checkpoint import load_completion, read_checkpoint, save_checkpoint
from glcic_lib.data import load_heldout
from glcic_lib.evaluation import BASELINE_RADIUS, opencv_inpaint
from glcic_lib.inpaint import complete
from glcic_lib.metrics import psnr
from glcic_lib.postprocess import postprocess

HERE = Path(__file__).resolve().parent


def hole_ssim(out: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> float:
    """scikit-image's default SSIM (7x7 windows) averaged over the hole pixels; the numbers in
    the README were computed this way (glcic_lib.metrics.ssim uses the Wang et al. settings)."""
    _, full = structural_similarity(ref, out, channel_axis=2, data_range=255, full=True)
    return float(full.mean(axis=2)[mask].mean())


def evaluate(model) -> dict:
    methods = ("demo model", "demo model + post-processing", f"OpenCV Telea (radius {BASELINE_RADIUS})")
    rows = {name: {"psnr": [], "ssim": []} for name in methods}
    per_image = []
    for item in load_heldout():
        raw = complete(model, item.image, item.mask, device="cpu", precision="float32")
        outputs = dict(zip(methods, (raw, postprocess(raw, item.mask),
                                     opencv_inpaint(item.image, item.mask, "telea"))))
        entry = {"name": item.name}
        for name, out in outputs.items():
            assert np.array_equal(out[~item.mask], item.image[~item.mask])
            p, s = psnr(out, item.image, item.mask), hole_ssim(out, item.image, item.mask)
            rows[name]["psnr"].append(p)
            rows[name]["ssim"].append(s)
            entry[name] = {"psnr": round(p, 2), "ssim": round(s, 4)}
        per_image.append(entry)
    summary = {name: {"psnr": float(np.mean(v["psnr"])), "ssim": float(np.mean(v["ssim"]))} for name, v in rows.items()}
    return {"summary": summary, "per_image": per_image}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_checkpoint")
    ap.add_argument("--command", default="", help="the training command, recorded in the checkpoint")
    ap.add_argument("--out", default=str(HERE / "demo_completion.pt"))
    args = ap.parse_args()
    ckpt = read_checkpoint(args.run_checkpoint)
    state = ckpt.get("train_state") or {}
    model = load_completion(args.run_checkpoint, ckpt)
    metrics = evaluate(model)
    cfg = state.get("config", {})
    meta = {
        "name": "glcic demo (small, CPU-trained on the bundled images)",
        "note": "A small teaching demo trained for minutes on 34 bundled images: NOT the paper's Places2 model.",
        "command": args.command, "iterations": state.get("iteration"), "phase_reached": state.get("phase"),
        "train_seconds": state.get("elapsed"), "config": cfg, "heldout_metrics": metrics,
        "licence": "model weights: same licence as this repository; training images public domain / CC0",
    }
    out = save_checkpoint(args.out, model, None, None, meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), iteration {meta['iterations']}, "
          f"{(meta['train_seconds'] or 0) / 60:.1f} min of training")
    print("\n| method (8 held-out images, inside the holes) | PSNR (dB) | SSIM |\n|---|---|---|")
    for name, v in metrics["summary"].items():
        print(f"| {name} | {v['psnr']:.2f} | {v['ssim']:.3f} |")
    print("\nper image:\n" + json.dumps(metrics["per_image"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
