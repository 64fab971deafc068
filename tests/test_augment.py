"""Photometric augmentation: the maps by hand, the draws seeded, and its place in training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from glcic_lib.augment import CONTRAST_RANGE, EXPOSURE_RANGE, apply_factors, draw_factors


def test_exposure_scales_and_contrast_flattens_around_the_image_mean():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8)
    out = apply_factors(x, [[0.5, 1.0], [1.0, 0.5]])
    assert torch.allclose(out[0], 0.5 * x[0])                       # darker, same contrast ratio
    mean = x[1].mean()
    assert torch.allclose(out[1], mean + 0.5 * (x[1] - mean))        # half the contrast, same mean
    assert torch.equal(apply_factors(x, np.ones((2, 2))), x)         # factors of 1: unchanged
    assert out.min() >= 0 and out.max() <= 1


def test_factors_are_seeded_and_in_their_ranges():
    a = draw_factors(np.random.default_rng([0, 11, 5, 0]), 400)
    b = draw_factors(np.random.default_rng([0, 11, 5, 0]), 400)
    assert np.array_equal(a, b)
    darker, flatter = a[:, 0] < 1, a[:, 1] < 1
    assert 0.35 < darker.mean() < 0.65 and 0.15 < flatter.mean() < 0.45   # P_EXPOSURE 0.5, P_CONTRAST 0.3
    assert EXPOSURE_RANGE[0] <= a[darker, 0].min() and CONTRAST_RANGE[0] <= a[flatter, 1].min()


def test_bad_factors_are_a_clear_error():
    with pytest.raises(ValueError, match=r"factors must have shape \(2, 2\)"):
        apply_factors(torch.rand(2, 3, 4, 4), np.ones((3, 2)))


def test_training_batches_are_augmented_only_when_asked(tmp_path):
    from glcic_lib.imageio import write_image
    from glcic_lib.train import Trainer, preset

    folder = tmp_path / "img"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        write_image(folder / f"{i}.png", (rng.random((80, 80, 3)) * 255).astype(np.uint8))
    kw = dict(data_dir=str(folder), crop_size=64, batch_size=4, t_c=2, t_d=0, t_joint=0, discriminator="none")
    plain = Trainer(preset("smoke", out_dir=str(tmp_path / "a"), **kw), progress=False).next_micros(0)[0]
    aug = Trainer(preset("smoke", out_dir=str(tmp_path / "b"), augment="exposure", **kw), progress=False)
    again = Trainer(preset("smoke", out_dir=str(tmp_path / "c"), augment="exposure", **kw), progress=False)
    x, y = aug.next_micros(0)[0]["image"], again.next_micros(0)[0]["image"]
    assert torch.equal(x, y)                                        # seeded: the same in every run
    factors = draw_factors(np.random.default_rng([0, 11, 0, 0]), 4)
    assert torch.allclose(x, apply_factors(plain["image"], factors), atol=1e-6)
    with pytest.raises(ValueError, match="augment must be one of"):
        preset("smoke", augment="blur")
