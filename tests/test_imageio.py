"""Image files: float and 16-bit TIFFs read without silent changes, output paths checked before
any work, atomic writes (issue 15, items 1 and 3)."""
from __future__ import annotations

import errno
import os

import cv2
import numpy as np
import pytest

from glcic_lib import imageio
from glcic_lib.imageio import (FLOAT_TOLERANCE, ImageReadError, check_output_path, describe_os_error, read_image,
                               read_mask, write_image)


def _write_tiff(path, array):
    """Write ``array`` (RGB or grey, any dtype OpenCV's TIFF writer takes) as stored, BGR order."""
    arr = np.ascontiguousarray(array[..., ::-1]) if array.ndim == 3 else array
    assert cv2.imwrite(str(path), arr)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == array.dtype  # really stored as this type
    return path


@pytest.fixture
def floats(rng):
    return rng.random((9, 11, 3)).astype(np.float32)


# --------------------------------------------------------------------------- float images

def test_a_dark_float_tiff_keeps_its_brightness(tmp_path, floats):
    dark = floats * 0.5  # [0, 0.5]: was divided by its maximum and came out twice as bright
    got = read_image(_write_tiff(tmp_path / "dark.tif", dark))
    assert got.dtype == np.uint8 and got.shape == (9, 11, 3)
    np.testing.assert_array_equal(got, (dark.astype(np.float64) * 255).round().astype(np.uint8))
    assert got.max() <= 128


def test_float64_and_grey_float_tiffs(tmp_path, floats):
    f64 = floats.astype(np.float64)
    np.testing.assert_array_equal(read_image(_write_tiff(tmp_path / "f64.tif", f64)), (f64 * 255).round())
    grey = floats[..., 0] * 0.25
    got = read_image(_write_tiff(tmp_path / "grey.tif", grey))
    want = (grey.astype(np.float64) * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(got, np.dstack([want] * 3))


def test_values_slightly_outside_0_1_are_clipped(tmp_path, floats):
    img = floats.copy()
    img[0, 0] = -0.9 * FLOAT_TOLERANCE
    img[0, 1] = 1 + 0.9 * FLOAT_TOLERANCE
    got = read_image(_write_tiff(tmp_path / "edge.tif", img))
    assert got[0, 0].tolist() == [0, 0, 0] and got[0, 1].tolist() == [255, 255, 255]
    np.testing.assert_array_equal(got[1:], (img[1:].astype(np.float64) * 255).round())
    assert 0.001 < FLOAT_TOLERANCE < 0.5 / 255 + 1e-12  # documented: half an 8-bit grey level


@pytest.mark.parametrize("low, high, hint", [
    (0.0, 1.2, "HDR or linear values"),
    (-0.1, 0.8, "HDR or linear values"),
    (0.0, 255.0, "looks like 0-255 values stored as float: divide by 255"),
])
def test_values_clearly_outside_0_1_are_an_error_naming_file_and_range(tmp_path, floats, low, high, hint):
    img = floats * 0.5 + 0.25
    img[2, 3, 1], img[4, 5, 2] = low, high
    path = _write_tiff(tmp_path / "out_of_range.tif", img)
    with pytest.raises(ImageReadError) as e:
        read_image(path)
    msg = str(e.value)
    assert str(path) in msg and "must lie in [0, 1]" in msg
    assert f"found [{low:.4g}, {high:.4g}]" in msg and hint in msg


@pytest.mark.parametrize("bad, word", [(np.nan, "1 NaN"), (np.inf, "1 infinite"), (-np.inf, "1 infinite")])
def test_nan_and_inf_pixels_are_an_error(tmp_path, floats, bad, word):
    img = floats.copy()
    img[3, 7, 2] = bad  # one sample: used to turn the whole image black
    path = _write_tiff(tmp_path / "nan.tif", img)
    with pytest.raises(ImageReadError) as e:
        read_image(path)
    msg = str(e.value)
    assert str(path) in msg and f"holds {word} sample value(s) (the first at x=7, y=3)" in msg
    assert "finite intensities in [0, 1]" in msg


def test_nan_and_inf_counted_together(tmp_path, floats):
    img = floats.copy()
    img[0, 0, 0] = img[1, 1, 1] = np.nan
    img[2, 2, 2] = np.inf
    with pytest.raises(ImageReadError, match=r"holds 2 NaN and 1 infinite sample value\(s\) \(the first at x=0, y=0\)"):
        read_image(_write_tiff(tmp_path / "both.tif", img))


def test_16_bit_stays_divided_by_65535(tmp_path):
    img = np.zeros((2, 3, 3), np.uint16)
    img[0, 0] = 65535
    img[0, 1] = 32768   # 127.5 -> 128
    img[0, 2] = 257     # exactly 1 grey level
    img[1, 0] = 1000    # a dark 16-bit image is not stretched to its maximum
    for name in ("a.png", "a.tif"):
        got = read_image(_write_tiff(tmp_path / name, img))
        assert got[0, 0].tolist() == [255] * 3 and got[0, 1].tolist() == [128] * 3
        assert got[0, 2].tolist() == [1] * 3 and got[1, 0].tolist() == [4] * 3 and got[1, 1].tolist() == [0] * 3


def test_other_sample_types_are_an_error(tmp_path):
    path = _write_tiff(tmp_path / "signed.tif", np.full((4, 4, 3), 100, np.int16))
    with pytest.raises(ImageReadError, match=r"signed.tif: unsupported sample type int16 .*convert the image to 8-bit"):
        read_image(path)


def test_a_float_mask_with_nan_is_an_error(tmp_path):
    m = np.zeros((5, 6), np.float32)
    m[1:3, 1:3] = 1.0
    assert read_mask(_write_tiff(tmp_path / "ok.tif", m)).sum() == 4
    m[4, 4] = np.nan
    with pytest.raises(ImageReadError, match="bad.tif: the mask holds NaN values"):
        read_mask(_write_tiff(tmp_path / "bad.tif", m))


# --------------------------------------------------------------------------- output paths

def test_check_output_path_accepts_writable_paths_and_creates_nothing(tmp_path):
    assert check_output_path(tmp_path / "out.png") == tmp_path / "out.png"
    assert check_output_path(tmp_path / "new" / "deeper" / "out.JPG")  # folders made when writing
    assert not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == []
    (tmp_path / "old.webp").write_bytes(b"x")
    check_output_path(tmp_path / "old.webp")  # overwriting a writable file is fine


@pytest.mark.parametrize("name, match", [
    ("out.xyz", r"OpenCV has no encoder for '.xyz' files; use one of .jpg, .jpeg, .png"),
    ("out", r"has no extension, which chooses the image format: add one \(.jpg"),
])
def test_check_output_path_extensions(tmp_path, name, match):
    with pytest.raises(ValueError, match=match):
        check_output_path(tmp_path / name)


def test_check_output_path_folder_and_file_in_the_way(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ValueError, match=r"dir.png is an existing folder: give a file name, e.g. .*dir.png/out.png"):
        check_output_path(tmp_path / "dir.png")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match=r"cannot write .*afile/sub/o.png: .*afile is a file, not a folder"):
        check_output_path(tmp_path / "afile" / "sub" / "o.png")


def test_check_output_path_read_only_folder_and_file(tmp_path, monkeypatch):
    # as root chmod does not stop writes, so os.access decides; pretend these are read-only
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "exists.png").write_bytes(b"x")
    real = os.access
    monkeypatch.setattr(imageio.os, "access", lambda p, mode: False if str(p).startswith(str(ro)) else real(p, mode))
    with pytest.raises(ValueError, match=r"cannot write .*ro/o.png: the folder .*ro is not writable \(read-only or no "
                                         r"permission\); choose another output folder"):
        check_output_path(ro / "o.png")
    with pytest.raises(ValueError, match=r"cannot create its folder: the folder .*ro is not writable"):
        check_output_path(ro / "a" / "b" / "o.png")
    with pytest.raises(ValueError, match=r"exists.png exists and is read-only"):
        check_output_path(ro / "exists.png")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores folder permissions (the os.access path is tested with a monkeypatch)")
def test_check_output_path_real_read_only_folder(tmp_path):  # pragma: no cover - not as root
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="is not writable"):
            check_output_path(ro / "o.png")
    finally:
        ro.chmod(0o755)


# --------------------------------------------------------------------------- writing

def test_write_image_round_trip_and_no_temporary_files(tmp_path, rng):
    img = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    path = write_image(tmp_path / "sub" / "x.png", img)
    np.testing.assert_array_equal(read_image(path), img)
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]
    with pytest.raises(ValueError, match=r"cannot encode an image as '.xyz'"):
        write_image(tmp_path / "x.xyz", img)


def test_a_full_disk_leaves_no_partial_file(tmp_path, rng, monkeypatch):
    from glcic_lib import checkpoint

    old = write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8)).read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.os, "fsync", full)
    with pytest.raises(OSError) as e:
        write_image(tmp_path / "x.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / "x.png")  # named
    assert describe_os_error(e.value).startswith(f"no space left on device (writing {tmp_path / 'x.png'})")
    assert (tmp_path / "x.png").read_bytes() == old  # the old file untouched
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # and no temporary file left


def test_describe_os_error():
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/d/o.png")) == \
        "no space left on device (writing /d/o.png): free some space or choose another location"
    assert describe_os_error(PermissionError(errno.EACCES, "Permission denied", "/r/o.png")) == \
        "permission denied: /r/o.png; choose a file or folder you can access"
    assert "read-only file system" in describe_os_error(OSError(errno.EROFS, "Read-only file system", "/m"))
    assert describe_os_error(FileNotFoundError("image file not found: a.png")) == "image file not found: a.png"
    assert describe_os_error(OSError(errno.EIO, "Input/output error", "f")) == "Input/output error: f"
