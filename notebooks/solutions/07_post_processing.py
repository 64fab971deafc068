"""Solutions of notebook 07's coding exercises (the tests fill them in and run the notebook with
strict checks).  Each region replaces the one of the same name in the notebook."""
# ruff: noqa


def postprocess_by_hand(raw, hole, known):
    # --- your code below (postprocess_order)
    smooth = cv2.inpaint(raw, hole.astype(np.uint8) * 255, 1, cv2.INPAINT_TELEA)   # step 1: fast marching
    return poisson_blend(raw, smooth, known, hole)                                 # step 2: Poisson blending
    # --- your code above
