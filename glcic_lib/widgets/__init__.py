"""Interactive widgets for the course: the receptive-field explorer and the mask painter.

* :class:`ReceptiveFieldExplorer`: build a stack of layers (or pick a preset built from
  Table 1) and see the receptive field of one output pixel, analytic and measured, on a grid
  or a real image, with a hole in the middle (the paper's Figure 5).
* :class:`MaskPainter`: draw holes with the mouse, press "Complete", compare input, mask, raw
  output and post-processed output.

Both are ordinary Python objects that display themselves in a notebook (JupyterLab, Notebook
7, VS Code, Colab).  The drawing surface is an ``anywidget`` canvas
(:mod:`glcic_lib.widgets.canvas`); all the logic (strokes to mask, receptive fields) is plain
Python and tested without a browser.
"""
from .explorer import PRESETS, FieldCalculator, FieldView, ReceptiveFieldExplorer
from .painter import CompletionResult, MaskPainter, load_model, run_completion, sample_images

__all__ = ["ReceptiveFieldExplorer", "MaskPainter", "CompletionResult", "FieldCalculator", "FieldView",
           "PRESETS", "load_model", "run_completion", "sample_images"]
