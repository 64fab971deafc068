"""Turn a training run into the bundled demo model, and measure it on the held-out photographs.

    python data/checkpoints/make_demo.py runs/abl2/both/checkpoint.pt --command "python -m glcic_lib train ..."

Writes ``data/checkpoints/demo_completion.pt``: the completion network only (no
discriminator, no optimiser state), with the command, the schedule, the wall time and the
held-out metrics in its ``meta``, and its measured bfloat16 error (``meta["reduced_precision"]``,
which ``complete(precision="auto")`` reads: :mod:`glcic_lib.precision_check`); and
``data/checkpoints/heldout_photos.csv`` (per image and method) and ``heldout_photos.png`` (a
grid of completions).  Prints the Markdown tables of the
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
from glcic_lib.evaluation import BASELINE_RADIUS, CLASSICAL, evaluate, plot_grid
from glcic_lib.precision_check import describe, measure_precision

HERE = Path(__file__).resolve().parent
METHODS = ("demo", "demo+post", "smooth", "harmonic") + CLASSICAL


def measure(model):
    """The held-out evaluation of ``model`` (raw and post-processed) and of both baselines."""
    net = evaluate(model, "photos", postprocess="both", name="demo", device="cpu", progress=False)
    return net.merge(evaluate(None, "photos", baselines=("smooth", "harmonic") + CLASSICAL, progress=False))


def summary_tables(result) -> str:
    """The model card's tables: all images, by kind of hole against the best classical method,
    and per image."""
    from glcic_lib.regimes import best_baseline

    kinds = heldout_kinds("photos")   # rect (1-3 rectangles of 48-96 px), free, border
    names = result.image_names
    methods = [m for m in METHODS if m in result.methods]   # FSR only where its environment exists
    out = [result.table(metrics=("psnr_hole", "ssim_hole", "l1_hole", "seam", "detail", "grid"))]
    out.append(f"\nGround truth's own seam {result.summary['demo']['seam_gt']['mean']:.2f}, "
               f"detail {result.summary['demo']['detail_gt']['mean']:.2f} (log2 hole/ring), "
               f"grid {result.summary['demo']['grid_gt']['mean']:.2f}.\n")
    for kind in ("rect", "free", "border"):
        sel = np.array([kinds.get(n) == kind for n in names])
        if not sel.any():
            continue
        means = {m: float(result.values(m, "psnr_hole")[sel].mean()) for m in methods}
        best = best_baseline(result, "psnr_hole", methods, select=sel)
        d, b = result.values("demo+post", "psnr_hole")[sel], result.values(best, "psnr_hole")[sel]
        out.append(f"- {kind} holes ({sel.sum()} images): " + ", ".join(f"{m} {v:.2f}" for m, v in means.items())
                   + f"; demo+post - best classical ({best}) {np.mean(d - b):+.2f} dB, ahead on "
                   f"{int((d > b).sum())} of {sel.sum()}")
    best_all = best_baseline(result, "psnr_hole")
    out.append("\n| image | holes | " + " | ".join(methods) + f" | demo+post - {best_all} |")
    out.append("|---" * (len(methods) + 3) + "|")
    cols = {m: result.values(m, "psnr_hole") for m in methods}
    for i, n in enumerate(names):
        out.append(f"| {n} | {kinds.get(n, '?')} | " + " | ".join(f"{cols[m][i]:.2f}" for m in methods)
                   + f" | {cols['demo+post'][i] - cols[best_all][i]:+.2f} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_checkpoint")
    ap.add_argument("--command", default="", help="the training command(s), recorded in the checkpoint")
    ap.add_argument("--train-seconds", type=float, default=None,
                    help="total training wall time, all stages (default: the run's own elapsed time)")
    ap.add_argument("--out", default=str(HERE / "demo_completion.pt"))
    ap.add_argument("--previous-iterations", type=int, default=0,
                    help="iterations of earlier stages this run started from (--init-from), so the meta "
                         "gives the model's whole training")
    ap.add_argument("--note", default="A small teaching demo trained on a 2-core CPU: NOT the paper's Places2 model.")
    ap.add_argument("--licence", default="model weights: same licence as this repository; trained on the "
                    "photographs of data/train (data/photos/ATTRIBUTION.tsv, data/train/extra_photos/ATTRIBUTION.tsv "
                    "when built) and scikit-image's images")
    args = ap.parse_args()
    ckpt = read_checkpoint(args.run_checkpoint)
    state = ckpt.get("train_state") or {}
    model = load_completion(args.run_checkpoint, ckpt)
    result = measure(model)
    cfg = state.get("config", {})
    meta = {
        "name": "glcic demo (quarter width, CPU-trained on the bundled photographs)",
        "note": args.note,
        "command": args.command, "iterations": (state.get("iteration") or 0) + args.previous_iterations,
        "iterations_by_stage": {"earlier stages": args.previous_iterations, "this run": state.get("iteration")},
        "phase_reached": state.get("phase"),
        "train_seconds": args.train_seconds if args.train_seconds is not None else state.get("elapsed"),
        "config": cfg,
        "heldout": {"set": "data/heldout_photos", "baseline_radius": BASELINE_RADIUS,
                    "summary": {m: {k: v["mean"] for k, v in s.items()} for m, s in result.summary.items()}},
        "licence": args.licence,
    }
    # what complete(precision="auto") decides from: the bfloat16 error against float32 on the
    # held-out photographs (re-measure an existing file with `glcic measure-precision FILE`)
    meta["reduced_precision"] = measure_precision(model, "cpu")
    out = save_checkpoint(args.out, model, None, None, meta, keep_previous=False)
    result.to_csv(HERE / "heldout_photos.csv")
    import matplotlib

    matplotlib.use("Agg")
    fig = plot_grid(result, [m for m in METHODS if m in result.methods], max_images=8, cell=1.8)
    fig.savefig(HERE / "heldout_photos.png", dpi=80, bbox_inches="tight")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), iteration {meta['iterations']}, "
          f"{(meta['train_seconds'] or 0) / 60:.1f} min of training")
    print(f"reduced precision: {describe(meta['reduced_precision'])}")
    print(summary_tables(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
