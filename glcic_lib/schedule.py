"""What a training run is: its configuration (:class:`TrainConfig`), the named presets and
the three-phase schedule of Algorithm 1 (:meth:`TrainConfig.phase_at`).  The trainer itself is
:mod:`glcic_lib.train`; one iteration's maths is :mod:`glcic_lib.steps`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from . import losses
from .data import scaled_resize_range
from .masks import scaled_hole_range, scaled_local_size
from .augment import AUGMENTS
from .models import DECONV_INITS, INPUT_MODES, check_output_mode

PHASES = ("completion", "discriminator", "joint")
DISCRIMINATORS = ("both", "global", "local", "none")
OPTIMIZERS = ("adadelta", "adam")
HOLES = ("rect", "mixed")
CHECKPOINT = "checkpoint.pt"
HISTORY = "history.jsonl"

#: Config fields that must match to resume a run (the rest, e.g. the schedule, may change).
RESUME_MUST_MATCH = ("crop_size", "resize_range", "hole_range", "local_size", "batch_size", "accumulate",
                     "width", "d_width", "discriminator", "optimizer", "real_patch", "seed", "holes", "augment")


@dataclass
class TrainConfig:
    """Everything a training run depends on.  ``None`` sizes follow the crop size as in the paper.

    Sizes: ``crop_size`` (256 in the paper; a multiple of 64 so the global discriminator's six
    halvings come out whole), ``resize_range`` (smaller side before cropping; default
    ``[crop, 1.5 crop]``), ``hole_range`` (hole sides; default ``[3/8, 1/2] x crop``, i.e.
    [96, 128]), ``local_size`` (the local discriminator's patch; default ``crop / 2``).

    Schedule: ``t_c`` completion-only iterations, ``t_d`` discriminator-only, ``t_joint`` joint.
    An iteration is ``accumulate`` micro-batches of ``batch_size`` images and one step.

    ``discriminator``: ``both`` (the paper), ``global``, ``local`` or ``none`` (MSE only: the
    ablation's blurry arm; phases 2 and 3 then train with MSE alone).
    ``alpha``: the weight of the adversarial term (paper: 0.0004).
    ``optimizer``: ``adadelta`` (the paper; ``lr`` 1.0) or ``adam`` (``lr`` 2e-4, betas 0.5/0.999).
    ``real_patch``: ``random`` (the paper's second hole ``M_d``) or ``same`` (the fake's box).
    ``saturating_gan``: use the paper's ``log(1 - D)`` instead of the non-saturating ``-log D``.
    ``holes``: ``rect`` (the paper: one rectangle per image, sides in ``hole_range``) or
    ``mixed`` (:func:`glcic_lib.masks.sample_training_hole`: the paper's rectangle, several
    small ones, free-form strokes and holes at the border, so the network meets at training
    time the holes it is used on).
    ``known_weight``: weight of an MSE on the *known* pixels added to the hole MSE (0 in the
    paper; the ``demo`` recipe uses it: the output is only pasted in the holes, but fitting the
    surroundings too gives every pixel a gradient towards copying the colours it sees).
    ``chroma_weight``: weight of the colour-difference channels in the reconstruction loss
    (:func:`glcic_lib.losses.opponent_mse`; 1 is the paper's plain MSE).
    ``input_mode``: how the completion network's input is built (:func:`glcic_lib.models.network_input`):
    ``fill`` (holes hold the mean pixel), ``subtract`` (the authors' Torch7 convention) or
    ``opponent`` (``subtract`` in a whitened opponent-colour basis) or ``smooth`` (holes
    pre-filled from their surroundings by :func:`glcic_lib.pushpull.push_pull_fill`); stored in
    the checkpoint.
    ``deconv_init``: ``default`` (PyTorch's) or ``bilinear``
    (:func:`glcic_lib.models.bilinear_deconv_init`: the two transposed convolutions start
    without a checkerboard); only the starting weights differ, the network is Table 1's.
    ``output_mode``: ``direct`` (Table 1) or ``residual`` (the same layers learn corrections
    to the filled input, :func:`glcic_lib.models.residual_output`); stored in the checkpoint.
    ``augment``: ``none`` (the paper) or ``exposure`` (:mod:`glcic_lib.augment`: some training
    crops darkened or hazed, so that dark photographs are not strangers).
    ``grid_weight``: weight of :func:`glcic_lib.losses.grid_penalty` in the completion
    network's loss (0 in the paper): the energy of a period-4 pattern in the holes, the
    checkerboard that the transposed convolutions paint when the discriminators push for detail.
    ``joint_lr``: the completion network's learning rate once the discriminators are in play
    (phases 2-3; ``None``: ``lr`` throughout, as in the paper): a one-run version of the
    ``demo`` recipe's second command, which continues at a lower rate.
    ``d_lr``: the discriminators' learning rate (``None``: ``lr``, one rate for both as in the paper).
    ``init_from``: a checkpoint whose completion network starts this run (same ``width``):
    fine-tuning, or a curriculum from small crops to large ones; the network is fully
    convolutional, so weights learnt on 64x64 crops are valid for 128x128 ones.
    """

    data_dir: str | None = None
    out_dir: str | None = None
    crop_size: int = 256
    resize_range: tuple[int, int] | None = None
    hole_range: tuple[int, int] | None = None
    local_size: int | None = None
    batch_size: int = 96
    accumulate: int = 1
    width: float = 1.0
    d_width: float | None = None
    t_c: int = 90_000
    t_d: int = 10_000
    t_joint: int = 400_000
    alpha: float = losses.ALPHA
    optimizer: str = "adadelta"
    lr: float | None = None
    discriminator: str = "both"
    real_patch: str = "random"
    saturating_gan: bool = False
    seed: int = 0
    num_workers: int | None = None
    amp: bool | str = True
    channels_last: bool | None = None
    device: str | None = None
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 1000
    n_samples: int = 4
    mean_pixel: tuple[float, float, float] | None = None
    preset: str | None = None
    init_from: str | None = None
    holes: str = "rect"
    known_weight: float = 0.0
    d_lr: float | None = None
    chroma_weight: float = 1.0
    input_mode: str = "fill"
    deconv_init: str = "default"
    output_mode: str = "direct"
    joint_lr: float | None = None
    augment: str = "none"
    grid_weight: float = 0.0

    def __post_init__(self):
        for name in ("crop_size", "batch_size", "accumulate", "log_every", "sample_every", "checkpoint_every"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("t_c", "t_d", "t_joint"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if self.total == 0:
            raise ValueError("t_c + t_d + t_joint is 0: nothing to train")
        if self.discriminator not in DISCRIMINATORS:
            raise ValueError(f"discriminator must be one of {DISCRIMINATORS}, got {self.discriminator!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.real_patch not in ("random", "same"):
            raise ValueError(f"real_patch must be 'random' or 'same', got {self.real_patch!r}")
        if self.holes not in HOLES:
            raise ValueError(f"holes must be one of {HOLES}, got {self.holes!r}")
        if self.input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {self.input_mode!r}")
        check_output_mode(self.output_mode, self.input_mode)
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {AUGMENTS}, got {self.augment!r}")
        if self.deconv_init not in DECONV_INITS:
            raise ValueError(f"deconv_init must be one of {DECONV_INITS}, got {self.deconv_init!r}")
        if not self.chroma_weight >= 0:
            raise ValueError(f"chroma_weight must be >= 0, got {self.chroma_weight}")
        if not self.grid_weight >= 0:
            raise ValueError(f"grid_weight must be >= 0, got {self.grid_weight}")
        if self.joint_lr is not None and not self.joint_lr > 0:
            raise ValueError(f"joint_lr must be > 0, got {self.joint_lr}")
        if self.d_lr is not None and not self.d_lr > 0:
            raise ValueError(f"d_lr must be > 0, got {self.d_lr}")
        if not self.known_weight >= 0:
            raise ValueError(f"known_weight must be >= 0, got {self.known_weight}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.crop_size % 64:
            raise ValueError(f"crop_size must be a multiple of 64 (the global discriminator halves it six "
                             f"times), got {self.crop_size}")
        self.resize_range = tuple(int(v) for v in (self.resize_range or scaled_resize_range(self.crop_size)))
        self.hole_range = tuple(int(v) for v in (self.hole_range or scaled_hole_range(self.crop_size)))
        self.local_size = int(self.local_size or scaled_local_size(self.crop_size))
        self.d_width = float(self.d_width if self.d_width is not None else self.width)
        if self.local_size % 32 or self.local_size > self.crop_size:
            raise ValueError(f"local_size must be a multiple of 32 (five halvings) and at most crop_size "
                             f"({self.crop_size}), got {self.local_size}")
        if not 1 <= self.hole_range[0] <= self.hole_range[1] <= self.local_size:
            raise ValueError(f"hole_range {self.hole_range} must satisfy 1 <= low <= high <= local_size "
                             f"({self.local_size}) so the local patch sees the whole hole")
        if not self.crop_size <= self.resize_range[0] <= self.resize_range[1]:
            raise ValueError(f"resize_range {self.resize_range} must start at crop_size ({self.crop_size}) or above")
        if self.mean_pixel is not None:
            self.mean_pixel = tuple(float(v) for v in self.mean_pixel)

    @property
    def total(self) -> int:
        """Total number of iterations, ``T_C + T_D + T_joint``."""
        return self.t_c + self.t_d + self.t_joint

    @property
    def images_per_iteration(self) -> int:
        return self.batch_size * self.accumulate

    def phase_at(self, iteration: int) -> str:
        """The phase of 0-based ``iteration``: ``completion`` for ``t < T_C``, ``discriminator``
        for ``T_C <= t < T_C + T_D``, ``joint`` from ``T_C + T_D`` on."""
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        if iteration < self.t_c:
            return "completion"
        if iteration < self.t_c + self.t_d:
            return "discriminator"
        return "joint"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Named configurations.  ``preset(name, **overrides)`` builds a :class:`TrainConfig`.
PRESETS: dict[str, dict] = {
    # The paper: 256x256 crops, batch 96, 90k / 10k / 400k iterations, ADADELTA.  About two
    # months on four K80s in 2017; a single A100 would still need weeks.
    "paper": dict(crop_size=256, batch_size=96, accumulate=1, width=1.0, t_c=90_000, t_d=10_000,
                  t_joint=400_000, log_every=100, sample_every=2000, checkpoint_every=2000),
    # One Colab GPU for an afternoon (about 3-4 hours on a T4, under 2 on an L4): the paper's
    # networks at full width and 256 crops, micro-batches of 24 x 2 accumulated = 48 images per
    # step, 8k / 1k / 3k iterations (~530k images).  Estimate from FLOPs: the completion network
    # costs ~68 GFLOP per 256x256 image forward, ~200 training; a T4 sustains ~10-15 TFLOP/s
    # with AMP, so ~50-70 images/s in phase 1 and ~35-45 in the joint phase.  It reaches a
    # usable, somewhat blurry model on Places365 (MSE phase) and starts to sharpen in the joint
    # phase; the paper's 500k iterations at batch 96 are ~90x more images.
    "colab": dict(crop_size=256, batch_size=24, accumulate=2, width=1.0, t_c=8000, t_d=1000, t_joint=3000,
                  log_every=50, sample_every=500, checkpoint_every=500),
    # A laptop CPU in about 15-20 minutes (1,036 s on one core of the project's 2-core machine, see
    # notebook 05): quarter width, 128 crops, holes [32, 64] of every kind, local patch 64, and
    # the demo's small-network recipe (smooth input, residual output, ...) in one run.
    "cpu": dict(crop_size=128, batch_size=8, accumulate=1, width=0.25, t_c=2000, t_d=150, t_joint=450,
                hole_range=(32, 64), local_size=64, optimizer="adam", lr=1e-3, joint_lr=2e-4, d_lr=2e-4,
                holes="mixed", known_weight=0.5, chroma_weight=8.0, input_mode="smooth", output_mode="residual",
                deconv_init="bilinear", augment="exposure", log_every=20, sample_every=200, checkpoint_every=200,
                num_workers=0),
    # The bundled demo model (data/checkpoints/README.md): 56 minutes on one core of a 2-core
    # CPU.  Quarter width, 128 crops of photos resized to 160-320 px, holes of every kind
    # (mixed), Adam, an MSE on the known pixels beside the hole MSE and colour differences
    # weighted 8x in both: changes from the paper for this scale, each measured in the model
    # card.  Two commands: T_C iterations with --discriminator none, then T_D + T_joint from
    # that network with --lr 2e-4 (``--init-from``; the discriminators start from scratch).
    "demo": dict(crop_size=128, resize_range=(160, 320), hole_range=(32, 80), local_size=96, batch_size=16,
                 accumulate=1, width=0.25, t_c=3000, t_d=100, t_joint=1000, optimizer="adam", lr=1e-3,
                 holes="mixed", known_weight=0.5, chroma_weight=8.0, input_mode="smooth", output_mode="residual",
                 deconv_init="bilinear", augment="exposure", log_every=25, sample_every=500,
                 checkpoint_every=250, num_workers=0),
    # CI: a few iterations of every phase at 64x64 (holes [24, 32], local patch 32), < 1 minute.
    "smoke": dict(crop_size=64, batch_size=4, accumulate=1, width=0.25, t_c=6, t_d=2, t_joint=4,
                  log_every=2, sample_every=6, checkpoint_every=6, num_workers=0, n_samples=2),
}


def preset(name: str, **overrides) -> TrainConfig:
    """A :class:`TrainConfig` from a named preset (``paper``, ``colab``, ``cpu``, ``demo``, ``smoke``) with
    any field overridden, e.g. ``preset("cpu", discriminator="none", out_dir="runs/mse")``.

    ``paper``
        Section 3.4: 256x256 crops, batch 96, T_C = 90,000, T_D = 10,000, T_joint = 400,000,
        ADADELTA, alpha = 0.0004.  The authors report two months on four K80 GPUs.
    ``colab``
        One Colab GPU for an afternoon.  The paper's full-width networks on 256x256 crops;
        micro-batches of 24 accumulated twice (48 images per step; fits the 16 GB of a T4 with
        mixed precision); 8,000 + 1,000 + 3,000 iterations, about 580,000 images.  Estimate from
        FLOPs (there was no GPU to time it on): the completion network costs 65 GFLOP per
        256x256 image forward (about 195 to train), the two discriminators 8; at the 8-10
        TFLOP/s a T4 sustains on these dilated convolutions in float16 that is ~45 images/s in
        phase 1 and ~30 in the joint phase, so **about 4 hours on a T4, about 2 on an L4**
        (checkpoints every 500 iterations: a disconnect costs minutes, continue with
        ``--resume``).  It reaches a usable, somewhat soft model on Places365 (the MSE phase
        does most of the work) and starts to sharpen in the joint phase; the paper trains on
        ~85x more images.
    ``cpu``
        A laptop in about 15-20 minutes: quarter-width networks, 128x128 crops (holes of every
        kind, 32-64 px; local patch 64), batch 8, 2,000 + 150 + 450 iterations, with the
        ``demo`` recipe's changes from the paper (smooth input, residual output, bilinear
        deconvolution start, known-pixel MSE, colour weighting, Adam at 1e-3 then 2e-4 once
        the discriminators play: ``joint_lr``, ``d_lr``).  Measured on this project's 2-core
        test machine with one thread while another run used the other core: 21 / 40 / 18
        images/s in the three phases, 1,036 s in all.  On the bundled held-out photographs its
        fills are colour-true and, post-processed, ahead of Telea (notebook 05, section 8b).
    ``demo``
        How the bundled demo model was made (``data/checkpoints/README.md``): quarter width,
        128x128 crops, batch 16, holes of every kind (``holes="mixed"``), holes pre-filled
        smoothly (``input_mode="smooth"``), a network that learns corrections to that fill
        (``output_mode="residual"``), deconvolutions started without a checkerboard
        (``deconv_init="bilinear"``), Adam (lr 1e-3), a
        known-pixel MSE (``known_weight=0.5``) and colour differences weighted 8x
        (``chroma_weight=8``); 3,000 MSE-only iterations (``--discriminator none``), then
        100 + 1,000 iterations with both discriminators started from that network at lr 2e-4.
        56 minutes on one core of a 2-core CPU, on ``data/train`` with the photographs of
        ``data/build_extra_photos.py``.
    ``smoke``
        CI: 64x64 crops (holes 24-32, local patch 32), batch 4, 6 + 2 + 4 iterations, every
        phase runs, under a minute.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s) {unknown}; valid fields: {sorted(fields)}")
    return TrainConfig(**{**PRESETS[name], "preset": name, **overrides})


def amp_dtype(amp: bool | str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run: ``amp=True`` is float16 on CUDA and off elsewhere (on CPU,
    float16 and bfloat16 *training* measured slower than float32: their convolutions fall back
    to slow kernels); ``"float16"`` / ``"bfloat16"`` force that dtype on any device (so the CUDA
    code path, loss scaling included, also runs on a CPU); ``False`` / ``"off"`` is float32."""
    if amp is True or amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    if amp is False or amp in ("off", "float32", None):
        return None
    if amp in ("float16", "bfloat16"):
        return getattr(torch, amp)
    raise ValueError(f"amp must be True, False, 'auto', 'off', 'float16' or 'bfloat16', got {amp!r}")
