"""Checkpoints: one format for the demo model, training runs and converted models.

A checkpoint is a ``torch.save``'d dict::

    {"format": "glcic", "version": 1,
     "completion": {"config": {...}, "state_dict": {...}},
     "discriminator": {"config": {...}, "state_dict": {...}} or None,
     "train_state": {...} or None,        # optimisers, phase, iteration, RNG (training)
     "meta": {...}}                       # free-form: command, metrics, licence, ...

Writes are atomic (a temporary file in the same folder, flushed, then ``os.replace``), so a
crash while saving never destroys the previous checkpoint.  Loading checks the format and the
architecture and names what is wrong.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import torch

FORMAT = "glcic"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or for another architecture."""


@contextlib.contextmanager
def atomic_write(path: str | Path, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """Open ``path`` for writing atomically: the caller writes into a temporary file in the same
    folder, which replaces ``path`` only when the ``with`` block ends without an error (flushed
    and synced first).  On any error, Ctrl-C included, the temporary file is removed and an
    existing ``path`` is left untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file readable by its owner only; give it the usual permissions
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as f:
        torch.save(obj, f)
    return Path(path)


def _module_entry(module) -> dict | None:
    if module is None:
        return None
    module = getattr(module, "module", module)  # unwrap DistributedDataParallel
    return {"config": module.config(), "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()}}


def save_checkpoint(path: str | Path, completion, discriminator=None, train_state: dict | None = None,
                    meta: dict | None = None) -> Path:
    """Write a checkpoint atomically (see the module docstring for the layout)."""
    return atomic_save({
        "format": FORMAT, "version": VERSION,
        "completion": _module_entry(completion),
        "discriminator": _module_entry(discriminator),
        "train_state": train_state,
        "meta": meta or {},
    }, path)


def read_checkpoint(path: str | Path) -> dict:
    """Load and validate a checkpoint dict (on the CPU)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path is a folder, not a file: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, pickle garbage, ...
        raise CheckpointError(f"cannot read checkpoint {path}: the file is corrupt or not a PyTorch "
                              f"checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a glcic_lib checkpoint (no 'format': 'glcic' entry); "
                              f"Torch7 files are converted with `python -m glcic_lib convert-torch7`")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt['version']}, newer than this "
                              f"glcic_lib understands ({VERSION}); upgrade glcic_lib")
    if not ckpt.get("completion"):
        raise CheckpointError(f"{path} holds no completion network")
    return ckpt


def _load_state(module, entry: dict, what: str, path) -> None:
    try:
        module.load_state_dict(entry["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: the {what} weights do not fit the architecture "
                              f"{entry.get('config')}: {str(e).splitlines()[0]}") from e


def build_completion(config: dict):
    from .models import CompletionNetwork

    if config.get("arch") != "CompletionNetwork":
        raise CheckpointError(f"expected a CompletionNetwork, the checkpoint holds {config.get('arch')!r}")
    return CompletionNetwork(width=config.get("width", 1.0), input_mode=config.get("input_mode", "fill"))


def build_discriminator(config: dict):
    from .models import ContextDiscriminator

    if config.get("arch") != "ContextDiscriminator":
        raise CheckpointError(f"expected a ContextDiscriminator, the checkpoint holds {config.get('arch')!r}")
    return ContextDiscriminator(arms=config["arms"], width=config["width"],
                                global_size=config["global_size"], local_size=config["local_size"])


def load_completion(path: str | Path, ckpt: dict | None = None):
    """The completion network stored in a checkpoint, in eval mode, on the CPU."""
    ckpt = ckpt if ckpt is not None else read_checkpoint(path)
    entry = ckpt["completion"]
    model = build_completion(entry["config"])
    _load_state(model, entry, "completion network", path)
    return model.eval()


def load_discriminator(path: str | Path, ckpt: dict | None = None):
    """The context discriminator stored in a checkpoint (None if it has none)."""
    ckpt = ckpt if ckpt is not None else read_checkpoint(path)
    entry = ckpt.get("discriminator")
    if not entry:
        return None
    model = build_discriminator(entry["config"])
    _load_state(model, entry, "discriminator", path)
    return model
