"""Rebuild the bundled photographs (data/train/photos, data/heldout_photos) from Debian's
``gcompris-qt-data`` package (version 3.1-2), keeping only licence-clean files.

    apt-get update && apt-get download gcompris-qt-data      # 44 MB, no install needed
    python data/build_photos.py gcompris-qt-data_3.1-2_all.deb
    python data/build_photos.py --download                   # does the apt-get download itself

The photographs live inside Qt resource archives (``usr/share/gcompris-qt/rcc/*.rcc``) as WebP
files.  ``data/photos/sources.tsv`` lists every photograph of the package that we know of,
with the licence its package README states, the author and the original source; this script
keeps the files whose licence is public domain, CC0 or CC-BY (attribution only: no
share-alike, no copyleft, no non-commercial), resizes them to at most 512 px on the long side
(never enlarging), and writes them as JPEG (quality 87) with an attribution table
(``data/photos/ATTRIBUTION.tsv``: file, licence, author, source), which CC-BY requires.

Split: ``HELDOUT`` names whole photographs of varied scenes that are never trained on; they
become 256x256 centre crops in ``data/heldout_photos/images`` with fixed, seeded holes in
``data/heldout_photos/masks`` (rectangles of 48-96 px, free-form strokes, border holes).  All
other photographs go to ``data/train/photos`` (the trainer reads ``data/train`` recursively,
so the scikit-image tiles next to them stay in the training set).  Deterministic.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from glcic_lib import masks  # noqa: E402
from glcic_lib.imageio import write_image  # noqa: E402

SOURCES = HERE / "photos" / "sources.tsv"
TRAIN_OUT = HERE / "train" / "photos"
HELDOUT_OUT = HERE / "heldout_photos"
ATTRIBUTION = HERE / "photos" / "ATTRIBUTION.tsv"
LONG_SIDE = 512
JPEG_QUALITY = 87
HELDOUT_SIZE = 256
#: Licences that allow bundling without share-alike or copyleft terms.
ALLOWED = ("public-domain", "CC0-1.0", "CC-BY-2.0", "CC-BY-3.0", "CC-BY-4.0")

#: Held-out photographs (bundled file stem -> hole kind): whole pictures, never trained on.
HELDOUT = {
    "explore_monuments_wonders_colosseum": "rect",
    "explore_world_animals_animals_koala": "rect",
    "explore_farm_animals_animals_horse": "rect",
    "clickgame_sea3": "rect",
    "explore_monuments_wonders_machuPicchu": "rect",
    "explore_world_music_music_japan": "rect",
    "erase_kingfisher": "rect",
    "explore_monuments_france_montStMichel": "rect",
    "categorization_tools_hammer1": "rect",
    "categorization_renewable_windmill8": "rect",
    "explore_monuments_india_hawaMahal": "rect",
    "categorization_fishes_fish6": "rect",
    "explore_monuments_germany_neuschwansteinCastle": "free_form",
    "explore_world_animals_animals_panda": "free_form",
    "explore_world_music_music_italy": "free_form",
    "categorization_others_cup": "free_form",
    "clickgame_sea5": "border",
    "explore_farm_animals_animals_sheep": "border",
    "explore_monuments_egypt_greatPyramidOfGiza": "border",
    "erase_red_panda": "border",
}


# ----------------------------------------------------------------------------- Qt resources

class RccArchive:
    """Read files out of a Qt binary resource file (``.rcc``; format versions 1-3).

    Layout: a 20-byte (v1, v2) or 24-byte (v3) header ``b"qres"``, version, and the offsets of
    the tree, data and name tables.  Tree nodes (14 bytes in v1, 22 with a modification time
    from v2 on) hold a name offset and flags (2 = directory, 1 = zlib, 4 = zstd); a directory
    node continues with its child count and first child index, a file node with country,
    language and its data offset.  A data entry is a big-endian length and the bytes; zlib
    data starts with Qt's 4-byte uncompressed length.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.blob = self.path.read_bytes()
        if self.blob[:4] != b"qres":
            raise ValueError(f"{self.path} is not a Qt resource file (no 'qres' magic)")
        self.version, self.tree, self.data, self.names = struct.unpack_from(">4I", self.blob, 4)
        self.node_size = 14 if self.version == 1 else 22

    def _name(self, offset: int) -> str:
        length, = struct.unpack_from(">H", self.blob, self.names + offset)
        start = self.names + offset + 6          # length (2), hash (4), UTF-16BE text
        return self.blob[start:start + 2 * length].decode("utf-16-be")

    def _node(self, index: int) -> tuple[str, int, int, int]:
        at = self.tree + index * self.node_size
        name_off, flags = struct.unpack_from(">IH", self.blob, at)
        a, b = struct.unpack_from(">II", self.blob, at + 6)
        return (self._name(name_off) if index else ""), flags, a, b

    def read(self, inner: str) -> bytes:
        """The bytes of the file at ``inner`` (e.g. ``/gcompris/src/.../tiger.webp``)."""
        index = 0
        for part in [p for p in inner.split("/") if p]:
            _, flags, count, first = self._node(index)
            if not flags & 2:
                raise FileNotFoundError(f"{inner}: {part!r} is below a file in {self.path}")
            for child in range(first, first + count):
                if self._node(child)[0] == part:
                    index = child
                    break
            else:
                raise FileNotFoundError(f"{inner} not found in {self.path}")
        _, flags, _, data_off = self._node(index)
        if flags & 2:
            raise IsADirectoryError(f"{inner} is a folder in {self.path}")
        at = self.data + data_off
        size, = struct.unpack_from(">I", self.blob, at)
        raw = self.blob[at + 4:at + 4 + size]
        if flags & 1:
            return zlib.decompress(raw[4:])
        if flags & 4:
            import zstandard  # only some Qt builds use zstd

            return zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 30)
        return raw


# ----------------------------------------------------------------------------- the build

def bundled_name(inner: str) -> str:
    """``/gcompris/src/activities/erase/resource/image3.webp`` -> ``erase_image3``."""
    rest = inner.split("/src/activities/", 1)[1]
    rest = rest.replace("/resource", "").replace("/images", "")
    return Path(rest).with_suffix("").as_posix().replace("/", "_")


def load_sources() -> list[dict]:
    with open(SOURCES, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def heldout_crop(image: np.ndarray, size: int = HELDOUT_SIZE) -> np.ndarray:
    h, w = image.shape[:2]
    scale = size / min(h, w)
    image = cv2.resize(image, (max(size, round(w * scale)), max(size, round(h * scale))), interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return image[y:y + size, x:x + size]


def heldout_mask(kind: str, seed: int, size: int = HELDOUT_SIZE) -> np.ndarray:
    """Fixed holes: 1-3 rectangles of 48-96 px, free-form strokes, or a border hole."""
    rng = np.random.default_rng([2026, seed])
    if kind == "rect":
        frac = (48 / size, 96 / size)
        return masks.rect_holes(size, size, count=int(rng.integers(1, 4)), size_range=frac, rng=rng)
    if kind == "free_form":
        return masks.free_form_mask(size, size, rng=rng)
    return masks.border_hole(size, size, rng=rng)


def write_kinds(path: Path = HELDOUT_OUT / "kinds.tsv") -> Path:
    """``kinds.tsv``: each held-out photograph's kind of hole (``rect``: 1-3 rectangles of 48-96
    px, ``free``: free-form strokes, ``border``: a hole at the image border), for tables that
    report the kinds apart (data/checkpoints/make_demo.py, notebook 06)."""
    short = {"rect": "rect", "free_form": "free", "border": "border"}
    path.write_text("image\tkind\n" + "".join(f"{n}\t{short[k]}\n" for n, k in HELDOUT.items()))
    return path


def build(deb: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        sources = load_sources()
        kept = [r for r in sources if r["licence"] in ALLOWED]
        print(f"{len(sources)} photographs listed, {len(kept)} with an allowed licence "
              f"({len(sources) - len(kept)} share-alike or copyleft left out)")
        for folder in (TRAIN_OUT, HELDOUT_OUT):
            shutil.rmtree(folder, ignore_errors=True)
        TRAIN_OUT.mkdir(parents=True)
        archives: dict[str, RccArchive] = {}
        rows, seen = [], set()
        for row in kept:
            rcc, inner = row["path_in_package"].split(":", 1)
            archive = archives.setdefault(rcc, RccArchive(Path(tmp) / rcc))
            image = cv2.imdecode(np.frombuffer(archive.read(inner), np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"cannot decode {row['path_in_package']}")
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            name = bundled_name(inner)
            if name in seen:
                raise ValueError(f"two photographs map to {name}")
            seen.add(name)
            if name in HELDOUT:
                index = list(HELDOUT).index(name)
                write_image(HELDOUT_OUT / "images" / f"{name}.png", heldout_crop(image))
                write_image(HELDOUT_OUT / "masks" / f"{name}.png", heldout_mask(HELDOUT[name], index))
                where = f"heldout_photos/images/{name}.png"
            else:
                small = cv2.cvtColor(resize_long_side(image, LONG_SIDE), cv2.COLOR_RGB2BGR)
                ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise ValueError(f"cannot encode {name}")
                buf.tofile(str(TRAIN_OUT / f"{name}.jpg"))
                where = f"train/photos/{name}.jpg"
            rows.append([where, row["licence"], row["author"], row["source"], row["category"],
                         f"gcompris-qt-data 3.1-2 {row['path_in_package']}"])
        missing = set(HELDOUT) - seen
        if missing:
            raise ValueError(f"held-out photographs not found: {sorted(missing)}")
    write_kinds()
    with open(ATTRIBUTION, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["file", "licence", "author", "source", "category", "from"])
        w.writerows(sorted(rows))
    n_train = sum(1 for r in rows if r[0].startswith("train/"))
    print(f"wrote {n_train} training photographs to {TRAIN_OUT}, {len(rows) - n_train} held-out to "
          f"{HELDOUT_OUT}, attribution in {ATTRIBUTION}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("deb", nargs="?", help="gcompris-qt-data_3.1-2_all.deb")
    ap.add_argument("--download", action="store_true", help="apt-get download the package first")
    args = ap.parse_args()
    if args.download:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "gcompris-qt-data=3.1-2"], cwd=tmp, check=True)
            build(next(Path(tmp).glob("gcompris-qt-data_*.deb")))
        return 0
    if not args.deb:
        ap.error("give the .deb file or --download")
    build(Path(args.deb))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
