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
