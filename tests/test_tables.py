"""The layer tables as data: the paper's numbers, rendering, and the cost model (MACs, sizes)."""
from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from torch import nn

from glcic_lib import tables
from glcic_lib.models import CompletionNetwork, count_parameters
from glcic_lib.tables import (COMPLETION_LAYERS, GLOBAL_LAYERS, LOCAL_LAYERS, count_macs, layer_costs,
                              out_size, render_table, scaled_channels, table_rows)

# Table 1 of the paper, copied by hand: (type, kernel, dilation, stride, outputs)
PAPER_TABLE_1 = [
    ("conv", 5, 1, "1", 64),
    ("conv", 3, 1, "2", 128),
    ("conv", 3, 1, "1", 128),
    ("conv", 3, 1, "2", 256),
    ("conv", 3, 1, "1", 256),
    ("conv", 3, 1, "1", 256),
    ("dilated conv", 3, 2, "1", 256),
    ("dilated conv", 3, 4, "1", 256),
    ("dilated conv", 3, 8, "1", 256),
    ("dilated conv", 3, 16, "1", 256),
    ("conv", 3, 1, "1", 256),
    ("conv", 3, 1, "1", 256),
    ("deconv", 4, 1, "1/2", 128),
    ("conv", 3, 1, "1", 128),
    ("deconv", 4, 1, "1/2", 64),
    ("conv", 3, 1, "1", 32),
    ("output conv", 3, 1, "1", 3),
]
PAPER_LOCAL = [64, 128, 256, 512, 512]  # 5x5 stride 2 each, then FC -> 1024
PAPER_GLOBAL = [64, 128, 256, 512, 512, 512]


def test_table_1_rows_are_the_papers():
    rows = table_rows("completion")
    got = [(r["type"], int(r["kernel"].split("x")[0]), r["dilation"], r["stride"], r["outputs"]) for r in rows]
    assert got == PAPER_TABLE_1
    assert [L.activation for L in COMPLETION_LAYERS] == ["bn+relu"] * 16 + ["sigmoid"]
    assert tables.COMPLETION_IN_CHANNELS == 4


@pytest.mark.parametrize("layers, channels", [(LOCAL_LAYERS, PAPER_LOCAL), (GLOBAL_LAYERS, PAPER_GLOBAL)])
def test_table_2_rows_are_the_papers(layers, channels):
    convs, fc = layers[:-1], layers[-1]
    assert [(L.kernel, L.stride, L.dilation, L.out) for L in convs] == [(5, 1 * 2, 1, c) for c in channels]
    assert all(L.activation == "bn+relu" for L in convs)
    assert (fc.kind, fc.out) == ("fc", 1024)
    assert tables.CONCAT_LAYERS[0].out == 1
    assert (tables.LOCAL_INPUT_SIZE, tables.GLOBAL_INPUT_SIZE) == (128, 256)


def test_padding_keeps_halves_or_doubles_the_size():
    sizes = [256]
    for L in COMPLETION_LAYERS:
        sizes.append(out_size(L, sizes[-1]))
    assert sizes == [256, 256, 128, 128, 64, 64, 64, 64, 64, 64, 64, 64, 64, 128, 128, 256, 256, 256]
    assert [out_size(L, 128) for L in LOCAL_LAYERS[:1]] == [64]


def test_deconv_stride_is_the_papers_half():
    deconvs = [L for L in COMPLETION_LAYERS if L.transposed]
    assert len(deconvs) == 2
    assert all(L.stride == Fraction(1, 2) and L.int_stride == 2 and L.padding == 1 for L in deconvs)


def test_render_text_and_markdown():
    text = render_table("completion")
    lines = text.splitlines()
    assert len(lines) == 2 + 17
    assert lines[0].split() == ["#", "type", "kernel", "dilation", "stride", "outputs"]
    assert lines[2 + 12].split() == ["13", "deconv", "4x4", "1", "1/2", "128"]
    assert lines[2 + 9].split() == ["10", "dilated", "conv", "3x3", "16", "1", "256"]
    md = render_table(LOCAL_LAYERS, fmt="markdown").splitlines()
    assert md[0] == "| # | type | kernel | dilation | stride | outputs |"
    assert md[-1] == "| 6 | fully connected | - | - | - | 1024 |"
    with pytest.raises(ValueError, match="unknown table format 'html'"):
        render_table("completion", fmt="html")


def test_scaled_channels():
    assert [scaled_channels(c, 0.25) for c in (64, 128, 256, 32, 3)] == [16, 32, 64, 8, 1]
    assert scaled_channels(3, 0.01) == 1
    with pytest.raises(ValueError, match="width multiplier must be positive, got 0"):
        scaled_channels(64, 0)


def test_macs_of_single_layers_by_hand():
    rows = layer_costs("completion", 256)
    # layer 1: every one of 256*256 outputs x 64 channels is a dot product over 4 x 5 x 5 inputs
    assert rows[0]["macs"] == 256 * 256 * 64 * (4 * 5 * 5) == 419_430_400
    assert rows[0]["params"] == 64 * 4 * 25 + 64
    # layer 2 (stride 2): 128x128 outputs
    assert rows[1]["macs"] == 128 * 128 * 128 * 64 * 9
    # layer 9 (dilation 8): dilation spreads the taps but adds none
    assert rows[8]["macs"] == 64 * 64 * 256 * 256 * 9
    # layer 13 (deconv 4x4, 64x64x256 -> 128x128x128): every input spreads over 4x4 taps per output channel
    assert rows[12]["in"] == (256, 64, 64) and rows[12]["out"] == (128, 128, 128)
    assert rows[12]["macs"] == 64 * 64 * 256 * 128 * 16
    assert rows[16]["out"] == (3, 256, 256)


def test_total_macs_by_hand_and_scaling():
    # the whole of Table 1 at 256x256 written out as (positions, in, out, k*k)
    hand = (256 * 256 * 4 * 64 * 25 + 128 * 128 * 64 * 128 * 9 + 128 * 128 * 128 * 128 * 9
            + 64 * 64 * 128 * 256 * 9 + 8 * 64 * 64 * 256 * 256 * 9
            + 64 * 64 * 256 * 128 * 16 + 128 * 128 * 128 * 128 * 9
            + 128 * 128 * 128 * 64 * 16 + 256 * 256 * 64 * 32 * 9 + 256 * 256 * 32 * 3 * 9)
    assert count_macs("completion", 256) == hand
    # fully convolutional: cost grows with the number of pixels
    assert count_macs("completion", 512) == 4 * hand
    assert count_macs("completion", 256, 512) == 2 * hand
    # a width multiplier scales inner layers quadratically
    assert count_macs("completion", 256, width_mult=0.5) < hand / 3.5


def _hooked_macs(model: nn.Module, *inputs) -> int:
    """MACs counted by forward hooks on the real modules (independent of tables.layer_costs)."""
    total = []

    def hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        if isinstance(m, nn.ConvTranspose2d):
            total.append(inp[0][0].numel() * m.out_channels * k)
        else:
            total.append(out[0].numel() * m.in_channels * k)

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        model(*inputs)
    for h in hs:
        h.remove()
    return sum(total)


@pytest.mark.parametrize("width, h, w", [(0.25, 64, 48), (0.125, 36, 20)])
def test_macs_and_params_match_the_built_network(width, h, w):
    model = CompletionNetwork(width=width).eval()
    assert _hooked_macs(model, torch.rand(1, 3, h, w), torch.zeros(1, 1, h, w)) == count_macs("completion", h, w, width)
    bn_params = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    assert sum(r["params"] for r in layer_costs("completion", h, w, width)) == count_parameters(model) - bn_params


def test_costs_errors():
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        layer_costs("nope")
    with pytest.raises(ValueError, match="input size must be positive, got 0x4"):
        layer_costs("completion", 0, 4)
