"""Solutions of notebook 04's coding exercises (the tests put them into the exercise cells)."""
from glcic_lib import masks


def my_sample_hole(image_size, hole_range, rng):
    # --- your code below (sample_hole)
    lo, hi = hole_range
    h, w = (int(v) for v in rng.integers(lo, hi + 1, size=2))
    top = int(rng.integers(0, image_size - h + 1))
    left = int(rng.integers(0, image_size - w + 1))
    return masks.Box(top, left, h, w)
    # --- your code above
