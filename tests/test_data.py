"""The image-folder data set, its augmentation, the resumable stream, the mean-pixel cache and
the bundled data."""
import json
import warnings

import cv2
import numpy as np
import pytest
import torch

from glcic_lib import data as data_mod
from glcic_lib.data import HeldoutItem, ImageFolder, StreamSampler, load_heldout, mean_pixel


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(array, cv2.COLOR_RGB2BGR))
    assert ok
    buf.tofile(str(path))


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    _write(root / "a.png", rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    _write(root / "sub" / "b.jpg", np.full((80, 64, 3), 200, np.uint8))
    _write(root / "sub" / "deeper" / "c.webp", np.full((64, 100, 3), 10, np.uint8))
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"ignored silently")
    return root


def test_image_folder_is_recursive_and_filters_extensions(folder):
    ds = ImageFolder(folder, crop_size=64)
    assert [p.name for p in ds.files] == ["a.png", "b.jpg", "c.webp"]
    assert ds.ignored == 1
    assert ds.resize_range == (64, 96)
    item = ds[0]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 64, 64)
    assert item["skipped"] == 0


def test_augmentation_resizes_smaller_side_then_crops(folder):
    img = np.zeros((100, 200, 3), np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = data_mod.augment(img, 64, (64, 96), rng)
        assert out.shape == (64, 64, 3)
    assert data_mod.resize_smaller_side(img, 50).shape == (50, 100, 3)
    assert data_mod.center_crop(img, 64).shape == (64, 64, 3)


def test_augmentation_is_seeded(folder):
    ds = ImageFolder(folder, crop_size=64)
    a, b = ds[(0, (1, 2))]["image"], ds[(0, (1, 2))]["image"]
    assert torch.equal(a, b)
    crops = {ds[(0, (1, s))]["image"].numpy().tobytes() for s in range(6)}
    assert len(crops) > 1


def test_unreadable_files_are_skipped_warned_and_counted(folder):
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    (folder / "empty.png").write_bytes(b"")
    ds = ImageFolder(folder, crop_size=64)
    names = [p.name for p in ds.files]
    broken = names.index("broken.jpg")
    with pytest.warns(RuntimeWarning, match="skipping unreadable image") as record:
        item = ds[broken]       # broken.jpg and the next file, empty.png, are both unreadable
    assert [str(w.message).rsplit("/", 1)[-1] for w in record] == ["broken.jpg", "empty.png"]
    assert item["skipped"] == 2 and item["image"].shape == (3, 64, 64)
    # a whole pass never crashes; the bad files are warned about once, but counted every time
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        total = sum(ds[i]["skipped"] for i in range(len(ds)))
    assert total == 2 + 1       # broken.jpg skips 2 files, empty.png skips itself
    assert {p.name for p in ds.bad_files} == {"broken.jpg", "empty.png"}
    assert ds.verify() == 2


def test_empty_and_missing_folders_are_clear_errors(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no images .* found under .*\(1 other files ignored\)"):
        ImageFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        ImageFolder(tmp_path / "nope")
    with pytest.raises(ValueError, match=r"resize_range \(32, 48\) must satisfy crop_size \(64\)"):
        ImageFolder(_make_one(tmp_path), crop_size=64, resize_range=(32, 48))


def _make_one(tmp_path):
    root = tmp_path / "one"
    _write(root / "a.png", np.zeros((64, 64, 3), np.uint8))
    return root


def test_stream_sampler_is_deterministic_epoch_permutations_and_resumable():
    s = StreamSampler(5, seed=3)
    it = iter(s)
    keys = [next(it) for _ in range(15)]
    for e in range(3):
        assert sorted(k[0] for k in keys[5 * e:5 * e + 5]) == list(range(5))
    assert [k[1] for k in keys[:3]] == [(3, 0), (3, 1), (3, 2)]
    resumed = iter(StreamSampler(5, seed=3, start=7))
    assert [next(resumed) for _ in range(8)] == keys[7:15]
    # two ranks read disjoint, interleaved shares of the same stream
    r0, r1 = iter(StreamSampler(5, 3, rank=0, world_size=2)), iter(StreamSampler(5, 3, rank=1, world_size=2))
    assert [next(r0) for _ in range(3)] == keys[0:6:2]
    assert [next(r1) for _ in range(3)] == keys[1:6:2]
    with pytest.raises(ValueError, match="rank 2 must be in"):
        StreamSampler(5, rank=2, world_size=2)


def test_mean_pixel_is_computed_once_and_cached(folder, monkeypatch):
    value = mean_pixel(folder)
    assert len(value) == 3 and all(0 <= v <= 1 for v in value)
    cache = json.loads((folder / data_mod.MEAN_CACHE).read_text())
    assert cache["images_used"] == 3 and cache["mean"] == pytest.approx(list(value))
    # a fresh process (empty memory cache) reads the JSON, not the images
    data_mod._MEMORY_CACHE.clear()
    calls = []
    monkeypatch.setattr(data_mod, "decode_image", lambda p: calls.append(p))
    assert mean_pixel(folder) == pytest.approx(value)
    assert calls == []
    monkeypatch.undo()
    # adding an image changes the signature and recomputes
    _write(folder / "z.png", np.full((64, 64, 3), 255, np.uint8))
    assert mean_pixel(folder)[0] > value[0]


def test_mean_pixel_by_hand(tmp_path):
    root = tmp_path / "two"
    _write(root / "r.png", np.tile(np.array([255, 0, 0], np.uint8), (64, 64, 1)))
    _write(root / "g.png", np.tile(np.array([0, 255, 51], np.uint8), (80, 64, 1)))
    assert mean_pixel(root) == pytest.approx((0.5, 0.5, 0.1), abs=1e-3)
    # the trainer hands over the list its ImageFolder made: same value, folder not listed again
    files = ImageFolder(root, crop_size=32).files
    assert mean_pixel(root, files=files, refresh=True) == mean_pixel(root, refresh=True)


def test_bundled_heldout_set():
    items = load_heldout()
    assert len(items) >= 8
    for it in items:
        assert isinstance(it, HeldoutItem)
        assert it.image.dtype == np.uint8 and it.image.ndim == 3 and it.image.shape[2] == 3
        assert it.mask.dtype == np.bool_ and it.mask.shape == it.image.shape[:2]
        assert 0 < it.mask.mean() < 0.5
    # the held-out images are never training images
    train = ImageFolder(data_mod.bundled_train_dir(), crop_size=64)
    assert {p.stem for p in train.files}.isdisjoint({it.name for it in items})
    # at least one hole touches the border (the paper's failure case)
    assert any(it.mask[0].any() or it.mask[-1].any() or it.mask[:, 0].any() or it.mask[:, -1].any()
               for it in items)


def test_heldout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="a held-out set needs"):
        load_heldout(tmp_path)
    _write(tmp_path / "images" / "a.png", np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "masks").mkdir()
    with pytest.raises(FileNotFoundError, match="has no mask"):
        load_heldout(tmp_path)


def test_bundled_training_images_are_small_and_many():
    files, _ = data_mod.list_images(data_mod.bundled_train_dir())
    # data/train/extra_photos (data/build_extra_photos.py) is fetched, not bundled
    files = [f for f in files if "extra_photos" not in f.parts]
    assert len(files) >= 150   # 34 scikit-image tiles + 153 photographs (data/build_photos.py)
    assert sum(f.stat().st_size for f in files) < 8e6


def test_loader_throughput_reports_images_per_second(folder):
    r = data_mod.loader_throughput(folder, crop_size=64, batch_size=2, num_workers=0, batches=2)
    assert r["images_per_s"] > 0 and r["batch_size"] == 2 and r["num_workers"] == 0


def test_heldout_sets_by_name_and_their_hole_kinds(tmp_path):
    from glcic_lib.data import heldout_kinds

    photos, tiles = load_heldout("photos"), load_heldout("tiles")
    assert [it.name for it in load_heldout()] == [it.name for it in photos]   # the default
    assert len(photos) == 20 and len(tiles) == 8
    assert {it.image.shape for it in photos} == {(256, 256, 3)}
    kinds = heldout_kinds()
    assert set(kinds) == {it.name for it in photos}
    assert sorted(set(kinds.values())) == ["border", "free", "rect"] and list(kinds.values()).count("rect") == 12
    assert heldout_kinds("tiles") == {}
    (tmp_path / "kinds.tsv").write_text("image\tkind\nonly-a-name\n")
    with pytest.raises(ValueError, match="image<TAB>kind"):
        heldout_kinds(tmp_path)
