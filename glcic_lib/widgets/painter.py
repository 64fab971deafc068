"""The mask painter: draw holes on an image with the mouse, then let the network fill them.

::

    from glcic_lib.widgets import MaskPainter
    painter = MaskPainter()          # a bundled image and the bundled demo model
    painter                          # display it; draw; press "Complete"
    painter.mask                     # the holes, numpy bool (H, W)

Everything the mouse does can also be done from code (the notebooks use this where no mouse
exists, e.g. in CI)::

    painter.paint([(40, 50), (90, 60)], radius=10)   # a brush stroke through two points
    painter.rectangle(10, 10, 60, 40)                 # corners (x0, y0), (x1, y1)
    painter.undo(); painter.clear()
    result = painter.complete()                       # same as pressing "Complete"

The front-end is an ``anywidget`` canvas (:mod:`glcic_lib.widgets.canvas`) that sends strokes
as JSON; the mask itself is computed in Python by :mod:`glcic_lib.painting`.  When anywidget
is missing, or with ``frontend="sliders"``, the painter falls back to rectangles and ellipses
placed with sliders and to mask files, and says why.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import painting
from ..config import bundled_data_dir, smoke_mode
from .canvas import png_bytes

FRONTENDS = ("auto", "canvas", "sliders")

#: skimage.data images offered when the bundled data folder has none (all ship with skimage).
SKIMAGE_IMAGES = ("astronaut", "coffee", "chelsea", "rocket")

#: The image dropdown's entry for an image passed as an array (or a file outside the samples).
GIVEN_IMAGE = "(given image)"

#: Images with a side longer than this get a note: completion on a CPU may take seconds.
LARGE_SIDE = 2048

#: Width of each tool button: room for the longest label, "rectangle", at the default font.
TOOL_BUTTON_WIDTH = "96px"


# ---------------------------------------------------------------------------------------------
# images and models
# ---------------------------------------------------------------------------------------------
#: Folders of ``data/`` whose pictures the painter offers, in this order (figures, masks and
#: anything else in ``data/`` are not pictures to paint on), and how many of each at most.
SAMPLE_FOLDERS = (("heldout_photos/images", 40), ("heldout/images", 20), ("train/photos", 40), ("train", 40))


def sample_images() -> dict[str, Callable[[], np.ndarray]]:
    """Images the painter offers: the bundled photographs and tiles (:data:`SAMPLE_FOLDERS`:
    the held-out photographs first, never seen in training), then a few from ``skimage.data``.
    Maps a display name to a loader returning uint8 RGB."""
    from ..imageio import IMAGE_EXTENSIONS, read_image

    found: dict[str, Callable[[], np.ndarray]] = {}
    root = bundled_data_dir()
    for folder, most in SAMPLE_FOLDERS:
        d = root / folder
        if not d.is_dir():
            continue
        files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        for p in files[:most]:
            found[f"data/{p.relative_to(root).as_posix()}"] = (lambda p=p: read_image(p))
    try:
        import skimage.data as skdata

        for name in SKIMAGE_IMAGES:
            if hasattr(skdata, name):
                found[f"skimage: {name}"] = (lambda name=name: _rgb(getattr(skdata, name)()))
    except ImportError:  # pragma: no cover - scikit-image is a dependency
        pass
    return found


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    return np.ascontiguousarray(image)


def as_image(image, samples: dict | None = None) -> np.ndarray:
    """uint8 RGB from an array, a file path, or a name from :func:`sample_images` (``samples``:
    its result, if the caller already has it)."""
    if isinstance(image, (str, Path)):
        samples = sample_images() if samples is None else samples
        if str(image) in samples:
            return samples[str(image)]()
        from ..imageio import read_image

        return read_image(image)
    return _rgb(image)


def default_image(samples: dict | None = None) -> tuple[str, np.ndarray]:
    samples = sample_images() if samples is None else samples
    if not samples:  # pragma: no cover - skimage always provides some
        rng = np.random.default_rng(0)
        return "noise", rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    name = next(iter(samples))
    return name, samples[name]()


def _authors_model_path():
    from .. import pretrained

    finder = getattr(pretrained, "authors_model_path", None)
    if finder is None:
        return None
    try:
        return finder()
    except Exception:  # a broken finder must not break the painter
        return None


def authors_options() -> list[tuple[str, str]]:
    """(label, choice) for each of the authors' released models whose file is present here:
    "authors' Places2 model" first (choice ``"authors"``), then any other
    (``glcic_lib.pretrained.model_choices``).  Empty when none was downloaded."""
    from .. import pretrained

    out = []
    if _authors_model_path() is not None:
        out.append((MODEL_CHOICES["authors"], "authors"))
    choices = getattr(pretrained, "model_choices", None)
    try:
        others = choices() if choices is not None else {}
    except Exception:  # a broken finder must not break the painter
        others = {}
    for label, name in others.items():
        if str(name).startswith("authors:") and name != "authors:places2":
            out.append((label, name))
    return out


MODEL_CHOICES = {"demo": "demo model (bundled)", "authors": "authors' Places2 model",
                 "checkpoint": "checkpoint file...", "given": "the model you passed"}


def load_model(choice: str = "demo", path: str | Path | None = None):
    """Load a completion network for the painter: returns ``(model, note)``.

    ``choice``: ``"demo"`` (the bundled demo model), ``"authors"`` (the authors' Places2 model,
    when its file is present), ``"checkpoint"`` (``path``: a glcic checkpoint or ``.t7`` file).
    If the demo checkpoint is missing, smoke mode falls back to a small *random* network (the
    note says so: its output is noise); outside smoke mode that is an error.
    """
    from ..checkpoint import CheckpointError
    from ..pretrained import load_pretrained

    if choice == "demo":
        try:
            return load_pretrained("demo"), "demo model (data/checkpoints/demo_completion.pt)"
        except (CheckpointError, FileNotFoundError) as e:
            if not smoke_mode():
                raise
            import torch

            from ..models import CompletionNetwork

            torch.manual_seed(0)
            return (CompletionNetwork(width=0.25).eval(),
                    f"a small RANDOM network: the demo model is missing and smoke mode is on, so the holes "
                    f"fill with noise ({e})")
    if choice == "authors":
        p = _authors_model_path()
        if p is None:
            raise FileNotFoundError("the authors' model file (completionnet_places2.t7) was not found in "
                                    "$GLCIC_CKPT or data/checkpoints")
        return load_pretrained("authors"), f"authors' Places2 model ({p})"
    if choice.startswith("authors:"):  # the authors' other released models (free-form, CelebA)
        return load_pretrained(choice), f"authors' model {choice.partition(':')[2]}"
    if choice == "checkpoint":
        if not path or not str(path).strip():
            raise ValueError("type the path of a checkpoint (.pt) or Torch7 (.t7) file first")
        p = Path(str(path).strip()).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"checkpoint not found: {p}")
        return load_pretrained(str(p)), f"checkpoint {p}"
    raise ValueError(f"unknown model choice {choice!r}; expected demo, authors or checkpoint")


# ---------------------------------------------------------------------------------------------
# the result of one completion
# ---------------------------------------------------------------------------------------------
@dataclass
class CompletionResult:
    """What "Complete" produced (all uint8 RGB (H, W, 3) but ``mask``)."""

    image: np.ndarray
    mask: np.ndarray
    network: np.ndarray      # the network's output everywhere (before pasting)
    completed: np.ndarray    # network pixels in the holes, the input elsewhere (= glcic_lib.complete)
    postprocessed: np.ndarray | None
    model: str
    seconds: dict = field(default_factory=dict)

    def panels(self) -> list[tuple[str, np.ndarray]]:
        """(title, image) pairs in the order the widget shows them."""
        out = [("input + holes", painting.overlay(self.image, self.mask)),
               ("mask (white = hole)", np.repeat(self.mask[..., None].astype(np.uint8) * 255, 3, 2)),
               ("raw output (no post-processing)", self.completed)]
        if self.postprocessed is not None:
            out.append(("post-processed", self.postprocessed))
        return out

    def figure(self, size: float = 3.2):
        """A matplotlib figure with the panels side by side."""
        import matplotlib.pyplot as plt

        panels = self.panels()
        fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size * 1.05))
        for ax, (title, img) in zip(np.atleast_1d(axes), panels):
            ax.imshow(img)
            ax.set_title(title, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        name = self.model.split(" (")[0]
        if "RANDOM" in name:
            name = "a small RANDOM network (smoke mode, no demo model)"
        fig.suptitle(f"{name}: {self.image.shape[1]}x{self.image.shape[0]} image, "
                     f"network {self.seconds.get('network', 0):.2f} s", fontsize=10)
        fig.tight_layout()
        return fig


def run_completion(model, image: np.ndarray, mask: np.ndarray, postprocess: bool = True,
                   device=None, step: Callable[[str], None] | None = None, compile: bool = False) -> dict:
    """One forward pass on ``image`` with holes ``mask``: network output, completed, post-processed.

    The completed image is exactly what :func:`glcic_lib.complete` returns; this function only
    keeps the network's full output too, for display.  ``step(name)`` is called before each
    stage (the widget's progress bar).  ``compile=True``: the cached ``torch.compile`` of the
    network (:func:`glcic_lib.inpaint.compiled_model`): the first completion of an image size
    compiles (tens of seconds), every later one of that size is faster.
    """
    from ..inpaint import _check_numpy, fill_numpy
    from ..postprocess import postprocess as _post

    step = step or (lambda name: None)
    img_t, mask_t = _check_numpy(image, mask)
    if not mask_t.any():
        raise ValueError("the mask is empty: paint a hole first")
    if mask_t.all():
        raise ValueError("the mask covers the whole image: there is no context to complete from")
    seconds = {}
    step("network")
    t0 = time.perf_counter()
    network, completed, hole = fill_numpy(model, image, img_t, mask_t, device, compile=compile)
    seconds["network"] = time.perf_counter() - t0
    post = None
    if postprocess:
        step("post-processing")
        t0 = time.perf_counter()
        post = _post(completed, hole)
        seconds["postprocess"] = time.perf_counter() - t0
    return {"network": network, "completed": completed, "postprocessed": post, "seconds": seconds}


# ---------------------------------------------------------------------------------------------
# the widget
# ---------------------------------------------------------------------------------------------
class MaskPainter:
    """Paint holes on an image and complete them (see the module docstring).

    ``image``: uint8 RGB array, file path or a name from :func:`sample_images` (default: the
    first bundled image).  ``model``: a :class:`~glcic_lib.models.CompletionNetwork`, a checkpoint
    path, or None for the demo model.  ``frontend``: ``"auto"`` (canvas when anywidget is
    available), ``"canvas"`` or ``"sliders"`` (the fallback).  ``radius``: initial brush radius
    in image pixels.  ``compile=True`` completes with a cached ``torch.compile`` of the network:
    the first Complete compiles (tens of seconds), later ones on the same image are faster (see
    :mod:`glcic_lib.inpaint`; worth it for many completions of a large image).
    """

    def __init__(self, image=None, model=None, frontend: str = "auto", radius: int = 12,
                 postprocess: bool = True, display_width: int | None = None, compile: bool = False):
        import ipywidgets as W

        if frontend not in FRONTENDS:
            raise ValueError(f"frontend must be one of {FRONTENDS}, got {frontend!r}")
        self._W = W
        self._display_width = display_width
        self.compile = compile
        self._models: dict = {}
        self.result: CompletionResult | None = None
        self.fallback_reason: str | None = None

        # -- which front-end ----------------------------------------------------------------
        self.canvas = None
        if frontend in ("auto", "canvas"):
            try:
                from .canvas import make_canvas

                self.canvas = make_canvas(radius=float(radius))
            except ImportError as e:
                if frontend == "canvas":
                    raise ImportError(f"the canvas front-end needs anywidget ({e}); "
                                      f"pip install anywidget, or use frontend='sliders'") from e
                self.fallback_reason = (f"anywidget is not available ({e}), so the mouse canvas cannot "
                                        f"run: place rectangles and ellipses with the sliders, or load a mask file")
        else:
            self.fallback_reason = "the slider front-end was requested (frontend='sliders')"
        self.frontend = "canvas" if self.canvas is not None else "sliders"

        # -- image and model ------------------------------------------------------------------
        self._samples = samples = sample_images()   # listed once: the image menu's loaders
        if image is None:
            name, img = default_image(samples)
        else:
            img = as_image(image, samples)
            name = str(image) if isinstance(image, (str, Path)) and str(image) in samples else GIVEN_IMAGE
        self.image = img
        self.history = painting.StrokeHistory(img.shape[:2])
        self._given_model = None
        model_options = [(MODEL_CHOICES["demo"], "demo")]
        if model is not None:
            if isinstance(model, (str, Path)):
                model_options.append((MODEL_CHOICES["checkpoint"], "checkpoint"))
            else:
                self._given_model = model
                model_options.insert(0, (MODEL_CHOICES["given"], "given"))
        model_options += authors_options()
        if not any(v == "checkpoint" for _, v in model_options):
            model_options.append((MODEL_CHOICES["checkpoint"], "checkpoint"))

        # -- controls --------------------------------------------------------------------------
        lay = lambda w: W.Layout(width=w)
        options = ([name] if name not in samples else []) + list(samples)
        self.image_picker = W.Dropdown(options=options, value=name, description="image",
                                       layout=lay("300px"))
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload image")
        self.model_picker = W.Dropdown(options=model_options,
                                       value="checkpoint" if isinstance(model, (str, Path)) else model_options[0][1],
                                       description="model", layout=lay("300px"))
        self.checkpoint_path = W.Text(value=str(model) if isinstance(model, (str, Path)) else "",
                                      placeholder="path/to/checkpoint.pt or .t7",
                                      description="file", layout=lay("360px"))
        # the label is a widget of its own and the buttons are wide enough for "rectangle": a
        # ToggleButtons' own description wraps away from its buttons in a narrow row, and its
        # default button width cuts the longest option to "rectan..."
        self.tool = W.ToggleButtons(options=[("brush", "brush"), ("eraser", "eraser"),
                                             ("rectangle", "rect"), ("ellipse", "ellipse")],
                                    value="brush", description="",
                                    style={"button_width": TOOL_BUTTON_WIDTH},
                                    layout=W.Layout(width="auto", flex="0 0 auto"))
        self.tool_label = W.Label("tool", layout=W.Layout(width="40px", flex="0 0 auto"))
        self.radius = W.IntSlider(value=int(radius), min=0, max=100, description="brush radius",
                                  style={"description_width": "initial"}, layout=lay("300px"))
        self.undo_button = W.Button(description="Undo", icon="undo", layout=lay("90px"))
        self.redo_button = W.Button(description="Redo", icon="repeat", layout=lay("90px"))
        self.clear_button = W.Button(description="Clear", icon="trash", layout=lay("90px"))
        self.postprocess = W.Checkbox(value=postprocess, description="post-process (Telea + Poisson)",
                                      indent=False, layout=lay("260px"))
        self.complete_button = W.Button(description="Complete", button_style="success", icon="magic",
                                        layout=lay("120px"))
        self.complete_button.add_class("glcic-complete")
        self.progress = W.IntProgress(value=0, min=0, max=4, description="", layout=lay("200px"))
        self.status = W.HTML()
        self.status.add_class("glcic-mask-status")
        self.message = W.HTML()
        self.message.add_class("glcic-message")
        self.results = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.results.add_class("glcic-results")

        # -- wiring ----------------------------------------------------------------------------
        self.undo_button.on_click(lambda _: self.undo())
        self.redo_button.on_click(lambda _: self.redo())
        self.clear_button.on_click(lambda _: self.clear())
        self.complete_button.on_click(lambda _: self._on_complete())
        self.image_picker.observe(self._on_pick_image, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.model_picker.observe(lambda ch: self._show_path_box(), names="value")
        self.tool.observe(self._on_tool, names="value")
        self.radius.observe(self._on_radius, names="value")

        if self.canvas is not None:
            self.canvas.observe(self._on_canvas_strokes, names="strokes")
            surface = self.canvas
        else:
            surface = self._build_slider_panel()
        self._surface = surface
        self._show_path_box()
        self._set_image(img, reset=True)

        rows = [
            W.HBox([self.image_picker, self.upload]),
            W.HBox([self.model_picker, self.checkpoint_path]),
            (W.HBox([self.tool_label, self.tool, self.radius],
                    layout=W.Layout(flex_flow="row wrap", align_items="center"))
             if self.canvas is not None else W.HTML()),
            W.HBox([self.undo_button, self.redo_button, self.clear_button, self.postprocess,
                    self.complete_button, self.progress]),
        ]
        if self.fallback_reason:
            rows.insert(0, W.HTML(f"<b>Fallback painter:</b> {self.fallback_reason}."))
        self.ui = W.VBox(rows + [surface, self.status, self.message, self.results])
        self.ui.add_class("glcic-painter")

    # -- display ----------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.ui._repr_mimebundle_(**kwargs)

    # -- the mask ---------------------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray:
        """The current holes, numpy bool (H, W), True = hole."""
        return self.history.mask

    @property
    def strokes(self) -> list[dict]:
        """The strokes so far, as the JSON dicts the canvas exchanges."""
        return self.history.to_json()

    def paint(self, points, radius: float | None = None, erase: bool = False) -> "MaskPainter":
        """A brush stroke through ``points`` ((x, y) image pixels); radius defaults to the slider's."""
        r = self.radius.value if radius is None else radius
        return self._add(painting.Stroke.brush(points, r, erase))

    def erase(self, points, radius: float | None = None) -> "MaskPainter":
        """An eraser stroke (paints the pixels back to "known")."""
        return self.paint(points, radius, erase=True)

    def rectangle(self, x0, y0, x1, y1, erase: bool = False) -> "MaskPainter":
        return self._add(painting.Stroke.rect(x0, y0, x1, y1, erase))

    def ellipse(self, x0, y0, x1, y1, erase: bool = False) -> "MaskPainter":
        return self._add(painting.Stroke.ellipse(x0, y0, x1, y1, erase))

    def undo(self) -> "MaskPainter":
        self.history.undo()
        return self._after_edit()

    def redo(self) -> "MaskPainter":
        self.history.redo()
        return self._after_edit()

    def clear(self) -> "MaskPainter":
        self.history.clear()
        return self._after_edit()

    def set_mask(self, mask) -> "MaskPainter":
        """Start from a given mask (array (H, W) or a mask image file; holes by
        :func:`glcic_lib.imageio.hole_mask`: True, 1, or at least half white); strokes are
        drawn on top of it.  Forgets the strokes so far."""
        if isinstance(mask, (str, Path)):
            from ..imageio import read_mask

            mask = read_mask(mask)
        mask = np.asarray(mask)
        if mask.ndim == 3 and mask.shape[2] in (1, 3, 4):
            mask = mask[..., :3].max(axis=2)
        if mask.shape != self.image.shape[:2]:
            raise ValueError(f"mask size {mask.shape} differs from the image size {self.image.shape[:2]}")
        from ..imageio import hole_mask

        mask = hole_mask(mask)
        self.history.reset(base=mask)
        if self.canvas is not None:
            rgba = np.zeros(mask.shape + (4,), np.uint8)
            rgba[mask != 0] = (255, 40, 40, 255)
            from .canvas import png_data_url

            self.canvas.base_src = png_data_url(rgba)
        return self._after_edit()

    def _add(self, stroke) -> "MaskPainter":
        self.history.add(stroke)
        return self._after_edit()

    def _after_edit(self) -> "MaskPainter":
        self._mark_stale()
        if self.canvas is not None:
            new = self.history.to_json()
            if self.canvas.strokes != new:
                self.canvas.strokes = new  # fires _on_canvas_strokes, which shows the status
                return self
        else:
            self._refresh_preview()
        self._show_status()
        return self

    def _show_status(self) -> None:
        self.status.value = f"<span>{painting.describe_mask(self.mask)}</span>"

    def _mark_stale(self) -> None:
        """After an edit the last result no longer matches the mask: empty the progress bar
        (a full green bar would say the shown result is for this mask) and say so."""
        if self.result is None or np.array_equal(self.result.mask, self.mask):
            return
        if self.progress.value or self.progress.bar_style:
            self.progress.value = 0
            self.progress.bar_style = ""
            self.message.value = "<i>the mask changed: press Complete for a new result</i>"

    def _on_canvas_strokes(self, change):
        try:
            self.history.sync(change["new"])
        except ValueError as e:
            self._error(f"the canvas sent a stroke that cannot be used ({e}); undo it")
            return
        self._mark_stale()
        self._show_status()

    # -- image ------------------------------------------------------------------------------
    def load_image(self, image) -> "MaskPainter":
        """Show another image (array, path or sample name); forgets the holes."""
        img = as_image(image)
        self._set_image(img, reset=True)
        self._show_name(str(image) if isinstance(image, (str, Path)) else GIVEN_IMAGE)
        return self

    def _show_name(self, name: str) -> None:
        """Make the image dropdown name what is shown (without reloading it)."""
        self._picking = True
        try:
            if name not in self.image_picker.options:
                self.image_picker.options = [name] + [o for o in self.image_picker.options if o != GIVEN_IMAGE]
            self.image_picker.value = name
        finally:
            self._picking = False

    def _set_image(self, img: np.ndarray, reset: bool) -> None:
        if img.shape[0] < 4 or img.shape[1] < 4:
            raise ValueError(f"the image is too small ({img.shape[1]}x{img.shape[0]}); it needs at least 4x4 pixels")
        self.image = img
        self.history.reset(shape=img.shape[:2])
        self.result = None
        self.results.children = ()
        self.progress.value = 0
        self.progress.bar_style = ""
        big = max(img.shape[:2]) > LARGE_SIDE
        self.message.value = (f"<i>large image ({img.shape[1]}x{img.shape[0]}): one forward pass, "
                              f"may take a few seconds on a CPU</i>" if big else "")
        if self.canvas is not None:
            with self.canvas.hold_sync():
                self.canvas.base_src = ""
                self.canvas.strokes = []
                self.canvas.set_image(img, self._display_width)
        else:
            self._configure_sliders()
        self._after_edit()

    def _on_pick_image(self, change):
        name = change["new"]
        if getattr(self, "_picking", False):
            return
        loader = self._samples.get(name)
        if loader is None:
            return
        try:
            self._set_image(loader(), reset=True)
        except Exception as e:
            self._error(f"cannot load {name}: {e}")

    def _on_upload(self, change):
        files = change["new"]
        if not files:
            return
        f = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
        name = f.get("name", "upload")
        try:
            import cv2

            data = np.frombuffer(bytes(f["content"]), np.uint8)
            img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
            if img is None:
                raise ValueError("not an image file OpenCV can read")
            self._set_image(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), reset=True)
            self._show_name(GIVEN_IMAGE)
            self.message.value = f"loaded <code>{name}</code> ({img.shape[1]}x{img.shape[0]})"
        except Exception as e:
            self._error(f"cannot use the uploaded file {name}: {e}")

    # -- tools ------------------------------------------------------------------------------
    def _on_tool(self, change):
        if self.canvas is not None:
            self.canvas.tool = change["new"]

    def _on_radius(self, change):
        if self.canvas is not None:
            self.canvas.radius = float(change["new"])

    def _show_path_box(self):
        self.checkpoint_path.layout.display = None if self.model_picker.value == "checkpoint" else "none"

    # -- fallback panel ---------------------------------------------------------------------
    def _build_slider_panel(self):
        W = self._W
        self.shape_kind = W.ToggleButtons(options=[("rectangle", "rect"), ("ellipse", "ellipse")],
                                          value="rect", description="shape")
        self.sx, self.sy = W.IntSlider(description="x (left)"), W.IntSlider(description="y (top)")
        self.sw, self.sh = W.IntSlider(description="width", min=1), W.IntSlider(description="height", min=1)
        add = W.Button(description="Add hole", icon="plus")
        rub = W.Button(description="Erase shape", icon="eraser")
        add.on_click(lambda _: self._add_slider_shape(erase=False))
        rub.on_click(lambda _: self._add_slider_shape(erase=True))
        self.mask_upload = W.FileUpload(accept="image/*", multiple=False, description="mask file")
        self.mask_upload.observe(self._on_mask_upload, names="value")
        self.preview = W.Image(format="png")
        self.preview.add_class("glcic-preview")
        for s in (self.sx, self.sy, self.sw, self.sh):
            s.observe(lambda ch: self._refresh_preview(), names="value")
        return W.VBox([W.HBox([self.shape_kind, add, rub, self.mask_upload]),
                       W.HBox([self.sx, self.sy]), W.HBox([self.sw, self.sh]), self.preview])

    def _configure_sliders(self):
        h, w = self.image.shape[:2]
        self.sx.max, self.sy.max = w - 1, h - 1
        self.sw.max, self.sh.max = w, h
        self.sw.value, self.sh.value = max(1, w // 4), max(1, h // 4)
        self.sx.value, self.sy.value = (w - self.sw.value) // 2, (h - self.sh.value) // 2

    def _slider_box(self):
        return (self.sx.value, self.sy.value, self.sx.value + self.sw.value - 1, self.sy.value + self.sh.value - 1)

    def _add_slider_shape(self, erase: bool):
        x0, y0, x1, y1 = self._slider_box()
        (self.rectangle if self.shape_kind.value == "rect" else self.ellipse)(x0, y0, x1, y1, erase=erase)

    def _on_mask_upload(self, change):
        files = change["new"]
        if not files:
            return
        f = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
        try:
            import cv2

            m = cv2.imdecode(np.frombuffer(bytes(f["content"]), np.uint8), cv2.IMREAD_GRAYSCALE)
            if m is None:
                raise ValueError("not an image file OpenCV can read")
            self.set_mask(m > 0)
        except Exception as e:
            self._error(f"cannot use the mask file {f.get('name', '')}: {e}")

    def _refresh_preview(self):
        if self.canvas is not None or not hasattr(self, "preview"):
            return
        img = painting.overlay(self.image, self.mask)
        import cv2

        x0, y0, x1, y1 = self._slider_box()
        cv2.rectangle(img, (x0, y0), (x1, y1), (0, 255, 255), max(1, max(img.shape[:2]) // 300))
        self.preview.value = png_bytes(img)
        self.preview.layout.width = f"{min(img.shape[1], self._display_width or 640)}px"

    # -- completion -------------------------------------------------------------------------
    def _model(self):
        choice = self.model_picker.value
        if choice == "given":
            return self._given_model, "the model you passed"
        key = (choice, self.checkpoint_path.value.strip() if choice == "checkpoint" else None)
        if key not in self._models:
            self._models[key] = load_model(choice, self.checkpoint_path.value)
        return self._models[key]

    def complete(self, postprocess: bool | None = None) -> CompletionResult:
        """Run the completion on the current image and mask, show it, and return it.

        Raises on bad input (an empty mask, a missing checkpoint, ...); the button calls
        this too but shows the error in the widget instead."""
        W = self._W
        post = self.postprocess.value if postprocess is None else postprocess
        stages = {"model": 1, "network": 2, "post-processing": 3}
        self.progress.bar_style = ""
        self.progress.value = 0
        self.progress.max = 4 if post else 3

        def step(name):
            self.progress.value = stages[name]
            self.message.value = f"<i>{name}...</i>"

        mask = self.mask
        if not mask.any():
            raise ValueError("the mask is empty: paint a hole first")
        step("model")
        t0 = time.perf_counter()
        model, note = self._model()
        load_s = time.perf_counter() - t0
        out = run_completion(model, self.image, mask, postprocess=post, step=step, compile=self.compile)
        out["seconds"]["model"] = load_s
        self.result = CompletionResult(self.image, mask, out["network"], out["completed"],
                                       out["postprocessed"], note, out["seconds"])
        boxes = []
        width = f"{min(220, max(120, 880 // len(self.result.panels())))}px"
        for title, img in self.result.panels():
            im = W.Image(value=png_bytes(img), format="png", layout=W.Layout(width=width))
            im.add_class("glcic-result-image")
            boxes.append(W.VBox([W.HTML(f"<b>{title}</b>"), im]))
        self.results.children = tuple(boxes)
        self.progress.value = self.progress.max
        self.progress.bar_style = "success"
        s = out["seconds"]
        times = ", ".join(f"{k} {v:.2f} s" for k, v in s.items())
        warn = ' <b style="color:#b00">(random weights)</b>' if "RANDOM" in note else ""
        self.message.value = f"done with {note}{warn}: {times}"
        return self.result

    def _on_complete(self):
        self.complete_button.disabled = True
        try:
            self.complete()
        except Exception as e:  # shown in the widget: a button must never print a traceback
            self.progress.bar_style = "danger"
            self._error(f"{type(e).__name__}: {e}")
        finally:
            self.complete_button.disabled = False

    def _error(self, text: str) -> None:
        import html

        self.message.value = f'<span style="color:#b00020"><b>Error:</b> {html.escape(str(text))}</span>'

    def figure(self, size: float = 3.2):
        """Side-by-side matplotlib figure of the last result (complete first)."""
        if self.result is None:
            raise RuntimeError("nothing completed yet: call complete() (or press Complete) first")
        return self.result.figure(size)
