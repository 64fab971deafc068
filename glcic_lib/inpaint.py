"""Completion at inference time: any image size, any holes, one forward pass.

:func:`complete` is the one entry point the notebooks, widgets and command line use.
"""
from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .device import pick_device
from .models import CompletionNetwork, paste

_PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def _as_model(model) -> CompletionNetwork:
    if model is None:
        from .pretrained import load_pretrained

        return load_pretrained()
    if isinstance(model, (str, Path)):
        from .checkpoint import load_completion

        return load_completion(model)
    model = getattr(model, "module", model)
    if not isinstance(model, CompletionNetwork):
        raise TypeError(f"model must be a CompletionNetwork, a checkpoint path or None (the demo model), "
                        f"got {type(model).__name__}")
    return model


# A per-model cache of the inference copy (batch norm folded, channels-last, on the device).  It
# is keyed on the parameters' version counters, so training the model invalidates it.
_CACHE: "weakref.WeakKeyDictionary[CompletionNetwork, tuple]" = weakref.WeakKeyDictionary()


def _state_key(model: CompletionNetwork):
    return tuple(t._version for t in list(model.parameters()) + list(model.buffers())) + tuple(
        t.data_ptr() for t in model.parameters())


def inference_model(model: CompletionNetwork, device: torch.device, dtype: torch.dtype = torch.float32):
    """The fused, channels-last inference copy of ``model`` on ``device`` (cached)."""
    key = (str(device), dtype, _state_key(model))
    hit = _CACHE.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    fast = model.fused().to(device=device, dtype=dtype).to(memory_format=torch.channels_last)
    fast.requires_grad_(False)
    _CACHE[model] = (key, fast)
    return fast


def _resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[precision]


def _check_numpy(image: np.ndarray, mask) -> tuple[torch.Tensor, torch.Tensor]:
    if image.dtype != np.uint8:
        raise TypeError(f"numpy images must be uint8 RGB (H, W, 3), got dtype {image.dtype}; "
                        f"for float images in [0, 1] pass a torch tensor (N, 3, H, W)")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}"
                         + (" (a grey image: stack it to 3 channels)" if image.ndim == 2 else ""))
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W) with non-zero values in the holes, got shape {mask.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask size {mask.shape} differs from image size {image.shape[:2]}")
    if mask.dtype.kind == "f" and np.isnan(mask).any():
        raise ValueError("mask contains NaN")
    img_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    mask_t = torch.from_numpy(mask != 0)[None, None].float()
    return img_t, mask_t


def _check_tensor(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    squeeze = image.ndim == 3
    if squeeze:
        image = image[None]
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image tensor must be (N, 3, H, W) or (3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"image tensor must be float in [0, 1], got {image.dtype}")
    if torch.isnan(image).any():
        raise ValueError("image contains NaN")
    lo, hi = float(image.min()), float(image.max())
    if lo < 0 or hi > 1:
        raise ValueError(f"image values must lie in [0, 1], found [{lo:.3g}, {hi:.3g}]"
                         + (" (looks like 0-255: divide by 255)" if hi > 1.5 else ""))
    if not isinstance(mask, torch.Tensor):
        mask = torch.as_tensor(np.asarray(mask))
    if mask.ndim == 2:
        mask = mask[None, None]
    elif mask.ndim == 3:
        mask = mask[:, None] if mask.shape[0] == image.shape[0] and mask.shape[0] != 1 else mask[None]
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask tensor must be (N, 1, H, W), got {tuple(mask.shape)}")
    if mask.is_floating_point() and torch.isnan(mask).any():
        raise ValueError("mask contains NaN")
    if mask.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"mask size {tuple(mask.shape[-2:])} differs from image size {tuple(image.shape[-2:])}")
    if mask.shape[0] not in (1, image.shape[0]):
        raise ValueError(f"mask batch {mask.shape[0]} does not match image batch {image.shape[0]}")
    mask = (mask != 0).to(image.dtype).expand(image.shape[0], -1, -1, -1)
    return image, mask, squeeze


@torch.inference_mode()
def run_network(model: CompletionNetwork, image: torch.Tensor, mask: torch.Tensor,
                device: torch.device | None = None, precision: str = "auto") -> torch.Tensor:
    """Raw network output for (N,3,H,W) images of any size: pads to a multiple of 4
    (edge pixels replicated, padding counted as known), runs once, crops back."""
    device = pick_device(device)
    dtype = _resolve_precision(precision, device)
    net = inference_model(model, device, dtype)
    h, w = image.shape[-2:]
    ph, pw = (-h) % 4, (-w) % 4
    x = image.to(device, dtype, non_blocking=True)
    m = mask.to(device, dtype, non_blocking=True)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        m = F.pad(m, (0, pw, 0, ph), value=0.0)
    x = x.contiguous(memory_format=torch.channels_last)
    out = net(x, m)[..., :h, :w]
    return out.float().cpu() if image.device.type == "cpu" else out.to(image.device, torch.float32)


def complete(model, image, mask, postprocess: bool = False, device=None, precision: str = "auto"):
    """Fill the holes of ``image`` marked by ``mask``.

    * ``image`` uint8 numpy (H, W, 3) RGB with ``mask`` (H, W) (non-zero = hole) returns a uint8
      numpy image; a float torch tensor (N, 3, H, W) in [0, 1] with a (N, 1, H, W) mask returns
      a float tensor.
    * ``model``: a :class:`CompletionNetwork`, a checkpoint path, or ``None`` for the bundled
      demo model.
    * Any size (padded to a multiple of 4, then cropped), any number and shape of holes, one
      forward pass, no gradients; float16 on CUDA.  Pixels outside the holes are exactly the
      input's.  ``postprocess=True`` adds fast marching + Poisson blending
      (:func:`glcic_lib.postprocess.postprocess`, on uint8 images).
    * An empty mask returns the image unchanged; a mask covering the whole image is an error.
    """
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
        raise ValueError(f"the mask covers the whole image (batch item {full[0]}): there is no context to complete from")
    if numpy_in and holes.sum() == 0:
        return image.copy()
    if not numpy_in and holes.sum() == 0 and not postprocess:
        out = img_t.clone()
        return out[0] if squeeze else out
    net = _as_model(model)
    raw = run_network(net, img_t, mask_t, device, precision) if holes.sum() > 0 else img_t
    done = paste(raw, img_t.to(raw.device), mask_t.to(raw.device))
    if numpy_in:
        out = (done[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        out[~(mask_t[0, 0].numpy() > 0)] = image[~(mask_t[0, 0].numpy() > 0)]
        if postprocess:
            from .postprocess import postprocess as _post

            out = _post(out, mask_t[0, 0].numpy() > 0)
        return out
    if postprocess:
        from .postprocess import postprocess as _post

        u8 = (done.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        posts = [_post(u8[i], mask_t[i, 0].cpu().numpy() > 0) for i in range(len(u8))]
        post = torch.from_numpy(np.stack(posts)).permute(0, 3, 1, 2).float() / 255
        m = mask_t.to(done.device)
        done = post.to(done.device) * m + img_t.to(done.device) * (1 - m)
    return done[0] if squeeze else done
