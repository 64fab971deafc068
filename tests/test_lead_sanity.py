"""A few end-to-end sanity checks owned by the lead: the package imports, completes an image
and keeps the known pixels (the detailed behaviour is pinned by the per-module test files)."""
import numpy as np

import glcic_lib


def test_complete_keeps_known_pixels_at_odd_size():
    model = glcic_lib.CompletionNetwork(width=0.25)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(37, 51, 3), dtype=np.uint8)
    mask = np.zeros((37, 51), dtype=bool)
    mask[10:20, 5:30] = True
    out = glcic_lib.complete(model, image, mask)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mask], image[~mask])
