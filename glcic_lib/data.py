"""Training data: any folder of images, the paper's augmentation, a resumable sample stream,
the data set's mean pixel, and the bundled held-out set.

The paper's augmentation (Section 3.4): the smaller side of each image is resized to a
random length in ``[256, 384]``, then a random ``256x256`` crop is taken.  For smaller crops
(laptop and CI runs) both numbers scale with the crop: ``[crop, 1.5 * crop]``.

Loading happens in :class:`torch.utils.data.DataLoader` worker processes; items are ``uint8``
tensors (four times fewer bytes to move than float) that the trainer converts on the device.

Reproducibility: the trainer does not use PyTorch's shuffling.  :class:`StreamSampler`
defines one endless, seeded stream of ``(index, seed)`` keys: stream position ``p`` falls in
epoch ``p // len(data)`` (a seeded permutation per epoch) and carries its own augmentation
seed.  The batch of iteration ``t`` is therefore a pure function of ``(seed, t)``, whatever the
number of workers, and a resumed run reads exactly the images the interrupted one would have.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .config import bundled_data_dir, checkpoint_dir
from .masks import PAPER_CROP

#: File types the data set reads (case-insensitive).
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
#: The paper's resize range for 256x256 crops.
PAPER_RESIZE_RANGE = (256, 384)
#: File name of the mean-pixel cache written into a data folder (or the cache folder).
MEAN_CACHE = ".glcic_mean_pixel.json"


def scaled_resize_range(crop_size: int) -> tuple[int, int]:
    """The paper's [256, 384] scaled to ``crop_size`` (64 -> [64, 96])."""
    return (int(round(PAPER_RESIZE_RANGE[0] * crop_size / PAPER_CROP)),
            int(round(PAPER_RESIZE_RANGE[1] * crop_size / PAPER_CROP)))


def list_images(root: str | Path) -> tuple[list[Path], list[Path]]:
    """All image files under ``root`` (recursive, sorted) and the other files that were ignored.

    Hidden files and folders (names starting with ".") are skipped silently (caches, .git).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    images, others = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            (images if name.lower().endswith(EXTENSIONS) else others).append(Path(dirpath) / name)
    return images, others


def decode_image(path: Path) -> np.ndarray | None:
    """uint8 RGB (H, W, 3), or None when the file cannot be decoded."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None  # 3-channel BGR, 8-bit
    if img is None or img.ndim != 3 or min(img.shape[:2]) < 1:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def resize_smaller_side(image: np.ndarray, length: int) -> np.ndarray:
    """Resize so that the smaller side is ``length`` (area filter down, bilinear up)."""
    h, w = image.shape[:2]
    scale = length / min(h, w)
    size = (max(length, int(round(w * scale))), max(length, int(round(h * scale))))  # cv2: (W, H)
    if size == (w, h):
        return image
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interp)


def augment(image: np.ndarray, crop_size: int, resize_range: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The paper's augmentation: smaller side -> random length in ``resize_range``, random crop."""
    length = int(rng.integers(resize_range[0], resize_range[1] + 1))
    image = resize_smaller_side(image, length)
    h, w = image.shape[:2]
    top = int(rng.integers(0, h - crop_size + 1))
    left = int(rng.integers(0, w - crop_size + 1))
    return image[top:top + crop_size, left:left + crop_size]


def center_crop(image: np.ndarray, crop_size: int) -> np.ndarray:
    """Smaller side resized to ``crop_size``, then the central square (no randomness)."""
    image = resize_smaller_side(image, crop_size)
    h, w = image.shape[:2]
    top, left = (h - crop_size) // 2, (w - crop_size) // 2
    return image[top:top + crop_size, left:left + crop_size]


class ImageFolder(Dataset):
    """Every jpg/png/webp under ``root`` (recursive), augmented as in the paper.

    ``dataset[key]`` returns ``{"image": uint8 tensor (3, S, S), "index": int, "skipped": int}``.
    ``key`` is an index (augmentation from ``seed`` and the index when ``seed`` is given, else
    fresh randomness) or an ``(index, seed)`` pair from :class:`StreamSampler`.
    ``augment=False`` gives deterministic centre crops (validation images).

    Files with other extensions are ignored when the folder is listed (``ignored`` counts
    them).  A file that cannot be decoded is skipped with a warning, counted in ``bad_files``
    (of this process) and in the item's ``"skipped"`` field (so a trainer can sum it across
    loader workers), and the next file is used instead: a bad file never stops an epoch.
    """

    def __init__(self, root: str | Path, crop_size: int = PAPER_CROP, resize_range: tuple[int, int] | None = None,
                 augment: bool = True, seed: int | None = None):
        self.root = Path(root)
        self.files, others = list_images(self.root)
        self.ignored = len(others)
        if not self.files:
            raise ValueError(f"no images ({', '.join(EXTENSIONS)}) found under {self.root}"
                             + (f" ({self.ignored} other files ignored)" if self.ignored else ""))
        self.crop_size = int(crop_size)
        self.resize_range = tuple(resize_range) if resize_range else scaled_resize_range(self.crop_size)
        if not self.crop_size <= self.resize_range[0] <= self.resize_range[1]:
            raise ValueError(f"resize_range {self.resize_range} must satisfy crop_size ({self.crop_size}) "
                             f"<= low <= high, so that the crop fits")
        self.augment = augment
        self.seed = seed
        self.bad_files: set[Path] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return (f"ImageFolder({str(self.root)!r}, {len(self)} images, crop {self.crop_size}, "
                f"resize {self.resize_range}, ignored {self.ignored}, bad {len(self.bad_files)})")

    def _rng(self, key) -> tuple[int, np.random.Generator]:
        if isinstance(key, (tuple, list)):
            index, seed = key
            return int(index), np.random.default_rng(seed)
        index = int(key)
        return index, np.random.default_rng(None if self.seed is None else [self.seed, index])

    def __getitem__(self, key) -> dict:
        index, rng = self._rng(key)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index %= len(self)
        skipped = 0
        for attempt in range(len(self)):
            path = self.files[(index + attempt) % len(self)]
            image = decode_image(path) if path not in self.bad_files else None
            if image is not None:
                break
            if path not in self.bad_files:
                self.bad_files.add(path)
                warnings.warn(f"skipping unreadable image {path}", RuntimeWarning, stacklevel=2)
            skipped += 1
        else:
            raise RuntimeError(f"none of the {len(self)} files under {self.root} could be read as an image")
        if self.augment:
            image = augment(image, self.crop_size, self.resize_range, rng)
        else:
            image = center_crop(image, self.crop_size)
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()
        return {"image": tensor, "index": (index + attempt) % len(self), "skipped": skipped}

    def verify(self) -> int:
        """Decode every file once; remember and return the number of unreadable ones."""
        for path in self.files:
            if path not in self.bad_files and decode_image(path) is None:
                self.bad_files.add(path)
        return len(self.bad_files)


def to_float(batch_images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float32 in [0, 1]."""
    return batch_images.float().div_(255.0)


class StreamSampler(Sampler):
    """An endless, seeded stream of ``(index, augmentation seed)`` keys, resumable anywhere.

    Global stream position ``p`` is in epoch ``p // n``, whose order is a permutation of
    ``range(n)`` seeded by ``(seed, epoch)``; the item's augmentation seed is ``(seed, p)``.
    This sampler yields positions ``start + rank, start + rank + world_size, ...``: with
    several processes (DistributedDataParallel) every rank reads a disjoint share of the same
    stream.  To resume after ``k`` global samples, build it with ``start=k``.
    """

    def __init__(self, n: int, seed: int = 0, start: int = 0, rank: int = 0, world_size: int = 1):
        if n <= 0:
            raise ValueError("the stream needs at least one item")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} must be in [0, world_size={world_size})")
        self.n, self.seed, self.start, self.rank, self.world_size = n, int(seed), int(start), rank, world_size
        self._epoch, self._perm = -1, None

    def key(self, position: int) -> tuple[int, tuple[int, int]]:
        epoch = position // self.n
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return int(self._perm[position % self.n]), (self.seed, position)

    def __iter__(self) -> Iterator:
        position = self.start + self.rank
        while True:
            yield self.key(position)
            position += self.world_size


# ----------------------------------------------------------------------------- mean pixel

def _signature(files: list[Path], root: Path) -> str:
    h = hashlib.sha1()
    for f in files:
        h.update(str(f.relative_to(root)).encode("utf-8", "surrogateescape") + b"\0")
    return f"{len(files)}:{h.hexdigest()}"


def _cache_paths(root: Path) -> list[Path]:
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return [root / MEAN_CACHE, checkpoint_dir() / "cache" / f"mean_pixel_{key}.json"]


_MEMORY_CACHE: dict[tuple[str, str], tuple[float, float, float]] = {}


def mean_pixel(root: str | Path, max_images: int = 2000, seed: int = 0,
               refresh: bool = False, files: list[Path] | None = None) -> tuple[float, float, float]:
    """The data set's mean colour (RGB in [0, 1]): what the completion network puts in the holes.

    Computed once from up to ``max_images`` images (a seeded sample for larger sets; each image
    downscaled so its smaller side is 64 px before averaging) and cached: in memory, and in a
    small JSON file in the folder (``.glcic_mean_pixel.json``) or, when the folder is not
    writable, under ``checkpoint_dir()/cache``.  The cache is keyed on the list of file names,
    so adding or removing images recomputes it; start-up never re-reads every image.
    ``files``: the folder's image list if the caller has it already (``ImageFolder.files``),
    so that the folder is not listed a second time.
    """
    root = Path(root)
    files = list_images(root)[0] if files is None else list(files)
    if not files:
        raise ValueError(f"no images found under {root}: cannot compute a mean pixel")
    sig = _signature(files, root)
    mem_key = (str(root.resolve()), f"{sig}:{max_images}:{seed}")
    if not refresh and mem_key in _MEMORY_CACHE:
        return _MEMORY_CACHE[mem_key]
    if not refresh:
        for cache in _cache_paths(root):
            try:
                entry = json.loads(cache.read_text())
                if entry.get("signature") == sig and entry.get("max_images") == max_images and entry.get("seed") == seed:
                    value = tuple(float(v) for v in entry["mean"])
                    _MEMORY_CACHE[mem_key] = value
                    return value
            except (OSError, ValueError, KeyError, TypeError):
                continue
    chosen = files
    if len(files) > max_images:
        idx = np.sort(np.random.default_rng(seed).choice(len(files), size=max_images, replace=False))
        chosen = [files[i] for i in idx]
    total, count = np.zeros(3), 0
    for path in chosen:
        img = decode_image(path)
        if img is None:
            continue
        small = resize_smaller_side(img, min(64, min(img.shape[:2])))
        total += small.reshape(-1, 3).mean(axis=0) / 255.0
        count += 1
    if count == 0:
        raise ValueError(f"none of the images under {root} could be read: cannot compute a mean pixel")
    value = tuple(float(v) for v in total / count)
    entry = {"signature": sig, "max_images": max_images, "seed": seed, "images_used": count, "mean": list(value)}
    for cache in _cache_paths(root):
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(entry, indent=1))
            os.replace(tmp, cache)
            break
        except OSError:
            continue
    _MEMORY_CACHE[mem_key] = value
    return value


# ----------------------------------------------------------------------------- bundled data

def bundled_train_dir() -> Path:
    """The bundled training images (``data/train``)."""
    return bundled_data_dir() / "train"


def default_train_dir() -> Path:
    """``$GLCIC_DATA`` when set, else the bundled training images."""
    from .config import data_dir

    d = data_dir()
    return bundled_train_dir() if d.resolve() == bundled_data_dir().resolve() else d


@dataclass
class HeldoutItem:
    """One evaluation image with its fixed holes (``mask`` True = hole)."""

    name: str
    image: np.ndarray  # uint8 (H, W, 3)
    mask: np.ndarray   # bool (H, W)


#: The bundled held-out sets, by name (folders of ``data/``).  ``photos``: 20 whole photographs
#: of scenes never used for training (the generalisation test, the default); ``tiles``: 8 tiles
#: of the scikit-image pictures whose other tiles are training images.
HELDOUT_SETS = {"photos": "heldout_photos", "tiles": "heldout"}
DEFAULT_HELDOUT = "photos"


def _heldout_root(root: str | Path | None) -> Path:
    """The folder of a held-out set: a bundled set's name (:data:`HELDOUT_SETS`, None for the
    default) or a path."""
    if root is None or (isinstance(root, str) and root in HELDOUT_SETS):
        return bundled_data_dir() / HELDOUT_SETS[root or DEFAULT_HELDOUT]
    return Path(root)


def load_heldout(root: str | Path | None = None) -> list[HeldoutItem]:
    """The held-out evaluation set: ``root/images/NAME.png`` with ``root/masks/NAME.png``.

    ``root``: a folder in that layout, or the name of a bundled set (:data:`HELDOUT_SETS`):
    ``"photos"`` (the default: ``data/heldout_photos``, 20 whole photographs at 256x256 that no
    training image comes from, 12 with 1-3 rectangles of 48-96 px, 4 with free-form strokes, 4
    with a hole at the border) or ``"tiles"`` (``data/heldout``, 8 tiles of the scikit-image
    pictures, with rectangles, strokes or a border hole each).  See ``data/README.md``.
    """
    from .imageio import read_image, read_mask

    root = _heldout_root(root)
    img_dir, mask_dir = root / "images", root / "masks"
    if not img_dir.is_dir() or not mask_dir.is_dir():
        raise FileNotFoundError(f"a held-out set needs {img_dir} and {mask_dir}")
    items = []
    for path in list_images(img_dir)[0]:
        mpath = mask_dir / (path.stem + ".png")
        if not mpath.exists():
            raise FileNotFoundError(f"held-out image {path.name} has no mask {mpath}")
        image, mask = read_image(path), read_mask(mpath)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"held-out mask {mpath.name} is {mask.shape} but its image is {image.shape[:2]}")
        if not mask.any():
            raise ValueError(f"held-out mask {mpath.name} has no holes")
        items.append(HeldoutItem(path.stem, image, mask))
    if not items:
        raise ValueError(f"no held-out images in {img_dir}")
    return items


def heldout_kinds(root: str | Path | None = None) -> dict[str, str]:
    """Image name -> kind of hole (``rect``, ``free`` or ``border``) of a held-out set, read from
    its ``kinds.tsv`` (``root`` as in :func:`load_heldout`); ``{}`` when the set has none."""
    path = _heldout_root(root) / "kinds.tsv"
    if not path.is_file():
        return {}
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line.strip()]
    bad = [r for r in rows if len(r) != 2]
    if bad:
        raise ValueError(f"{path}: every line must be 'image<TAB>kind', got {bad[0]!r}")
    return {name: kind for name, kind in rows}


def loader_throughput(root: str | Path | None = None, crop_size: int = PAPER_CROP, batch_size: int = 16,
                      num_workers: int = 2, batches: int = 20, seed: int = 0) -> dict:
    """Images per second the data pipeline delivers (reading, augmentation, collation).

    Runs the same :class:`ImageFolder` + :class:`StreamSampler` + DataLoader the trainer uses,
    skips the first batch (worker start-up) and times the next ``batches``.
    """
    from torch.utils.data import DataLoader

    data = ImageFolder(root or default_train_dir(), crop_size=crop_size)
    loader = DataLoader(data, batch_size=batch_size, sampler=StreamSampler(len(data), seed),
                        num_workers=num_workers, persistent_workers=False)
    it = iter(loader)
    next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t0
    del it
    return {"images_per_s": batches * batch_size / dt, "batch_size": batch_size, "batches": batches,
            "num_workers": num_workers, "crop_size": crop_size, "seconds": dt}
