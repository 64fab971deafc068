"""A minimal writer of Torch7's binary serialisation format, for tests only.

The course never ships or downloads the authors' ``.t7`` files, so the tests build small ones
themselves.  This module writes the subset of the format that a saved ``nn`` model uses,
following the format as Torch7's ``File:writeObject`` defines it (all little-endian,
``int`` = 4 bytes, ``long`` = 8 bytes, numbers are 8-byte doubles):

* every object starts with an ``int`` type tag: 0 nil, 1 number, 2 string, 3 table,
  4 torch object, 5 boolean;
* nil: nothing more.  number: a ``double``.  boolean: an ``int`` (1 = true).
  string: ``int`` length, then the bytes;
* tables and torch objects carry an ``int`` reference index next: an object written twice is
  written in full the first time and as ``tag, index`` only afterwards (shared tensors,
  cycles);
* table: ``int`` number of entries, then key object, value object for each entry.  Lua arrays
  are tables with the keys 1..n;
* torch object: a version string ``"V <n>"``, the class name (``"nn.SpatialConvolution"``),
  then the class's own payload.  For ``nn`` modules the payload is one table holding the
  module's fields;
* tensor payload: ``int`` number of dimensions, the sizes and the strides (``long`` each,
  strides counted in elements), the 1-based storage offset (``long``), then the storage as an
  object (nil for an empty tensor);
* storage payload: ``long`` number of elements, then the raw elements.

Python values map as: None -> nil, bool -> boolean, int/float -> number, str/bytes ->
string, dict -> table, list/tuple -> Lua array, numpy array -> tensor (+ storage),
:class:`T7Object` -> torch object.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

NIL, NUMBER, STRING, TABLE, TORCH, BOOLEAN = 0, 1, 2, 3, 4, 5

#: numpy dtype -> (tensor class, storage class)
TENSOR_CLASSES = {
    np.dtype(np.float32): ("torch.FloatTensor", "torch.FloatStorage"),
    np.dtype(np.float64): ("torch.DoubleTensor", "torch.DoubleStorage"),
    np.dtype(np.int64): ("torch.LongTensor", "torch.LongStorage"),
    np.dtype(np.int32): ("torch.IntTensor", "torch.IntStorage"),
    np.dtype(np.uint8): ("torch.ByteTensor", "torch.ByteStorage"),
}


@dataclass(eq=False)
class T7Object:
    """An instance of a Torch7 class: its name, its version and its fields (a Lua table)."""

    typename: str
    fields: dict = field(default_factory=dict)
    version: int = 1


@dataclass(eq=False)
class T7Tensor:
    """A tensor given by hand: a view (sizes, strides, 1-based offset) into a flat storage."""

    storage: np.ndarray | None
    size: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int = 1


class T7Writer:
    """Write Python values as one Torch7 object stream (see the module docstring)."""

    def __init__(self, f):
        self.f = f
        self._index: dict[int, int] = {}
        self._alive: list = []  # keep written objects alive so that id() stays unique

    # -- primitives
    def _int(self, v: int) -> None:
        self.f.write(struct.pack("<i", v))

    def _long(self, v: int) -> None:
        self.f.write(struct.pack("<q", v))

    def _string_payload(self, s: str | bytes) -> None:
        b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
        self._int(len(b))
        self.f.write(b)

    def _reference(self, obj) -> bool:
        """Write the reference index; True if the object was written before (nothing more to do)."""
        key = id(obj)
        if key in self._index:
            self._int(self._index[key])
            return True
        self._index[key] = len(self._index) + 1
        self._alive.append(obj)
        self._int(self._index[key])
        return False

    # -- objects
    def write(self, obj: Any) -> None:
        if obj is None:
            self._int(NIL)
        elif isinstance(obj, bool):
            self._int(BOOLEAN)
            self._int(1 if obj else 0)
        elif isinstance(obj, (int, float, np.integer, np.floating)):
            self._int(NUMBER)
            self.f.write(struct.pack("<d", float(obj)))
        elif isinstance(obj, (str, bytes)):
            self._int(STRING)
            self._string_payload(obj)
        elif isinstance(obj, (dict, list, tuple)):
            self._int(TABLE)
            if self._reference(obj):
                return
            items = obj.items() if isinstance(obj, dict) else enumerate(obj, 1)
            items = list(items)
            self._int(len(items))
            for k, v in items:
                self.write(k)
                self.write(v)
        elif isinstance(obj, T7Object):
            if not self._torch_header(obj, obj.typename, obj.version):
                self.write(obj.fields)
        elif isinstance(obj, np.ndarray):
            if obj.size == 0:  # Torch7's empty tensor: no dimensions, no storage
                self._tensor(T7Tensor(None, (), ()), obj.dtype, key=obj)
            else:
                self._tensor(T7Tensor(np.ascontiguousarray(obj).reshape(-1), obj.shape,
                                      _contiguous_strides(obj.shape)), obj.dtype, key=obj)
        elif isinstance(obj, T7Tensor):
            self._tensor(obj, obj.storage.dtype if obj.storage is not None else np.dtype(np.float32), key=obj)
        else:
            raise TypeError(f"cannot write {type(obj).__name__} as a Torch7 object")

    def _torch_header(self, obj, typename: str, version: int) -> bool:
        self._int(TORCH)
        if self._reference(obj):
            return True
        self._string_payload(f"V {version}")
        self._string_payload(typename)
        return False

    def _tensor(self, t: T7Tensor, dtype, key) -> None:
        tensor_cls, storage_cls = TENSOR_CLASSES[np.dtype(dtype)]
        self._int(TORCH)
        if self._reference(key):
            return
        self._string_payload("V 1")
        self._string_payload(tensor_cls)
        self._int(len(t.size))
        for s in t.size:
            self._long(int(s))
        for s in t.stride:
            self._long(int(s))
        self._long(int(t.offset))
        if t.storage is None:
            self._int(NIL)
            return
        storage = t.storage
        self._int(TORCH)
        if self._reference(storage):
            return
        self._string_payload("V 1")
        self._string_payload(storage_cls)
        self._long(storage.size)
        self.f.write(np.ascontiguousarray(storage, dtype=storage.dtype.newbyteorder("<")).tobytes())


def _contiguous_strides(shape) -> tuple[int, ...]:
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= max(int(s), 1)
    return tuple(reversed(strides))


def dumps(obj: Any) -> bytes:
    """The Torch7 serialisation of ``obj`` as bytes."""
    buf = io.BytesIO()
    T7Writer(buf).write(obj)
    return buf.getvalue()


def save(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` to ``path`` like Torch7's ``torch.save(path, obj)`` (binary format)."""
    path = Path(path)
    path.write_bytes(dumps(obj))
    return path


# -- nn modules as Torch7's nn package saves them ---------------------------------------------

def _module_fields(**fields) -> dict:
    base = {"output": np.zeros(0, np.float32), "gradInput": np.zeros(0, np.float32),
            "train": False, "_type": "torch.FloatTensor"}
    base.update(fields)
    return base


def spatial_convolution(weight: np.ndarray, bias: np.ndarray | None, stride: int, padding: int,
                        dilation: int | None = None, mm: bool = False) -> T7Object:
    """``nn.SpatialConvolution`` (or ``nn.SpatialDilatedConvolution`` when ``dilation`` is given).

    ``weight`` is (nOutputPlane, nInputPlane, kH, kW): cross-correlation, no kernel flip.
    ``mm=True`` stores the weight flattened to 2-D, as the older ``SpatialConvolutionMM`` does.
    """
    n_out, n_in, kh, kw = weight.shape
    f = _module_fields(nInputPlane=n_in, nOutputPlane=n_out, kW=kw, kH=kh, dW=stride, dH=stride,
                       padW=padding, padH=padding,
                       weight=weight.reshape(n_out, -1) if mm else weight,
                       gradWeight=np.zeros_like(weight), bias=bias,
                       gradBias=None if bias is None else np.zeros_like(bias))
    if dilation is not None:
        f.update(dilationW=dilation, dilationH=dilation)
        return T7Object("nn.SpatialDilatedConvolution", f)
    return T7Object("nn.SpatialConvolutionMM" if mm else "nn.SpatialConvolution", f)


def spatial_full_convolution(weight: np.ndarray, bias: np.ndarray | None, stride: int, padding: int,
                             adj: int = 0) -> T7Object:
    """``nn.SpatialFullConvolution``; ``weight`` is (nInputPlane, nOutputPlane, kH, kW)."""
    n_in, n_out, kh, kw = weight.shape
    return T7Object("nn.SpatialFullConvolution", _module_fields(
        nInputPlane=n_in, nOutputPlane=n_out, kW=kw, kH=kh, dW=stride, dH=stride, padW=padding, padH=padding,
        adjW=adj, adjH=adj, weight=weight, gradWeight=np.zeros_like(weight), bias=bias,
        gradBias=None if bias is None else np.zeros_like(bias)))


def spatial_batch_norm(running_mean, running_var, weight=None, bias=None, eps: float = 1e-5,
                       old_running_std: bool = False) -> T7Object:
    """``nn.SpatialBatchNormalization``.

    ``old_running_std=True`` writes the layout of nn before 2016 (class version 1): a field
    ``running_std`` that holds ``1 / sqrt(running_var + eps)`` instead of ``running_var``.
    """
    f = _module_fields(eps=eps, momentum=0.1, affine=weight is not None, running_mean=running_mean,
                       weight=weight, bias=bias,
                       gradWeight=None if weight is None else np.zeros_like(weight),
                       gradBias=None if bias is None else np.zeros_like(bias))
    if old_running_std:
        f["running_std"] = (1.0 / np.sqrt(running_var + eps)).astype(running_var.dtype)
        return T7Object("nn.SpatialBatchNormalization", f, version=1)
    f["running_var"] = running_var
    return T7Object("nn.SpatialBatchNormalization", f, version=2)


def relu() -> T7Object:
    return T7Object("nn.ReLU", _module_fields(threshold=0, val=0, inplace=True))


def sigmoid() -> T7Object:
    return T7Object("nn.Sigmoid", _module_fields())


def sequential(*modules) -> T7Object:
    return T7Object("nn.Sequential", _module_fields(modules=list(modules)))
