"""The painter's stroke logic, the painter widget and the receptive-field explorer, without a browser."""
from __future__ import annotations

import base64
import datetime

import cv2
import numpy as np
import pytest
import torch

from glcic_lib import complete, receptive_field as rf
from glcic_lib.models import CompletionNetwork
from glcic_lib.painting import Stroke, StrokeHistory, describe_mask, mask_box, overlay, rasterize
from glcic_lib.tables import COMPLETION_LAYERS
from glcic_lib.widgets import MaskPainter, ReceptiveFieldExplorer
from glcic_lib.widgets.explorer import (PRESETS, FieldCalculator, make_spec, output_size, square_hole,
                                        without_dilation)


def capsule(points, r, shape):
    """Pixels whose centre is within r of the polyline, in exact integer arithmetic."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    out = np.zeros(shape, bool)
    pts = [(int(round(x)), int(round(y))) for x, y in points]
    for x, y in pts:
        out |= (xx - x) ** 2 + (yy - y) ** 2 <= r * r
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
        dx, dy = x1 - x0, y1 - y0
        L2 = dx * dx + dy * dy
        if L2 == 0:
            continue
        t = ((xx - x0) * dx + (yy - y0) * dy).astype(np.float64) / L2
        inside = (t >= 0) & (t <= 1)
        # squared distance to the line, exact as a fraction: cross^2 / L2
        cross = (xx - x0) * dy - (yy - y0) * dx
        out |= inside & (cross.astype(np.int64) ** 2 <= r * r * L2)
    return out


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return CompletionNetwork(width=0.125).eval()


def image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# strokes -> mask
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("r", [0, 1, 2, 5, 11])
def test_a_dot_is_the_disc_of_its_radius(r):
    m = rasterize([Stroke.brush([(20, 15)], r)], (40, 45))
    yy, xx = np.mgrid[:40, :45]
    assert np.array_equal(m, (xx - 20) ** 2 + (yy - 15) ** 2 <= r * r)
    assert m.dtype == bool and m.shape == (40, 45)
    assert m.sum() == {0: 1, 1: 5, 2: 13, 5: 81, 11: 377}[r]  # counted by hand: lattice points in the disc


@pytest.mark.parametrize("points,r", [
    ([(5, 5), (40, 30)], 4),
    ([(0, 20), (30, 21), (31, 50), (-10, 60)], 6),   # leaves the image
    ([(10, 10), (10, 10), (25, 10)], 0),              # repeated point, one-pixel line
    ([(12.4, 7.6), (33.5, 19.49)], 3.4),              # fractions round to pixel centres / radius 3
])
def test_brush_paints_exactly_the_pixels_near_its_path(points, r):
    m = rasterize([Stroke.brush(points, r)], (48, 41))
    assert np.array_equal(m, capsule(points, int(round(r)), (48, 41)))


def test_brush_sizes_grow_the_stroke():
    areas = [rasterize([Stroke.brush([(10, 30), (50, 30)], r)], (60, 64)).sum() for r in (1, 3, 6)]
    # a horizontal capsule: 2r+1 rows over 41 columns plus two half-discs (counted exactly)
    assert areas == [capsule([(10, 30), (50, 30)], r, (60, 64)).sum() for r in (1, 3, 6)]
    assert areas[0] < areas[1] < areas[2]
    assert areas[1] == 41 * 7 + (29 - 7)  # disc of r=3 has 29 pixels, 7 of them in the centre column


def test_eraser_removes_only_what_it_touches():
    strokes = [Stroke.rect(0, 0, 29, 19), Stroke.brush([(15, 10)], 3, erase=True)]
    m = rasterize(strokes, (20, 30))
    disc = capsule([(15, 10)], 3, (20, 30))
    assert not m[disc].any()
    assert m[~disc].all()


def test_rectangles_include_both_corners_and_any_order_and_clip():
    m = rasterize([Stroke.rect(2, 3, 5, 7)], (10, 10))
    assert m.sum() == 4 * 5 and mask_box(m) == (3, 2, 7, 5)
    assert np.array_equal(m, rasterize([Stroke.rect(5, 7, 2, 3)], (10, 10)))
    m = rasterize([Stroke.rect(-5, 8, 100, 30)], (10, 12))
    assert mask_box(m) == (8, 0, 9, 11) and m.sum() == 2 * 12
    assert not rasterize([Stroke.rect(20, 20, 30, 30)], (10, 10)).any()


def test_ellipse_is_inscribed_in_its_box_and_symmetric():
    m = rasterize([Stroke.ellipse(10, 5, 30, 25)], (40, 40))
    assert mask_box(m) == (5, 10, 25, 30)
    assert np.array_equal(m, m[::-1][::-1]) and np.array_equal(m[5:26, 10:31], m[5:26, 10:31][::-1, ::-1])
    assert m[15, 20] and not m[5, 10]  # the centre is in, the box corner is not
    assert abs(m.sum() - np.pi * 10.5 * 10.5) < 0.06 * m.sum()


def test_undo_redo_and_clear():
    h = StrokeHistory((30, 31))
    h.add(Stroke.brush([(5, 5), (20, 5)], 2))
    first = h.mask
    h.add({"kind": "rect", "box": [10, 10, 20, 20], "erase": False})
    both = h.mask
    assert both.sum() > first.sum()
    assert h.undo().kind == "rect" and np.array_equal(h.mask, first)
    assert h.redo().kind == "rect" and np.array_equal(h.mask, both)
    h.clear()
    assert not h.mask.any() and len(h) == 3
    h.undo()
    assert np.array_equal(h.mask, both)  # clear is undoable
    h.undo(); h.undo()
    assert not h.mask.any() and h.undo() is None
    h.add(Stroke.rect(0, 0, 1, 1))
    assert h.redo() is None  # a new stroke forgets the redo list
    n = len(h)
    StrokeHistory((3, 3)).clear()  # clearing nothing is fine
    h.undo(); h.clear()
    assert len(h) == n - 1  # nothing to clear: no stroke added


def test_history_sync_from_a_front_end_matches_a_full_replay():
    h = StrokeHistory((25, 40))
    s1 = {"kind": "brush", "points": [[3, 3], [30, 20]], "radius": 3, "erase": False}
    s2 = {"kind": "ellipse", "box": [5, 5, 20, 15], "erase": True}
    h.sync([s1])
    _ = h.mask  # cache after one stroke
    h.sync([s1, s2])  # an append: only s2 is drawn
    assert np.array_equal(h.mask, rasterize([s1, s2], (25, 40)))
    h.sync([s2])  # not an append: full replay
    assert not h.mask.any()
    assert h.to_json() == [s2]


def test_base_mask_sits_under_the_strokes():
    base = np.zeros((10, 10), bool)
    base[2:5, 2:5] = True
    h = StrokeHistory((10, 10), base=base)
    assert np.array_equal(h.mask, base)
    h.add(Stroke.brush([(3, 3)], 0, erase=True))
    assert h.mask.sum() == 8
    h.add(Stroke.clear())
    assert not h.mask.any()


@pytest.mark.parametrize("stroke,message", [
    ({"kind": "spray"}, r"unknown stroke kind 'spray'; expected one of brush, rect, ellipse, clear"),
    ({"kind": "brush", "points": [], "radius": 2}, "a brush stroke needs at least one point"),
    ({"kind": "brush", "points": [[1, 2]], "radius": -1}, r"brush radius must be >= 0, got -1"),
    ({"kind": "brush", "points": [[1, float("nan")]], "radius": 1}, "brush point 0 y must be finite"),
    ({"kind": "brush", "points": [[1, 2, 3]], "radius": 1}, r"brush point 0 must be an \(x, y\) pair"),
    ({"kind": "rect", "box": [1, 2, 3]}, r"a rect needs a box \[x0, y0, x1, y1\]"),
    ({"kind": "rect", "box": [1, 2, 3, 4], "erase": "yes"}, "'erase' must be true or false"),
    ({"kind": "ellipse", "box": [0, 0, 1e9, 5]}, "too far outside any image"),
])
def test_bad_strokes_are_refused_with_a_clear_message(stroke, message):
    with pytest.raises(ValueError, match=message):
        Stroke.from_json(stroke)


def test_rasterize_names_the_bad_stroke_and_the_bad_shape():
    with pytest.raises(ValueError, match=r"stroke 1: unknown stroke kind"):
        rasterize([Stroke.rect(0, 0, 1, 1), {"kind": "x"}], (5, 5))
    with pytest.raises(ValueError, match="image size must be positive, got 0x5"):
        rasterize([], (0, 5))


def test_json_round_trip_and_mask_helpers():
    for s in (Stroke.brush([(1, 2), (3.5, 4)], 2.5, erase=True), Stroke.rect(1, 2, 3, 4), Stroke.clear()):
        assert Stroke.from_json(s.to_json()) == s
    m = rasterize([Stroke.rect(1, 1, 2, 2), Stroke.rect(6, 6, 7, 8)], (10, 10))
    assert describe_mask(m) == "10 hole pixels (10.0% of 10x10), 2 holes, box rows 1-8, columns 1-7"
    assert describe_mask(np.zeros((4, 6), bool)) == "no hole yet (6x4 image)"
    img = np.zeros((10, 10, 3), np.uint8)
    assert tuple(overlay(img, m)[1, 1]) == (128, 0, 0) and tuple(overlay(img, m)[0, 0]) == (0, 0, 0)


# ---------------------------------------------------------------------------------------------
# the painter widget
# ---------------------------------------------------------------------------------------------
def test_painter_from_code_equals_the_rasterised_strokes(small_model):
    p = MaskPainter(image(37, 53), model=small_model)
    assert p.frontend == "canvas" and p.mask.shape == (37, 53) and not p.mask.any()
    p.paint([(3, 4), (30, 20)], radius=3).rectangle(40, 2, 52, 10).erase([(45, 6)], radius=2)
    assert np.array_equal(p.mask, rasterize(p.strokes, (37, 53)))
    assert p.canvas.strokes == p.strokes  # the canvas shows the same strokes
    assert p.canvas.img_width == 53 and p.canvas.img_height == 37
    assert p.canvas.src.startswith("data:image/png;base64,")
    p.undo()
    assert np.array_equal(p.mask, rasterize(p.strokes[:2], (37, 53)))
    assert "hole pixels" in p.status.value


def test_strokes_from_the_browser_update_the_mask():
    p = MaskPainter(image(40, 60), model=None)
    drawn = [{"kind": "brush", "points": [[5.2, 5.9], [50, 30]], "radius": 4, "erase": False}]
    p.canvas.strokes = drawn  # what the JavaScript does after a drag
    assert np.array_equal(p.mask, capsule([(5, 6), (50, 30)], 4, (40, 60)))
    p.canvas.strokes = drawn + [{"kind": "clear"}]
    assert not p.mask.any()
    p.canvas.strokes = [{"kind": "brush", "points": [], "radius": 4}]
    assert "Error:" in p.message.value and "at least one point" in p.message.value


@pytest.mark.parametrize("h,w", [(37, 53), (64, 64), (50, 31)])
def test_complete_any_size_shows_four_panels_and_matches_complete(small_model, h, w):
    img = image(h, w, seed=h)
    p = MaskPainter(img, model=small_model)
    p.paint([(w // 4, h // 2), (3 * w // 4, h // 2)], radius=4).ellipse(0, 0, w // 5, h // 5)
    res = p.complete(postprocess=True)
    assert [t for t, _ in res.panels()] == ["input + holes", "mask (white = hole)",
                                            "raw output (no post-processing)", "post-processed"]
    assert res.completed.shape == res.postprocessed.shape == res.network.shape == (h, w, 3)
    np.testing.assert_array_equal(res.completed, complete(small_model, img, p.mask))
    outside = ~p.mask
    np.testing.assert_array_equal(res.postprocessed[outside], img[outside])
    assert len(p.results.children) == 4
    png = p.results.children[2].children[1].value
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape == (h, w, 3)
    assert p.progress.value == p.progress.max and p.progress.bar_style == "success"


def test_button_errors_are_shown_in_the_widget_not_raised(small_model, tmp_path):
    p = MaskPainter(image(32, 32), model=small_model)
    p.complete_button.click()  # empty mask
    assert "ValueError: the mask is empty: paint a hole first" in p.message.value
    assert p.progress.bar_style == "danger"
    p.rectangle(0, 0, 31, 31)
    p.complete_button.click()
    assert "the mask covers the whole image" in p.message.value
    p.undo().rectangle(5, 5, 10, 10)
    p.model_picker.value = "checkpoint"
    p.checkpoint_path.value = str(tmp_path / "nope.pt")
    p.complete_button.click()
    assert "checkpoint not found" in p.message.value
    p.model_picker.value = "given"
    p.complete_button.click()
    assert p.message.value.startswith("done with the model you passed")


def test_model_is_loaded_from_a_checkpoint_path(small_model, tmp_path):
    from glcic_lib.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "m.pt", small_model)
    p = MaskPainter(image(24, 28), model=str(path))
    assert p.model_picker.value == "checkpoint" and p.checkpoint_path.value == str(path)
    p.rectangle(5, 5, 12, 12)
    res = p.complete(postprocess=False)
    assert res.postprocessed is None and f"checkpoint {path}" in res.model
    np.testing.assert_array_equal(res.completed, complete(small_model, p.image, p.mask))


def test_missing_demo_model_falls_back_only_in_smoke_mode(monkeypatch, tmp_path):
    import glcic_lib.pretrained as pretrained
    from glcic_lib.checkpoint import CheckpointError
    from glcic_lib.widgets import load_model

    monkeypatch.setattr(pretrained, "demo_checkpoint_path", lambda: tmp_path / "missing.pt")
    monkeypatch.setenv("GLCIC_SMOKE", "1")
    model, note = load_model("demo")
    assert isinstance(model, CompletionNetwork) and "RANDOM" in note and "demo model is missing" in note
    monkeypatch.setenv("GLCIC_SMOKE", "0")
    with pytest.raises(CheckpointError, match="the bundled demo model is missing"):
        load_model("demo")
    with pytest.raises(ValueError, match="type the path of a checkpoint"):
        load_model("checkpoint", "  ")


def test_authors_model_is_offered_only_when_its_file_exists(monkeypatch, tmp_path, small_model):
    import glcic_lib.pretrained as pretrained
    from glcic_lib.widgets import load_model

    monkeypatch.setattr(pretrained, "authors_model_path", lambda name="places2": None)
    monkeypatch.setattr(pretrained, "model_choices", lambda: {})
    p = MaskPainter(image(16, 16))
    assert [v for _, v in p.model_picker.options] == ["demo", "checkpoint"]
    with pytest.raises(FileNotFoundError, match="the authors' model file .* was not found"):
        load_model("authors")

    fake = tmp_path / "completionnet_places2.t7"
    fake.write_bytes(b"stand-in")
    monkeypatch.setattr(pretrained, "authors_model_path", lambda name="places2": fake if name == "places2" else None)
    monkeypatch.setattr(pretrained, "model_choices",
                        lambda: {"authors' Places2 model": "authors:places2", "authors' CelebA faces model": "authors:celeba"})
    loaded = []
    monkeypatch.setattr(pretrained, "load_pretrained", lambda name="demo": loaded.append(name) or small_model)
    p = MaskPainter(image(24, 24))
    assert list(p.model_picker.options) == [("demo model (bundled)", "demo"), ("authors' Places2 model", "authors"),
                                            ("authors' CelebA faces model", "authors:celeba"),
                                            ("checkpoint file...", "checkpoint")]
    p.model_picker.value = "authors"
    p.rectangle(5, 5, 10, 10)
    res = p.complete(postprocess=False)
    assert loaded == ["authors"] and res.model == f"authors' Places2 model ({fake})"
    np.testing.assert_array_equal(res.completed, complete(small_model, p.image, p.mask))
    p.model_picker.value = "authors:celeba"
    p.complete_button.click()
    assert loaded == ["authors", "authors:celeba"] and "done with authors' model celeba" in p.message.value


def test_upload_loads_an_image_and_rejects_garbage():
    NOW = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)  # as ipywidgets deserialises it
    p = MaskPainter(image(20, 20))
    p.paint([(5, 5)], 2)
    ok, buf = cv2.imencode(".png", image(30, 44, seed=3))
    p.upload.value = ({"name": "x.png", "type": "image/png", "size": len(buf), "content": memoryview(buf.tobytes()),
                       "last_modified": NOW},)
    assert p.image.shape == (30, 44, 3) and not p.mask.any() and p.canvas.img_width == 44
    assert "loaded <code>x.png</code>" in p.message.value and p.image_picker.value == "(given image)"
    p.upload.value = ({"name": "bad.png", "type": "image/png", "size": 3, "content": memoryview(b"abc"),
                       "last_modified": NOW},)
    assert "cannot use the uploaded file bad.png: not an image file OpenCV can read" in p.message.value
    assert p.image.shape == (30, 44, 3)


def test_the_painter_offers_pictures_only_held_out_photographs_first():
    from glcic_lib.widgets import sample_images

    names = list(sample_images())
    assert names[0].startswith("data/heldout_photos/images/")
    assert not any(n.endswith("metrics.png") or "mask" in n or "ablation" in n for n in names)
    assert any(n.startswith("data/train/photos/") for n in names) and any(n.startswith("skimage: ") for n in names)


def test_the_image_dropdown_names_the_image_shown():
    from glcic_lib.widgets import sample_images

    names = list(sample_images())
    p = MaskPainter(names[0])
    assert p.image_picker.value == names[0] and p.image_picker.options[0] == names[0]
    p.load_image(image(20, 30))
    assert p.image_picker.value == "(given image)" and p.image.shape == (20, 30, 3)
    p.load_image(names[1])
    assert p.image_picker.value == names[1] and "(given image)" in p.image_picker.options
    p.image_picker.value = names[0]  # choosing in the dropdown loads that image
    np.testing.assert_array_equal(p.image, sample_images()[names[0]]())


def test_slider_fallback_says_why_and_makes_the_same_masks(tmp_path):
    p = MaskPainter(image(40, 50), frontend="sliders")
    assert p.frontend == "sliders" and p.canvas is None
    assert "frontend='sliders'" in p.fallback_reason
    p.sx.value, p.sy.value, p.sw.value, p.sh.value = 10, 5, 8, 6
    p.shape_kind.value = "rect"
    p._add_slider_shape(erase=False)
    assert mask_box(p.mask) == (5, 10, 10, 17) and p.mask.sum() == 48
    assert p.preview.value[:8] == b"\x89PNG\r\n\x1a\n"
    m = np.zeros((40, 50), bool)
    m[30:35, 40:45] = True
    cv2.imwrite(str(tmp_path / "m.png"), m.astype(np.uint8) * 255)
    p.set_mask(tmp_path / "m.png")
    assert np.array_equal(p.mask, m)
    with pytest.raises(ValueError, match=r"mask size \(3, 3\) differs from the image size \(40, 50\)"):
        p.set_mask(np.ones((3, 3)))
    with pytest.raises(ValueError, match="frontend must be one of"):
        MaskPainter(image(8, 8), frontend="ipycanvas")


def test_set_mask_is_shown_on_the_canvas():
    p = MaskPainter(image(16, 16))
    m = np.zeros((16, 16), bool)
    m[4:8, 4:8] = True
    p.set_mask(m)
    assert np.array_equal(p.mask, m)
    png = base64.b64decode(p.canvas.base_src.split(",", 1)[1])
    rgba = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(rgba[..., 3] > 0, m)


# ---------------------------------------------------------------------------------------------
# the receptive-field explorer
# ---------------------------------------------------------------------------------------------
def test_presets_come_from_table_1():
    assert PRESETS["completion network"] == COMPLETION_LAYERS
    assert [L.dilation for L in PRESETS["no dilation"]] == [1] * 17
    assert [L.kernel for L in PRESETS["no dilation"]] == [L.kernel for L in COMPLETION_LAYERS]
    no_dil_layers = PRESETS["Table 1 without the dilated layers"]
    assert len(no_dil_layers) == 13 and all(L.dilation == 1 for L in no_dil_layers)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_explorer_numbers_equal_receptive_field(preset):
    e = ReceptiveFieldExplorer(preset=preset, grid=128, hole=64)
    for pixel in [(64, 64), (10, 100), (127, 0)]:
        e.choose(*pixel)
        st = e.state()["main"]
        want = rf.analytic(PRESETS[preset])
        assert (st["size"], st["min_size"], st["jump"]) == (want.size, want.min_size, want.jump)
        assert st["box"] == rf.pixel_box(PRESETS[preset], *pixel)
        torch.manual_seed(0)
        net = rf.build_stack(rf.layer_specs(PRESETS[preset]), channels=1)
        assert st["measured_box"] == rf.measured(net, 128, pixel=pixel, in_channels=1, samples=1).box
        t, l, b, r = st["box"]  # the measured box is the analytic box cut at the grid's border
        assert st["measured_box"] == (max(t, 0), max(l, 0), min(b, 127), min(r, 127))


def test_figure_5_the_middle_of_a_hole_sees_valid_pixels_only_with_dilation():
    e = ReceptiveFieldExplorer(grid=256, hole=128)
    st = e.state()
    assert e.pixel == (128, 128)
    main, flat = st["main"], st["no dilation"]
    assert main["pixel_in_hole"] and flat["pixel_in_hole"]
    assert main["reaches_valid"] and main["valid_pixels"] == 256 * 256 - 128 * 128
    assert not flat["reaches_valid"] and flat["valid_pixels"] == 0 and flat["measured_valid_pixels"] == 0
    assert flat["size"] == rf.analytic(PRESETS["no dilation"]).size == 95
    # box (-23, -23, 275, 275) around a hole on rows/columns 64..191: 84 pixels beyond its edge
    assert main["box"] == (-23, -23, 275, 275)
    assert e.views[0].context_margin == 275 - 191 == 84 and e.views[1].context_margin == 171 - 191
    # near the hole's edge the flat stack does reach outside
    e.choose(70, 128)
    assert e.state()["no dilation"]["reaches_valid"]
    e.choose(128, 128)
    fig = e.figure()
    assert len(fig.axes) == 2 and "valid pixels seen: 0" in fig.axes[1].get_title()


def test_editing_layers_recomputes_the_numbers():
    e = ReceptiveFieldExplorer(grid=64, compare=False)
    e.n_layers.value = 3
    assert e.preset.value == "custom" and len(e.specs) == 3
    e.layer.value = 2
    e.stride.value = "2"
    e.dilation.value = 3
    assert e.specs[1] == make_spec(3, "2", 3) == rf.ConvSpec(3, 2, 3, 3, False)
    want = rf.analytic(e.specs)
    st = e.state()["main"]
    assert (st["size"], st["jump"]) == (want.size, want.jump) == (5 + 2 * 3 + 2 * 2, 2)
    assert e.out_y.max == output_size(e.specs, 64) - 1 == 31
    assert "no dilation" not in e.state()
    e.n_layers.value = 5  # grows with plain 3x3 convolutions
    assert e.specs[3:] == (make_spec(3), make_spec(3))


def test_output_size_matches_pytorch():
    for layers in (PRESETS["completion network"], [make_spec(5, "2"), make_spec(4, "1/2 (deconv)")],
                   [make_spec(3, "2", 2), make_spec(3, "2")]):
        specs = rf.layer_specs(list(layers))
        net = rf.build_stack(specs, channels=1)
        for n in (32, 45):
            assert net(torch.zeros(1, 1, n, n)).shape[-1] == output_size(specs, n)
    with pytest.raises(ValueError, match="shrinks the input to nothing"):
        output_size([rf.ConvSpec(5, 1, 1, 0, False)] * 4, 16)  # unpadded 5x5: 16 -> 12 -> 8 -> 4 -> 0
    with pytest.raises(ValueError, match="stride must be one of"):
        make_spec(3, "3")


def test_clicking_the_picture_chooses_the_pixel_under_the_mouse():
    e = ReceptiveFieldExplorer(grid=128, scale=2)
    e.canvas.picked = [2 * 30 + 1, 2 * 90]  # canvas pixels (x, y) at scale 2
    assert e.pixel == (90, 30)
    assert e.state()["main"]["box"] == rf.pixel_box(COMPLETION_LAYERS, 90, 30)
    e.canvas2.picked = [20, 40]
    assert e.pixel == (20, 10)


def test_calculator_helpers():
    calc = FieldCalculator()
    specs = rf.layer_specs(COMPLETION_LAYERS)
    assert without_dilation(specs) == tuple(rf.layer_specs(PRESETS["no dilation"]))
    hole = square_hole(10, 4)
    assert hole.sum() == 16 and hole[3:7, 3:7].all()
    v = calc.view("x", tuple(specs), 64, (32, 32), square_hole(64, 0))
    assert v.gradient.shape == (64, 64) and v.measured_box == (0, 0, 63, 63)
    with pytest.raises(ValueError, match=r"output pixel \(64, 0\) lies outside the 64x64 output"):
        calc.view("x", tuple(specs), 64, (64, 0), hole)
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        ReceptiveFieldExplorer(preset="nope")


def test_explorer_without_anywidget_falls_back_to_images_and_says_why(monkeypatch):
    import glcic_lib.widgets.canvas as canvas

    def missing(**kwargs):
        raise ImportError("No module named 'anywidget'")

    monkeypatch.setattr(canvas, "make_canvas", missing)
    e = ReceptiveFieldExplorer(grid=64, hole=32)
    assert e.canvas is None and "anywidget is not available" in e.fallback_reason
    assert "anywidget is not available" in e.ui.children[0].value
    assert all(w.value[:8] == b"\x89PNG\r\n\x1a\n" for w in e.image_widgets)
    e.out_y.value = 5  # the sliders choose the pixel instead of a click
    assert e.state()["main"]["box"] == rf.pixel_box(COMPLETION_LAYERS, 5, e.pixel[1])
    p = MaskPainter(image(20, 20))
    assert p.frontend == "sliders" and "anywidget is not available" in p.fallback_reason


def test_overlay_stays_visible_on_an_image_of_the_tint_colour():
    red = np.zeros((40, 40, 3), np.uint8); red[..., 0] = 255
    m = np.zeros((40, 40), bool); m[10:30, 12:28] = True
    out = overlay(red, m).astype(int)
    plain = overlay(red, m, hatch=False).astype(int)
    assert np.abs(plain - red).max() == 0          # a red tint alone leaves a red image unchanged
    assert np.abs(out - red)[m].max() > 100        # the hatch shows inside the hole ...
    ring = np.zeros_like(m); ring[9, 12:28] = True  # ... and the outline just outside it
    assert np.abs(out - red)[ring].max() > 100
    far = np.zeros_like(m); far[:5] = True
    assert np.array_equal(out[far], red[far])      # pixels away from the holes are untouched


def test_painter_compile_option_reuses_one_compiled_network(monkeypatch):
    """compile=True: every Complete on the painter's image runs the same cached compiled network
    (torch.compile replaced by a recording stand-in: no compiling in the tests)."""
    from conftest import make_model
    from glcic_lib import inpaint

    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: compiled.append(module) or module)
    model = make_model(0.125, seed=11)
    img = image(24, 32, seed=2)
    p = MaskPainter(img, model=model, compile=True)
    p.rectangle(4, 4, 14, 12)
    first = p.complete(postprocess=False)
    p.ellipse(16, 10, 28, 20)
    second = p.complete(postprocess=False)
    assert len(compiled) == 1 and compiled[0] is inpaint.inference_model(model, "cpu")
    np.testing.assert_array_equal(first.completed, complete(model, img, first.mask))
    np.testing.assert_array_equal(second.completed, complete(model, img, second.mask))
    assert MaskPainter(img, model=model).compile is False


# ---------------------------------------------------------------------------------------------
# layout and feedback (issue 21: what a learner saw in a browser)
# ---------------------------------------------------------------------------------------------
def test_painter_tool_row_keeps_its_label_and_whole_button_labels():
    from glcic_lib.widgets.painter import TOOL_BUTTON_WIDTH

    p = MaskPainter(image(32, 32))
    row = next(r for r in p.ui.children if p.tool in getattr(r, "children", ()))
    assert row.children[0] is p.tool_label and p.tool_label.value == "tool"
    assert p.tool.description == ""          # its own description would wrap away from the buttons
    assert row.layout.flex_flow == "row wrap" and p.tool.layout.flex == "0 0 auto"
    longest = max(len(label) for label in p.tool._options_labels)
    assert int(TOOL_BUTTON_WIDTH.rstrip("px")) >= 8 * longest + 20   # "rectangle" in full, with padding


def test_painter_progress_bar_empties_when_the_mask_changes(small_model):
    p = MaskPainter(image(40, 48), model=small_model)
    p.rectangle(10, 10, 20, 20)
    p.complete(postprocess=False)
    assert p.progress.value == p.progress.max and p.progress.bar_style == "success"
    p.rectangle(25, 25, 30, 30)               # a new hole: the green bar belongs to the old mask
    assert p.progress.value == 0 and p.progress.bar_style == ""
    assert "press Complete" in p.message.value
    p.complete(postprocess=False)
    assert p.progress.value == p.progress.max and p.progress.bar_style == "success"
    p.canvas.strokes = p.strokes + [{"kind": "brush", "points": [[5, 30]], "radius": 3, "erase": False}]
    assert p.progress.value == 0 and p.progress.bar_style == ""   # the same from a mouse stroke
    p.complete(postprocess=False)
    p.load_image(image(36, 36, seed=3))
    assert p.progress.value == 0 and p.progress.bar_style == ""


def test_explorer_keeps_the_pixel_in_place_and_says_so_when_the_output_shrinks():
    e = ReceptiveFieldExplorer(grid=64, hole=32, compare=False)
    e.choose(45, 20)
    assert e.state()["pixel_note"] == ""
    e.n_layers.value = 3
    e.layer.value = 2
    e.stride.value = "2"                      # the output halves: 64 -> 32
    assert output_size(e.specs, 64) == 32
    assert e.pixel == (22, 10)                # the same place on the input, not clamped to 31
    note = e.state()["pixel_note"]
    assert "now 32x32" in note and "(45, 20)" in note and "(22, 10)" in note
    assert "note:" in e.numbers.value
    e.stride.value = "1"                      # and back
    assert e.pixel == (44, 20)                # back on the 64x64 output, within a pixel of (45, 20)
    e.choose(3, 3)
    assert e.state()["pixel_note"] == ""      # a chosen pixel needs no explanation


def test_explorer_without_dilation_compares_with_table_1_not_with_itself():
    e = ReceptiveFieldExplorer(preset="no dilation", grid=128, hole=64)
    st = e.state()
    assert "no dilation" not in st and "completion network" in st
    assert st["completion network"]["size"] == rf.analytic(COMPLETION_LAYERS).size
    assert st["main"]["size"] == rf.analytic(PRESETS["no dilation"]).size
    assert st["main"]["box_size"] != st["completion network"]["box_size"]
    assert "Table 1" in e.views[1].title and "no dilation to remove" in e.numbers.value
    e.preset.value = "completion network"
    assert "no dilation" in e.state() and e.views[1].title == "without dilation"


def test_explorer_hole_outline_is_drawn_over_the_gradient():
    from glcic_lib.widgets.explorer import HOLE_OUTLINE, render_view

    e = ReceptiveFieldExplorer(grid=64, hole=32, scale=2)
    pic = render_view(e.views[0], np.full((64, 64, 3), 128, np.uint8), scale=2)
    top = 16 * 2 - 2                          # the hole starts at row/column 16; the outline sits just outside
    assert tuple(pic[top, 64]) == HOLE_OUTLINE and tuple(pic[64, top]) == HOLE_OUTLINE
