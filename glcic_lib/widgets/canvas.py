"""The drawing surface shared by the painter and the explorer: an ``anywidget`` canvas.

Why anywidget: the widget's JavaScript (``glcic_lib/widgets_js/paint_canvas.js``) travels with
the Python object, so there is no JupyterLab extension to build or enable, and it runs in
JupyterLab, Notebook 7, VS Code and Colab (Colab needs its custom widget manager, which the
notebooks' first cell enables).  Colab's widget manager is known to break ipycanvas mouse
events, which is why the painter does not use ipycanvas.

The contract between the two halves is small and all JSON:

* Python -> browser: the image (``src``, a PNG data URL) and its size, the tool, the brush
  radius, an optional starting mask (``base_src``) and the list of ``strokes``;
* browser -> Python: a new ``strokes`` list after each finished stroke, or ``picked`` =
  ``[x, y]`` after a click in ``"pick"`` mode.

Python owns the meaning of the strokes (:mod:`glcic_lib.painting`); the browser only draws a
preview with the same conventions.
"""
from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import traitlets

JS_DIR = Path(__file__).resolve().parent.parent / "widgets_js"

TOOLS = ("brush", "eraser", "rect", "ellipse", "pick", "none")


def png_data_url(image: np.ndarray) -> str:
    """Encode a uint8 RGB / RGBA / grey array as a ``data:image/png;base64,...`` URL."""
    arr = np.ascontiguousarray(image)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise ValueError(f"cannot encode an array of shape {image.shape} as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def png_bytes(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 RGB / grey / bool array (for ``ipywidgets.Image``)."""
    return base64.b64decode(png_data_url(image).split(",", 1)[1])


def _anywidget_base():
    import anywidget  # noqa: F401  (ImportError handled by the callers: they fall back)

    return anywidget.AnyWidget


def make_canvas(**kwargs):
    """A :class:`PaintCanvas` (raises ImportError when anywidget is not installed)."""
    return _canvas_class()(**kwargs)


_CLASS = None


def _canvas_class():
    global _CLASS
    if _CLASS is None:
        base = _anywidget_base()

        class PaintCanvas(base):
            """Image + strokes canvas (see the module docstring for the synced state)."""

            _esm = (JS_DIR / "paint_canvas.js").read_text(encoding="utf-8")
            _css = (JS_DIR / "paint_canvas.css").read_text(encoding="utf-8")

            src = traitlets.Unicode("").tag(sync=True)
            base_src = traitlets.Unicode("").tag(sync=True)
            img_width = traitlets.Int(256).tag(sync=True)
            img_height = traitlets.Int(256).tag(sync=True)
            display_width = traitlets.Int(512).tag(sync=True)
            tool = traitlets.Enum(TOOLS, default_value="brush").tag(sync=True)
            radius = traitlets.Float(12.0).tag(sync=True)
            erase_shapes = traitlets.Bool(False).tag(sync=True)
            hole_alpha = traitlets.Float(0.55).tag(sync=True)
            strokes = traitlets.List(traitlets.Dict()).tag(sync=True)
            picked = traitlets.List().tag(sync=True)

            def set_image(self, image: np.ndarray, display_width: int | None = None) -> None:
                """Show ``image`` (uint8 array) at its own resolution, scaled to ``display_width``."""
                h, w = image.shape[:2]
                with self.hold_sync():
                    self.img_width, self.img_height = int(w), int(h)
                    self.display_width = int(display_width or min(w, 640))
                    self.src = png_data_url(image)

        _CLASS = PaintCanvas
    return _CLASS
