"""The data-set helper on small local stand-in archives (no network: file:// URLs)."""
import io
import json
import tarfile
import zipfile

import cv2
import numpy as np
import pytest

from glcic_lib import cli, datasets
from glcic_lib.data import ImageFolder


def _png(value: int) -> bytes:
    ok, buf = cv2.imencode(".png", np.full((40, 48, 3), value, np.uint8))
    return buf.tobytes()


def _jpg(value: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((40, 48, 3), value, np.uint8))
    return buf.tobytes()


@pytest.fixture
def facade_zip(tmp_path):
    """Like CMP_facade_DB_base.zip: photos (.jpg), label maps (.png) and XML side by side."""
    path = tmp_path / "CMP_facade_DB_base.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(3):
            zf.writestr(f"base/cmp_b000{i}.jpg", _jpg(50 * i))
            zf.writestr(f"base/cmp_b000{i}.png", _png(i))
            zf.writestr(f"base/cmp_b000{i}.xml", "<object/>")
        zf.writestr("__MACOSX/base/._cmp_b0000.jpg", b"resource fork")
        zf.writestr("readme.txt", "read me")
    return path


@pytest.fixture
def places_tar(tmp_path):
    """Like val_256.tar: a folder of jpgs."""
    path = tmp_path / "val_256.tar"
    with tarfile.open(path, "w") as tf:
        for i in range(4):
            data = _jpg(30 * i)
            info = tarfile.TarInfo(f"val_256/Places365_val_0000000{i}.jpg")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("val_256/link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    return path


def test_registry_knows_the_papers_data_sets():
    assert {"places365", "places365-val", "celeba", "cmp-facade"} <= set(datasets.DATASETS)
    assert all(i.licence and i.homepage for i in datasets.DATASETS.values())
    assert datasets.DATASETS["celeba"].urls == ()          # Google Drive: by hand, with --archive
    text = datasets.describe()
    assert "non-commercial" in text and "cmp-facade" in text
    with pytest.raises(ValueError, match="unknown data set 'imagenet'"):
        datasets.dataset_info("imagenet")


def test_fetch_downloads_unpacks_only_the_photos_and_marks_the_folder(facade_zip, tmp_path):
    dest = tmp_path / "data"
    folder = datasets.fetch("cmp-facade", dest, urls=(facade_zip.as_uri(),), progress=False)
    assert folder == dest / "cmp-facade"
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == [
        datasets.MARKER, "cmp_b0000.jpg", "cmp_b0001.jpg", "cmp_b0002.jpg"]
    assert (dest / "downloads" / facade_zip.name).exists()
    marker = json.loads((folder / datasets.MARKER).read_text())
    assert marker["images"] == 3 and marker["name"] == "cmp-facade"
    assert len(ImageFolder(folder, crop_size=32, resize_range=(40, 48))) == 3
    # a second fetch finds the marker and does nothing (not even a download)
    assert datasets.fetch("cmp-facade", dest, urls=("file:///nonexistent.zip",), progress=False) == folder


def test_fetch_from_a_local_tar_skips_links(places_tar, tmp_path):
    folder = datasets.fetch("places365-val", tmp_path / "d", archive=places_tar, progress=False)
    files = sorted(p.name for p in (folder / "val_256").iterdir())
    assert files == [f"Places365_val_0000000{i}.jpg" for i in range(4)]


def test_celeba_needs_a_local_archive(tmp_path):
    with pytest.raises(ValueError, match="cannot be downloaded automatically: download img_align_celeba.zip"):
        datasets.fetch("celeba", tmp_path, progress=False)


def test_archives_that_escape_the_folder_are_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.jpg", _jpg(1))
    with pytest.raises(ValueError, match="refusing archive member '../outside.jpg'"):
        datasets.unpack(evil, tmp_path / "out")
    assert not (tmp_path / "outside.jpg").exists()


def test_bad_archives_and_downloads_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="neither a zip nor a tar archive"):
        datasets.unpack(junk, tmp_path / "o")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("notes.txt", "no images here")
    with pytest.raises(ValueError, match="no images matching .* is this the cmp-facade archive"):
        datasets.fetch("cmp-facade", tmp_path / "e", archive=empty, progress=False)
    with pytest.raises(OSError, match="could not download .*pass it with --archive"):
        datasets.download((tmp_path / "missing.zip").as_uri(), tmp_path / "dl" / "missing.zip", progress=False)
    assert not (tmp_path / "dl" / "missing.zip.part").exists()


def test_cli(facade_zip, tmp_path, capsys):
    assert cli.run(["datasets", "list"]) == 0
    assert "places365" in capsys.readouterr().out
    dest = tmp_path / "cli"
    assert cli.run(["datasets", "fetch", "cmp-facade", "--dest", str(dest), "--archive", str(facade_zip),
                    "--no-progress"]) == 0
    assert "cmp-facade: 3 images" in capsys.readouterr().out
    assert cli.run(["datasets", "fetch", "--dest", str(dest)]) == 2
    assert "fetch needs a data set name" in capsys.readouterr().err
