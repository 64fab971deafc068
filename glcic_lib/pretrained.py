"""Ready-made completion networks: the bundled demo model and the authors' released models.

* ``load_pretrained("demo")``: the small model trained on this project's bundled images
  (``data/checkpoints/demo_completion.pt``): a teaching demo, not the paper's model.
* ``load_pretrained("authors")``: the authors' Places2 model (``completionnet_places2.t7``),
  trained for about two months on four GPUs.  It is *not* part of this repository: its licence
  (CC BY-NC-SA 4.0, see :data:`AUTHORS_LICENCE`) allows non-commercial use only, and adaptations
  (a converted checkpoint is one) must be shared under the same licence.  Fetch it yourself
  with :func:`download_authors_model` (the notebooks call it on Colab when you ask) or place
  the file in ``$GLCIC_CKPT`` (default ``runs/``) or ``data/checkpoints/``.
  ``"authors:places2_freeform"`` and ``"authors:celeba"`` name the two other released models.
* a path: a glcic_lib checkpoint (``.pt``) or a Torch7 file (``.t7``).

``python -m glcic_lib convert-torch7 IN.t7 OUT.pt`` turns a ``.t7`` file into a normal
checkpoint (see :mod:`glcic_lib.torch7` for how the layers map).
"""
from __future__ import annotations

import argparse
import hashlib
import struct
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import atomic_write
from .config import bundled_data_dir, checkpoint_dir

#: File name of the demo checkpoint inside ``data/checkpoints``.
DEMO_CHECKPOINT = "demo_completion.pt"

#: The licence of the authors' released models and code (stated wherever they are fetched).
AUTHORS_LICENCE = (
    "The authors' models (c) 2017 Satoshi Iizuka, Edgar Simo-Serra and Hiroshi Ishikawa are licensed "
    "under Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International (CC BY-NC-SA 4.0, "
    "https://creativecommons.org/licenses/by-nc-sa/4.0/): non-commercial use only, credit the authors, "
    "and share adaptations (a converted checkpoint is one) under the same licence. They are not "
    "part of this course's repository; never commit them."
)

#: Where the authors' project lives (code, paper, download script).
AUTHORS_PROJECT = "https://github.com/satoshiiizuka/siggraph2017_inpainting"


@dataclass(frozen=True)
class AuthorsModel:
    """One of the authors' released completion networks."""

    name: str
    filename: str
    url: str  #: the authors' current download address
    mirrors: tuple[str, ...]  #: older addresses tried if the first fails
    about: str
    label: str  #: how menus name it
    md5: str | None = None  #: the checksum the authors publish (None: they publish none)
    licence: str = AUTHORS_LICENCE

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.url,) + self.mirrors


_TSUKUBA = "http://iizuka.cs.tsukuba.ac.jp/data/"
_WASEDA = "http://hi.cs.waseda.ac.jp/~iizuka/data/"

#: name -> the authors' released model (URL, licence note, what it was trained on).
AUTHORS_MODELS: dict[str, AuthorsModel] = {
    "places2": AuthorsModel(
        "places2", "completionnet_places2.t7", _TSUKUBA + "completionnet_places2.t7",
        (_WASEDA + "completionnet_places2.t7",),
        "the paper's model: Places2, rectangular holes of 96-128 pixels, images of 256-384 pixels",
        "authors' Places2 model", md5="b1527543a0ee22c23fca44cefdf48531"),  # the authors' download script
    "places2_freeform": AuthorsModel(
        "places2_freeform", "completionnet_places2_freeform.t7", _TSUKUBA + "completionnet_places2_freeform.t7",
        (), "released in 2020: Places2 with free-form holes (better on irregular holes, even without post-processing)",
        "authors' Places2 free-form model"),
    "celeba": AuthorsModel(
        "celeba", "completionnet_celeba.t7", _TSUKUBA + "completionnet_celeba.t7",
        (), "released in 2020: faces (CelebA), rectangular holes; best on faces of 160-178 pixels",
        "authors' CelebA faces model"),
}


def demo_checkpoint_path() -> Path:
    return bundled_data_dir() / "checkpoints" / DEMO_CHECKPOINT


def _authors_entry(name: str) -> AuthorsModel:
    if name not in AUTHORS_MODELS:
        raise ValueError(f"unknown authors' model {name!r}; choose one of {sorted(AUTHORS_MODELS)}")
    return AUTHORS_MODELS[name]


def authors_search_dirs() -> list[Path]:
    """Where :func:`authors_model_path` looks: ``$GLCIC_CKPT`` (default ``runs/``), then ``data/checkpoints``."""
    dirs = [checkpoint_dir(), bundled_data_dir() / "checkpoints"]
    return list(dict.fromkeys(dirs))


def authors_model_path(name: str = "places2") -> Path | None:
    """The authors' ``.t7`` file if present (or a checkpoint converted from it), else None.

    Looks for ``completionnet_<name>.t7`` and then ``completionnet_<name>.pt`` (what
    ``convert-torch7`` writes by default) in :func:`authors_search_dirs`.  Never downloads.
    """
    entry = _authors_entry(name)
    stem = Path(entry.filename).stem
    for folder in authors_search_dirs():
        for candidate in (folder / entry.filename, folder / f"{stem}.pt"):
            if candidate.is_file() and candidate.stat().st_size > 0:
                return candidate
    return None


def _how_to_get(entry: AuthorsModel) -> str:
    where = " or ".join(str(d) for d in authors_search_dirs())
    return (f"download it with glcic_lib.pretrained.download_authors_model({entry.name!r}) or by hand from "
            f"{entry.url}, and put {entry.filename} in {where}. Licence: CC BY-NC-SA 4.0 (non-commercial)")


def load_torch7(path: str | Path, mean_pixel=None):
    """Read a Torch7 ``.t7`` completion network: see :func:`glcic_lib.torch7.load_torch7`.

    Returns a :class:`~glcic_lib.torch7.Torch7Model`: ``.model`` (a ``CompletionNetwork``),
    ``.mean_pixel``, ``.width``, ``.summary()``.
    """
    from .torch7 import load_torch7 as _load

    return _load(path, mean_pixel=mean_pixel)


def load_pretrained(name: str = "demo"):
    """Load a ready-made completion network (eval mode, CPU).

    ``"demo"``: the small model trained on this project's bundled images (see
    ``data/checkpoints/README.md``): a teaching demo, *not* the paper's Places2 model.
    ``"authors"`` (= ``"authors:places2"``), ``"authors:places2_freeform"``,
    ``"authors:celeba"``: the authors' released models, if the file is present (see
    :func:`authors_model_path`); otherwise a :class:`~glcic_lib.checkpoint.CheckpointError`
    says how to get it.  A path to any checkpoint or Torch7 ``.t7`` file also works.
    """
    from .checkpoint import CheckpointError, load_completion

    name = str(name)
    if name == "demo":
        path = demo_checkpoint_path()
        if not path.exists():
            raise CheckpointError(f"the bundled demo model is missing ({path}); re-clone the repository "
                                  f"or train one with `python -m glcic_lib train --preset cpu`")
        return load_completion(path)
    if name == "authors" or name.startswith("authors:"):
        key = name.partition(":")[2] or "places2"
        try:
            entry = _authors_entry(key)
        except ValueError as e:
            raise CheckpointError(str(e)) from None
        path = authors_model_path(key)
        if path is None:
            raise CheckpointError(f"the authors' {key} model ({entry.filename}) is not here: {_how_to_get(entry)}")
        return load_pretrained(str(path))
    path = Path(name)
    if path.suffix == ".t7":
        return load_torch7(path).model
    return load_completion(path)


def model_choices() -> dict[str, str]:
    """Label -> ``load_pretrained`` name of the models available here, for a dropdown.

    Always the demo model (if bundled); each of the authors' models whose file is present.
    """
    choices = {}
    if demo_checkpoint_path().exists():
        choices["demo model (bundled, small)"] = "demo"
    for key, entry in AUTHORS_MODELS.items():
        if authors_model_path(key) is not None:
            choices[entry.label] = f"authors:{key}"
    return choices


# ---------------------------------------------------------------------------------------------
# Downloading (only when asked, e.g. from a Colab cell)
# ---------------------------------------------------------------------------------------------

def _looks_like_torch7(head: bytes) -> bool:
    """A saved table or torch object starts with the int32 type tag 3 or 4."""
    return len(head) >= 4 and struct.unpack("<i", head[:4])[0] in (3, 4)


#: ``download_authors_model(md5=PUBLISHED)``: check the model's published checksum (:attr:`AuthorsModel.md5`).
PUBLISHED = "published"


def file_md5(path: str | Path) -> str:
    """The md5 checksum of a file, as 32 hex digits."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _md5_mismatch(got: str, expected: str) -> str:
    return (f"its md5 is {got}, not the published {expected}: the file is corrupt (an interrupted or altered "
            f"download, or not the authors' file)")


def _fetch(url: str, target: Path, timeout: float, progress: bool, md5: str | None = None) -> None:
    """Download ``url`` to ``target`` (atomically); with ``md5``, a file whose checksum differs
    is refused and nothing is written."""
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "glcic-course"})
    with atomic_write(target, suffix=".part") as out, \
            urllib.request.urlopen(request, timeout=timeout) as response:
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        done = 0
        digest = hashlib.md5()
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name,
                  disable=not progress) as bar:
            head = b""
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                if len(head) < 4:
                    head += chunk[:4]
                    if len(head) >= 4 and not _looks_like_torch7(head):
                        from .torch7 import _sniff

                        what = _sniff(head + chunk[4:64])
                        raise ValueError("the server did not send a Torch7 file"
                                         + (f" but {what}" if what else f" (it starts with {head!r})"))
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                bar.update(len(chunk))
        if total is not None and done != total:
            raise ValueError(f"the download stopped after {done} of {total} bytes")
        if done < 4:
            raise ValueError(f"the server sent {done} bytes, not a Torch7 file")
        if md5 is not None and digest.hexdigest() != md5.lower():
            raise ValueError(f"refused the download: {_md5_mismatch(digest.hexdigest(), md5.lower())}")


def download_authors_model(name: str = "places2", dest: str | Path | None = None, *, url: str | None = None,
                           force: bool = False, progress: bool = True, timeout: float = 60.0,
                           md5: str | None = PUBLISHED) -> Path:
    """Download one of the authors' released ``.t7`` models and return its path.

    Only runs when called (nothing in the course downloads it behind your back).  ``dest`` is
    a folder (default ``$GLCIC_CKPT``, i.e. ``runs/``, which git ignores) or a ``.t7`` file
    path.  An existing file is kept unless ``force``.  ``url`` replaces the authors' addresses
    (a mirror, or a local server in the tests).  The licence is printed first: CC BY-NC-SA 4.0,
    non-commercial use only.  Writes to a temporary file and renames it when complete, so an
    interrupted download never leaves a half file; a server answering with something that is
    not a Torch7 file (an HTML error page) is refused.

    ``md5``: the file must have this checksum; by default the one the authors publish
    (:attr:`AuthorsModel.md5`; ``completionnet_places2.t7``: b1527543a0ee22c23fca44cefdf48531),
    ``None`` checks nothing.  A download with another checksum is refused (the next address is
    tried, nothing is saved), and a file already at ``dest`` with another checksum is
    downloaded again.
    """
    from .torch7 import Torch7Error

    entry = _authors_entry(name)
    dest = Path(dest) if dest is not None else checkpoint_dir()
    target = dest if dest.suffix == ".t7" else dest / entry.filename
    expected = entry.md5 if md5 == PUBLISHED else md5
    if target.is_file() and target.stat().st_size > 0 and not force:
        got = file_md5(target) if expected else None
        if got is None or got == expected.lower():
            print(f"{target} is already here ({target.stat().st_size / 2**20:.1f} MiB)"
                  + (", md5 checked" if got else "") + "; force=True downloads it again")
            return target
        print(f"{target} is here but {_md5_mismatch(got, expected.lower())}; downloading it again")
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"Downloading the authors' {name} model ({entry.about}).\n{entry.licence}")
    errors = []
    for source in ((url,) if url else entry.urls):
        try:
            _fetch(source, target, timeout, progress, expected)
        except urllib.error.HTTPError as e:  # before URLError: it is one
            errors.append(f"{source}: HTTP {e.code} ({e.reason})")
            continue
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            errors.append(f"{source}: {reason}")
            continue
        print(f"saved {target} ({target.stat().st_size / 2**20:.1f} MiB"
              + (", md5 checked" if expected else ", no published md5 to check") + ")")
        return target
    raise Torch7Error(f"could not download the authors' {name} model: " + "; ".join(errors)
                      + f". Download {entry.url} by hand (see {AUTHORS_PROJECT}) and put it at {target}")


# ---------------------------------------------------------------------------------------------
# Command line: python -m glcic_lib convert-torch7 IN.t7 OUT.pt
# ---------------------------------------------------------------------------------------------

def configure_parser(p: argparse.ArgumentParser) -> None:
    """Arguments of ``convert-torch7``."""
    p.add_argument("input", help="the Torch7 model, e.g. completionnet_places2.t7")
    p.add_argument("output", nargs="?", default=None,
                   help="checkpoint to write (default: the input's name with .pt)")
    p.add_argument("--mean", nargs=3, type=float, metavar=("R", "G", "B"), default=None,
                   help="mean pixel in [0, 1], for files that do not store one (default: the file's)")


def main(args: argparse.Namespace) -> int:
    """Run ``convert-torch7``: read, check against Table 1, measure its bfloat16 error
    (:mod:`glcic_lib.precision_check`, stored in the meta), write a checkpoint, verify it."""
    import torch

    from .checkpoint import load_completion, save_checkpoint
    from .inpaint import precision_choice
    from .torch7 import Torch7Error

    src = Path(args.input)
    out = Path(args.output) if args.output else src.with_suffix(".pt")
    if out.resolve() == src.resolve():
        raise Torch7Error(f"the output {out} would overwrite the input")
    result = load_torch7(src, mean_pixel=args.mean)
    known = next((m for m in AUTHORS_MODELS.values() if m.filename == src.name), None)
    meta = {
        "source": "torch7", "source_file": src.name, "mean_pixel": list(result.mean_pixel),
        "width": result.width, "converted_by": "python -m glcic_lib convert-torch7",
        "authors_model": known.name if known else None,
        "licence": AUTHORS_LICENCE if known else "that of the Torch7 file's authors",
    }
    # the network's own bfloat16 error on the held-out photographs: complete(precision="auto")
    # uses bfloat16 for it only if that error is small (a paper-width network can move by tens of levels)
    from .precision_check import describe, measure_precision

    meta["reduced_precision"] = measure_precision(result.model, "cpu")
    save_checkpoint(out, result.model, meta=meta, keep_previous=False)  # a re-conversion needs no fallback copy
    # Check what was written: the reloaded checkpoint must reproduce the network exactly.
    reloaded = load_completion(out)
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 32, 32, generator=gen)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    with torch.no_grad():
        same = torch.equal(result.model(image, mask), reloaded(image, mask))
    if not same:  # pragma: no cover - would be a bug in checkpoint.py
        raise Torch7Error(f"{out} does not reproduce the Torch7 network's outputs")
    print(result.summary())
    print(f"wrote {out} (input_mode 'subtract'; verified: the reloaded checkpoint gives identical outputs)")
    print(f"reduced precision: {describe(meta['reduced_precision'])}; complete(precision='auto') on this CPU: "
          f"{precision_choice(reloaded, 'cpu')[1]}")
    if known:
        print(f"licence: {known.licence}")
    return 0


__all__ = ["AUTHORS_LICENCE", "AUTHORS_MODELS", "AUTHORS_PROJECT", "AuthorsModel", "DEMO_CHECKPOINT", "PUBLISHED",
           "authors_model_path", "file_md5", "authors_search_dirs", "demo_checkpoint_path", "download_authors_model",
           "load_pretrained", "load_torch7", "model_choices", "configure_parser", "main"]


# ---------------------------------------------------------------------------------------------
# The demo's trained discriminator (notebook 03's alpha experiment)
# ---------------------------------------------------------------------------------------------

#: File name of the demo's trained context discriminator inside ``data/checkpoints``.
DEMO_DISCRIMINATOR = "demo_discriminator.pt"


def demo_discriminator_path() -> Path:
    return bundled_data_dir() / "checkpoints" / DEMO_DISCRIMINATOR


def load_demo_discriminator(with_meta: bool = False):
    """The context discriminator trained against the demo model (CPU, eval mode).

    Both arms, quarter width, 128-pixel images and 96-pixel local patches, as the demo run
    trained it; made by ``data/checkpoints/extract_discriminator.py`` from that run.  With
    ``with_meta`` returns ``(discriminator, meta)``: where it came from, its iteration and its
    last logged ``d_real`` / ``d_fake``.  A missing or unusable file is a
    :class:`~glcic_lib.checkpoint.CheckpointError` that says how to make it.
    """
    from .checkpoint import CheckpointError, load_discriminator, read_checkpoint

    path = demo_discriminator_path()
    how = (f"make it from a training run that has a discriminator: `python data/checkpoints/extract_discriminator.py "
           f"RUN/checkpoint.pt` (e.g. after `python -m glcic_lib train --preset demo --iterations 0 200 0 --init-from "
           f"{demo_checkpoint_path()} --out runs/demo_d`), or re-clone the repository")
    if not path.exists():
        raise CheckpointError(f"the demo's trained discriminator is missing ({path}): {how}")
    ckpt = read_checkpoint(path)
    disc = load_discriminator(path, ckpt)
    if disc is None:
        raise CheckpointError(f"{path} holds no discriminator: {how}")
    disc = disc.eval()
    return (disc, dict(ckpt.get("meta") or {})) if with_meta else disc


__all__ += ["DEMO_DISCRIMINATOR", "demo_discriminator_path", "load_demo_discriminator"]
