"""Receptive fields: hand computations, analytic == measured on the completion network and on
random stacks of (dilated, strided, padded, transposed) convolutions."""
from __future__ import annotations

import random
from fractions import Fraction

import pytest
import torch
from torch import nn

from glcic_lib import receptive_field as rf
from glcic_lib.models import CompletionNetwork
from glcic_lib.receptive_field import ConvSpec
from glcic_lib.tables import COMPLETION_LAYERS, Layer


def positive(model: nn.Module) -> nn.Module:
    """Make every weight positive and every batch norm the identity.

    With positive weights and positive inputs every path from an input pixel to an output
    pixel adds a positive amount to the gradient, and no ReLU is ever off: the gradient is
    non-zero on exactly the pixels the output depends on, so the measured box is exact.
    Each output channel's weights are normalised to sum to 1 (``stride**2`` for a transposed
    convolution, whose output pixels see 1/stride**2 of its taps), so activations stay near
    the inputs' range and a final sigmoid never saturates to a zero gradient.
    """
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                w = m.weight.abs_().add_(0.01)
                if isinstance(m, nn.ConvTranspose2d):  # (in, out, k, k)
                    w.div_(w.sum((0, 2, 3), keepdim=True)).mul_(m.stride[0] * m.stride[1])
                else:  # (out, in, k, k)
                    w.div_(w.sum((1, 2, 3), keepdim=True))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()  # mean 0, var 1, weight 1, bias 0
    return model.eval()


def closed_form(specs: list[ConvSpec]) -> tuple[int, int, int]:
    """Size, jump and start of a stack of ordinary convolutions (textbook recurrence)."""
    size, jump, start = 1, 1, 0
    for s in specs:
        size += s.dilation * (s.kernel - 1) * jump
        start -= s.padding * jump
        jump *= s.stride
    return size, jump, start


def test_hand_computed_stacks():
    assert rf.analytic([ConvSpec(3)] * 3).size == 7
    assert rf.analytic([ConvSpec(3, dilation=d) for d in (1, 2, 4, 8)]).size == 31  # 1 + 2 * 15
    r = rf.analytic([ConvSpec(3, stride=2, padding=1), ConvSpec(3, padding=1)])
    assert (r.size, r.jump, r.start) == (7, 2, -3)  # 3 + 2 * 2 input pixels; starts 1 + 2 pixels before
    # a 4x4 stride-2 transposed conv (padding 1): each output pixel receives exactly 2 inputs per axis
    r = rf.analytic([ConvSpec(4, 2, 1, 1, transposed=True)])
    assert (r.size, r.min_size, r.jump) == (2, 2, Fraction(1, 2))
    assert rf.pixel_box([ConvSpec(4, 2, 1, 1, transposed=True)], 4, 5) == (1, 2, 2, 3)


def test_completion_network_field():
    full = rf.analytic(COMPLETION_LAYERS)
    assert (full.size, full.min_size, full.jump) == (303, 299, 1)
    assert rf.analytic(CompletionNetwork(width=0.25)) == full  # the module and the table agree
    # the size depends on the output pixel's phase modulo 4 (two stride-1/2 deconvolutions)
    sizes = [rf.pixel_box(COMPLETION_LAYERS, y)[2] - rf.pixel_box(COMPLETION_LAYERS, y)[0] + 1 for y in range(8)]
    assert sizes[:4] == sizes[4:] and min(sizes) == 299 and max(sizes) == 303
    # without dilation (rows 7-10 made ordinary convolutions) the field shrinks to ~95 pixels
    plain = [Layer(L.kind if L.dilation == 1 else "conv", L.kernel, 1, L.stride, L.out, L.activation)
             for L in COMPLETION_LAYERS]
    assert rf.analytic(plain).size == 95
    steps = rf.steps(COMPLETION_LAYERS)
    assert len(steps) == 17 and steps[-1] == full
    assert [s.size for s in steps[:4]] == [5, 7, 11, 15]  # 5; +2; +2*2; +2*2 (jump 2 after layer 2)


def test_closed_form_agrees_on_random_plain_stacks():
    gen = random.Random(7)
    for _ in range(200):
        specs = [ConvSpec(gen.choice([1, 2, 3, 4, 5, 7]), gen.choice([1, 1, 2, 3]), gen.choice([1, 2, 3]),
                          gen.randint(0, 3)) for _ in range(gen.randint(1, 6))]
        r = rf.analytic(specs, phases=4)
        assert (r.size, r.jump, r.start) == closed_form(specs)
        assert r.min_size == r.size  # no transposed layers: every pixel sees the same size


def _measure_boxes(model, size, pixels, in_channels, forward=None):
    return [rf.measured(model, size, pixel=p, in_channels=in_channels, samples=1, forward=forward).box
            for p in pixels]


def test_measured_equals_analytic_on_the_completion_network():
    # a very narrow network (the field does not depend on the width); positive weights make the
    # measurement exact.  Rows are measured on a tall strip and columns on a wide one (the
    # network is the same along both axes), which is ~40x cheaper than a 320x320 image.
    torch.manual_seed(0)
    net = positive(CompletionNetwork(width=1 / 64))
    size, c = 320, 160
    rows, cols = set(), set()
    for phase in range(4):  # the field's size depends on the pixel's phase modulo 4
        top, left, bottom, right = rf.pixel_box(COMPLETION_LAYERS, c + phase, c + phase)
        tall = rf.measured(net, (size, 8), pixel=(c + phase, 4), samples=1)
        wide = rf.measured(net, (8, size), pixel=(4, c + phase), samples=1)
        assert (tall.box[0], tall.box[2]) == (top, bottom)
        assert (wide.box[1], wide.box[3]) == (left, right)
        rows.add(tall.height)
        cols.add(wide.width)
    assert rows == cols == {299, 303}
    assert max(rows) == rf.analytic(net).size and min(rows) == rf.analytic(net).min_size


def test_measured_is_cut_at_the_image_border():
    torch.manual_seed(0)
    net = positive(CompletionNetwork(width=1 / 64))
    m = rf.measured(net, 64, samples=1)  # the field (303) is larger than the image
    assert m.box == (0, 0, 63, 63) and m.size == 64
    assert m.gradient.shape == (64, 64) and (m.gradient > 0).all()


def _random_specs(gen: random.Random) -> list[ConvSpec]:
    specs = []
    for _ in range(gen.randint(2, 6)):
        if gen.random() < 0.3:  # transposed: kernel >= stride so that every output pixel gets an input
            s = gen.choice([2, 2, 3])
            specs.append(ConvSpec(gen.randint(s, s + 3), s, 1, gen.randint(0, 1), transposed=True))
        else:
            specs.append(ConvSpec(gen.choice([1, 2, 3, 5]), gen.choice([1, 1, 2]), gen.choice([1, 2, 3]),
                                  gen.randint(0, 3)))
    return specs


def test_measured_equals_analytic_on_random_stacks():
    gen = random.Random(2017)
    checked = transposed = 0
    while checked < 12:
        specs = _random_specs(gen)
        r = rf.analytic(specs, phases=36)
        if r.size > 48:  # keep the measurement cheap
            continue
        # the input must hold the whole field of a few central output pixels
        size = 2 * r.size + 16
        torch.manual_seed(checked)
        net = positive(rf.build_stack(specs, channels=1))
        with torch.no_grad():
            out = net(torch.rand(1, 1, size, size)).shape[-1]
        if out < 8:
            continue
        c = out // 2
        pixels = [(c, c), (c + 1, c - 1), (c - 1, c + 2)]
        boxes = [rf.pixel_box(specs, *p) for p in pixels]
        if any(min(b) < 0 or max(b) >= size for b in boxes):
            continue
        assert _measure_boxes(net, size, pixels, 1) == boxes, specs
        for b in boxes:
            assert r.min_size <= b[2] - b[0] + 1 <= r.size
        checked += 1
        transposed += any(s.transposed for s in specs)
    assert transposed >= 3  # the transposed case really was exercised


def test_layer_specs_from_modules_and_errors():
    seq = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1, dilation=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1))
    assert rf.layer_specs(seq) == [ConvSpec(3, 2, 2, 1), ConvSpec(2, 2, 1, 0), ConvSpec(4, 2, 1, 1, True)]
    assert rf.layer_specs([{"kernel": 3, "dilation": 4}]) == [ConvSpec(3, 1, 4)]
    with pytest.raises(ValueError, match="has no convolution or pooling layers"):
        rf.layer_specs(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="only square kernels"):
        rf.layer_specs(nn.Conv2d(1, 1, (3, 5)))
    with pytest.raises(ValueError, match="string padding"):
        rf.layer_specs(nn.Conv2d(1, 1, 3, padding="same"))
    with pytest.raises(TypeError, match="cannot read a layer from 3"):
        rf.layer_specs([3])
    with pytest.raises(ValueError, match="receive no input"):
        rf.analytic([ConvSpec(1, 3, transposed=True)])
