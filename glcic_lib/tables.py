"""The paper's layer tables, written once, as data.

Everything else reads these lists: :mod:`glcic_lib.models` builds the networks from them,
:mod:`glcic_lib.receptive_field` computes receptive fields from them, and
:func:`render_table` prints them the way the paper does (Tables 1 and 2), so a notebook's
table and the network that runs can never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Layer:
    """One row of a layer table.

    ``kind`` is ``"conv"``, ``"dilated conv"``, ``"deconv"`` (a transposed convolution that
    doubles the resolution: the paper's stride 1/2), ``"output conv"`` or ``"fc"`` (fully
    connected).  ``stride`` is a :class:`~fractions.Fraction` so that the paper's 1/2 reads
    as written.  ``out`` is the number of output channels (features for ``fc``), and
    ``activation`` what follows the layer: ``"bn+relu"``, ``"sigmoid"`` or ``"none"``.
    """

    kind: str
    kernel: int
    dilation: int
    stride: Fraction
    out: int
    activation: str = "bn+relu"

    def channels(self, width: float) -> int:
        """Output channels under a width multiplier; the output layer keeps its 3 (RGB)."""
        return self.out if self.kind == "output conv" else scaled_channels(self.out, width)

    @property
    def transposed(self) -> bool:
        return self.kind == "deconv"

    @property
    def padding(self) -> int:
        """"Same" padding: keeps the size for stride 1, halves it for stride 2, doubles it for deconv."""
        if self.transposed:
            return (self.kernel - 2) // 2  # 4x4, stride 2 -> padding 1: exactly 2x
        return self.dilation * (self.kernel - 1) // 2

    @property
    def int_stride(self) -> int:
        """The integer stride handed to PyTorch (2 for the paper's 1/2 of a deconv)."""
        return int(1 / self.stride) if self.transposed else int(self.stride)


def _conv(k, s, out, d=1, kind=None, act="bn+relu"):
    return Layer(kind or ("dilated conv" if d > 1 else "conv"), k, d, Fraction(s), out, act)


#: Table 1: the completion network.  Input: 4 channels (RGB with holes filled, plus the mask).
COMPLETION_LAYERS: tuple[Layer, ...] = (
    _conv(5, 1, 64),
    _conv(3, 2, 128),
    _conv(3, 1, 128),
    _conv(3, 2, 256),
    _conv(3, 1, 256),
    _conv(3, 1, 256),
    _conv(3, 1, 256, d=2),
    _conv(3, 1, 256, d=4),
    _conv(3, 1, 256, d=8),
    _conv(3, 1, 256, d=16),
    _conv(3, 1, 256),
    _conv(3, 1, 256),
    Layer("deconv", 4, 1, Fraction(1, 2), 128),
    _conv(3, 1, 128),
    Layer("deconv", 4, 1, Fraction(1, 2), 64),
    _conv(3, 1, 32),
    _conv(3, 1, 3, kind="output conv", act="sigmoid"),
)
COMPLETION_IN_CHANNELS = 4

#: Table 2 (a): the local discriminator, on a 128x128 patch around the hole.
LOCAL_LAYERS: tuple[Layer, ...] = tuple(_conv(5, 2, c) for c in (64, 128, 256, 512, 512)) + (
    Layer("fc", 0, 1, Fraction(1), 1024, "none"),
)
LOCAL_INPUT_SIZE = 128

#: Table 2 (b): the global discriminator, on the whole 256x256 image.
GLOBAL_LAYERS: tuple[Layer, ...] = tuple(_conv(5, 2, c) for c in (64, 128, 256, 512, 512, 512)) + (
    Layer("fc", 0, 1, Fraction(1), 1024, "none"),
)
GLOBAL_INPUT_SIZE = 256

#: Table 2 (c): the concatenation layer, 2048 -> 1 (sigmoid applied inside the loss).
CONCAT_LAYERS: tuple[Layer, ...] = (Layer("fc", 0, 1, Fraction(1), 1, "sigmoid"),)

TABLES = {
    "completion": COMPLETION_LAYERS,
    "local": LOCAL_LAYERS,
    "global": GLOBAL_LAYERS,
    "concatenation": CONCAT_LAYERS,
}


def scaled_channels(channels: int, width: float) -> int:
    """Channels after a width multiplier (at least 1, rounded to the nearest integer)."""
    if width <= 0:
        raise ValueError(f"width multiplier must be positive, got {width}")
    return max(1, int(round(channels * width)))


def _fmt_stride(s: Fraction) -> str:
    return str(s.numerator) if s.denominator == 1 else f"{s.numerator}/{s.denominator}"


def table_rows(layers: tuple[Layer, ...] | str) -> list[dict]:
    """The table as a list of dicts (one per layer) in the paper's column order."""
    if isinstance(layers, str):
        layers = TABLES[layers]
    rows = []
    for i, L in enumerate(layers, 1):
        if L.kind == "fc":
            rows.append({"#": i, "type": "fully connected", "kernel": "-", "dilation": "-", "stride": "-", "outputs": L.out})
        else:
            rows.append({
                "#": i, "type": L.kind, "kernel": f"{L.kernel}x{L.kernel}", "dilation": L.dilation,
                "stride": _fmt_stride(L.stride), "outputs": L.out,
            })
    return rows


def render_table(layers: tuple[Layer, ...] | str, fmt: str = "text") -> str:
    """Render a layer table like the paper's: ``fmt="text"`` (aligned columns) or ``"markdown"``."""
    rows = table_rows(layers)
    cols = list(rows[0])
    cells = [[str(r[c]) for c in cols] for r in rows]
    if fmt == "markdown":
        out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join(out)
    if fmt != "text":
        raise ValueError(f"unknown table format {fmt!r}; use 'text' or 'markdown'")
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.rjust(w) if i != 1 else v.ljust(w) for i, (v, w) in enumerate(zip(vals, widths)))
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in cells])


# --------------------------------------------------------------------------------------------
# cost: sizes, parameters and multiply-accumulates, from the table alone
# --------------------------------------------------------------------------------------------
def out_size(layer: Layer, size: int) -> int:
    """Side length after ``layer`` for an input side of ``size`` (PyTorch's formulas)."""
    k, d, p, s = layer.kernel, layer.dilation, layer.padding, layer.int_stride
    if layer.transposed:
        return (size - 1) * s - 2 * p + d * (k - 1) + 1
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def layer_costs(layers: tuple[Layer, ...] | str = "completion", height: int = 256, width: int | None = None,
                width_mult: float = 1.0, in_channels: int | None = None) -> list[dict]:
    """Per-layer shapes, parameters and multiply-accumulates (MACs) of a table.

    Channels follow :mod:`glcic_lib.models`: every count is scaled by ``width_mult`` except the
    completion network's 3 output channels and the fully connected outputs.  How MACs are
    counted (one MAC = one multiply and one add, so FLOPs = 2 x MACs):

    * convolution: ``out_h * out_w * out_ch * in_ch * k * k`` (every output value is a dot
      product over ``in_ch * k * k`` inputs; dilation spreads the taps, it adds none);
    * transposed convolution: ``in_h * in_w * in_ch * out_ch * k * k`` (every input value is
      spread over ``k * k`` taps of every output channel);
    * fully connected: ``in_features * out_features``.

    Biases, batch norm, ReLU and the sigmoid are not counted (a few per output value, <1%).
    """
    if isinstance(layers, str):
        if layers not in TABLES:
            raise ValueError(f"unknown table {layers!r}; choose from {sorted(TABLES)}")
        layers = TABLES[layers]
    width = height if width is None else width
    if height < 1 or width < 1:
        raise ValueError(f"input size must be positive, got {height}x{width}")
    if in_channels is None:
        in_channels = COMPLETION_IN_CHANNELS if layers is COMPLETION_LAYERS else 3
    rows, h, w, ch = [], height, width, in_channels
    for i, L in enumerate(layers):
        if L.kind == "fc":
            n_in = ch * h * w
            out = L.out
            rows.append({"#": i + 1, "type": "fully connected", "in": (n_in,), "out": (out,),
                         "params": n_in * out + out, "macs": n_in * out})
            ch, h, w = out, 1, 1
            continue
        out = L.channels(width_mult)
        oh, ow = out_size(L, h), out_size(L, w)
        if oh < 1 or ow < 1:
            raise ValueError(f"a {height}x{width} input is too small: layer {i + 1} ({L.kind}) "
                             f"would produce {oh}x{ow}")
        taps = ch * out * L.kernel * L.kernel
        macs = (h * w if L.transposed else oh * ow) * taps
        rows.append({"#": i + 1, "type": L.kind, "in": (ch, h, w), "out": (out, oh, ow),
                     "params": taps + out, "macs": macs})
        ch, h, w = out, oh, ow
    return rows


def count_macs(layers: tuple[Layer, ...] | str = "completion", height: int = 256, width: int | None = None,
               width_mult: float = 1.0) -> int:
    """Total multiply-accumulates of one forward pass (see :func:`layer_costs`)."""
    return sum(r["macs"] for r in layer_costs(layers, height, width, width_mult))
