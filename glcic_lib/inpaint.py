"""Completion at inference time: any image size, any holes, one forward pass.

:func:`complete` is the one entry point the notebooks, widgets and command line use.

How the forward pass is made fast (measured by ``python -m glcic_lib bench``):

* **batch norm folded** into the convolutions (:meth:`CompletionNetwork.fused`): in eval mode
  BN is an affine map per channel, so it can be multiplied into the preceding weights;
* **channels-last** memory layout, which oneDNN (CPU) and cuDNN (GPU) prefer;
* **reduced precision** where the *model* has been shown to tolerate it, chosen by
  :func:`precision_choice`: the device's fast reduced precision (:func:`hardware_precision`:
  float16 on CUDA, bfloat16 on a CPU that computes it in hardware, Intel AMX or AVX512-BF16,
  :func:`glcic_lib.device.cpu_has_bfloat16`) only for a model whose checkpoint stores a measured
  error against float32 (:mod:`glcic_lib.precision_check`: on the bundled held-out photographs,
  inside the holes) of at most :data:`AUTO_MAX_MEAN_LEVELS` grey level on average and
  :data:`AUTO_MAX_P999_LEVELS` at the 99.9th percentile; float32 for any other model, and for
  one never measured (a fresh network, an older checkpoint, a Torch7 file read directly).  The
  last :data:`FLOAT32_TAIL` layers (64->32 and 32->3 channels, ~4% of the work) always stay in
  float32.  bfloat16 keeps only 8 bits of mantissa, and whether that matters depends on the
  weights: on the bundled demo model it moves the completed pixels by 0.09-0.51 uint8 levels on
  average inside the holes of the 8 held-out images (largest single pixel: 10 levels), and
  ``tests/test_inpaint.py`` keeps every image's mean within 1 level; but a paper-width network
  converted from the authors' Torch7 format (random weights with calibrated batch-norm
  statistics) moved by up to 35 levels, and a random paper-size network
  (:func:`glcic_lib.bench.stress_model`) moves ~10% of its hole pixels by more than 2 levels.
  Hence a measurement per model, stored when training, ``make_demo`` or ``convert-torch7``
  writes a checkpoint, or added later with ``glcic measure-precision CHECKPOINT``.  Any
  explicit ``precision=`` (``--precision`` on the command line) is kept as asked;
* **inference mode** (no autograd bookkeeping at all) and one cached inference copy per model;
* **torch.compile**, opt-in (``compile=True``): Inductor with weight freezing compiles the
  inference copy once per image size (tens of seconds on a CPU) and then saves ~20% per call
  on a CPU in bfloat16, so it pays off only after many completions of one size (the mask
  painter completes one image over and over).  The compiled copy is cached with the inference
  copy; if compiling fails (no C++ compiler) :func:`complete` warns and runs uncompiled.

Measured on the course's 2-core CPU (torch 2.13, float32, paper width): the default path
takes 0.82 s / 2.9 s / 10.8 s / 48 s at 256 / 512 / 1024 / 2048 pixels, 1.43x / 1.54x / 1.72x /
1.93x faster than Table 1 written as a plain ``nn.Sequential`` under ``torch.no_grad()``, with
uint8 results within 1 grey level of it; a fresh process completing a 1024x1024 image peaks at
~0.75 GB resident (2 GB at 2048).  In bfloat16 (what ``auto`` picks on an AVX512-BF16 CPU, an AMD EPYC
here, for a model measured to allow it), one 512x512 run with every candidate interleaved, on a machine shared with a training
job (so all times are several times the idle ones; the ratios are what to read): plain fp32
9.5 s, default path in float32 6.9 s (0.72x), ``auto`` = bfloat16 + channels-last 4.5 s
(0.47x), ``compile=True`` 3.8 s (0.40x) after a first call of 15 s (it pays off after ~20
calls of that size).  ``glcic bench`` prints these ratios for the machine it runs on, and the
hardware bound: on one free core of the same machine, ``auto`` at 512x512 took 1.31 s against
3.36 s for the plain fp32 forward (0.39x) while running at 97% of the core's measured bfloat16
matrix-multiply peak (199 of 206 GFLOP/s); that peak is only 2.2x the float32 one on AVX512-BF16
without AMX, so no code change reaches the 0.25x this project aims for there; Intel AMX's
bfloat16 tiles (several times faster) can.  Channels-last is most of the gain; ``torch.jit.freeze``
added ~3% more at 256 (within the noise), so it is not used.
"""
from __future__ import annotations

import warnings
import weakref
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .device import cpu_has_bfloat16, pick_device
from .models import CompletionNetwork, network_input, paste, residual_output

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

#: Number of Table 1's last layers that always run in float32 (see the module docstring).
FLOAT32_TAIL = 2

#: The network downsamples twice, so its input sides must be multiples of this.
MULTIPLE = 4


def _as_model(model) -> CompletionNetwork:
    if model is None or isinstance(model, (str, Path)):
        from .pretrained import load_pretrained

        return load_pretrained("demo" if model is None else str(model))
    model = getattr(model, "module", model)  # DataParallel / DistributedDataParallel
    if not isinstance(model, CompletionNetwork):
        raise TypeError(f"model must be a CompletionNetwork, a checkpoint path or None (the demo model), "
                        f"got {type(model).__name__}")
    return model


# --------------------------------------------------------------------------------------------
# precision and the inference copy of a model
# --------------------------------------------------------------------------------------------
#: ``precision="auto"`` runs a model in reduced precision only if its stored error against
#: float32 (:mod:`glcic_lib.precision_check`) is at most this many grey levels on average inside
#: the holes ...
AUTO_MAX_MEAN_LEVELS = 1.0
#: ... and at most this many at the 99.9th percentile of the hole pixels' differences.
AUTO_MAX_P999_LEVELS = 4.0


def hardware_precision(device: torch.device) -> str:
    """The reduced precision ``device`` computes fast: float16 on CUDA, bfloat16 on a CPU with
    bfloat16 hardware (:func:`glcic_lib.device.cpu_has_bfloat16`; ``$GLCIC_CPU_BF16=0`` or
    ``1`` overrides the detection), float32 (none) elsewhere.  What ``auto`` picks for a model
    measured to tolerate it (:func:`precision_choice`)."""
    device = torch.device(device)
    if device.type == "cuda":
        return "float16"
    if device.type == "cpu" and cpu_has_bfloat16():
        return "bfloat16"
    return "float32"


def _within_limits(entry) -> bool:
    try:
        return (not entry.get("overflowed", False) and float(entry["mean"]) <= AUTO_MAX_MEAN_LEVELS
                and float(entry["p999"]) <= AUTO_MAX_P999_LEVELS)
    except (AttributeError, KeyError, TypeError, ValueError):
        return False


def _describe_error(name: str, entry) -> str:
    try:
        return (f"its stored {name} error is {float(entry['mean']):.2f} grey levels on average and "
                f"{float(entry['p999']):.1f} at the 99.9th percentile inside the holes"
                + (" (it overflowed)" if entry.get("overflowed") else ""))
    except (AttributeError, KeyError, TypeError, ValueError):
        return f"its stored {name} measurement is malformed ({entry!r:.60})"


def precision_choice(model, device) -> tuple[str, str]:
    """What ``precision="auto"`` runs ``model`` in on ``device``, and why (one line).

    The device's fast precision (:func:`hardware_precision`) if the model's stored measurement
    (``model.reduced_precision``, read from its checkpoint) is within
    :data:`AUTO_MAX_MEAN_LEVELS` on average and :data:`AUTO_MAX_P999_LEVELS` at the 99.9th
    percentile; float32 otherwise, and for a model never measured (``model`` None included).
    On CUDA a bfloat16 measurement stands in for a missing float16 one: float16 rounds 8 times
    finer (10 mantissa bits instead of 7), and an overflow of its narrower range is caught by
    :func:`run_network`, which then repeats the pass in float32."""
    device = torch.device(device)
    fast = hardware_precision(device)
    if fast == "float32":
        where = {"cpu": "this CPU has no bfloat16 hardware (AMX / AVX512-BF16)",
                 "mps": "Apple GPUs run float32"}.get(device.type, f"{device.type} runs float32")
        return "float32", f"float32: {where}"
    stored = getattr(getattr(model, "module", model), "reduced_precision", None) or {}
    entry, name = stored.get(fast), fast
    if entry is None and fast == "float16" and stored.get("bfloat16") is not None:
        entry, name = stored["bfloat16"], "bfloat16"
    if entry is None:
        return "float32", (f"float32: the model has no stored {fast} measurement (a fresh network or an older "
                           f"checkpoint); add one with `glcic measure-precision CHECKPOINT`, or ask for "
                           f"precision='{fast}'")
    limits = f"limits {AUTO_MAX_MEAN_LEVELS:g} and {AUTO_MAX_P999_LEVELS:g}"
    if _within_limits(entry):
        extra = "; float16 rounds 8x finer than bfloat16" if name != fast else ""
        return fast, f"{fast}: {_describe_error(name, entry)} ({limits}){extra}"
    return "float32", f"float32: {_describe_error(name, entry)}, beyond the {limits} for {fast} under auto"


def default_precision(device: torch.device, model=None) -> str:
    """The precision ``precision="auto"`` picks for ``model`` on ``device`` (see
    :func:`precision_choice`; without a model: float32, as for any model never measured)."""
    return precision_choice(model, device)[0]


def resolve_precision(precision: str, device: torch.device, model=None) -> torch.dtype:
    """The dtype of the heavy layers for ``precision`` ("auto" or a dtype name) of ``model`` on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        precision = default_precision(device, model)
    return _DTYPES[precision]


class InferenceNetwork(nn.Module):
    """A :class:`CompletionNetwork` prepared for inference (what :func:`complete` runs).

    Batch norm is folded into the convolutions, all weights are channels-last; the first
    layers (``head``) run in ``dtype``, the last :data:`FLOAT32_TAIL` (``tail``) in float32.
    ``forward(image, mask)`` takes float32 tensors whose sides are multiples of 4 and returns
    the float32 network output, like ``CompletionNetwork.forward``.
    """

    def __init__(self, model: CompletionNetwork, device: torch.device, dtype: torch.dtype = torch.float32):
        super().__init__()
        fused = model.fused()
        blocks = list(fused.body)
        self.output_mode = fused.output_mode
        if self.output_mode == "residual":   # the tail ends with the logits; forward adds the fill
            blocks[-1].act = nn.Identity()
        n_head = len(blocks) if dtype == torch.float32 else len(blocks) - FLOAT32_TAIL
        self.dtype = dtype
        self.input_mode = fused.input_mode
        self.register_buffer("mean_pixel", fused.mean_pixel.detach().clone())
        self.head = nn.Sequential(*blocks[:n_head]).to(device=device, dtype=dtype)
        self.tail = nn.Sequential(*blocks[n_head:]).to(device=device, dtype=torch.float32)
        self.to(device=device, memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.eval()

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = network_input(image, mask, self.mean_pixel, self.input_mode)
        y = self.head(x.to(self.dtype).contiguous(memory_format=torch.channels_last)).float()
        y = self.tail(y) if len(self.tail) else y
        return residual_output(y, x) if self.output_mode == "residual" else y


# One inference copy per model, keyed on the device, the dtype and the parameters' identities
# and version counters: moving or training the model (optimiser steps bump the versions)
# invalidates it.  Weak keys: the cache never keeps a model alive.
_CACHE: "weakref.WeakKeyDictionary[CompletionNetwork, tuple]" = weakref.WeakKeyDictionary()


def _state_key(model: CompletionNetwork) -> tuple:
    tensors = list(model.parameters()) + list(model.buffers())
    return tuple((t.data_ptr(), t._version) for t in tensors)


def inference_model(model: CompletionNetwork, device: torch.device | str,
                    dtype: torch.dtype = torch.float32) -> InferenceNetwork:
    """The cached :class:`InferenceNetwork` of ``model`` on ``device`` with heavy layers in ``dtype``."""
    device = torch.device(device)
    key = (str(device), dtype, _state_key(model))
    hit = _CACHE.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    fast = InferenceNetwork(model, device, dtype)
    _CACHE[model] = (key, fast)
    return fast


# The torch.compile'd wrapper of each inference copy (it lives and dies with that copy, so a
# changed model gets a fresh one).  torch.compile specialises on the input shape: each image
# size compiles once, later calls of that size reuse the compiled code.
_COMPILED: "weakref.WeakKeyDictionary[InferenceNetwork, object]" = weakref.WeakKeyDictionary()


def compiled_model(model: CompletionNetwork, device: torch.device | str,
                   dtype: torch.dtype = torch.float32):
    """The cached ``torch.compile`` of :func:`inference_model` (Inductor, weights frozen,
    static shapes), or the uncompiled inference copy where compiling failed before."""
    fast = inference_model(model, device, dtype)
    hit = _COMPILED.get(fast)
    if hit is None:
        hit = torch.compile(fast, dynamic=False, options={"freezing": True})
        _COMPILED[fast] = hit
    return hit


def _forward(model: CompletionNetwork, device: torch.device, dtype: torch.dtype, compile: bool, x, m):
    if not compile:
        return inference_model(model, device, dtype)(x, m)
    net = compiled_model(model, device, dtype)
    try:
        return net(x, m)
    except Exception as e:  # no C++ compiler, an unsupported platform, ...: run uncompiled
        if isinstance(net, InferenceNetwork):
            raise
        fast = inference_model(model, device, dtype)
        _COMPILED[fast] = fast
        warnings.warn(f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}); "
                      f"completing without it", RuntimeWarning)
        return fast(x, m)


@torch.inference_mode()
def run_network(model: CompletionNetwork, image: torch.Tensor, mask: torch.Tensor,
                device: torch.device | str | None = None, precision: str = "auto",
                compile: bool = False) -> torch.Tensor:
    """Raw network output (float32, on ``image``'s device) for (N,3,H,W) images of any size.

    Sides that are not multiples of 4 are padded at the bottom/right (edge pixels replicated,
    the padding counted as known context), the network runs once, the output is cropped back.
    If a reduced precision overflows (non-finite output) the pass is repeated in float32.
    ``compile=True`` runs the cached ``torch.compile`` of the network (:func:`compiled_model`).
    """
    device = pick_device(device)
    dtype = resolve_precision(precision, device, model)
    h, w = image.shape[-2:]
    ph, pw = (-h) % MULTIPLE, (-w) % MULTIPLE
    x = image.to(device=device, dtype=torch.float32)
    m = mask.to(device=device, dtype=torch.float32)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        m = F.pad(m, (0, pw, 0, ph), value=0.0)
    out = _forward(model, device, dtype, compile, x, m)
    if dtype != torch.float32 and not torch.isfinite(out).all():
        warnings.warn(f"the {dtype} forward pass overflowed; repeating it in float32", RuntimeWarning)
        out = _forward(model, device, torch.float32, compile, x, m)
    return out[..., :h, :w].to(image.device)


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
_MASK_TYPES = "mask must be bool, integer or float (holes: True, 1, or at least half white)"


def _check_mask_values(mask: np.ndarray | torch.Tensor) -> None:
    if isinstance(mask, np.ndarray):
        if mask.dtype.kind not in "biuf":
            raise TypeError(f"{_MASK_TYPES}, got dtype {mask.dtype}")
        if mask.dtype.kind == "f" and np.isnan(mask).any():
            raise ValueError("mask contains NaN")
    else:
        if mask.is_complex():
            raise TypeError(f"{_MASK_TYPES}, got dtype {mask.dtype}")
        if mask.is_floating_point() and torch.isnan(mask).any():
            raise ValueError("mask contains NaN")


def _holes(mask: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Bool holes of a mask by :func:`glcic_lib.imageio.hole_mask`'s rule (a tensor stays a
    tensor on its device): True, 1 in a 0/1 mask, or at least half white (>= 128, >= 0.5)."""
    from .imageio import hole_mask

    if not isinstance(mask, torch.Tensor):
        return hole_mask(mask)
    if mask.dtype == torch.bool:
        return mask
    m = mask.detach().cpu()
    return torch.from_numpy(hole_mask((m.float() if m.is_floating_point() else m).numpy())).to(mask.device)


def _check_numpy(image: np.ndarray, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a numpy uint8 (H, W, 3) image and (H, W) mask; return (1,3,H,W), (1,1,H,W) tensors."""
    if image.dtype != np.uint8:
        raise TypeError(f"numpy images must be uint8 RGB (H, W, 3), got dtype {image.dtype}; "
                        f"for float images in [0, 1] pass a torch tensor (N, 3, H, W)")
    if image.ndim != 3 or image.shape[2] != 3:
        hint = ""
        if image.ndim == 2:
            hint = " (a grey image: stack it to 3 channels)"
        elif image.ndim == 3 and image.shape[2] == 4:
            hint = " (RGBA: drop the alpha channel, image[..., :3])"
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}{hint}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W) with the holes marked (True, 1 or white), got shape {mask.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask size {mask.shape} differs from image size {image.shape[:2]}")
    _check_mask_values(mask)
    img_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    mask_t = torch.from_numpy(_holes(mask))[None, None].float()
    return img_t, mask_t


def _check_tensor(image: torch.Tensor, mask) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate an (N,3,H,W) or (3,H,W) float image and its mask; return (image, float mask, squeezed)."""
    squeeze = image.ndim == 3
    if squeeze:
        image = image[None]
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image tensor must be (N, 3, H, W) or (3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"image tensor must be float in [0, 1], got {image.dtype}")
    if image.numel() == 0:
        raise ValueError(f"image is empty: shape {tuple(image.shape)}")
    if torch.isnan(image).any():
        raise ValueError("image contains NaN")
    lo, hi = float(image.min()), float(image.max())
    if lo < 0 or hi > 1:
        raise ValueError(f"image values must lie in [0, 1], found [{lo:.3g}, {hi:.3g}]"
                         + (" (looks like 0-255: divide by 255)" if hi > 2 else ""))
    if not isinstance(mask, torch.Tensor):
        mask = torch.as_tensor(np.asarray(mask))
    if mask.ndim == 2:
        mask = mask[None, None]
    elif mask.ndim == 3:
        mask = mask[:, None] if mask.shape[0] == image.shape[0] and mask.shape[0] != 1 else mask[None]
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask tensor must be (N, 1, H, W), got {tuple(mask.shape)}")
    _check_mask_values(mask)
    if mask.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"mask size {tuple(mask.shape[-2:])} differs from image size {tuple(image.shape[-2:])}")
    if mask.shape[0] not in (1, image.shape[0]):
        raise ValueError(f"mask batch {mask.shape[0]} does not match image batch {image.shape[0]}")
    mask = _holes(mask).to(image.device, image.dtype).expand(image.shape[0], -1, -1, -1)
    return image, mask, squeeze


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    """(N,3,H,W) float in [0,1] -> (N,H,W,3) uint8, rounding to nearest."""
    return (t.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def fill_numpy(net: CompletionNetwork, image: np.ndarray, img_t: torch.Tensor, mask_t: torch.Tensor,
               device=None, precision: str = "auto", compile: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The uint8 path's forward pass, for ``image`` and the tensors :func:`_check_numpy` made of it.

    Returns the network's whole output as uint8, the completed image (the output inside the
    holes, ``image``'s own pixels, bit for bit, outside) and the hole mask as bool (H, W).
    """
    with torch.inference_mode():
        raw = run_network(net, img_t, mask_t, device, precision, compile)
    network = _to_uint8(raw)[0]
    hole = mask_t[0, 0].cpu().numpy() > 0
    completed = network.copy()
    completed[~hole] = image[~hole]
    return network, completed, hole


# --------------------------------------------------------------------------------------------
# the entry point
# --------------------------------------------------------------------------------------------
def complete(model, image, mask, postprocess: bool = False, device=None, precision: str = "auto",
             compile: bool = False):
    """Fill the holes of ``image`` marked by ``mask``.

    * ``image`` uint8 numpy (H, W, 3) RGB with ``mask`` (H, W) returns a uint8 numpy image.
      Holes (:func:`glcic_lib.imageio.hole_mask`): True in a bool mask, 1 in a 0/1 mask,
      otherwise pixels at least half white (>= 128 in 8-bit masks, >= 0.5 in float masks), so
      that a mask image with JPEG noise or grey edges marks only its white strokes.  A float torch tensor (N, 3, H, W) or
      (3, H, W) in [0, 1] with a (N, 1, H, W), (1, H, W) or (H, W) mask returns a tensor of the
      same shape, dtype and device.
    * ``model``: a :class:`CompletionNetwork`, a checkpoint path, or ``None`` for the bundled
      demo model.
    * Any size (padded to a multiple of 4, then cropped), any number and shape of holes, one
      forward pass, no gradients.  Pixels outside the holes are exactly the input's.
      ``postprocess=True`` adds fast marching + Poisson blending
      (:func:`glcic_lib.postprocess.postprocess`, on uint8 images).
    * ``device``: None picks CUDA, then MPS, then CPU.  ``precision``: ``"auto"`` (see
      :func:`precision_choice`: float16 on CUDA, bfloat16 on CPUs with AMX or AVX512-BF16, for
      a model whose checkpoint stores a measured error within 1 grey level on average and 4 at
      the 99.9th percentile; float32 otherwise and for models never measured), ``"float32"``,
      ``"bfloat16"`` or ``"float16"``, kept as asked.
    * ``compile=True``: run a cached ``torch.compile`` of the network (see the module
      docstring): the first call of each image size compiles (tens of seconds), later calls
      are faster; worth it for many completions of one size.
    * An empty mask returns the image unchanged (a copy); a mask covering the whole image is an
      error, and so is any malformed input (the message names the problem).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if model is not None and not isinstance(model, (str, Path)):
        model = _as_model(model)  # a wrong model type is an error even when there is nothing to fill
    numpy_in = isinstance(image, np.ndarray)
    if numpy_in:
        img_t, mask_t = _check_numpy(image, mask)
        squeeze = False
    elif isinstance(image, torch.Tensor):
        img_t, mask_t, squeeze = _check_tensor(image, mask)
    else:
        raise TypeError(f"image must be a uint8 numpy array or a float torch tensor, got {type(image).__name__}")
    holes = mask_t.flatten(1).sum(1)
    full = (holes == mask_t[0].numel()).nonzero().flatten().tolist()
    if full:
        where = f" (batch item {full[0]})" if mask_t.shape[0] > 1 else ""
        raise ValueError(f"the mask covers the whole image{where}: there is no context to complete from")
    if holes.sum() == 0:
        if numpy_in:
            return image.copy()
        return (img_t[0] if squeeze else img_t).detach().clone()

    net = _as_model(model)
    if postprocess:
        from .postprocess import postprocess as _post  # OpenCV, loaded only when asked for
    if numpy_in:
        _, out, hole = fill_numpy(net, image, img_t, mask_t, device, precision, compile)
        return _post(out, hole) if postprocess else out
    with torch.inference_mode():
        raw = run_network(net, img_t, mask_t, device, precision, compile)
        done = paste(raw.to(img_t.dtype), img_t, mask_t)  # exact outside the holes
        if postprocess:
            u8 = _to_uint8(done)
            holes_np = mask_t[:, 0].cpu().numpy() > 0
            posts = np.stack([_post(u8[i], holes_np[i]) for i in range(len(u8))])
            post = torch.from_numpy(posts).permute(0, 3, 1, 2).to(img_t.device, img_t.dtype) / 255
            done = paste(post, img_t, mask_t)
    done = done.clone()  # a normal tensor, usable outside inference mode
    return done[0] if squeeze else done
