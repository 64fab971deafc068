"""Checkpoints: one format for the demo model, training runs and converted models.

A checkpoint is a ``torch.save``'d dict::

    {"format": "glcic", "version": 1,
     "completion": {"config": {...}, "state_dict": {...}},
     "discriminator": {"config": {...}, "state_dict": {...}} or None,
     "train_state": {...} or None,        # optimisers, phase, iteration, RNG (training)
     "meta": {...}}                       # free-form: command, metrics, licence, ...

Writes are atomic (a temporary file in the same folder, flushed, then ``os.replace``), so a
crash while saving never destroys the previous checkpoint.  Loading checks the format, the
architecture and the weights (NaN or infinite weights are refused: they would fill holes with
black) and names what is wrong.

Robustness around kills and corruption:

* :func:`save_checkpoint` keeps the checkpoint it replaces as ``NAME.prev`` (a hard link made
  before the atomic replace, so ``NAME`` itself never goes missing, not even for an instant).
  :func:`read_checkpoint` falls back to ``NAME.prev``, printing a warning, when ``NAME`` cannot
  be read (truncated, garbage).  Resuming a run therefore survives a damaged ``checkpoint.pt``
  and repeats the iterations since the previous save.  This costs the disk space of a second
  checkpoint.  (Overwriting a run with ``--overwrite`` keeps the old run's last checkpoint as
  ``.prev`` until the second save.)
* A save that is killed (SIGKILL, power loss) leaves its temporary file
  ``NAME.XXXXXXXX.tmp`` behind; saving and reading remove such files of *this* checkpoint once
  they have not been written to for :data:`STALE_TMP_AGE_S` seconds (a save in progress writes
  to its file continuously, so an older one belongs to a dead save).  A save killed moments
  before a resume is therefore cleaned up by a later save, not at once.  A training run removes
  all of them when it starts or resumes (:meth:`glcic_lib.train.Trainer.run`).

Opening a checkpoint never runs code: files are read with ``torch.load(..., weights_only=True)``,
which rebuilds tensors and plain Python types (dict, list, tuple, str, numbers, None) and refuses
anything else, such as a pickle that would call a function.  :func:`save_checkpoint` therefore
stores only those types (:func:`to_plain` turns numpy arrays and scalars, paths and dataclasses
into them, and refuses other objects before anything is written).  Reading also accepts numpy
arrays of numbers (older glcic_lib versions stored numpy's random state as one; rebuilding an
array runs no code), so their runs still resume.  A checkpoint that holds anything else (a
numpy scalar, a path object, a class of its own, or a pickle that calls a function) is refused
with an :class:`UnsafeCheckpointError` naming the fix: if you trust the file, convert it once
with ``glcic convert-checkpoint OLD.pt NEW.pt --trust`` (:func:`convert_checkpoint`).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import pickle
import re
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from pathlib import PurePath
from typing import Any, BinaryIO, Iterator

import numpy as np
import torch

FORMAT = "glcic"
VERSION = 1

#: Suffix of the previous checkpoint kept by :func:`save_checkpoint` (``checkpoint.pt.prev``).
PREVIOUS_SUFFIX = ".prev"

#: A temporary file of a save untouched for this many seconds belongs to a killed save (generous:
#: a live save writes continuously, but its final flush to a slow disk may take a while).
STALE_TMP_AGE_S = 300.0


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or for another architecture."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that holds more than tensors and plain Python types: loading it could run
    code, so it is refused (see the module docstring for how to convert a trusted one)."""


def to_plain(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` made of what ``torch.load(..., weights_only=True)`` reads back: tensors, dict,
    list, tuple, str, bytes, int, float, bool and None (also ``torch.Size``, ``torch.dtype``,
    ``torch.device``).  Numpy arrays become tensors, numpy scalars Python numbers, paths strings,
    dataclasses dicts, sets lists; anything else is a ``TypeError`` naming where it was found."""
    if obj is None or type(obj) in (bool, int, float, str, bytes) or isinstance(
            obj, (torch.Tensor, torch.dtype, torch.device, torch.Size)):
        return obj
    if isinstance(obj, np.generic):   # before int / float: np.float64 is a float subclass
        return obj.item()
    for base in (bool, int, float, str, bytes):   # subclasses (enums, ...) would pickle their class
        if isinstance(obj, base):
            return base(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError(f"{where}: a numpy array of Python objects cannot be stored in a checkpoint")
        return torch.from_numpy(np.ascontiguousarray(obj).copy())
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name), f"{where}.{f.name}") for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {to_plain(k, f"{where} key"): to_plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        plain = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(items)]
        return tuple(plain) if isinstance(obj, tuple) else plain
    raise TypeError(f"{where}: a {type(obj).__module__}.{type(obj).__qualname__} cannot be stored in a checkpoint "
                    f"(only tensors and plain Python types can be read back without running code); convert it "
                    f"to a dict, list, number, string or tensor")


def _write(obj: Any, f: BinaryIO) -> None:
    """Serialise ``obj`` into the open file ``f`` (one place, so tests can simulate a full disk)."""
    torch.save(obj, f)


def previous_path(path: str | Path) -> Path:
    """Where :func:`save_checkpoint` keeps the checkpoint it replaced: ``path`` + ``.prev``."""
    path = Path(path)
    return path.with_name(path.name + PREVIOUS_SUFFIX)


def _temp_pattern(path: Path, suffix: str) -> re.Pattern:
    # the names tempfile.mkstemp(prefix=NAME + ".", suffix=suffix) and _link_previous make:
    # NAME.<8 of [a-z0-9_]>SUFFIX (nothing else in the folder matches)
    return re.compile(re.escape(path.name) + r"\.[a-z0-9_]{8}" + re.escape(suffix))


def remove_stale_temps(path: str | Path, suffix: str = ".tmp", older_than_s: float = STALE_TMP_AGE_S) -> list[Path]:
    """Remove the temporary files that killed saves of ``path`` left behind
    (``NAME.XXXXXXXX.tmp`` next to it, untouched for ``older_than_s`` seconds); return them.

    Only this file's own temporary names are touched: other checkpoints' temporary files, and
    files a save in progress is writing, stay."""
    path = Path(path)
    pattern = _temp_pattern(path, suffix)
    removed = []
    try:
        candidates = list(path.parent.iterdir())
    except OSError:  # no folder (yet), or not listable: nothing to clean
        return removed
    now = time.time()
    for p in candidates:
        if not pattern.fullmatch(p.name):
            continue
        try:
            if p.is_file() and now - p.stat().st_mtime >= older_than_s:
                p.unlink()
                removed.append(p)
        except OSError:  # vanished meanwhile, or not ours to delete
            continue
    return removed


def _link_previous(path: Path, suffix: str) -> None:
    """Make ``previous_path(path)`` the current ``path`` (a hard link, or a copy where the file
    system has none), atomically, leaving ``path`` in place."""
    for _ in range(100):
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}{suffix}")  # a name remove_stale_temps knows
        try:
            os.link(path, tmp)
        except FileExistsError:
            continue
        except FileNotFoundError:  # path vanished meanwhile: nothing to keep
            return
        except OSError:  # no hard links here (some network or FAT file systems): copy
            try:
                shutil.copyfile(path, tmp)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        try:
            os.replace(tmp, previous_path(path))
            return
        except FileNotFoundError:  # the link was removed under us (a stale-file sweep): again
            continue
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    raise FileExistsError(f"cannot keep the previous checkpoint next to {path}: no free temporary name")


@contextlib.contextmanager
def atomic_write(path: str | Path, suffix: str = ".tmp", keep_previous: bool = False) -> Iterator[BinaryIO]:
    """Open ``path`` for writing atomically: the caller writes into a temporary file in the same
    folder, which replaces ``path`` only when the ``with`` block ends without an error (flushed
    and synced first).  On any error, Ctrl-C included, the temporary file is removed and an
    existing ``path`` is left untouched.

    ``keep_previous=True`` keeps the replaced file as ``path.prev`` (see the module docstring);
    ``path`` exists at every instant, old or new."""
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
        if keep_previous and path.is_file():
            _link_previous(path, suffix)
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
        _write(obj, f)
    return Path(path)


def _module_entry(module) -> dict | None:
    if module is None:
        return None
    module = getattr(module, "module", module)  # unwrap DistributedDataParallel
    return {"config": module.config(), "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()}}


def save_checkpoint(path: str | Path, completion, discriminator=None, train_state: dict | None = None,
                    meta: dict | None = None, keep_previous: bool = True) -> Path:
    """Write a checkpoint atomically (see the module docstring for the layout).

    The checkpoint it replaces stays as ``path.prev`` (``keep_previous``), the fallback of
    :func:`read_checkpoint`; temporary files of killed earlier saves are removed first.
    ``train_state`` and ``meta`` go through :func:`to_plain` (so the file loads with
    ``weights_only=True``): an object that cannot be stored is a ``TypeError`` before any write."""
    payload = to_plain({
        "format": FORMAT, "version": VERSION,
        "completion": _module_entry(completion),
        "discriminator": _module_entry(discriminator),
        "train_state": train_state,
        "meta": meta or {},
    })
    remove_stale_temps(path)
    with atomic_write(path, keep_previous=keep_previous) as f:
        _write(payload, f)
    return Path(path)


def _describe_saved(ckpt: dict) -> str:
    """' (iteration N)' for a training checkpoint, '' otherwise."""
    it = (ckpt.get("train_state") or {}).get("iteration", (ckpt.get("meta") or {}).get("iteration"))
    return f" (iteration {it})" if it is not None else ""


def _non_finite(state_dict) -> list[str]:
    """Names of the floating-point tensors of ``state_dict`` holding a NaN or an infinity."""
    return [k for k, v in state_dict.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]


def _check_entry(ckpt: dict, key: str, what: str, path: Path) -> None:
    entry = ckpt.get(key)
    if not entry:  # no discriminator (a missing completion network is reported before)
        return
    if not isinstance(entry, dict):
        raise CheckpointError(f"{path}: the {what} entry is a {type(entry).__name__}, not a dict with "
                              f"'config' and 'state_dict'; the file was not written by glcic_lib")
    for field, holds in (("config", "the architecture"), ("state_dict", "the weights")):
        if not isinstance(entry.get(field), dict):
            raise CheckpointError(f"{path}: the {what} entry has no {field!r} ({holds}), so the network cannot "
                                  f"be rebuilt; re-save the model with glcic_lib.checkpoint.save_checkpoint")
    bad = _non_finite(entry["state_dict"])
    if bad:
        prev = previous_path(path)
        hint = (f"; the previous checkpoint {prev} is kept: try it (e.g. rename it to {path.name})"
                if prev.is_file() else "")
        raise CheckpointError(f"{path}: the {what} weights contain NaN or infinite values ({len(bad)} of "
                              f"{len(entry['state_dict'])} tensors, e.g. {bad[0]!r}): training diverged before "
                              f"this save, and these weights would fill holes with black; refused{hint}")


def _unsafe_message(path: Path, error: Exception) -> str:
    """One line: why ``path`` is refused, and how to convert it if it is trusted."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    what = f" (it needs {found.group(1)})" if found else ""
    return (f"refused to open {path}: it holds more than tensors and plain Python types{what}, and loading it "
            f"could run code hidden in the file. If you trust it (you or someone you trust wrote it with an "
            f"older glcic_lib), convert it once with `glcic convert-checkpoint {path} NEW.pt --trust` and use "
            f"NEW.pt; otherwise delete it")


def _numpy_array_globals() -> list:
    """What unpickling a numpy array of numbers needs (no code runs: a constructor of arrays and
    of dtypes), under the module names numpy 1 and numpy 2 write: checkpoints of older
    glcic_lib versions hold numpy's random state as one, so runs from before resume as they are."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct
    numeric = [type(np.dtype(c)) for c in "?bBhHiIlLqQefdg"]   # numpy >= 1.25: the DType classes
    numeric = [t for t in dict.fromkeys(numeric) if t is not np.dtype]
    return [np.ndarray, np.dtype, *numeric, (_reconstruct, "numpy.core.multiarray._reconstruct"),
            (_reconstruct, "numpy._core.multiarray._reconstruct")]


def _load_file(path: Path) -> dict:
    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # a class or function outside the allowed types ("Unsupported global: GLOBAL posix.system",
        # "Can only build Tensor, ... or types allowlisted"): refused; anything else (an
        # "Unsupported operand" of a garbage file) is damage
        if re.search(r"unsupported global|GLOBAL [\w.]+|can only build|allowlist", str(e), re.IGNORECASE):
            raise UnsafeCheckpointError(_unsafe_message(path, e)) from None
        detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(e))
        detail = detail.group(1) if detail else (str(e).splitlines()[0] if str(e) else "")
        raise CheckpointError(f"cannot read checkpoint {path}: the file is corrupt or not a PyTorch "
                              f"checkpoint ({type(e).__name__}: {detail})") from e
    except Exception as e:  # truncated zip, pickle garbage, ...
        raise CheckpointError(f"cannot read checkpoint {path}: the file is corrupt or not a PyTorch "
                              f"checkpoint ({type(e).__name__}: {e})") from e


def read_checkpoint(path: str | Path, fallback: bool = True) -> dict:
    """Load and validate a checkpoint dict (on the CPU).

    If ``path`` is corrupt and ``fallback`` is on, the previous checkpoint ``path.prev`` (see
    :func:`save_checkpoint`) is used instead, with a warning on stderr.  NaN or infinite weights,
    a missing ``config`` or ``state_dict``, another format or a newer version are a
    :class:`CheckpointError`.  Stale temporary files of killed saves of ``path`` are removed."""
    path = Path(path)
    if not path.exists():
        prev = previous_path(path)
        hint = f" (its previous version {prev} exists: rename it to {path.name} to use it)" if prev.is_file() else ""
        raise CheckpointError(f"checkpoint not found: {path}{hint}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path is a folder, not a file: {path}")
    remove_stale_temps(path)
    try:
        ckpt = _load_file(path)
    except UnsafeCheckpointError:
        raise   # not damage: its previous version is no more trustworthy (and converting is the fix)
    except CheckpointError as e:
        prev = previous_path(path)
        if not (fallback and prev.is_file()):
            raise
        try:
            ckpt = _check(_load_file(prev), prev)
        except CheckpointError as e2:
            raise CheckpointError(f"{e}; its previous version {prev} cannot be used either: {e2}") from e
        mtime = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(prev.stat().st_mtime))
        print(f"warning: {e}\nwarning: using the previous checkpoint {prev} instead, saved {mtime}"
              f"{_describe_saved(ckpt)}: newer progress is lost", file=sys.stderr, flush=True)
        return ckpt
    return _check(ckpt, path)


def _check(ckpt, path: Path) -> dict:
    """Validate a loaded checkpoint dict (see :func:`read_checkpoint`)."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a glcic_lib checkpoint (no 'format': 'glcic' entry); "
                              f"Torch7 files are converted with `python -m glcic_lib convert-torch7`")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt['version']}, newer than this "
                              f"glcic_lib understands ({VERSION}); upgrade glcic_lib")
    if not ckpt.get("completion"):
        raise CheckpointError(f"{path} holds no completion network")
    _check_entry(ckpt, "completion", "completion network", path)
    _check_entry(ckpt, "discriminator", "discriminator", path)
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
    return CompletionNetwork(width=config.get("width", 1.0), input_mode=config.get("input_mode", "fill"),
                             output_mode=config.get("output_mode", "direct"))


def build_discriminator(config: dict):
    from .models import ContextDiscriminator

    if config.get("arch") != "ContextDiscriminator":
        raise CheckpointError(f"expected a ContextDiscriminator, the checkpoint holds {config.get('arch')!r}")
    missing = [k for k in ("arms", "width", "global_size", "local_size") if k not in config]
    if missing:
        raise CheckpointError(f"the discriminator's config {config} lacks {', '.join(missing)}: it cannot be rebuilt")
    return ContextDiscriminator(arms=config["arms"], width=config["width"],
                                global_size=config["global_size"], local_size=config["local_size"])


def load_completion(path: str | Path, ckpt: dict | None = None):
    """The completion network stored in a checkpoint, in eval mode, on the CPU, with the
    reduced-precision error stored in its meta (``model.reduced_precision``, None if never
    measured: see :mod:`glcic_lib.precision_check`)."""
    ckpt = ckpt if ckpt is not None else read_checkpoint(path)
    entry = ckpt["completion"]
    model = build_completion(entry["config"])
    _load_state(model, entry, "completion network", path)
    stored = (ckpt.get("meta") or {}).get("reduced_precision")
    model.reduced_precision = stored if isinstance(stored, dict) and stored else None
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


# ---------------------------------------------------------------------------- converting old checkpoints

def convert_checkpoint(src: str | Path, dst: str | Path, trust: bool = False) -> Path:
    """Rewrite a checkpoint of an older glcic_lib (numpy random-number states, paths, ... in its
    pickle) as one that loads with ``weights_only=True``; return ``dst``.

    Reading ``src`` uses ``torch.load(..., weights_only=False)``, which runs whatever the file's
    pickle says: it happens only with ``trust=True`` (``--trust`` on the command line), for a
    file you or someone you trust wrote.  The result holds the same tensors, with numpy arrays
    as tensors and other objects as plain types (:func:`to_plain`), and is checked by reading
    it back the safe way."""
    src, dst = Path(src), Path(dst)
    if not trust:
        raise CheckpointError(f"converting {src} runs any code its pickle holds: pass trust=True (--trust) only "
                              f"if you trust where the file comes from")
    if not src.is_file():
        raise CheckpointError(f"checkpoint not found: {src}")
    if dst.resolve() == src.resolve():
        raise CheckpointError(f"the output {dst} would overwrite the input: write the converted file elsewhere")
    try:
        ckpt = torch.load(src, map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {src} ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from e
    ckpt = _check(to_plain(ckpt, str(src)), src)
    with atomic_write(dst) as f:
        _write(ckpt, f)
    _check(_load_file(dst), dst)   # it must now load without running code
    return dst


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Arguments of ``convert-checkpoint``."""
    p.add_argument("input", help="a checkpoint written by an older glcic_lib")
    p.add_argument("output", help="where to write the converted checkpoint")
    p.add_argument("--trust", action="store_true",
                   help="required: reading the old file runs any code its pickle holds, so convert only "
                        "files you trust")


def main(args: argparse.Namespace) -> int:
    """Run ``convert-checkpoint``."""
    if not args.trust:
        raise CheckpointError(f"reading {args.input} the old way runs any code hidden in it: add --trust if you "
                              f"trust where it comes from (you or a colleague wrote it), otherwise delete it")
    out = convert_checkpoint(args.input, args.output, trust=True)
    print(f"wrote {out}: it loads without running code (weights_only=True)")
    return 0
