"""Fetch and unpack the real data sets (on Colab or any machine with disk and network).

The paper trains on Places2 (today: Places365-Standard, 1.8 million scene photos) and
fine-tunes/evaluates on CelebA (faces) and the CMP Facade database (building fronts).  This
module knows where each one lives and how its archive is laid out, and turns it into a plain
folder of images that :class:`glcic_lib.data.ImageFolder` reads::

    python -m glcic_lib datasets list
    python -m glcic_lib datasets fetch places365-val --dest /content/data
    python -m glcic_lib datasets fetch celeba --dest /content/data --archive img_align_celeba.zip
    python -m glcic_lib train --data /content/data/places365-val --out runs/colab --preset colab

What ``fetch`` does, step by step (each step is skipped when its result is already there):

1. **download** the archive into ``DEST/downloads/`` (a ``.part`` file renamed when complete,
   so an interrupted download never looks finished), unless ``--archive`` gives a local file;
2. **unpack** the image files whose names match the data set's pattern into ``DEST/NAME/``,
   refusing any member whose path would escape that folder (a malicious archive cannot
   overwrite your files) and skipping everything else (labels, XML, read-me files);
3. write ``DEST/NAME/.glcic_dataset.json`` with the source, licence and image count, which
   marks the folder as complete: running ``fetch`` again does nothing.

Licences differ and are *not* ours to grant: Places365 and CelebA are for non-commercial
research and education; read each data set's terms (``python -m glcic_lib datasets list``)
before you use it.  Nothing here runs in the tests against the network: they use a small
local stand-in archive and ``file://`` URLs.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .data import EXTENSIONS

MARKER = ".glcic_dataset.json"


@dataclass(frozen=True)
class DatasetInfo:
    """Where a data set comes from and which files of its archive(s) are training images."""

    name: str
    description: str
    urls: tuple[str, ...]            # empty: the archive must be downloaded by hand (--archive)
    licence: str
    homepage: str
    include: tuple[str, ...] = ("*",)   # glob patterns on member file names (lower case)
    manual: str = ""                    # how to get the archive when there is no direct URL
    size: str = ""
    notes: str = field(default="")


DATASETS: dict[str, DatasetInfo] = {
    "places365-val": DatasetInfo(
        "places365-val",
        "Places365 validation images, 256x256 (36,500 scenes): a quick first data set for Colab",
        ("http://data.csail.mit.edu/places/places365/val_256.tar",),
        "Places terms of use: non-commercial research and educational purposes only",
        "http://places2.csail.mit.edu/download.html", size="about 0.5 GB"),
    "places365": DatasetInfo(
        "places365",
        "Places365-Standard training images, 256x256 (1.8 million scenes): the paper's Places2 data",
        ("http://data.csail.mit.edu/places/places365/train_256_places365standard.tar",),
        "Places terms of use: non-commercial research and educational purposes only",
        "http://places2.csail.mit.edu/download.html", size="about 24 GB (needs that much disk twice)"),
    "celeba": DatasetInfo(
        "celeba",
        "CelebA aligned and cropped faces, 178x218 (202,599 images): the paper's face model",
        (),
        "CelebA agreement: non-commercial research purposes only",
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html", include=("*.jpg",),
        manual="download img_align_celeba.zip from the CelebA page (Google Drive link 'Align&Cropped "
               "Images') and pass it with --archive", size="about 1.4 GB"),
    "cmp-facade": DatasetInfo(
        "cmp-facade",
        "CMP Facade database, base + extended (606 rectified building fronts): the paper's facade model",
        ("https://cmp.felk.cvut.cz/~tylecr1/facade/CMP_facade_DB_base.zip",
         "https://cmp.felk.cvut.cz/~tylecr1/facade/CMP_facade_DB_extended.zip"),
        "see the database's page; cite Tylecek and Sara, GCPR 2013",
        "https://cmp.felk.cvut.cz/~tylecr1/facade/",
        include=("*.jpg",),   # the .png files next to the photos are label maps, not images to learn
        size="about 0.4 GB"),
}


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


def _is_wanted(member: str, include: tuple[str, ...]) -> bool:
    base = PurePosixPath(member).name.lower()
    if not base or base.startswith(".") or "__macosx" in member.lower():
        return False
    return base.endswith(EXTENSIONS) and any(fnmatch.fnmatch(base, pat) for pat in include)


def _safe_target(root: Path, member: str) -> Path:
    """``root/member``, or a ValueError when the member's path would leave ``root`` (which the
    caller has resolved: absolute, no links)."""
    rel = PurePosixPath(member.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"refusing archive member {member!r}: its path leaves the target folder")
    target = (root / Path(*rel.parts)).resolve()
    if root not in target.parents:
        raise ValueError(f"refusing archive member {member!r}: its path leaves the target folder")
    return target


def _file_members(archive: Path):
    """``(name, open)`` for each regular file of a zip or tar archive, in archive order (a tar is
    streamed: no need to list a 24 GB tar first).  Links, devices and folders are left out."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, lambda info=info: zf.open(info)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for info in tf:
                if info.isfile():
                    yield info.name, lambda info=info: tf.extractfile(info)
    else:
        raise ValueError(f"{archive} is neither a zip nor a tar archive")


def unpack(archive: str | Path, dest: str | Path, include: tuple[str, ...] = ("*",), progress: bool = False) -> int:
    """Extract the image files of a ``.tar``/``.tar.gz``/``.tgz``/``.zip`` archive into ``dest``
    (keeping their folders); return how many were written.  Other members are skipped; a
    member whose path escapes ``dest`` (absolute, or with ``..``) is a ValueError; links and
    devices are never extracted."""
    from tqdm.auto import tqdm

    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    count = 0
    with tqdm(desc=f"unpacking {archive.name}", unit=" images", disable=not progress) as bar:
        for name, open_member in _file_members(archive):
            if not _is_wanted(name, include):
                continue
            target = _safe_target(root, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open_member() as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            count += 1
            bar.update(1)
    return count


def download(url: str, target: str | Path, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` (skipped when ``target`` exists); written as ``.part`` and
    renamed only when complete.  ``file://`` URLs work too (that is how the tests run)."""
    target = Path(target)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    bar = None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, unit="B", unit_scale=True, desc=target.name)
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        os.replace(part, target)
    except OSError as e:
        raise OSError(f"could not download {url}: {e}; download it by hand and pass it with --archive") from e
    finally:
        if bar is not None:
            bar.close()
        if part.exists():
            part.unlink()
    return target


def fetch(name: str, dest: str | Path, archive: str | Path | None = None, urls: tuple[str, ...] | None = None,
          progress: bool = True, keep_archive: bool = True) -> Path:
    """Make ``dest/name`` a folder of the data set's images (see the module docstring); return it.

    ``archive``: a local archive instead of downloading (required for CelebA).  ``urls``
    replaces the data set's download addresses (mirrors; the tests use ``file://``).
    ``keep_archive=False`` deletes downloaded archives after unpacking, to save disk.
    """
    info = dataset_info(name)
    dest = Path(dest)
    folder = dest / name
    marker = folder / MARKER
    if marker.exists():
        return folder
    if archive is not None:
        archives = [Path(archive)]
        downloaded = []
    else:
        urls = tuple(urls) if urls else info.urls
        if not urls:
            raise ValueError(f"{name} cannot be downloaded automatically: {info.manual}")
        archives = [download(u, dest / "downloads" / PurePosixPath(u.split("?")[0]).name, progress) for u in urls]
        downloaded = archives
    count = sum(unpack(a, folder, info.include, progress) for a in archives)
    if count == 0:
        raise ValueError(f"no images matching {info.include} found in {', '.join(str(a) for a in archives)}: "
                         f"is this the {name} archive?")
    marker.write_text(json.dumps({"name": name, "images": count, "sources": [str(a) for a in archives],
                                  "licence": info.licence, "homepage": info.homepage}, indent=1))
    if not keep_archive:
        for a in downloaded:
            a.unlink(missing_ok=True)
    return folder


def describe() -> str:
    """One paragraph per data set: what, size, licence, how to get it."""
    lines = []
    for info in DATASETS.values():
        how = ", ".join(info.urls) if info.urls else f"manual: {info.manual}"
        lines.append(f"{info.name}: {info.description}\n  size: {info.size}\n  licence: {info.licence}\n"
                     f"  homepage: {info.homepage}\n  source: {how}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- command line

def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "fetch"), help="list the data sets, or fetch one")
    p.add_argument("name", nargs="?", choices=sorted(DATASETS), help="data set to fetch")
    p.add_argument("--dest", default=None, help="folder for downloads and images (default: $GLCIC_DATA or data/)")
    p.add_argument("--archive", default=None, help="use this local archive instead of downloading")
    p.add_argument("--url", action="append", default=None, help="download from this address instead (repeatable)")
    p.add_argument("--delete-archive", action="store_true", help="delete downloaded archives after unpacking")
    p.add_argument("--no-progress", action="store_true")


def main(args: argparse.Namespace) -> int:
    if args.action == "list":
        print(describe())
        return 0
    if not args.name:
        raise ValueError(f"fetch needs a data set name: one of {sorted(DATASETS)}")
    from .config import data_dir

    dest = Path(args.dest) if args.dest else data_dir()
    folder = fetch(args.name, dest, archive=args.archive, urls=tuple(args.url) if args.url else None,
                   progress=not args.no_progress, keep_archive=not args.delete_archive)
    entry = json.loads((folder / MARKER).read_text())
    print(f"{args.name}: {entry['images']} images in {folder}\nlicence: {entry['licence']}\n"
          f"train with: python -m glcic_lib train --data {folder}")
    return 0
