"""The receptive-field explorer: which input pixels can one output pixel see?

::

    from glcic_lib.widgets import ReceptiveFieldExplorer
    explorer = ReceptiveFieldExplorer()     # Table 1's completion network, 256x256, 128x128 hole
    explorer                                # display: pick a preset, edit layers, click a pixel

For the chosen output pixel the explorer draws, on a pixel grid or on a real image,

* the **analytic** receptive field: the exact box from
  :func:`glcic_lib.receptive_field.pixel_box` (green square), with the stack's size and jump
  from :func:`glcic_lib.receptive_field.analytic`;
* the **measured** field: the gradient of that output pixel with respect to every input pixel,
  on a narrow random network with the same layers (:func:`glcic_lib.receptive_field.measured`
  on :func:`~glcic_lib.receptive_field.build_stack`): red-yellow, brighter = larger gradient;
* a square **hole** in the middle (grey), as in training (a 128x128 hole in a 256x256 crop),
  and whether the field of a pixel inside the hole reaches valid (known) pixels.

Next to it the same stack *without dilation* (every dilation set to 1): the paper's Figure 5.
A stack that has no dilation to remove (the "no dilation" preset, say) is compared with Table 1's
completion network instead, so the two panels never show the same thing twice.  When a change of
the stack (or of the grid) changes the output's size, the chosen output pixel is moved to the same
place on the input, and the numbers below the pictures say so.  With the completion network, the middle of a 128x128 hole sees about 85 valid pixels on every
side; without dilation it sees none.  Everything is cached, and the network is narrow (one
channel), so an update takes a few hundredths of a second on a CPU.
"""
from __future__ import annotations

import contextlib
import dataclasses
import html
import time
from fractions import Fraction

import numpy as np

from .. import receptive_field as rf
from ..tables import COMPLETION_LAYERS, Layer

#: Presets, all built from :data:`glcic_lib.tables.COMPLETION_LAYERS` (never retyped).
PRESETS: dict[str, tuple[Layer, ...]] = {
    "completion network": COMPLETION_LAYERS,
    "no dilation": tuple(dataclasses.replace(L, dilation=1, kind="conv" if L.kind == "dilated conv" else L.kind)
                         for L in COMPLETION_LAYERS),
    "Table 1 without the dilated layers": tuple(L for L in COMPLETION_LAYERS if L.dilation == 1),
}
CUSTOM = "custom"

STRIDES = {"1": (1, False), "2": (2, False), "1/2 (deconv)": (2, True)}


def specs_for(layers) -> tuple[rf.ConvSpec, ...]:
    """The stack as receptive-field specs (what the calculator and the measured net use)."""
    return tuple(rf.layer_specs(list(layers)))


def without_dilation(specs) -> tuple[rf.ConvSpec, ...]:
    """The same stack with every dilation set to 1 and "same" padding recomputed."""
    out = []
    for s in specs:
        pad = s.padding if s.transposed else (s.kernel - 1) // 2
        out.append(dataclasses.replace(s, dilation=1, padding=pad))
    return tuple(out)


def make_spec(kernel: int, stride: str = "1", dilation: int = 1) -> rf.ConvSpec:
    """A layer as the editor builds it: "same" padding, stride "1", "2" or "1/2 (deconv)"."""
    if kernel < 1:
        raise ValueError(f"kernel must be >= 1, got {kernel}")
    if dilation < 1:
        raise ValueError(f"dilation must be >= 1, got {dilation}")
    if stride not in STRIDES:
        raise ValueError(f"stride must be one of {list(STRIDES)}, got {stride!r}")
    s, transposed = STRIDES[stride]
    if transposed:
        if kernel < 2:
            raise ValueError("a stride-1/2 (transposed) layer needs a kernel of at least 2")
        return rf.ConvSpec(kernel, 2, dilation, max(0, (dilation * (kernel - 1) + 1 - 2) // 2), True)
    return rf.ConvSpec(kernel, s, dilation, dilation * (kernel - 1) // 2, False)


def stride_label(spec: rf.ConvSpec) -> str:
    return "1/2 (deconv)" if spec.transposed else str(spec.stride)


def output_size(specs, n: int) -> int:
    """Side of the output for an n x n input (PyTorch's formulas)."""
    for s in specs:
        if s.transposed:
            n = (n - 1) * s.stride - 2 * s.padding + s.dilation * (s.kernel - 1) + 1
        else:
            n = (n + 2 * s.padding - s.dilation * (s.kernel - 1) - 1) // s.stride + 1
        if n < 1:
            raise ValueError("this stack shrinks the input to nothing: use a larger grid or fewer strides")
    return n


@dataclasses.dataclass
class FieldView:
    """Everything the explorer knows about one stack and one output pixel."""

    title: str
    specs: tuple
    grid: int
    pixel: tuple[int, int]          # output pixel (y, x)
    rf: rf.RF                       # the stack's receptive field (size, min_size, jump)
    box: tuple[int, int, int, int]  # analytic input box of this pixel (may leave the grid)
    measured_box: tuple[int, int, int, int]
    gradient: np.ndarray            # (grid, grid) |d out / d in|
    hole: np.ndarray                # (grid, grid) bool

    @property
    def box_size(self) -> tuple[int, int]:
        t, l, b, r = self.box
        return b - t + 1, r - l + 1

    @property
    def clipped_box(self) -> tuple[int, int, int, int]:
        t, l, b, r = self.box
        g = self.grid - 1
        return max(t, 0), max(l, 0), min(b, g), min(r, g)

    @property
    def in_field(self) -> np.ndarray:
        t, l, b, r = self.clipped_box
        m = np.zeros_like(self.hole)
        if t <= b and l <= r:
            m[t:b + 1, l:r + 1] = True
        return m

    @property
    def valid_pixels(self) -> int:
        """Known (non-hole) input pixels inside the analytic field."""
        return int((self.in_field & ~self.hole).sum())

    @property
    def measured_valid_pixels(self) -> int:
        """Known input pixels with a non-zero gradient."""
        return int(((self.gradient > 0) & ~self.hole).sum())

    @property
    def reaches_valid(self) -> bool:
        return self.valid_pixels > 0

    @property
    def pixel_in_hole(self) -> bool:
        cy, cx = self.center
        return bool(self.hole[min(max(cy, 0), self.grid - 1), min(max(cx, 0), self.grid - 1)])

    @property
    def center(self) -> tuple[int, int]:
        """Where the output pixel sits on the input grid (the middle of its field)."""
        t, l, b, r = self.box
        return (t + b) // 2, (l + r) // 2

    @property
    def context_margin(self) -> int:
        """How far the field reaches beyond the hole's edge, on its shortest side (<= 0: not on
        every side).  Uses the analytic box, so it may count padding beyond the image."""
        ys, xs = np.nonzero(self.hole)
        if len(ys) == 0:
            return 0
        t, l, b, r = self.box
        ht, hl, hb, hr = ys.min(), xs.min(), ys.max(), xs.max()
        return int(min(ht - t, hl - l, b - hb, r - hr))

    def numbers(self) -> dict:
        return {"layers": len(self.specs), "size": self.rf.size, "min_size": self.rf.min_size,
                "jump": self.rf.jump, "box": self.box, "box_size": self.box_size,
                "measured_box": self.measured_box, "valid_pixels": self.valid_pixels,
                "measured_valid_pixels": self.measured_valid_pixels, "reaches_valid": self.reaches_valid,
                "pixel_in_hole": self.pixel_in_hole}


class FieldCalculator:
    """Cached receptive-field computations for the explorer (no widgets: easy to test)."""

    def __init__(self, seed: int = 0, samples: int = 1):
        self.seed = seed
        self.samples = samples
        self._nets: dict = {}
        self._grads: dict = {}
        self._rf: dict = {}
        self._steps: dict = {}

    def net(self, specs):
        import torch

        if specs not in self._nets:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                self._nets[specs] = rf.build_stack(specs, channels=1).double().eval()
        return self._nets[specs]

    def analytic(self, specs) -> rf.RF:
        if specs not in self._rf:
            self._rf[specs] = rf.analytic(specs)
        return self._rf[specs]

    def steps(self, specs) -> list[rf.RF]:
        if specs not in self._steps:
            self._steps[specs] = rf.steps(specs)
        return self._steps[specs]

    def gradient(self, specs, grid: int, pixel: tuple[int, int]) -> rf.Measured:
        """The measured field of output ``pixel`` on a ``grid`` x ``grid`` input (cached).

        One thread: for a one-channel network PyTorch's thread pool costs more than it saves
        (10x slower on a busy 2-core machine), and the explorer must answer within 0.5 s."""
        import torch

        key = (specs, grid, pixel)
        if key not in self._grads:
            if len(self._grads) > 256:
                self._grads.clear()
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                self._grads[key] = rf.measured(self.net(specs), input_size=grid, pixel=pixel, in_channels=1,
                                               samples=self.samples, seed=self.seed)
            finally:
                torch.set_num_threads(threads)
        return self._grads[key]

    def view(self, title: str, specs, grid: int, pixel: tuple[int, int], hole: np.ndarray) -> FieldView:
        n_out = output_size(specs, grid)
        y, x = pixel
        if not (0 <= y < n_out and 0 <= x < n_out):
            raise ValueError(f"output pixel {pixel} lies outside the {n_out}x{n_out} output")
        m = self.gradient(specs, grid, (y, x))
        return FieldView(title, specs, grid, (y, x), self.analytic(specs), rf.pixel_box(specs, y, x),
                         m.box, m.gradient, hole)


def square_hole(grid: int, side: int) -> np.ndarray:
    """A centred square hole of ``side`` pixels on a ``grid`` x ``grid`` image (bool)."""
    m = np.zeros((grid, grid), bool)
    side = max(0, min(side, grid))
    if side:
        t = (grid - side) // 2
        m[t:t + side, t:t + side] = True
    return m


def _background(kind: str, grid: int, image: np.ndarray | None) -> np.ndarray:
    if kind == "image" and image is not None:
        import cv2

        h, w = image.shape[:2]
        s = min(h, w)
        crop = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        return cv2.resize(crop, (grid, grid), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[:grid, :grid]
    cells = ((yy // 8 + xx // 8) % 2).astype(np.uint8)
    bg = np.where(cells[..., None] == 1, 235, 250).astype(np.uint8).repeat(3, 2)
    bg[(yy % 32 == 0) | (xx % 32 == 0)] = 200
    return bg


#: Colour of the hole's outline in the explorer's pictures (a saturated blue: it stays visible
#: over the grey hole, the red-yellow gradient and any photograph).
HOLE_OUTLINE = (30, 110, 255)


def render_view(view: FieldView, background: np.ndarray, scale: int = 2) -> np.ndarray:
    """The view as an RGB picture (``scale`` screen pixels per input pixel): the background, the
    hole in dark grey with a blue outline (drawn last, so the gradient's speckle never hides it),
    the measured gradient in red-yellow, the analytic field in green and the pixel as a cross."""
    import cv2

    img = background.astype(np.float32).copy()
    img[view.hole] = 0.25 * img[view.hole] + 0.75 * 90  # dark grey hole
    g = view.gradient
    if g.max() > 0:
        heat = (g / g.max()) ** 0.25
        on = g > 0
        color = np.stack([np.ones_like(heat), heat, 0.15 * np.ones_like(heat)], -1) * 255
        a = (0.25 + 0.5 * heat)[..., None]
        img[on] = ((1 - a) * img + a * color)[on]
    img = cv2.resize(img.clip(0, 255).astype(np.uint8), None, fx=scale, fy=scale,
                     interpolation=cv2.INTER_NEAREST)
    ys, xs = np.nonzero(view.hole)
    if len(ys):   # the hole's outline: blue, just outside the hole, over everything but the field box
        ht, hl, hb, hr = ys.min(), xs.min(), ys.max(), xs.max()
        w = max(2, scale)
        cv2.rectangle(img, (hl * scale - w, ht * scale - w), ((hr + 1) * scale - 1 + w, (hb + 1) * scale - 1 + w),
                      HOLE_OUTLINE, w)
    t, l, b, r = view.box
    cv2.rectangle(img, (l * scale, t * scale), ((r + 1) * scale - 1, (b + 1) * scale - 1), (0, 170, 0),
                  max(1, scale))
    cy, cx = view.center
    c = (cx * scale + scale // 2, cy * scale + scale // 2)
    cv2.drawMarker(img, c, (0, 200, 255), cv2.MARKER_CROSS, 8 * scale, max(1, scale))
    return img


def _fmt_jump(j: Fraction) -> str:
    return str(j.numerator) if j.denominator == 1 else f"{j.numerator}/{j.denominator}"


class ReceptiveFieldExplorer:
    """Receptive fields of a layer stack, live (see the module docstring).

    ``preset``: one of :data:`PRESETS` (or pass ``layers``, a table or specs: "custom").
    ``grid``: the input side in pixels (default 256, the training crop).  ``hole``: the side
    of the centred square hole (default half the grid).  ``pixel``: the output pixel (y, x),
    default the centre.  ``image``: uint8 RGB for the "image" background (default a bundled
    image).  ``compare``: also show the stack without dilation (Figure 5).
    """

    def __init__(self, preset: str = "completion network", layers=None, grid: int = 256,
                 hole: int | None = None, pixel: tuple[int, int] | None = None, image=None,
                 background: str = "image", compare: bool = True, scale: int = 2):
        import ipywidgets as W

        if layers is None and preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
        if grid < 8 or grid > 1024:
            raise ValueError(f"grid must be between 8 and 1024 pixels, got {grid}")
        if background not in ("image", "grid"):
            raise ValueError(f"background must be 'image' or 'grid', got {background!r}")
        self._W = W
        self.calc = FieldCalculator()
        self.scale = scale
        self._specs = specs_for(PRESETS[preset] if layers is None else layers)
        if image is None:
            from .painter import default_image

            image = default_image()[1]
        from .painter import as_image

        self.image = as_image(image)
        self.views: list[FieldView] = []
        self.last_update_seconds = 0.0
        self._quiet = False
        self.pixel_note = ""        # set when a change of the stack or grid moved the chosen pixel
        self._n_out: int | None = None

        self.preset = W.Dropdown(options=list(PRESETS) + [CUSTOM], value=preset if layers is None else CUSTOM,
                                 description="preset", layout=W.Layout(width="360px"))
        self.n_layers = W.IntSlider(value=len(self._specs), min=1, max=32, description="layers")
        self.layer = W.IntSlider(value=1, min=1, max=len(self._specs), description="edit layer")
        self.kernel = W.IntSlider(value=3, min=1, max=9, description="kernel")
        self.stride = W.Dropdown(options=list(STRIDES), value="1", description="stride",
                                 layout=W.Layout(width="220px"))
        self.dilation = W.IntSlider(value=1, min=1, max=32, description="dilation")
        self.grid = W.IntSlider(value=grid, min=32, max=512, step=32, description="grid",
                                continuous_update=False)
        self.hole = W.IntSlider(value=grid // 2 if hole is None else hole, min=0, max=grid,
                                description="hole side", continuous_update=False)
        self.out_y = W.IntSlider(description="pixel y")
        self.out_x = W.IntSlider(description="pixel x")
        self.background = W.ToggleButtons(options=["image", "grid"], value=background,
                                          description="show on")
        self.compare = W.Checkbox(value=compare, description="compare: same stack without dilation",
                                  indent=False, layout=W.Layout(width="auto"))
        self.canvas = self.canvas2 = None
        try:
            from .canvas import make_canvas

            self.canvas = make_canvas(tool="pick")
            self.canvas2 = make_canvas(tool="pick")
            for c in (self.canvas, self.canvas2):
                c.observe(self._on_pick, names="picked")
                c.add_class("glcic-explorer-canvas")
            surfaces = [self.canvas, self.canvas2]
            self.fallback_reason = None
        except ImportError as e:  # no anywidget: static images, pixel chosen with sliders
            self.fallback_reason = f"anywidget is not available ({e}): choose the pixel with the sliders"
            self.image_widgets = [W.Image(format="png"), W.Image(format="png")]
            surfaces = self.image_widgets
        self.titles = [W.HTML(), W.HTML()]
        self.numbers = W.HTML()
        self.numbers.add_class("glcic-explorer-numbers")
        self.table = W.HTML()
        self.panels = [W.VBox([self.titles[0], surfaces[0]]), W.VBox([self.titles[1], surfaces[1]])]

        self._load_layer_editor()
        self._configure_pixel(pixel)
        for w in (self.out_y, self.out_x, self.grid, self.hole, self.background, self.compare):
            w.observe(self._on_change, names="value")
        self.preset.observe(self._on_preset, names="value")
        self.n_layers.observe(self._on_n_layers, names="value")
        self.layer.observe(lambda ch: self._load_layer_editor(), names="value")
        for w in (self.kernel, self.stride, self.dilation):
            w.observe(self._on_edit_layer, names="value")

        controls = W.VBox([
            W.HBox([self.preset, self.n_layers]),
            W.HBox([self.layer, self.kernel, self.stride, self.dilation]),
            W.HBox([self.grid, self.hole, self.background]),
            W.HBox([self.out_y, self.out_x, self.compare]),
        ])
        head = [W.HTML("<i>" + html.escape(self.fallback_reason) + "</i>")] if self.fallback_reason else []
        self.ui = W.VBox(head + [controls, W.HBox(self.panels), self.numbers, self.table])
        self.ui.add_class("glcic-explorer")
        self.update()

    def _repr_mimebundle_(self, **kwargs):
        return self.ui._repr_mimebundle_(**kwargs)

    # -- state --------------------------------------------------------------------------------
    @property
    def specs(self) -> tuple[rf.ConvSpec, ...]:
        return self._specs

    @property
    def pixel(self) -> tuple[int, int]:
        return self.out_y.value, self.out_x.value

    def set_layers(self, layers) -> None:
        """Use another stack (a table, a list of specs/dicts): the preset becomes "custom".
        The chosen pixel keeps its place on the input when the output's size changes."""
        self._specs = specs_for(layers)
        with self._quietly():
            self.preset.value = CUSTOM
            self.n_layers.value = len(self._specs)
            self.layer.max = len(self._specs)
        self._load_layer_editor()
        self._configure_pixel(self.pixel, keep_place=True)
        self.update()

    def choose(self, y: int, x: int) -> "ReceptiveFieldExplorer":
        """Select output pixel (y, x), as a click would."""
        with self._quietly():
            self.out_y.value, self.out_x.value = int(y), int(x)
        self.pixel_note = ""
        self.update()
        return self

    @property
    def compares_with_table_1(self) -> bool:
        """True when the stack has no dilation to remove: the second panel then shows Table 1's
        completion network (with its dilations) instead of an identical copy of the first."""
        return without_dilation(self._specs) == self._specs

    def state(self) -> dict:
        """Numbers of the shown views: ``"main"`` and, if the comparison is on, ``"no dilation"``
        (the stack without dilation) or, for a stack without dilation, ``"completion network"``
        (Table 1's); ``"pixel_note"``: how the last change of the stack moved the chosen pixel."""
        out = {"main": self.views[0].numbers()}
        if len(self.views) > 1:
            out["completion network" if self.compares_with_table_1 else "no dilation"] = self.views[1].numbers()
        out["seconds"] = self.last_update_seconds
        out["pixel_note"] = self.pixel_note
        return out

    # -- events -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _quietly(self):
        """Set widget values without each change redrawing (the caller updates once at the end)."""
        was, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = was

    def _on_change(self, change):
        if change["owner"] in (self.out_y, self.out_x) and not self._quiet:
            self.pixel_note = ""   # the learner moved the pixel: nothing to explain
        if change["owner"] is self.grid:
            self.hole.max = self.grid.value
            self._configure_pixel(self.pixel, keep_place=True)
        elif change["owner"] is self.hole:
            self.hole.max = self.grid.value
        if not self._quiet:
            self.update()

    def _on_preset(self, change):
        if self._quiet or change["new"] == CUSTOM:
            return
        self._specs = specs_for(PRESETS[change["new"]])
        with self._quietly():
            self.n_layers.value = len(self._specs)
        self._load_layer_editor()
        self._configure_pixel(self.pixel, keep_place=True)
        self.update()

    def _on_n_layers(self, change):
        if self._quiet:
            return
        n = change["new"]
        specs = list(self._specs[:n])
        while len(specs) < n:
            specs.append(make_spec(3))
        self.set_layers(specs)

    def _load_layer_editor(self):
        with self._quietly():
            self.layer.max = len(self._specs)
            s = self._specs[self.layer.value - 1]
            self.kernel.value, self.dilation.value = s.kernel, s.dilation
            self.stride.value = stride_label(s) if stride_label(s) in STRIDES else "1"

    def _on_edit_layer(self, change):
        if self._quiet:
            return
        try:
            spec = make_spec(self.kernel.value, self.stride.value, self.dilation.value)
        except ValueError as e:
            self.numbers.value = f'<span style="color:#b00020">Error: {html.escape(str(e))}</span>'
            return
        specs = list(self._specs)
        specs[self.layer.value - 1] = spec
        self.set_layers(specs)

    def _on_pick(self, change):
        pick = change["new"]
        if not pick or len(pick) != 2:
            return
        # the picture is scaled: canvas pixel -> input pixel -> the output pixel there
        x, y = pick[0] // self.scale, pick[1] // self.scale
        try:
            n_out = output_size(self._specs, self.grid.value)
        except ValueError:
            return
        ratio = n_out / self.grid.value
        self.choose(min(max(int(y * ratio), 0), n_out - 1), min(max(int(x * ratio), 0), n_out - 1))

    def _configure_pixel(self, pixel, keep_place: bool = False):
        """Set the pixel sliders' range for the current stack and grid, and the chosen pixel.

        ``keep_place``: the stack (or the grid) just changed; if the output's
        size changed with it, move ``pixel`` to the output pixel at the same relative place on
        the input (a stride-2 layer halves the output: pixel 179 of 256 becomes 89 of 128) and
        say so in :attr:`pixel_note`, instead of clamping it silently to the border."""
        try:
            n_out = output_size(self._specs, self.grid.value)
        except ValueError:
            n_out = 1
        old_n = self._n_out
        with self._quietly():
            for s in (self.out_y, self.out_x):
                s.max = max(n_out - 1, 0)
            if pixel is None:
                y, x = n_out // 2, n_out // 2
            elif keep_place and old_n and old_n != n_out:
                def place(v):
                    return min(max(int(round((v + 0.5) * n_out / old_n - 0.5)), 0), n_out - 1)
                y, x = place(pixel[0]), place(pixel[1])
                self.pixel_note = (f"the output is now {n_out}x{n_out} (it was {old_n}x{old_n}): the chosen pixel "
                                   f"moved from (y, x) = {tuple(pixel)} to {(y, x)}, the same place on the input")
            else:
                y, x = min(pixel[0], n_out - 1), min(pixel[1], n_out - 1)
                if tuple(pixel) != (y, x):
                    self.pixel_note = (f"the output is {n_out}x{n_out}: the chosen pixel {tuple(pixel)} was "
                                       f"moved to {(y, x)}, its last row/column")
            self.out_y.value, self.out_x.value = y, x
        self._n_out = n_out

    # -- drawing ------------------------------------------------------------------------------
    def compute(self) -> list[FieldView]:
        grid = self.grid.value
        hole = square_hole(grid, self.hole.value)
        views = [self.calc.view(self.preset.value, self._specs, grid, self.pixel, hole)]
        if self.compare.value:
            if self.compares_with_table_1:   # nothing to remove: compare with Table 1's dilated network
                table1 = specs_for(COMPLETION_LAYERS)
                n_out = output_size(table1, grid)
                cy, cx = views[0].center   # the output pixel of Table 1's network at the same place
                pixel = (min(max(cy, 0), n_out - 1), min(max(cx, 0), n_out - 1))
                views.append(self.calc.view("completion network (Table 1, dilated)", table1, grid, pixel, hole))
            else:
                views.append(self.calc.view("without dilation", without_dilation(self._specs), grid, self.pixel,
                                            hole))
        return views

    def update(self) -> None:
        t0 = time.perf_counter()
        try:
            self.views = self.compute()
        except ValueError as e:
            self.numbers.value = f'<span style="color:#b00020">Error: {html.escape(str(e))}</span>'
            return
        bg = _background(self.background.value, self.grid.value, self.image)
        for i, panel in enumerate(self.panels):
            panel.layout.display = None if i < len(self.views) else "none"
        for i, view in enumerate(self.views):
            pic = render_view(view, bg, self.scale)
            if self.canvas is not None:
                (self.canvas, self.canvas2)[i].set_image(pic, display_width=min(pic.shape[1], 420))
            else:
                from .canvas import png_bytes

                self.image_widgets[i].value = png_bytes(pic)
                self.image_widgets[i].layout.width = f"{min(pic.shape[1], 420)}px"
            self.titles[i].value = f"<b>{html.escape(view.title)}</b>: field {view.box_size[0]}x{view.box_size[1]}"
        self.last_update_seconds = time.perf_counter() - t0
        self.numbers.value = self._numbers_html()
        self.table.value = self._table_html()

    def _numbers_html(self) -> str:
        rows = []
        for v in self.views:
            reach = ("<b style='color:#080'>yes</b>" if v.reaches_valid else "<b style='color:#b00020'>no</b>")
            rows.append(
                f"<tr><td>{html.escape(v.title)}</td><td>{len(v.specs)}</td>"
                f"<td>{v.rf.min_size}..{v.rf.size}</td><td>{_fmt_jump(v.rf.jump)}</td>"
                f"<td>{v.box}</td><td>{v.box_size[0]}x{v.box_size[1]}</td><td>{v.measured_box}</td>"
                f"<td>{'yes' if v.pixel_in_hole else 'no'}</td><td>{v.valid_pixels}</td><td>{reach}</td></tr>")
        head = ("<tr><th>stack</th><th>layers</th><th>RF size (min..max)</th><th>jump</th>"
                "<th>analytic box (t, l, b, r)</th><th>this pixel's field</th><th>measured box (in grid)</th>"
                "<th>pixel in hole</th><th>valid pixels seen</th><th>reaches valid pixels</th></tr>")
        notes = []
        if len(self.views) > 1 and self.compares_with_table_1:
            notes.append("this stack has no dilation to remove, so the second picture shows Table 1's completion "
                         "network (with its dilations) at the same place")
        if self.pixel_note:
            notes.append(self.pixel_note)
        note = "".join(f"<br><b>note:</b> {html.escape(n)}" for n in notes)
        return (f"<table class='glcic-rf-numbers'>{head}{''.join(rows)}</table>"
                f"<small>output pixel (y, x) = {self.pixel}; green: analytic field, red-yellow: gradient, "
                f"dark grey with a blue outline: hole; updated in {self.last_update_seconds * 1000:.0f} ms"
                f"{note}</small>")

    def _table_html(self) -> str:
        steps = self.calc.steps(self._specs)
        rows = []
        for i, (s, r) in enumerate(zip(self._specs, steps), 1):
            style = " style='background:#eef'" if i == self.layer.value else ""
            rows.append(f"<tr{style}><td>{i}</td><td>{s.kernel}x{s.kernel}</td><td>{stride_label(s)}</td>"
                        f"<td>{s.dilation}</td><td>{r.min_size}..{r.size}</td><td>{_fmt_jump(r.jump)}</td></tr>")
        return ("<details><summary>layers and the receptive field after each</summary><table>"
                "<tr><th>#</th><th>kernel</th><th>stride</th><th>dilation</th><th>RF after</th><th>jump</th></tr>"
                + "".join(rows) + "</table></details>")

    def figure(self, size: float = 4.0):
        """Matplotlib figure of the current views (with the numbers in the titles)."""
        import matplotlib.pyplot as plt

        bg = _background(self.background.value, self.grid.value, self.image)
        fig, axes = plt.subplots(1, len(self.views), figsize=(size * len(self.views), size * 1.1))
        for ax, v in zip(np.atleast_1d(axes), self.views):
            ax.imshow(render_view(v, bg, 1))
            ax.set_title(f"{v.title}: output pixel (y, x) = {v.pixel}\nfield {v.box_size[0]}x{v.box_size[1]}, "
                         f"jump {_fmt_jump(v.rf.jump)}, valid pixels seen: {v.valid_pixels}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        if self.pixel_note:
            fig.text(0.5, 0.01, "note: " + self.pixel_note, ha="center", fontsize=8)
        fig.tight_layout()
        return fig
