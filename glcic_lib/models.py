"""The completion network (Table 1) and the context discriminators (Table 2), built from
:mod:`glcic_lib.tables`.

All networks work on images in ``[0, 1]``; the completion network returns its raw
(sigmoid) output for the whole image, and :func:`paste` keeps the pixels outside the holes.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .losses import OPPONENT
from .pushpull import harmonic_fill, push_pull_fill
from .tables import (COMPLETION_IN_CHANNELS, COMPLETION_LAYERS, GLOBAL_INPUT_SIZE, GLOBAL_LAYERS,
                     LOCAL_INPUT_SIZE, LOCAL_LAYERS, Layer)

#: Mean pixel of Places2 as stored in the authors' released model (RGB, in [0, 1]).
PLACES2_MEAN = (0.4560, 0.4472, 0.4155)


class Block(nn.Module):
    """One table row: a (transposed) convolution, then batch norm + ReLU, or a sigmoid."""

    def __init__(self, layer: Layer, in_ch: int, out_ch: int):
        super().__init__()
        self.spec = layer
        if layer.transposed:
            self.conv = nn.ConvTranspose2d(in_ch, out_ch, layer.kernel, stride=layer.int_stride,
                                           padding=layer.padding, dilation=layer.dilation)
        else:
            self.conv = nn.Conv2d(in_ch, out_ch, layer.kernel, stride=layer.int_stride,
                                  padding=layer.padding, dilation=layer.dilation)
        if layer.activation == "bn+relu":
            self.bn = nn.BatchNorm2d(out_ch)
            self.act = nn.ReLU(inplace=True)
            # Batch norm subtracts the batch mean, so in training this bias cancels out: its
            # gradient is rounding noise (larger with channels-last kernels), which Adam's
            # normalised steps would turn into a random drift that only shows in eval mode,
            # through the running mean.  It stays a parameter (checkpoints and the authors'
            # weights carry it; eval mode and fused inference use it) but is not trained.
            self.conv.bias.requires_grad_(False)
        elif layer.activation == "sigmoid":
            self.bn = nn.Identity()
            self.act = nn.Sigmoid()
        else:
            raise ValueError(f"unsupported activation {layer.activation!r} for a convolution")

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


def _conv_stack(layers, in_ch: int, width: float) -> tuple[nn.Sequential, int]:
    blocks, ch = [], in_ch
    for L in layers:
        if L.kind == "fc":
            continue
        out = L.channels(width)
        blocks.append(Block(L, ch, out))
        ch = out
    return nn.Sequential(*blocks), ch


def _check_image(name: str, x: torch.Tensor, channels: int | None = None):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got {x.shape[1]} (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}")


class CompletionNetwork(nn.Module):
    """Table 1: fully convolutional, any input size that is a multiple of 4.

    ``forward(image, mask)`` takes ``image`` (N,3,H,W) in [0,1] and ``mask`` (N,1,H,W) with 1
    in the holes, builds the 4-channel input and returns the network's (N,3,H,W) output for
    every pixel.  Use :func:`paste` (or :func:`glcic_lib.complete`) to keep the known pixels.

    ``width`` multiplies every channel count but the output's 3 (``width=1`` is the paper).
    ``mean_pixel`` fills the holes (the data set's mean colour; training sets it from the data).
    ``input_mode`` is ``"fill"`` (image in [0,1], holes = mean pixel; this course's training) or
    ``"subtract"`` (image minus the mean, holes = 0: how the authors' Torch7 model was trained)
    or ``"opponent"`` (``"subtract"`` in a whitened opponent-colour basis) or ``"smooth"`` (holes
    pre-filled smoothly from their surroundings) or ``"harmonic"`` (the same, solved to the
    harmonic fill; the ``demo`` recipe): see :func:`network_input`.
    ``output_mode`` is ``"direct"`` (Table 1: the last layer's sigmoid is the output) or
    ``"residual"`` (the same layers; the last convolution's output is added to the logit of the
    filled input before the sigmoid, :func:`residual_output`, and starts at zero: the network
    begins as the fill and learns corrections to it).
    """

    def __init__(self, width: float = 1.0, mean_pixel=PLACES2_MEAN, input_mode: str = "fill",
                 output_mode: str = "direct"):
        super().__init__()
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        check_output_mode(output_mode, input_mode)
        self.width = float(width)
        self.input_mode = input_mode
        self.output_mode = output_mode
        #: measured error of reduced precision against float32 (``{"bfloat16": {"mean": ..,
        #: "p999": .., ...}}``, see :mod:`glcic_lib.precision_check`), read from the checkpoint's
        #: meta; None: never measured, so ``complete(precision="auto")`` runs float32
        self.reduced_precision: dict | None = None
        self.register_buffer("mean_pixel", torch.tensor(mean_pixel, dtype=torch.float32).view(1, 3, 1, 1))
        self.body, _ = _conv_stack(COMPLETION_LAYERS, COMPLETION_IN_CHANNELS, width)
        if output_mode == "residual":   # start as the identity on the filled input
            nn.init.zeros_(self.body[-1].conv.weight)
            nn.init.zeros_(self.body[-1].conv.bias)

    def config(self) -> dict:
        """What is needed to rebuild this network (stored in checkpoints)."""
        return {"arch": "CompletionNetwork", "width": self.width, "input_mode": self.input_mode,
                "output_mode": self.output_mode}

    def adopt_modes(self, config: dict) -> None:
        """Take ``input_mode`` and ``output_mode`` from another network's :meth:`config` (a start
        or resumed checkpoint: how that network expects its input and makes its output comes
        with its weights).  A config saved before ``output_mode`` existed is ``"direct"``."""
        self.input_mode = config.get("input_mode", self.input_mode)
        self.output_mode = config.get("output_mode", "direct")
        check_output_mode(self.output_mode, self.input_mode)

    def prepare_input(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _check_image("image", image, 3)
        _check_image("mask", mask, 1)
        if image.shape[0] != mask.shape[0] or image.shape[-2:] != mask.shape[-2:]:
            raise ValueError(f"image {tuple(image.shape)} and mask {tuple(mask.shape)} differ in batch or size")
        return network_input(image, mask, self.mean_pixel, self.input_mode)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        if h % 4 or w % 4:
            raise ValueError(f"CompletionNetwork needs sizes that are multiples of 4 (it downsamples twice), "
                             f"got {h}x{w}; glcic_lib.complete pads for you")
        x = self.prepare_input(image, mask)
        if self.output_mode == "direct":
            return self.body(x)
        return residual_output(self.body[-1].conv(self.body[:-1](x)), x)

    def fused(self) -> "CompletionNetwork":
        """An inference copy with every batch norm folded into its convolution (eval mode)."""
        model = copy.deepcopy(self).eval()
        for block in model.body:
            if isinstance(block.bn, nn.BatchNorm2d):
                _fold_bn(block.conv, block.bn)
                block.bn = nn.Identity()
        return model


@torch.no_grad()
def _fold_bn(conv: nn.Module, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    if isinstance(conv, nn.ConvTranspose2d):  # weight: (in, out, k, k)
        conv.weight.mul_(scale.view(1, -1, 1, 1))
    else:  # weight: (out, in, k, k)
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)


OUTPUT_MODES = ("direct", "residual")
#: the filled input is clamped to [RESIDUAL_EPS, 1 - RESIDUAL_EPS] before its logit
RESIDUAL_EPS = 1e-3


def check_output_mode(output_mode: str, input_mode: str) -> None:
    if output_mode not in OUTPUT_MODES:
        raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}")
    if output_mode == "residual" and input_mode not in ("fill", "smooth", "harmonic"):
        raise ValueError(f"output_mode 'residual' adds to the filled input image, so it needs input_mode "
                         f"'fill', 'smooth' or 'harmonic' (an image in [0, 1]), got {input_mode!r}")


def residual_output(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sigmoid(logits + logit(filled input))``: the ``"residual"`` output of a completion network.

    ``logits``: the last convolution's output (N,3,H,W); ``x``: the network's 4-channel input,
    whose first three channels are the image with its holes filled, in [0, 1].  With zero
    logits the output *is* the filled input; the network only learns what to change.
    """
    base = x[:, :3].float().clamp(RESIDUAL_EPS, 1 - RESIDUAL_EPS)
    return torch.sigmoid(logits.float() + torch.logit(base))


DECONV_INITS = ("default", "bilinear")


@torch.no_grad()
def bilinear_deconv_init(model: nn.Module) -> int:
    """Start every 4x4 stride-2 transposed convolution of ``model`` without a checkerboard.

    A transposed convolution with a 4x4 kernel and stride 2 paints each output pixel with 2x2
    of its 16 taps, a different 2x2 for each position modulo 2: with random taps the four
    positions get different gains, and a flat input comes out as a period-2 pattern that
    training has to unlearn (the grid that :func:`glcic_lib.metrics.grid_energy` measures).
    Here every kernel becomes ``a[in, out] * B`` with ``B`` the outer product of the bilinear
    taps ``(1, 3, 3, 1) / 4``, whose 2x2 subsets all sum to 1: the layer starts as a random
    channel mix followed by a bilinear upsampling, so all four positions have the same gain.
    ``a`` is drawn from the default weights, scaled by 3.2 so that the output's variance for a
    random input stays what it was.  Returns how many layers were changed.
    """
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 4
    changed = 0
    for m in model.modules():
        if isinstance(m, nn.ConvTranspose2d) and m.kernel_size == (4, 4) and m.stride == (2, 2):
            kernel = torch.outer(taps, taps).to(m.weight)
            m.weight.copy_(m.weight[:, :, :1, :1] * 3.2 * kernel)
            changed += 1
    return changed


INPUT_MODES = ("fill", "subtract", "opponent", "smooth", "harmonic")
#: ``"opponent"`` input: an orthonormal basis of luminance, red-green and yellow-blue
#: (:data:`glcic_lib.losses.OPPONENT`), the colour rows scaled so that all three have about the
#: same spread in photographs (colour differences vary ~4x less than brightness).  A fixed
#: linear map before the first convolution: the same family of networks as ``"subtract"``
#: (the first layer could absorb it), but gradient descent starts with filters that see colour
#: as strongly as brightness.
OPPONENT_INPUT = OPPONENT
OPPONENT_SCALE = torch.tensor([1.0, 4.0, 4.0])


def network_input(image: torch.Tensor, mask: torch.Tensor, mean_pixel: torch.Tensor,
                  input_mode: str = "fill") -> torch.Tensor:
    """The 4-channel input of Table 1: the image with its holes blanked, then the mask.

    ``"fill"``: holes hold the mean pixel, known pixels stay in [0, 1].  ``"subtract"``: the
    image minus the mean pixel, holes 0 (the authors' Torch7 convention).  ``"opponent"``:
    ``"subtract"`` turned into the scaled opponent-colour basis :data:`OPPONENT_INPUT`.  ``"smooth"``:
    holes hold :func:`glcic_lib.pushpull.push_pull_fill`, a smooth blend of the colours around
    them (``mean_pixel`` is not used), known pixels stay in [0, 1].  ``"harmonic"``: the same
    with :func:`glcic_lib.pushpull.harmonic_fill`, solved further towards the harmonic fill
    (about 0.6-0.9 dB closer to the truth in the holes of photographs).  Either way the
    network sees the same information: *where* the holes are (channel 4) and what surrounds them.
    """
    mean = mean_pixel.to(device=image.device, dtype=image.dtype)
    mask = mask.to(image.dtype)
    if input_mode == "fill":
        x = image * (1 - mask) + mean * mask
    elif input_mode == "subtract":
        x = (image - mean) * (1 - mask)
    elif input_mode == "smooth":
        x = push_pull_fill(image, mask)
    elif input_mode == "harmonic":
        x = harmonic_fill(image, mask)
    else:   # "opponent": luminance and two colour differences, the colour ones scaled up
        basis = (OPPONENT_INPUT * OPPONENT_SCALE.view(3, 1)).to(device=image.device, dtype=image.dtype)
        x = torch.einsum("ck,nkhw->nchw", basis, (image - mean) * (1 - mask))
    return torch.cat([x, mask], dim=1)


def paste(output: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The completed image: the network's pixels inside the holes, the input's everywhere else.

    A selection, not a blend (``torch.where``), so known pixels are bit-for-bit the input's,
    even where the network's output is not finite; gradients flow to ``output`` in the holes.
    """
    image = image.to(output.dtype)
    hole = mask if mask.dtype == torch.bool else mask > 0.5
    return torch.where(hole, output, image)


class _Discriminator(nn.Module):
    def __init__(self, layers, input_size: int, width: float, name: str):
        super().__init__()
        n_down = sum(1 for L in layers if L.kind != "fc")
        if input_size % (2 ** n_down):
            raise ValueError(f"{name} input size must be a multiple of {2 ** n_down}, got {input_size}")
        self.input_size = int(input_size)
        self.width = float(width)
        self.name = name
        self.features, ch = _conv_stack(layers, 3, width)
        side = input_size // 2 ** n_down
        self.fc = nn.Linear(ch * side * side, layers[-1].out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image(f"{self.name} input", x, 3)
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"{self.name} expects {self.input_size}x{self.input_size} inputs, "
                             f"got {x.shape[-2]}x{x.shape[-1]}")
        return self.fc(self.features(x).flatten(1))


class LocalDiscriminator(_Discriminator):
    """Table 2 (a): five 5x5 stride-2 convs on the patch around the hole, then FC to 1024."""

    def __init__(self, width: float = 1.0, input_size: int = LOCAL_INPUT_SIZE):
        super().__init__(LOCAL_LAYERS, input_size, width, "LocalDiscriminator")


class GlobalDiscriminator(_Discriminator):
    """Table 2 (b): six 5x5 stride-2 convs on the whole image, then FC to 1024."""

    def __init__(self, width: float = 1.0, input_size: int = GLOBAL_INPUT_SIZE):
        super().__init__(GLOBAL_LAYERS, input_size, width, "GlobalDiscriminator")


ARMS = ("both", "global", "local")


class ContextDiscriminator(nn.Module):
    """Table 2 (c): concatenate the global and local 1024-vectors and map them to one logit.

    ``arms`` picks ``"both"`` (the paper), ``"global"`` or ``"local"`` (the ablations); the
    missing arm is not built and its input is ignored.  The output is a logit of shape (N, 1):
    the paper's sigmoid lives inside the loss (``BCEWithLogits``), which is numerically safer
    and the same model.
    """

    def __init__(self, arms: str = "both", width: float = 1.0,
                 global_size: int = GLOBAL_INPUT_SIZE, local_size: int = LOCAL_INPUT_SIZE):
        super().__init__()
        if arms not in ARMS:
            raise ValueError(f"arms must be one of {ARMS}, got {arms!r}")
        self.arms = arms
        self.width = float(width)
        self.global_size, self.local_size = int(global_size), int(local_size)
        self.global_d = GlobalDiscriminator(width, global_size) if arms in ("both", "global") else None
        self.local_d = LocalDiscriminator(width, local_size) if arms in ("both", "local") else None
        n = (self.global_d is not None) + (self.local_d is not None)
        self.fc = nn.Linear(1024 * n, 1)

    def config(self) -> dict:
        return {"arch": "ContextDiscriminator", "arms": self.arms, "width": self.width,
                "global_size": self.global_size, "local_size": self.local_size}

    def forward(self, global_image: torch.Tensor | None, local_patch: torch.Tensor | None) -> torch.Tensor:
        feats = []
        if self.global_d is not None:
            if global_image is None:
                raise ValueError("this discriminator has a global arm: pass the whole image")
            feats.append(self.global_d(global_image))
        if self.local_d is not None:
            if local_patch is None:
                raise ValueError("this discriminator has a local arm: pass the local patch")
            feats.append(self.local_d(local_patch))
        return self.fc(torch.cat(feats, dim=1))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
