"""Receptive fields: computed from the layer description (:func:`analytic`) and measured
from gradients (:func:`measured`).

How layers are counted (input-pixel units throughout):

* a convolution with kernel ``k``, stride ``s``, dilation ``d`` and padding ``p`` grows the
  receptive field by ``d*(k-1)`` times the current jump, multiplies the jump by ``s`` and
  moves the start by ``-p`` jumps;
* a transposed convolution with stride ``s`` divides the jump by ``s``.  Which of its inputs
  reach one output pixel depends on the output pixel's *phase* (``o mod s``), so after a
  transposed convolution neighbouring output pixels can have receptive fields of different
  sizes.  We do not approximate: :func:`pixel_box` maps an output pixel's interval back
  through every layer exactly (for a transposed layer, by enumerating which kernel taps land
  on it), and :func:`analytic` reports the largest and smallest size over the phases.

The completion network (Table 1): every output pixel sees between **299x299 and 303x303**
input pixels (the size repeats with period 4 along each axis, because the two 4x4 stride-1/2
deconvolutions each feed an output pixel from exactly 2 inputs, but at different offsets for
even and odd pixels).  Gradient measurements agree pixel for pixel (``tests``).  The paper
quotes 307x307 without saying how it counted.  One simple count gives exactly 307: the
ordinary rule above with each 4x4 deconvolution counted as a *3x3* convolution at its input's
jump (adding ``2 x jump``, then halving the jump).  Counted with the real 4x4 kernel the same
rule gives 313 (at the input's jump) or 304 (at the output's); notebook 01 prints all four.
That is our reading, not the paper's word.  Either way a pixel
in the middle of a 128x128 training hole sees ~85 pixels of valid context on every side,
which is the point of the paper's Figure 5: with the four dilated layers (Table 1 rows 7-10)
made ordinary 3x3 convolutions the field shrinks to 91-95 pixels and the middle of such a
hole sees no valid pixel at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from .tables import Layer


@dataclass(frozen=True)
class ConvSpec:
    """A convolution as the calculator sees it (built from a table row or an nn.Module)."""

    kernel: int
    stride: int = 1
    dilation: int = 1
    padding: int = 0
    transposed: bool = False


def _spec_from_layer(L: Layer) -> ConvSpec:
    return ConvSpec(L.kernel, L.int_stride, L.dilation, L.padding, L.transposed)


def _pair(v) -> int:
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise ValueError(f"only square kernels/strides/dilations are supported, got {v}")
        return int(v[0])
    return int(v)


def _spec_from_module(m: nn.Module) -> ConvSpec | None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        if isinstance(m.padding, str):
            raise ValueError("string padding ('same'/'valid') is not supported; give integers")
        return ConvSpec(_pair(m.kernel_size), _pair(m.stride), _pair(m.dilation), _pair(m.padding),
                        isinstance(m, nn.ConvTranspose2d))
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        return ConvSpec(_pair(m.kernel_size), _pair(m.stride or m.kernel_size),
                        _pair(getattr(m, "dilation", 1)), _pair(m.padding))
    return None


def layer_specs(model_or_layers) -> list[ConvSpec]:
    """The spatial layers of a model (in registration order), a table, or a list of specs."""
    if isinstance(model_or_layers, nn.Module):
        specs = [s for m in model_or_layers.modules() if (s := _spec_from_module(m)) is not None]
        if not specs:
            raise ValueError(f"{type(model_or_layers).__name__} has no convolution or pooling layers")
        return specs
    specs = []
    for item in model_or_layers:
        if isinstance(item, ConvSpec):
            specs.append(item)
        elif isinstance(item, Layer):
            if item.kind != "fc":
                specs.append(_spec_from_layer(item))
        elif isinstance(item, dict):
            specs.append(ConvSpec(**item))
        else:
            raise TypeError(f"cannot read a layer from {item!r}")
    return specs


def _input_interval(spec: ConvSpec, lo: int, hi: int) -> tuple[int, int]:
    """Input indices (ignoring borders) that output indices lo..hi of one layer depend on."""
    s, d, p, k = spec.stride, spec.dilation, spec.padding, spec.kernel
    if not spec.transposed:
        return lo * s - p, hi * s - p + d * (k - 1)
    # transposed: output o receives input i through tap t when o = i*s - p + d*t
    ins = [(o + p - d * t) // s for o in range(lo, hi + 1) for t in range(k) if (o + p - d * t) % s == 0]
    if not ins:
        raise ValueError(f"transposed convolution {spec} has output pixels that receive no input")
    return min(ins), max(ins)


def pixel_box(model_or_layers, out_y: int, out_x: int | None = None) -> tuple[int, int, int, int]:
    """Exact (top, left, bottom, right) input box, inclusive, seen by output pixel (y, x).

    Coordinates may fall outside the image (that part of the field lies in the padding)."""
    specs = layer_specs(model_or_layers)
    out_x = out_y if out_x is None else out_x
    box = []
    for o in (out_y, out_x):
        lo = hi = o
        for spec in reversed(specs):
            lo, hi = _input_interval(spec, lo, hi)
        box.append((lo, hi))
    (y0, y1), (x0, x1) = box
    return y0, x0, y1, x1


@dataclass(frozen=True)
class RF:
    """Receptive field of a stack, in input pixels.

    ``size``: the largest side length over all output pixels (``min_size`` the smallest: they
    differ only after transposed convolutions, whose output pixels come in phases).
    ``jump``: input pixels per output pixel (a Fraction; 1/2 after an upsampling), averaged
    over phases.  ``start``: input coordinate where the field of output pixel 0 begins
    (negative values lie in the zero padding).
    """

    size: int
    jump: Fraction
    start: int
    min_size: int

    @property
    def center(self) -> float:
        return self.start + (self.size - 1) / 2


def analytic(model_or_layers, phases: int = 64) -> RF:
    """Receptive field of a stack, from its layers alone (no forward pass).

    Accepts an ``nn.Module`` (its Conv2d / ConvTranspose2d / pooling layers in order: fine for
    plain stacks like the completion network), a table such as
    :data:`glcic_lib.tables.COMPLETION_LAYERS`, or a list of :class:`ConvSpec` / dicts.
    Sizes are taken over ``phases`` consecutive output pixels, enough to cover every phase
    pattern of the transposed convolutions in the stack.
    """
    specs = layer_specs(model_or_layers)
    jump = Fraction(1)
    for spec in specs:
        jump = jump / spec.stride if spec.transposed else jump * spec.stride
    sizes = []
    for o in range(phases):
        y0, _, y1, _ = pixel_box(specs, o)
        sizes.append(y1 - y0 + 1)
    return RF(max(sizes), jump, pixel_box(specs, 0)[0], min(sizes))


def steps(model_or_layers) -> list[RF]:
    """The receptive field after each layer (the last entry is the whole stack's)."""
    specs = layer_specs(model_or_layers)
    return [analytic(specs[: i + 1]) for i in range(len(specs))]


@dataclass
class Measured:
    """A measured receptive field: side lengths, the bounding box and the gradient map."""

    height: int
    width: int
    box: tuple[int, int, int, int]
    gradient: np.ndarray

    @property
    def size(self) -> int:
        return max(self.height, self.width)


def measured(model: nn.Module, input_size: int | tuple[int, int] = 128, pixel: tuple[int, int] | None = None,
             in_channels: int | None = None, samples: int = 2, seed: int = 0,
             forward=None) -> Measured:
    """Measure the receptive field of one output pixel from the gradient of that pixel.

    Runs ``samples`` random inputs of ``input_size`` through ``model`` (in eval mode, in
    float64), back-propagates the chosen output pixel (default: the centre) summed over
    channels, and returns the bounding box of the input pixels whose gradient is non-zero.
    The input must be larger than the receptive field or the box is cut at the border.
    ``forward(model, x)`` can adapt models whose forward takes several arguments; for a
    :class:`~glcic_lib.models.CompletionNetwork` the 4-channel body is measured directly.
    """
    from .models import CompletionNetwork

    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    if forward is None:
        if isinstance(model, CompletionNetwork):
            forward = lambda m, x: m.body(x)
            in_channels = in_channels or 4
        else:
            forward = lambda m, x: m(x)
    if in_channels is None:
        first = next((m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))), None)
        if first is None:
            raise ValueError("cannot infer the input channels: pass in_channels")
        in_channels = first.in_channels
    was_training = model.training
    orig_dtype = next(model.parameters()).dtype
    model.eval().double()
    g = torch.Generator().manual_seed(seed)
    total = torch.zeros(h, w, dtype=torch.float64)
    try:
        for _ in range(samples):
            x = torch.rand(1, in_channels, h, w, generator=g, dtype=torch.float64, requires_grad=True)
            y = forward(model, x)
            oy, ox = pixel if pixel is not None else (y.shape[-2] // 2, y.shape[-1] // 2)
            y[0, :, oy, ox].sum().backward()
            total += x.grad[0].abs().sum(0)
    finally:
        model.to(orig_dtype).train(was_training)
    nz = torch.nonzero(total > 0)
    if len(nz) == 0:
        raise RuntimeError("no input pixel has a gradient: the chosen output pixel does not depend on the input")
    (y0, x0), (y1, x1) = nz.min(0).values.tolist(), nz.max(0).values.tolist()
    return Measured(y1 - y0 + 1, x1 - x0 + 1, (y0, x0, y1, x1), total.numpy())


def build_stack(specs: Sequence[ConvSpec] | Iterable[dict], channels: int = 4) -> nn.Sequential:
    """A plain conv stack (conv + ReLU) from specs, for experiments and the explorer widget."""
    mods: list[nn.Module] = []
    for s in layer_specs(list(specs)):
        if s.transposed:
            mods.append(nn.ConvTranspose2d(channels, channels, s.kernel, s.stride, s.padding, dilation=s.dilation))
        else:
            mods.append(nn.Conv2d(channels, channels, s.kernel, s.stride, s.padding, dilation=s.dilation))
        mods.append(nn.Tanh())
    return nn.Sequential(*mods)
