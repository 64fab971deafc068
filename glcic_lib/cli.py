"""Command line: ``python -m glcic_lib COMMAND ...`` (also installed as ``glcic``).

Each command lives in the module that does its work; a module provides
``configure_parser(parser)`` and ``main(args) -> int``.  Modules are imported only when their
command runs, so ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

#: command -> (module, one-line help)
COMMANDS = {
    "inpaint": ("glcic_lib.cli", "complete the holes of one image (mask: white = hole)"),
    "bench": ("glcic_lib.bench", "time the completion network and OpenCV inpainting at several sizes"),
    "train": ("glcic_lib.train", "train the completion network and discriminators (three phases)"),
    "evaluate": ("glcic_lib.evaluation", "metrics of a checkpoint on a held-out set with fixed holes"),
    "ablate": ("glcic_lib.ablation", "train and evaluate the four discriminator arms"),
    "datasets": ("glcic_lib.datasets", "download / unpack Places365, CelebA or CMP Facade"),
    "convert-torch7": ("glcic_lib.pretrained", "convert the authors' Torch7 .t7 model to a checkpoint"),
    "doctor": ("glcic_lib.doctor", "check this setup: versions, device, one training step per phase, a completion"),
    "measure-precision": ("glcic_lib.precision_check",
                          "measure a checkpoint's bfloat16/float16 error and store it (what precision auto reads)"),
    "convert-checkpoint": ("glcic_lib.checkpoint",
                           "rewrite a trusted checkpoint of an older glcic_lib so that it loads without running code"),
}


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Arguments of ``inpaint``."""
    p.add_argument("--image", required=True, help="input image file")
    p.add_argument("--mask", required=True, help="mask image file: pixels at least half white (>= 128) are holes")
    p.add_argument("--out", required=True, help="where to write the completed image")
    p.add_argument("--checkpoint", default=None, help="checkpoint (.pt, or the authors' .t7); default: the demo model")
    p.add_argument("--postprocess", action=argparse.BooleanOptionalAction, default=True,
                   help="fast marching + Poisson blending after the network (default: on)")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")


def main(args: argparse.Namespace) -> int:
    """Run ``inpaint``.  Everything that can be checked cheaply (the output path, the device, the
    files, the model) is checked before the completion runs; failures are one-line errors."""
    from .imageio import check_output_path, read_image, read_mask, write_image
    from .inpaint import complete
    from .pretrained import load_pretrained

    check_output_path(args.out)
    device = _inpaint_device(args.device)
    image, mask = read_image(args.image), read_mask(args.mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {args.mask} is {mask.shape[1]}x{mask.shape[0]} but image {args.image} is "
                         f"{image.shape[1]}x{image.shape[0]}: they must be the same size")
    model = load_pretrained(args.checkpoint or "demo")
    out = complete(model, image, mask, postprocess=args.postprocess, device=device)
    write_image(args.out, out)
    print(f"wrote {args.out} ({image.shape[1]}x{image.shape[0]}, {int(mask.sum())} hole pixels, "
          f"post-processing {'on' if args.postprocess else 'off'})")
    return 0


def _inpaint_device(name: str | None):
    """The ``--device`` of ``inpaint`` (None: the best available); a ValueError when unavailable."""
    from .device import pick_device

    try:
        return pick_device(name)
    except RuntimeError as e:  # CUDA/MPS not available, or not a device name at all
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        given = f"--device {name}" if name else f"GLCIC_DEVICE={os.environ.get('GLCIC_DEVICE')}"
        raise ValueError(f"{given}: {first}; use --device cpu, or leave the device out to pick the best "
                         f"available one") from e


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glcic", description="Globally and Locally Consistent Image Completion")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).configure_parser(p)
        except (ModuleNotFoundError, AttributeError) as e:  # a command not (yet) implemented
            p.set_defaults(_missing=str(e))
    return parser


def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_missing", None):
        parser.error(f"command {args.command!r} is unavailable: {args._missing}")
    from .checkpoint import CheckpointError
    from .imageio import ImageReadError, describe_os_error

    try:
        return int(importlib.import_module(args._module).main(args) or 0)
    except (CheckpointError, ImageReadError, ValueError, TypeError, OSError) as e:
        # OSError: a missing file, a full disk, no permission, ...: one line, no traceback
        msg = describe_os_error(e) if isinstance(e, OSError) else str(e)
        print(f"glcic {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
