"""Take the trained context discriminator out of a training run: ``data/checkpoints/demo_discriminator.pt``.

    python data/checkpoints/extract_discriminator.py RUN/checkpoint.pt [--out data/checkpoints/demo_discriminator.pt]

Notebook 03 measures the adversarial gradient with a *trained* discriminator without training
one (``glcic_lib.pretrained.load_demo_discriminator``).  This script reads a training checkpoint
(the run that made the demo model, or any run with a discriminator), keeps the completion
network and the discriminator (no optimiser state, no random-number state) and writes them with
:func:`glcic_lib.checkpoint.save_checkpoint`, with where they came from in ``meta``: the source
file, its iteration and phase, and the discriminator's last logged ``d_real`` / ``d_fake`` /
``d_loss``.  It refuses a checkpoint without a discriminator, or whose discriminator is not the
demo's shape (both arms, width 0.25, 128-pixel images, 96-pixel patches) unless ``--any-shape``.

The provisional file of 2026-12-07 was made from a 20-iteration phase-2 run against the demo
model (``python -m glcic_lib train --preset demo --iterations 0 20 0 --init-from
data/checkpoints/demo_completion.pt --out /tmp/dprov --no-progress``), then
``python data/checkpoints/extract_discriminator.py /tmp/dprov/checkpoint.pt``; rerun the second
command on the demo's real run to replace it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from glcic_lib.checkpoint import load_completion, load_discriminator, read_checkpoint, save_checkpoint

HERE = Path(__file__).resolve().parent
DEMO_SHAPE = {"arms": "both", "width": 0.25, "global_size": 128, "local_size": 96}


def extract(src: Path, out: Path, any_shape: bool = False) -> dict:
    ckpt = read_checkpoint(src, fallback=False)
    disc = load_discriminator(src, ckpt)
    if disc is None:
        raise SystemExit(f"{src} holds no discriminator (a phase-1-only run, or a --discriminator none run)")
    config = ckpt["discriminator"]["config"]
    wrong = {k: config.get(k) for k, v in DEMO_SHAPE.items() if config.get(k) != v}
    if wrong and not any_shape:
        raise SystemExit(f"{src}: the discriminator is not the demo's shape {DEMO_SHAPE}: {wrong} "
                         f"(pass --any-shape to extract it anyway)")
    completion = load_completion(src, ckpt)
    state = ckpt.get("train_state") or {}
    history = state.get("history") or []
    last_d = next((h for h in reversed(history) if "d_loss" in h), {})
    meta = {
        "name": "glcic demo discriminator (quarter width, trained against the demo completion network)",
        "note": "The context discriminator of a course training run, for notebook 03's alpha experiment; "
                "the completion network stored with it is the one it was trained against.",
        "source_file": str(src),
        "iteration": state.get("iteration", (ckpt.get("meta") or {}).get("iteration")),
        "phase_reached": state.get("phase"),
        "train_seconds": state.get("elapsed"),
        "last_logged": {k: last_d[k] for k in ("iteration", "phase", "d_loss", "d_real", "d_fake") if k in last_d},
        "extracted_by": "python data/checkpoints/extract_discriminator.py",
        "licence": (ckpt.get("meta") or {}).get("licence", "same licence as this repository"),
    }
    # float16 storage halves the file (3.5 M parameters, mostly the two 1024-wide FC layers); the
    # loader builds a float32 discriminator and copies these values into it
    meta["stored_dtype"] = "float16"
    save_checkpoint(out, completion, disc.half(), meta=meta, keep_previous=False)
    check = load_discriminator(out)
    assert check is not None and check.config() == disc.config()
    return meta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path, help="a training run's checkpoint.pt (with a discriminator)")
    p.add_argument("--out", type=Path, default=HERE / "demo_discriminator.pt")
    p.add_argument("--any-shape", action="store_true", help="accept a discriminator of another shape")
    args = p.parse_args(argv)
    meta = extract(args.checkpoint, args.out, args.any_shape)
    size = args.out.stat().st_size / 2**20
    print(f"wrote {args.out} ({size:.1f} MiB): iteration {meta['iteration']}, phase {meta['phase_reached']}, "
          f"last logged {meta['last_logged']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
