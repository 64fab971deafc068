"""Turn a training run into the bundled demo model, and measure it on the held-out photographs.

    python data/checkpoints/make_demo.py runs/abl2/both/checkpoint.pt --command "python -m glcic_lib train ..."

Writes ``data/checkpoints/demo_completion.pt``: the completion network only (no
discriminator, no optimiser state), with the command, the schedule, the wall time and the
held-out metrics in its ``meta``; and ``data/checkpoints/heldout_photos.csv`` (per image and
method) and ``heldout_photos.png`` (a grid of completions).  Prints the Markdown tables of the
model card (``README.md``): the summary next to OpenCV's Telea and Navier-Stokes, the
rectangular holes of 48-96 px alone, and one row per image.

The numbers come from :func:`glcic_lib.evaluate` (the same code as ``glcic evaluate``, the
ablation and the notebooks): metrics inside the holes, on the 20 held-out photographs of
``data/heldout_photos`` at their stored 256x256, completed on the CPU in float32.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from glcic_lib.checkpoint import load_completion, read_checkpoint, save_checkpoint
from glcic_lib.data import heldout_kinds
from glcic_lib.evaluation import BASELINE_RADIUS, evaluate, plot_grid

HERE = Path(__file__).resolve().parent
METHODS = ("demo", "demo+post", "telea", "ns")


def measure(model):
    """The held-out evaluation of ``model`` (raw and post-processed) and of both baselines."""
    net = evaluate(model, "photos", postprocess="both", name="demo", device="cpu", progress=False)
    return net.merge(evaluate(None, "photos", baselines=("telea", "ns"), progress=False))


def summary_tables(result) -> str:
    """The model card's tables: all images, rectangles only, and per image."""
    kinds = heldout_kinds("photos")   # rect (1-3 rectangles of 48-96 px), free, border
    names = result.image_names
    out = [result.table(metrics=("psnr_hole", "ssim_hole", "l1_hole", "seam", "detail"))]
    out.append(f"\nGround truth's own seam {result.summary['demo']['seam_gt']['mean']:.2f}, "
               f"detail {result.summary['demo']['detail_gt']['mean']:.2f} (log2 hole/ring).\n")
    for kind in ("rect", "free", "border"):
        sel = np.array([kinds.get(n) == kind for n in names])
        if not sel.any():
            continue
        d, t = result.values("demo+post", "psnr_hole")[sel], result.values("telea", "psnr_hole")[sel]
        n_ = result.values("ns", "psnr_hole")[sel]
        out.append(f"- {kind} holes ({sel.sum()} images): demo+post {d.mean():.2f} dB, Telea {t.mean():.2f}, "
                   f"Navier-Stokes {n_.mean():.2f}; demo+post - Telea {np.mean(d - t):+.2f} dB, ahead on "
                   f"{int((d > t).sum())} of {sel.sum()}")
    out.append("\n| image | holes | demo | demo+post | Telea | Navier-Stokes | demo+post - Telea |")
    out.append("|---|---|---|---|---|---|---|")
    cols = {m: result.values(m, "psnr_hole") for m in METHODS}
    for i, n in enumerate(names):
        out.append(f"| {n} | {kinds.get(n, '?')} | " + " | ".join(f"{cols[m][i]:.2f}" for m in METHODS)
                   + f" | {cols['demo+post'][i] - cols['telea'][i]:+.2f} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_checkpoint")
    ap.add_argument("--command", default="", help="the training command(s), recorded in the checkpoint")
    ap.add_argument("--train-seconds", type=float, default=None,
                    help="total training wall time, all stages (default: the run's own elapsed time)")
    ap.add_argument("--out", default=str(HERE / "demo_completion.pt"))
    args = ap.parse_args()
    ckpt = read_checkpoint(args.run_checkpoint)
    state = ckpt.get("train_state") or {}
    model = load_completion(args.run_checkpoint, ckpt)
    result = measure(model)
    cfg = state.get("config", {})
    meta = {
        "name": "glcic demo (quarter width, CPU-trained on the bundled photographs)",
        "note": "A small teaching demo trained for about two hours on a 2-core CPU on 153 photographs and 34 "
                "tiles: NOT the paper's Places2 model.",
        "command": args.command, "iterations": state.get("iteration"), "phase_reached": state.get("phase"),
        "train_seconds": args.train_seconds if args.train_seconds is not None else state.get("elapsed"),
        "config": cfg,
        "heldout": {"set": "data/heldout_photos", "baseline_radius": BASELINE_RADIUS,
                    "summary": {m: {k: v["mean"] for k, v in s.items()} for m, s in result.summary.items()}},
        "licence": "model weights: same licence as this repository; trained on public-domain, CC0 and CC-BY "
                   "photographs (authors and sources in data/photos/ATTRIBUTION.tsv) and scikit-image's images",
    }
    out = save_checkpoint(args.out, model, None, None, meta, keep_previous=False)
    result.to_csv(HERE / "heldout_photos.csv")
    import matplotlib

    matplotlib.use("Agg")
    fig = plot_grid(result, list(METHODS), max_images=8, cell=1.8)
    fig.savefig(HERE / "heldout_photos.png", dpi=80, bbox_inches="tight")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), iteration {meta['iterations']}, "
          f"{(meta['train_seconds'] or 0) / 60:.1f} min of training")
    print(summary_tables(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
