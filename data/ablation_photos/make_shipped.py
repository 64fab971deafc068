"""Turn four ablation runs into the shipped ablation of notebook 06 (this folder).

    python data/ablation_photos/make_shipped.py --shared runs/demo_mse/checkpoint.pt \
        --arm none=runs/abl/none --arm global=runs/abl/global --arm local=runs/abl/local --arm both=runs/abl/both

Each ``--arm NAME=RUN_FOLDER`` is a finished training run (``checkpoint.pt`` and
``history.jsonl``) that started from ``--shared`` (``--init-from``).  Writes, next to this
script: ``<arm>.pt`` (the completion network only, with the run's configuration, iterations
and training seconds in its meta, and its measured bfloat16 error), ``<arm>_history.jsonl``,
``shared_mse.pt``, ``costs.json``, and the evaluation that :func:`glcic_lib.ablation.load_shipped`
recomputes in the notebook: ``results.json``, ``rows.csv``, ``table.md`` and ``metrics.png``
(the 20 bundled held-out photographs at 256x256, raw and post-processed, with Telea and
Navier-Stokes).  Prints the table.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from glcic_lib.ablation import ARMS, evaluate_arms, save_figures
from glcic_lib.checkpoint import load_completion, read_checkpoint, save_checkpoint
from glcic_lib.precision_check import measure_precision

HERE = Path(__file__).resolve().parent


def completion_only(run_checkpoint: Path, out: Path, note: str, extra: dict | None = None) -> dict:
    """Write the completion network of a run's checkpoint with its configuration in the meta."""
    ckpt = read_checkpoint(run_checkpoint)
    state = ckpt.get("train_state") or {}
    model = load_completion(run_checkpoint, ckpt)
    meta = {"note": note, "iteration": state.get("iteration"), "train_seconds": state.get("elapsed"),
            "config": state.get("config", {}), **(extra or {})}
    meta["reduced_precision"] = measure_precision(model, "cpu")
    save_checkpoint(out, model, None, None, meta, keep_previous=False)
    return meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", required=True, help="the shared MSE-only stage every arm started from")
    ap.add_argument("--arm", action="append", required=True, metavar="NAME=RUN_FOLDER")
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args()
    runs = dict(a.split("=", 1) for a in args.arm)
    if sorted(runs) != sorted(ARMS):
        ap.error(f"give one --arm for each of {ARMS}, got {sorted(runs)}")
    out = Path(args.out)
    shared = completion_only(Path(args.shared), out / "shared_mse.pt",
                             "the shared MSE-only stage every arm starts from (see README.md)")
    seconds = {"shared_mse": shared["train_seconds"]}
    for arm, folder in runs.items():
        folder = Path(folder)
        meta = completion_only(folder / "checkpoint.pt", out / f"{arm}.pt",
                               "discriminator ablation; completion network only (see README.md)", {"arm": arm})
        seconds[arm] = meta["train_seconds"]
        shutil.copyfile(folder / "history.jsonl", out / f"{arm}_history.jsonl")
    checkpoints = {a: out / f"{a}.pt" for a in ARMS}
    result, _ = evaluate_arms(checkpoints, "photos", progress=False)
    result.meta.update({"shipped": str(out), "shared": str(args.shared), "runs": runs})
    files = result.save(out, figures=False)
    files.update(save_figures(result, out))
    grid = out / "grid.png"          # the notebook draws its own; keep the folder small
    if grid.exists():
        grid.unlink()
    (out / "costs.json").write_text(json.dumps({"arm_train_seconds": {a: seconds[a] for a in ARMS},
                                                "shared_stage_seconds": seconds["shared_mse"]}, indent=1) + "\n")
    print(result.table(metrics=("psnr_hole", "ssim_hole", "seam", "detail", "grid")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
