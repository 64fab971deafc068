"""Reading the authors' released Torch7 model (``completionnet_places2.t7``) into PyTorch.

The authors trained GLCIC in Torch7 (Lua) and released the completion network as a ``.t7``
file: Torch7's own binary serialisation of a Lua table ``{model = <nn.Sequential>, mean =
<mean pixel>}``.  Modern PyTorch cannot read it (``torch.utils.serialization.load_lua`` was
removed long ago); the small ``torchfile`` package can, and this module turns what it reads
into a :class:`~glcic_lib.models.CompletionNetwork`.

What the file holds, and how each part maps:

==================================  ==========================================================
Torch7 (``nn`` package)             PyTorch (:mod:`glcic_lib.models`)
==================================  ==========================================================
``nn.SpatialConvolution``,          ``nn.Conv2d``; weight (out, in, kH, kW), the same layout
``nn.SpatialDilatedConvolution``    (both are cross-correlations; ``dilationW`` -> dilation)
``nn.SpatialFullConvolution``       ``nn.ConvTranspose2d``; weight (in, out, kH, kW), the
                                    same layout; ``adjW`` is PyTorch's ``output_padding``
``nn.SpatialBatchNormalization``    ``nn.BatchNorm2d``: ``running_mean``, ``running_var``
                                    (files from before 2016 store ``running_std`` =
                                    1/sqrt(var + eps) instead), ``weight``, ``bias``
``nn.ReLU``, ``nn.Sigmoid``         ``nn.ReLU``, ``nn.Sigmoid``
``mean`` (3 numbers in [0, 1])      the network's ``mean_pixel`` buffer
==================================  ==========================================================

The released network is one flat ``nn.Sequential`` of exactly the paper's Table 1: 17
convolutions, each followed by batch norm + ReLU except the last (sigmoid); the dilated rows
are ``SpatialDilatedConvolution`` and the two upsampling rows ``SpatialFullConvolution``.
A plain 3x3 convolution may be saved as ``SpatialConvolution``, ``SpatialConvolutionMM`` or a
``SpatialDilatedConvolution`` with dilation 1, so this reader checks each layer's *numbers*
(kernel, stride, padding, dilation, channels) against :data:`glcic_lib.tables.COMPLETION_LAYERS`
rather than its class name, and names the layer and what differs when a file does not match.

The authors feed the network ``image - mean`` with the hole pixels set to 0 (so the holes
hold the mean colour), concatenated with the mask: that is ``CompletionNetwork(...,
input_mode="subtract")``, which this loader builds.  The width multiplier is inferred from the
channel counts, so narrow test networks load too.

Reading is strict: a truncated file, a file that is not Torch7 at all (a PNG, a PyTorch
``.pt`` zip, an HTML error page saved by a failed download) or one whose tensors point outside
their storage raises :class:`Torch7Error` with the reason, never a half-read model.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import CheckpointError
from .tables import COMPLETION_IN_CHANNELS, COMPLETION_LAYERS, Layer

# Torch7's object type tags (File.lua).
_NIL, _NUMBER, _STRING, _TABLE, _TORCH, _BOOLEAN, _FUNCTION, _LEGACY_RECUR_FUNCTION, _RECUR_FUNCTION = range(9)

#: Torch7 tensor / storage classes and the numpy dtype of their elements (little-endian).
_ELEMENT_TYPES = {
    "Byte": "<u1", "Char": "<i1", "Short": "<i2", "Int": "<i4", "Long": "<i8", "Float": "<f4", "Double": "<f8",
    "Cuda": "<f4", "CudaByte": "<u1", "CudaChar": "<i1", "CudaShort": "<i2", "CudaInt": "<i4",
    "CudaLong": "<i8", "CudaDouble": "<f8",
}

#: Keys under which a saved table may hold the network and the mean pixel (first match wins).
MODEL_KEYS = ("model", "net", "network", "completionnet", "netG", "G")
MEAN_KEYS = ("mean", "datamean", "data_mean", "mean_pixel")

_CONV_CLASSES = ("SpatialConvolution", "SpatialConvolutionMM", "SpatialDilatedConvolution")
_DECONV_CLASSES = ("SpatialFullConvolution",)
_CONTAINERS = ("Sequential",)


class Torch7Error(CheckpointError):
    """A Torch7 file is unreadable, truncated, or not the GLCIC completion network."""


# ---------------------------------------------------------------------------------------------
# Reading the object stream
# ---------------------------------------------------------------------------------------------

def _sniff(head: bytes) -> str | None:
    """What a file that is not Torch7 binary probably is, from its first bytes."""
    known = [
        (b"PK\x03\x04", "a zip archive (a PyTorch .pt checkpoint? load it with glcic_lib.checkpoint.load_completion)"),
        (b"\x80", "a Python pickle (an old PyTorch checkpoint?)"),
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"\x1f\x8b", "a gzip archive: unpack it first"),
        (b"<", "an HTML/XML page (a failed download or a login page?)"),
        (b"{", "a JSON document"),
    ]
    for magic, what in known:
        if head.startswith(magic):
            return what
    stripped = head.lstrip()
    if stripped[:1].isdigit() and b"\n" in head[:16]:
        return ("Torch7's ASCII format (torch.save(..., 'ascii')): re-save it in Torch7 with the default "
                "binary format")
    return None


def _load_torchfile():
    try:
        import torchfile
    except ModuleNotFoundError as e:  # pragma: no cover - a dependency of the package
        raise Torch7Error("reading Torch7 files needs the 'torchfile' package: pip install torchfile") from e
    return torchfile


def _make_reader_class():
    torchfile = _load_torchfile()

    class StrictReader(torchfile.T7Reader):
        """``torchfile``'s reader with 8-byte little-endian longs and checked tensors.

        ``torchfile`` reads tables, strings, numbers and ``nn`` modules.  Tensors and storages
        are read here instead: ``torchfile`` would return a short storage at the end of a
        truncated file and then build a strided view past its end; this reader checks every
        storage against the bytes left in the file and every tensor against its storage.
        """

        def __init__(self, f, size: int):
            # Lua arrays become Python lists afterwards (_as_lists): torchfile's own conversion
            # compares elements with ``==``, which fails for a table of tensors.
            super().__init__(f, use_list_heuristic=False, use_int_heuristic=True, utf8_decode_strings=False)
            self.file_size = size

        def _remaining(self) -> int:
            return self.file_size - self.f.tell()

        def _exact(self, n: int) -> bytes:
            if n < 0 or n > self._remaining():
                raise Torch7Error(f"the file ends early: {n} more bytes expected at byte {self.f.tell()}, "
                                  f"{self._remaining()} left (truncated download?)")
            return self.f.read(n)

        def _read(self, fmt):
            fmt = "<" + fmt.lstrip("<@=")
            return struct.unpack(fmt, self._exact(struct.calcsize(fmt)))

        def read_long(self):
            return struct.unpack("<q", self._exact(8))[0]

        def read_long_array(self, n):
            return list(struct.unpack(f"<{n}q", self._exact(8 * n))) if n else []

        def read_string(self, disable_utf8=False):
            size = self.read_int()
            data = self._exact(size)
            return data if disable_utf8 or not self.utf8_decode_strings else data.decode("utf8")

        def read_obj(self):
            start = self.f.tell()
            typeidx = self.read_int()
            if typeidx not in range(9):
                raise Torch7Error(f"unknown Torch7 object type {typeidx} at byte {start}: the file is corrupt "
                                  f"or not a Torch7 binary file")
            if typeidx != _TORCH:
                self.f.seek(start)
                return super().read_obj()
            index = self.read_int()
            if index in self.objects:
                return self.objects[index]
            version = self.read_string(disable_utf8=True)
            class_name = self.read_string(disable_utf8=True) if version.startswith(b"V ") else version
            name = class_name.decode("latin-1")
            if name.startswith("torch.") and (name.endswith("Storage") or name.endswith("Tensor")):
                kind = "Storage" if name.endswith("Storage") else "Tensor"
                elem = name[len("torch."):-len(kind)]
                if elem not in _ELEMENT_TYPES:
                    raise Torch7Error(f"{name} is not supported (half precision?): convert the model to float "
                                      f"in Torch7 first (model:float())")
                obj = self._storage(elem) if kind == "Storage" else self._tensor(name)
                self.objects[index] = obj
                return obj
            self.f.seek(start)
            return super().read_obj()

        def _storage(self, elem: str) -> np.ndarray:
            dtype = np.dtype(_ELEMENT_TYPES[elem])
            n = self.read_long()
            if n < 0:
                raise Torch7Error(f"a storage claims {n} elements: the file is corrupt")
            return np.frombuffer(self._exact(n * dtype.itemsize), dtype=dtype).astype(dtype.newbyteorder("="))

        def _tensor(self, name: str) -> np.ndarray:
            ndim = self.read_int()
            if not 0 <= ndim <= 16:
                raise Torch7Error(f"a {name} claims {ndim} dimensions: the file is corrupt")
            size = self.read_long_array(ndim)
            stride = self.read_long_array(ndim)
            offset = self.read_long() - 1
            storage = self.read_obj()
            if storage is None or ndim == 0:
                return np.empty((0,), dtype=np.float32)
            if not isinstance(storage, np.ndarray):
                raise Torch7Error(f"a {name} points to a {type(storage).__name__}, not a storage: the file is corrupt")
            if any(s < 0 for s in size) or any(s < 0 for s in stride) or offset < 0:
                raise Torch7Error(f"a {name} has negative sizes {size}, strides {stride} or offset {offset}")
            if 0 in size:
                return np.empty(size, dtype=storage.dtype)
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= storage.size:
                raise Torch7Error(f"a {name} of size {size} needs {last + 1} elements of its storage, which has "
                                  f"{storage.size}: the file is corrupt or truncated")
            view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                                   strides=[s * storage.itemsize for s in stride])
            return np.array(view)  # an owned, contiguous copy

    return StrictReader


def _as_lists(obj, memo: dict | None = None):
    """Turn tables whose keys are exactly 1..n into Python lists (Lua arrays), recursively."""
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, dict):
        n = len(obj)
        if all(type(k) is int for k in obj) and set(obj) == set(range(1, n + 1)):
            out: list = []
            memo[id(obj)] = out
            out.extend(_as_lists(obj[i], memo) for i in range(1, n + 1))
            return out
        memo[id(obj)] = obj
        for k in list(obj):
            obj[k] = _as_lists(obj[k], memo)
        return obj
    if _typename(obj) is not None and isinstance(getattr(obj, "_obj", None), dict):
        memo[id(obj)] = obj
        obj._obj = _as_lists(obj._obj, memo)
    return obj


def read_t7(path: str | Path) -> Any:
    """Read a Torch7 binary file (``torch.save`` in Lua) into Python objects.

    Tables become dicts (lists when their keys are 1..n), ``nn`` modules ``torchfile``
    ``TorchObject``s, tensors numpy arrays.  Raises :class:`Torch7Error` naming the problem for
    a missing, empty, truncated, corrupt or non-Torch7 file.
    """
    path = Path(path)
    if not path.exists():
        raise Torch7Error(f"Torch7 file not found: {path}")
    if path.is_dir():
        raise Torch7Error(f"{path} is a folder, not a Torch7 file")
    size = path.stat().st_size
    if size == 0:
        raise Torch7Error(f"{path} is empty (0 bytes): an interrupted download?")
    with open(path, "rb") as f:
        head = f.read(16)
        first = struct.unpack("<i", head[:4])[0] if len(head) >= 4 else -1
        if first not in range(9):
            what = _sniff(head)
            raise Torch7Error(f"{path} is not a Torch7 binary file" + (f": it looks like {what}" if what else
                                                                        f" (it starts with bytes {head[:8]!r})"))
        f.seek(0)
        reader = _make_reader_class()(f, size)
        try:
            obj = reader.read_obj()
        except Torch7Error as e:
            raise Torch7Error(f"cannot read {path}: {e}") from None
        except RecursionError:
            raise Torch7Error(f"cannot read {path}: objects nested too deeply (corrupt file?)") from None
        except Exception as e:  # struct.error, EOFError, MemoryError, torchfile's own exceptions, ...
            raise Torch7Error(f"cannot read {path} as a Torch7 file ({type(e).__name__}: {e}); "
                              f"the file is corrupt or was written by something else") from e
        if f.tell() != size:
            raise Torch7Error(f"{path}: {size - f.tell()} bytes follow the Torch7 object; the file is corrupt "
                              f"or is not a single torch.save'd object")
    return _as_lists(obj)


# ---------------------------------------------------------------------------------------------
# From Torch7 objects to the completion network
# ---------------------------------------------------------------------------------------------

def _typename(obj) -> str | None:
    get = getattr(obj, "torch_typename", None)
    if get is None:
        return None
    name = get()
    return name.decode("latin-1") if isinstance(name, bytes) else str(name)


def _fields(obj) -> dict:
    """The fields of a Torch7 object (or a table) with ``str`` keys."""
    raw = obj._obj if _typename(obj) is not None else obj
    if not isinstance(raw, dict):
        return {}
    return {(k.decode("latin-1") if isinstance(k, bytes) else k): v for k, v in raw.items()}


def _short(name: str) -> str:
    """``nn.SpatialConvolution`` / ``cudnn.SpatialConvolution`` -> ``SpatialConvolution``."""
    return name.split(".", 1)[1] if name.startswith(("nn.", "cudnn.")) else name


def _flatten(module, where: str = "model") -> list[tuple[str, Any]]:
    """The leaf modules of (nested) ``nn.Sequential`` containers, in order, with their path."""
    name = _typename(module)
    if name is None:
        raise Torch7Error(f"{where} is a {type(module).__name__}, not a Torch7 nn module")
    if _short(name) in _CONTAINERS:
        children = _fields(module).get("modules") or []
        if isinstance(children, dict):  # a table with holes: keep Lua's order
            children = [children[k] for k in sorted(children)]
        out = []
        for i, child in enumerate(children, 1):
            out += _flatten(child, f"{where}.modules[{i}]")
        return out
    if name in ("nn.gModule",) or name.endswith(("Table", "Concat", "Parallel")):
        raise Torch7Error(f"{where} is a {name} container: only nn.Sequential models (the released "
                          f"completion network) can be converted")
    return [(where, module)]


def _describe(layer: Layer) -> str:
    s = f"{layer.kind} {layer.kernel}x{layer.kernel}"
    if layer.dilation > 1:
        s += f", dilation {layer.dilation}"
    return s + f", stride {layer.stride}"


def _number(fields: dict, key: str, default=None):
    v = fields.get(key, default)
    return int(v) if isinstance(v, (int, float)) and float(v).is_integer() else v


def _array(fields: dict, key: str, what: str) -> np.ndarray | None:
    v = fields.get(key)
    if v is None:
        return None
    if not isinstance(v, np.ndarray):
        raise Torch7Error(f"{what}: field {key!r} is a {type(v).__name__}, expected a tensor")
    if v.size == 0:
        return None
    a = v.astype(np.float32)
    if not np.isfinite(a).all():
        raise Torch7Error(f"{what}: {key} contains NaN or infinite values")
    return a


@dataclass
class Torch7Model:
    """What :func:`load_torch7` returns: the network, and what the file said about it."""

    model: Any  # CompletionNetwork, eval mode, CPU
    mean_pixel: tuple[float, float, float]
    width: float
    source: str
    keys: list[str] = field(default_factory=list)  # the top-level keys of the saved table
    modules: list[str] = field(default_factory=list)  # the file's module classes, in order

    def summary(self) -> str:
        from .models import count_parameters

        mean = ", ".join(f"{v:.4f}" for v in self.mean_pixel)
        return (f"{self.source}: completion network, width {self.width:g}, "
                f"{count_parameters(self.model):,} parameters, {len(self.modules)} Torch7 modules, "
                f"mean pixel [{mean}], input: image - mean, holes 0, + mask")


def _split_saved(obj, source: str) -> tuple[Any, Any, list[str]]:
    """(model, mean, keys) from what ``torch.load`` returned in Lua."""
    if _typename(obj) is not None and _typename(obj).startswith(("nn.", "cudnn.")):
        return obj, None, []  # a bare model: the mean must come from the caller
    if not isinstance(obj, (dict, list)):
        raise Torch7Error(f"{source} holds a {_typename(obj) or type(obj).__name__}; expected a table "
                          f"{{model = <nn.Sequential>, mean = <mean pixel>}} or an nn model")
    table = _fields(obj) if isinstance(obj, dict) else {i: v for i, v in enumerate(obj, 1)}
    keys = [str(k) for k in table]
    model = next((table[k] for k in MODEL_KEYS if table.get(k) is not None), None)
    if model is None:
        raise Torch7Error(f"{source} holds a table with keys {keys} but no network: expected one of "
                          f"{list(MODEL_KEYS)}")
    mean = next((table[k] for k in MEAN_KEYS if table.get(k) is not None), None)
    return model, mean, keys


def _parse_mean(mean, source: str, keys: list[str]) -> tuple[float, float, float]:
    if mean is None:
        raise Torch7Error(f"{source} stores no mean pixel (keys found: {keys or 'none, a bare model'}; "
                          f"looked for {list(MEAN_KEYS)}): pass mean_pixel=(r, g, b) in [0, 1] "
                          f"(the Places2 mean is glcic_lib.models.PLACES2_MEAN)")
    if isinstance(mean, dict):
        mean = [mean[k] for k in sorted(mean)]
    try:
        values = np.asarray(mean, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise Torch7Error(f"{source}: the mean pixel {mean!r} is not a list of numbers") from e
    if values.size != 3:
        raise Torch7Error(f"{source}: the mean pixel must have 3 values (R, G, B), got {values.size}: {values}")
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise Torch7Error(f"{source}: the mean pixel {values.tolist()} is not in [0, 1] (the authors' models "
                          f"work on [0, 1] images; a 0-255 mean would need dividing by 255)")
    return tuple(float(v) for v in values)


def _expect_class(path: str, module, allowed: tuple[str, ...], row: int, layer: Layer, what: str) -> dict:
    name = _typename(module) or type(module).__name__
    if _short(name) not in allowed:
        raise Torch7Error(f"Table 1 layer {row} ({_describe(layer)}): expected {what} "
                          f"({' or '.join('nn.' + a for a in allowed)}), found {name} at {path}")
    return _fields(module)


def _conv_into(target: nn.Module, fields: dict, row: int, layer: Layer, path: str, in_ch: int) -> int:
    """Check a (full) convolution against Table 1 row ``row`` and copy its weights into ``target``."""
    label = f"Table 1 layer {row} ({_describe(layer)}) at {path}"
    kw, kh = _number(fields, "kW"), _number(fields, "kH")
    got = {
        "kernel": (kh, kw),
        "stride": (_number(fields, "dH", 1), _number(fields, "dW", 1)),
        "padding": (_number(fields, "padH", 0), _number(fields, "padW", 0)),
    }
    want = {"kernel": (layer.kernel,) * 2, "stride": (layer.int_stride,) * 2, "padding": (layer.padding,) * 2}
    if layer.transposed:
        got["output adjustment (adjW, adjH)"] = (_number(fields, "adjH", 0), _number(fields, "adjW", 0))
        want["output adjustment (adjW, adjH)"] = (0, 0)
    else:
        got["dilation"] = (_number(fields, "dilationH", 1), _number(fields, "dilationW", 1))
        want["dilation"] = (layer.dilation,) * 2
    for key in want:
        if got[key] != want[key]:
            raise Torch7Error(f"{label}: {key} is {_pair(got[key])} in the file, Table 1 says {_pair(want[key])}")
    n_in, n_out = _number(fields, "nInputPlane"), _number(fields, "nOutputPlane")
    if n_in != in_ch:
        raise Torch7Error(f"{label}: takes {n_in} input channels, but the previous layer gives {in_ch}")
    weight = _array(fields, "weight", label)
    if weight is None:
        raise Torch7Error(f"{label}: has no weight tensor")
    shape = (n_in, n_out, kh, kw) if layer.transposed else (n_out, n_in, kh, kw)
    if weight.size != math.prod(shape):
        raise Torch7Error(f"{label}: weight has shape {weight.shape}, expected {shape}")
    weight = weight.reshape(shape)  # SpatialConvolutionMM stores it flattened to (out, in*kH*kW)
    if tuple(target.weight.shape) != shape:
        raise Torch7Error(f"{label}: has {n_out} output channels; Table 1 at the width inferred from the "
                          f"first layer expects {target.weight.shape[1 if layer.transposed else 0]}")
    bias = _array(fields, "bias", label)
    if bias is not None and bias.shape != (n_out,):
        raise Torch7Error(f"{label}: bias has shape {bias.shape}, expected ({n_out},)")
    with torch.no_grad():
        target.weight.copy_(torch.from_numpy(weight))
        target.bias.copy_(torch.from_numpy(bias) if bias is not None else torch.zeros(n_out))
    return n_out


def _pair(v) -> str:
    return f"{v[0]}" if v[0] == v[1] else f"{v[0]}x{v[1]}"


def _bn_into(target: nn.BatchNorm2d, fields: dict, label: str, channels: int) -> None:
    """Copy a ``SpatialBatchNormalization`` into ``target`` (running statistics included).

    Torch7's nn stored ``running_std = 1 / sqrt(running_var + eps)`` before 2016 and
    ``running_var`` since; both are handled.  The file's ``eps`` is honoured exactly: if it
    differs from PyTorch's 1e-5, the affine scale absorbs the difference.
    """
    eps = float(fields.get("eps") or 1e-5)
    mean = _array(fields, "running_mean", label)
    var = _array(fields, "running_var", label)
    if var is None:
        inv_std = _array(fields, "running_std", label)
        if inv_std is None:
            raise Torch7Error(f"{label}: has neither running_var nor running_std (batch-norm statistics)")
        if (inv_std <= 0).any():
            raise Torch7Error(f"{label}: running_std (an inverse standard deviation) has values <= 0")
        var = (1.0 / inv_std.astype(np.float64) ** 2 - eps).astype(np.float32)
    if mean is None:
        raise Torch7Error(f"{label}: has no running_mean (batch-norm statistics)")
    weight = _array(fields, "weight", label)
    bias = _array(fields, "bias", label)
    weight = np.ones(channels, np.float32) if weight is None else weight
    bias = np.zeros(channels, np.float32) if bias is None else bias
    for key, arr in (("running_mean", mean), ("running_var", var), ("weight", weight), ("bias", bias)):
        if arr.shape != (channels,):
            raise Torch7Error(f"{label}: {key} has shape {arr.shape}, expected ({channels},)")
    if eps != target.eps:  # same result with PyTorch's eps: rescale gamma
        weight = (weight * np.sqrt((var.astype(np.float64) + target.eps) / (var.astype(np.float64) + eps))).astype(np.float32)
    with torch.no_grad():
        target.running_mean.copy_(torch.from_numpy(mean))
        target.running_var.copy_(torch.from_numpy(var))
        target.weight.copy_(torch.from_numpy(weight))
        target.bias.copy_(torch.from_numpy(bias))


def _infer_width(first: dict, path: str) -> float:
    n_in, n_out = _number(first, "nInputPlane"), _number(first, "nOutputPlane")
    if n_in != COMPLETION_IN_CHANNELS:
        raise Torch7Error(f"Table 1 layer 1 at {path}: takes {n_in} input channels; the completion network "
                          f"takes {COMPLETION_IN_CHANNELS} (RGB + mask)")
    if not isinstance(n_out, int) or n_out < 1:
        raise Torch7Error(f"Table 1 layer 1 at {path}: nOutputPlane is {n_out!r}")
    return n_out / COMPLETION_LAYERS[0].out


def completion_from_torch7(obj, mean_pixel=None, source: str = "the Torch7 object") -> Torch7Model:
    """Build a :class:`CompletionNetwork` from what :func:`read_t7` returned.

    ``mean_pixel`` overrides (or, for a bare model, supplies) the file's mean.  Every layer is
    checked against Table 1; the first mismatch raises :class:`Torch7Error` naming the layer.
    """
    from .models import CompletionNetwork

    model_obj, mean, keys = _split_saved(obj, source)
    mean = _parse_mean(mean_pixel if mean_pixel is not None else mean, source, keys)
    try:
        leaves = _flatten(model_obj)
    except Torch7Error as e:
        raise Torch7Error(f"{source}: {e}") from None
    modules = [_typename(m) for _, m in leaves]

    def at(j: int, row: int, layer: Layer, what: str):
        if j >= len(leaves):
            raise Torch7Error(f"{source}: the network ends after {len(leaves)} modules, but Table 1 layer "
                              f"{row} ({_describe(layer)}) still needs {what}")
        return leaves[j]

    try:
        first_path, first = at(0, 1, COMPLETION_LAYERS[0], "a convolution")
        _expect_class(first_path, first, _CONV_CLASSES, 1, COMPLETION_LAYERS[0], "a convolution")
        width = _infer_width(_fields(first), first_path)
        try:
            net = CompletionNetwork(width=width, mean_pixel=mean, input_mode="subtract")
        except ValueError as e:
            raise Torch7Error(f"{source}: cannot build a network of width {width}: {e}") from e
        j, ch = 0, COMPLETION_IN_CHANNELS
        for row, (layer, block) in enumerate(zip(COMPLETION_LAYERS, net.body), 1):
            path, mod = at(j, row, layer, "a convolution")
            allowed = _DECONV_CLASSES if layer.transposed else _CONV_CLASSES
            what = "a transposed convolution" if layer.transposed else "a convolution"
            fields = _expect_class(path, mod, allowed, row, layer, what)
            ch = _conv_into(block.conv, fields, row, layer, path, ch)
            j += 1
            if layer.activation == "bn+relu":
                path, mod = at(j, row, layer, "batch normalisation")
                fields = _expect_class(path, mod, ("SpatialBatchNormalization",), row, layer, "batch normalisation")
                _bn_into(block.bn, fields, f"Table 1 layer {row} ({_describe(layer)}) batch norm at {path}", ch)
                path, mod = at(j + 1, row, layer, "a ReLU")
                _expect_class(path, mod, ("ReLU",), row, layer, "a ReLU")
                j += 2
            else:
                path, mod = at(j, row, layer, "a sigmoid")
                _expect_class(path, mod, ("Sigmoid",), row, layer, "a sigmoid")
                j += 1
        if j != len(leaves):
            extra = ", ".join(f"{p} {n}" for (p, _), n in zip(leaves[j:], modules[j:]))
            raise Torch7Error(f"the network has {len(leaves) - j} more modules after Table 1's final sigmoid: {extra}")
    except Torch7Error as e:
        msg = str(e)
        raise Torch7Error(msg if msg.startswith(source) else f"{source}: {msg}") from None
    return Torch7Model(model=net.eval(), mean_pixel=mean, width=width, source=source, keys=keys, modules=modules)


def load_torch7(path: str | Path, mean_pixel=None) -> Torch7Model:
    """Read the authors' ``.t7`` completion network as a :class:`Torch7Model`.

    ``result.model`` is a :class:`~glcic_lib.models.CompletionNetwork` (eval mode, CPU,
    ``input_mode="subtract"``) with the file's weights and batch-norm statistics, and
    ``result.mean_pixel`` the data set mean the file stores (Places2: about
    [0.456, 0.447, 0.416]); ``complete(result.model, image, mask)`` then prepares the inputs
    exactly as the authors' ``inpaint.lua`` does.
    """
    path = Path(path)
    obj = read_t7(path)
    return completion_from_torch7(obj, mean_pixel=mean_pixel, source=str(path))


__all__ = ["Torch7Error", "Torch7Model", "read_t7", "completion_from_torch7", "load_torch7",
           "MODEL_KEYS", "MEAN_KEYS"]
