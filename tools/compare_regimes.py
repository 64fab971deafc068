"""Compare completion models with classical inpainting, hole regime by hole regime.

    python tools/compare_regimes.py --photos data/extra_heldout \
        --model demo=data/checkpoints/demo_completion.pt --model mse=runs/demo_stage1/checkpoint.pt \
        --out runs/compare

For every regime of :mod:`glcic_lib.regimes` (1-2 rectangles of 48-96 px, one of 96-128 px,
free-form strokes covering 10-20%, a rectangle at the border) on the same photographs and
holes: each model raw and post-processed, and Telea (radius 3 and 5), Navier-Stokes,
biharmonic and FSR_FAST (where its environment exists, :mod:`glcic_lib.fsr`).  Prints a table
per metric (hole PSNR, SSIM, detail, grid), the flat-colour test of each model, and writes
``OUT/results_<regime>.json`` and ``OUT/regimes.md``.  The classical methods' results are
cached in ``OUT/baselines_<regime>.json`` (FSR and biharmonic take minutes on a CPU); delete
them to recompute.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glcic_lib.evaluation import CLASSICAL, flat_fill_error, flat_fill_table, masked_input  # noqa: E402
from glcic_lib.regimes import REGIMES, compare, load_photos, regime_table  # noqa: E402

BASELINES = CLASSICAL + ("smooth", "harmonic")   # the classical methods and the networks' starting fills


def draw_figure(photos, models: dict, regimes, seed: int, n: int, path: Path) -> None:
    """One block of rows per regime: input, each model raw and post-processed, biharmonic,
    Navier-Stokes and the ground truth, on the first ``n`` photographs (spread over the set)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    step = max(1, len(photos) // n)
    chosen = photos[::step][:n]
    blocks = list(compare(models, chosen, regimes, baselines=("biharmonic", "ns"), seed=seed).items())
    methods = list(blocks[0][1].methods)
    cols = ["input"] + methods + ["ground truth"]
    rows = [(regime, res, name) for regime, res in blocks for name in res.image_names]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.6 * len(cols), 1.6 * len(rows)), squeeze=False)
    for i, (regime, res, name) in enumerate(rows):
        d = res.images[name]
        psnr = {r["method"]: r["psnr_hole"] for r in res.rows if r["image"] == name}
        for j, c in enumerate(cols):
            ax = axes[i, j]
            ax.imshow(masked_input(d["target"], d["mask"]) if c == "input" else
                      d["target"] if c == "ground truth" else d[c])
            ax.set_xticks([])
            ax.set_yticks([])
            if c in psnr:
                ax.set_xlabel(f"{psnr[c]:.1f} dB", fontsize=7, labelpad=1)
            if i == 0:
                ax.set_title(c, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{regime}\n{name[:18]}", fontsize=7)
    fig.tight_layout(pad=0.3)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", required=True, help="folder of held-out photographs")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=CHECKPOINT")
    ap.add_argument("--out", required=True)
    ap.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=REGIMES)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--figure", type=int, default=0, metavar="N",
                    help="also draw OUT/regimes.png: N photographs per regime, each model raw and post-processed "
                         "beside biharmonic and Navier-Stokes (the fills, not just their scores)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = dict(m.split("=", 1) for m in args.model)
    photos = load_photos(args.photos)
    print(f"{len(photos)} photographs from {args.photos}, regimes {', '.join(args.regimes)}")
    t0 = time.time()
    results = compare(models, photos, args.regimes, baselines=() if args.no_baselines else BASELINES,
                      seed=args.seed, cache_dir=out)
    print(f"  compared in {time.time() - t0:.0f} s (classical methods cached in {out}/baselines_*.json)")
    for regime, res in results.items():
        res.to_json(out / f"results_{regime}.json")
    lines = [f"# Per-regime comparison on {args.photos} ({len(photos)} photographs, 256x256, seed {args.seed})\n"]
    for metric in ("psnr_hole", "ssim_hole", "detail", "grid"):
        lines.append(f"\n## {metric}\n")
        if metric in ("psnr_hole", "ssim_hole") and models:
            name = next(iter(models))
            table, _ = regime_table(results, name + "+post", metric)
            lines.append(f"\n{name}+post against the best classical method:\n\n{table}\n")
        else:
            first = next(iter(results.values()))
            lines.append("| holes | " + " | ".join(first.methods) + " |")
            lines.append("|---" * (len(first.methods) + 1) + "|")
            for regime, res in results.items():
                lines.append(f"| {regime} | " + " | ".join(f"{np.nanmean(res.values(m, metric)):.2f}"
                                                         for m in res.methods) + " |")
        if metric in ("detail", "grid"):
            ref = f"{metric}_gt"
            gts = [np.nanmean([r.get(ref, np.nan) for r in res.rows]) for res in results.values()]
            lines.append("\nground truth: " + ", ".join(f"{k} {v:.2f}" for k, v in zip(results, gts)))
    for name, ckpt in models.items():
        lines.append(f"\n## flat colours, {name} (64x96 hole, 256x256, raw fill, grey levels)\n")
        lines.append(flat_fill_table(flat_fill_error(ckpt)))
    if args.figure:
        draw_figure(photos, models, args.regimes, args.seed, args.figure, out / "regimes.png")
        lines.append(f"\nfigure: {out / 'regimes.png'}")
    text = "\n".join(lines)
    (out / "regimes.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
