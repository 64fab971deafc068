"""Build a larger set of natural photographs (and a separate held-out set) from Debian packages.

    python data/build_extra_photos.py                      # apt-get download into a temp dir
    python data/build_extra_photos.py --debs /some/dir     # use the .deb files there (the
                                                           # missing ones are downloaded into it)

Sources (Debian 12 "bookworm", pinned versions, see ``PACKAGES``):

* training: the landscape/city photographs of ``endless-sky-data`` (``images/land/``: 720x360
  JPEGs, licence per file from the package's ``debian/copyright``: public domain, CC-BY-4.0,
  CC-BY-SA-3.0/4.0);
* held-out: the photographic wallpapers of ``enlightenment-data`` (stored as JPEG streams
  inside Edje ``.edj`` files), ``lxqt-themes`` and the photo templates of ``tuxpaint-data``.
  No photograph of these three packages is ever used for training, and no training photograph
  comes from them.

Each selected photograph is decoded with OpenCV; training photos are resized (INTER_AREA) so
the long side is at most ``--long-side`` px (768; never enlarged), photos whose short side is
then below ``--min-short`` px are skipped, and the rest are written as JPEG (quality 90) to
``--out``.  Held-out photos have their short side resized to 256 and are centre-cropped to
256x256 PNG in ``--heldout-out``.  Each output folder gets an ``ATTRIBUTION.tsv`` (file,
licence, author, package, version, path in the package, bundle_ok, note).  ``bundle_ok`` is
"yes" only for public domain / CC0 / CC-BY (no share-alike) / BSD-style permissive licences,
and "no" for photos the copyright file calls public domain only because they came from
morgueFile or Unsplash (see ``DOUBTFUL_SOURCES``).

Files that are not photographs (drawings, renders, logos) are excluded by the explicit lists
below and counted as "non-photo"; files that do not decode are counted as "corrupt".  The
script is deterministic: same packages in, same files out.

The packages lomiri-wallpapers*, mate-backgrounds, palapeli-data and
plasma-workspace-wallpapers are reserved for an independent evaluation and are never used;
``gcompris-qt-data`` (the bundled training photos) is not used here either.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent

#: Never downloaded, opened or used (reserved for someone else's evaluation).
RESERVED = (
    "lomiri-wallpapers", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04",
    "mate-backgrounds", "palapeli-data", "plasma-workspace-wallpapers",
)
#: Licences that may be bundled without share-alike or copyleft terms.
PERMISSIVE = ("public-domain", "cc0", "cc0-1.0", "cc-by-2.0", "cc-by-3.0", "cc-by-4.0",
              "bsd-2-clause", "bsd-3-clause", "mit", "expat")


@dataclass
class Package:
    name: str
    version: str
    split: str                      # "train" or "heldout"
    prefix: str                     # folder in the package that holds the photographs
    source_prefix: str              # the same folder in the source tree (for debian/copyright)
    pattern: str                    # regex on the file name (inside ``prefix``)
    kind: str = "image"             # "image", or "edj": JPEG streams inside an Edje file
    photos: tuple[str, ...] = ()    # if given: only these file names are photographs
    not_photos: tuple[str, ...] = ()  # file names that are not photographs
    authors: dict[str, str] = field(default_factory=dict)  # per-file author overrides
    licence_note: str = ""          # extra licence remark for every file


PACKAGES = (
    Package(
        "endless-sky-data", "0.9.8-1.2", "train",
        "usr/share/games/endless-sky/images/land/", "images/land/", r".*\.jpg$",
        # false-colour planetary views and a light-streak abstract: not natural scenes
        not_photos=("nasa8.jpg", "nasa9.jpg", "space6.jpg"),
    ),
    Package(
        "enlightenment-data", "0.25.4-2", "heldout",
        "usr/share/enlightenment/data/backgrounds/", "data/backgrounds/", r".*\.edj$",
        kind="edj",
        authors={"*": "Carsten Haitzler and various contributors (debian/copyright, Files: *)"},
        photos=tuple(f"{n}.edj" for n in (
            "Bamboo", "Foggy-Trees", "God-Rays", "Green-Maple", "Lichen-Branches", "Mountain",
            "Peaks", "Red-Maple", "Sea-of-Lanterns", "Snow-Trees", "Spruce-Needles",
            "Sunset-Clouds", "White-Flower", "Yellow-Flower")),
        # Dunes, Sunset-Hills: drawings; Flat-Fan, Flat-Stone-Pattern, Paper-Flower and
        # Squiggle*: abstract or patterns
    ),
    Package(
        "lxqt-themes", "1.2.0-1", "heldout",
        "usr/share/lxqt/wallpapers/", "wallpapers/", r".*\.(jpg|png)$",
        photos=("Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg",
                "appleflower.png", "beam.png", "butterfly.png", "cloud.png", "drop.png",
                "flowers.png", "fog.jpg", "this-is-not-windows.jpg"),
        # credits from the package's usr/share/lxqt/wallpapers/License
        authors={n: "stefonarch (standreas@riseup.net); LXQt team" for n in (
            "beam.png", "flowers.png", "butterfly.png", "fog.jpg", "this-is-not-windows.jpg",
            "appleflower.png", "after-the-rain.jpg", "drop.png")}
        | {"Butterfly-Kenneth-Wimer.jpg": "Kenneth Wimer (per file name); LXQt team"},
        licence_note="upstream wallpapers/License says CC-BY-SA-3.0 (LXQt Project Team 2022); "
                     "debian/copyright lists wallpapers/* under Files: * (LGPL-2.1+)",
    ),
    Package(
        "tuxpaint-data", "1:0.9.28-sdl2-1", "heldout",
        "usr/share/tuxpaint/templates/", "templates/", r".*\.jpg$",
        # AUTHORS.txt credits every template photo to Bill Kendrick
        authors={"*": "Bill Kendrick <bill@newbreedsoftware.com> (AUTHORS.txt: Templates)"},
    ),
)

#: Photo collections that the copyright file calls "public domain" but whose own terms are
#: looser or restrictive (morgueFile forbids redistributing unaltered photos; Unsplash photos
#: after 2017 use the Unsplash licence): used for training, but never bundle_ok.
DOUBTFUL_SOURCES = ("morgue-file.com", "unsplash.com")
COUNT_KEYS = ("written", "non-photo", "corrupt", "too-small")


# ---------------------------------------------------------------------------------------------
# Debian packages


def deb_path(debs: Path, pkg: Package) -> Path | None:
    hits = [h for h in sorted(debs.glob(f"{pkg.name}_*.deb"))
            if h.name.split("_")[1].replace("%3a", ":") == pkg.version]
    return hits[0] if hits else None


def fetch(debs: Path, pkg: Package) -> Path:
    """The .deb of ``pkg`` in ``debs``; apt-get downloads the pinned version if it is missing."""
    if pkg.name in RESERVED:
        raise SystemExit(f"{pkg.name} is reserved and must not be used")
    found = deb_path(debs, pkg)
    if found is None:
        print(f"apt-get download {pkg.name}={pkg.version}", flush=True)
        subprocess.run(["apt-get", "download", f"{pkg.name}={pkg.version}"], cwd=debs,
                       check=True)
        found = deb_path(debs, pkg)
        if found is None:
            raise SystemExit(f"no .deb for {pkg.name} {pkg.version} in {debs}")
    return found


def deb_version(deb: Path) -> str:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def deb_members(deb: Path, wanted) -> dict[str, bytes]:
    """Read the files whose path (without the leading './') satisfies ``wanted``."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for member in tar:
            name = member.name[2:] if member.name.startswith("./") else member.name
            if member.isfile() and wanted(name):
                found[name] = tar.extractfile(member).read()
    proc.wait()
    if proc.returncode:
        raise SystemExit(f"dpkg-deb failed on {deb}")
    return found


# ---------------------------------------------------------------------------------------------
# debian/copyright (machine-readable format 1.0)


def parse_copyright(text: str) -> list[dict[str, str]]:
    """The paragraphs of a DEP-5 copyright file that have a Files field, in order."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields:
            paragraphs.append(fields)
    return paragraphs


def licence_of(paragraphs: list[dict[str, str]], source_path: str) -> tuple[str, str, str]:
    """(licence, copyright holder, note) of ``source_path``: the last matching paragraph wins."""
    result = ("unknown", "", "")
    for p in paragraphs:
        patterns = p["files"].split()
        if any(fnmatch.fnmatchcase(source_path, pat) for pat in patterns):
            lic_lines = p.get("license", "unknown").splitlines()
            note = " ".join(l for l in lic_lines[1:] if l != ".")
            if p.get("comment"):
                note = (note + " " + " ".join(p["comment"].splitlines())).strip()
            result = (lic_lines[0].strip(), " ".join(p.get("copyright", "").split()), note)
    return result


def bundle_ok(licence: str, note: str = "") -> str:
    if any(src in note for src in DOUBTFUL_SOURCES):
        return "no"
    return "yes" if licence.strip().lower() in PERMISSIVE else "no"


# ---------------------------------------------------------------------------------------------
# images


def decode(data: bytes, kind: str) -> np.ndarray | None:
    """BGR uint8 image, or None.  ``edj``: the largest JPEG stream carved from the Edje file."""
    if kind == "image":
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return img if img is not None and img.size else None
    best = None
    for m in re.finditer(rb"\xff\xd8\xff", data):
        img = cv2.imdecode(np.frombuffer(data, np.uint8, offset=m.start()), cv2.IMREAD_COLOR)
        if img is not None and (best is None or img.shape[0] * img.shape[1] >
                                best.shape[0] * best.shape[1]):
            best = img
    return best


def fit_long_side(img: np.ndarray, long_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1:
        return img
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def centre_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = size / min(h, w)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    img = cv2.resize(img, (nw, nh), interpolation=interp)
    y, x = (nh - size) // 2, (nw - size) // 2
    return img[y:y + size, x:x + size]


# ---------------------------------------------------------------------------------------------


def build(args) -> int:
    if not args.debs:                       # download into a temporary folder, removed after
        with tempfile.TemporaryDirectory(prefix="extra_photos_") as tmp:
            args.debs = tmp
            return build(args)
    start = time.time()
    debs = Path(args.debs)
    debs.mkdir(parents=True, exist_ok=True)
    outs = {"train": Path(args.out), "heldout": Path(args.heldout_out)}
    for d in outs.values():
        d.mkdir(parents=True, exist_ok=True)
        for old in list(d.glob("*.jpg")) + list(d.glob("*.png")):
            old.unlink()                            # stale files of an earlier run
    rows = {"train": [], "heldout": []}
    counts: dict[str, Counter] = {}
    by_licence: Counter = Counter()

    for pkg in PACKAGES:
        deb = fetch(debs, pkg)
        version = deb_version(deb)
        if version != pkg.version:
            raise SystemExit(f"{deb.name}: version {version}, expected {pkg.version}")
        copyright_path = f"usr/share/doc/{pkg.name}/copyright"
        pattern = re.compile(pkg.pattern)
        members = deb_members(deb, lambda n: n == copyright_path or (
            n.startswith(pkg.prefix) and "/" not in n[len(pkg.prefix):]
            and pattern.match(n[len(pkg.prefix):])))
        paragraphs = parse_copyright(members.pop(copyright_path).decode("utf-8", "replace"))
        short = pkg.name.removesuffix("-data").removesuffix("-themes")
        c = counts[pkg.name] = Counter({k: 0 for k in COUNT_KEYS})
        for path in sorted(members):
            fname = path[len(pkg.prefix):]
            if (pkg.photos and fname not in pkg.photos) or fname in pkg.not_photos:
                c["non-photo"] += 1
                continue
            img = decode(members[path], pkg.kind)
            if img is None:
                c["corrupt"] += 1
                continue
            licence, holder, note = licence_of(paragraphs, pkg.source_prefix + fname)
            author = pkg.authors.get(fname, pkg.authors.get("*", holder))
            note = "; ".join(x for x in (note, pkg.licence_note) if x)
            stem = Path(fname).stem
            if pkg.split == "train":
                img = fit_long_side(img, args.long_side)
                if min(img.shape[:2]) < args.min_short:
                    c["too-small"] += 1
                    continue
                out = outs["train"] / f"{short}_{stem}.jpg"
                ok = cv2.imwrite(str(out), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            else:
                if min(img.shape[:2]) < args.heldout_size:
                    c["too-small"] += 1
                    continue
                out = outs["heldout"] / f"{short}_{stem}.png"
                ok = cv2.imwrite(str(out), centre_crop(img, args.heldout_size))
            if not ok:
                raise SystemExit(f"could not write {out}")
            c["written"] += 1
            ok_to_bundle = bundle_ok(licence, note)
            by_licence[(pkg.split, licence, ok_to_bundle)] += 1
            rows[pkg.split].append([out.name, licence, author, pkg.name, version, path,
                                    ok_to_bundle, note])

    header = ["file", "licence", "author", "package", "version", "path_in_package",
              "bundle_ok", "note"]
    for split, d in outs.items():
        with open(d / "ATTRIBUTION.tsv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(header)
            w.writerows(rows[split])

    print(f"\n{'package':<22}{'version':<18}{'split':<9}" + "".join(f"{k:>11}" for k in COUNT_KEYS))
    for pkg in PACKAGES:
        c = counts[pkg.name]
        print(f"{pkg.name:<22}{pkg.version:<18}{pkg.split:<9}"
              + "".join(f"{c[k]:>11}" for k in COUNT_KEYS))
    print("\nby licence:")
    for (split, lic, ok_to_bundle), n in sorted(by_licence.items()):
        print(f"  {split:<8} {lic:<16} bundle_ok={ok_to_bundle:<4} {n:>4}")
    print(f"\ntrain: {len(rows['train'])} photos -> {outs['train']}")
    print(f"held-out: {len(rows['heldout'])} photos -> {outs['heldout']}")
    print(f"debs: {debs}   time: {time.time() - start:.1f} s")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debs", help="folder with the .deb files (missing ones are downloaded "
                                   "into it; default: a temporary folder, deleted afterwards)")
    ap.add_argument("--out", default=str(HERE / "train" / "extra_photos"), help="training photos")
    ap.add_argument("--heldout-out", default=str(HERE / "extra_heldout"),
                    help="held-out 256x256 crops")
    ap.add_argument("--long-side", type=int, default=768)
    ap.add_argument("--min-short", type=int, default=360,
                    help="skip training photos whose short side is below this after resizing "
                         "(360: endless-sky's photos are all 720x360)")
    ap.add_argument("--heldout-size", type=int, default=256)
    return build(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
