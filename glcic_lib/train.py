"""Training: the paper's three phases (Algorithm 1), from a laptop to a Colab GPU, resumable.

Algorithm 1, as implemented here (``t`` counts iterations from 0)::

    for t in range(T_C + T_D + T_joint):
        x   = a mini-batch of crops;  M_c = one random hole per image
        if t < T_C:                                   # phase 1, "completion"
            update C with the masked MSE
        else:
            M_d = one more random hole per image (where the *real* local patch is cut)
            update D with BCE on real (x, M_d) vs completed (paste(C(x, M_c)), M_c)
            if t >= T_C + T_D:                        # phase 3, "joint"
                update C with MSE + alpha * GAN, through the just-updated D
        (phase 2, "discriminator": C is frozen, in eval mode, and only D learns)

Points that are easy to get wrong, and how this file does them (each is pinned by a test):

* The discriminators judge *completed* images: the network's output inside the holes, the
  real pixels outside (:func:`glcic_lib.paste`), never the raw output, whose known pixels
  would give it away.  The local patch is cut from that completed image around the hole.
* The real image's local patch comes from a second random hole ``M_d`` (``real_patch=
  "random"``, the paper), or from the same box as its completed twin (``real_patch="same"``).
* In the joint phase the adversarial term reaches the completion network through the
  discriminator, whose parameters are frozen (``requires_grad=False``) during that step, so
  the completion step leaves no gradients on the discriminators; every step clears its own
  gradients afterwards, so no parameter holds a stale gradient between iterations.
* Gradient accumulation: an iteration is ``accumulate`` micro-batches of ``batch_size``
  images, one optimiser step; the paper's 96 images fit one GPU as e.g. 4 x 24.

Reproducibility and resuming: every random choice is a function of ``(seed, iteration)``: the
images (:class:`glcic_lib.data.StreamSampler`), their augmentation and the holes.  A checkpoint
stores networks, optimisers, gradient scalers, iteration and RNG states, so ``resume=True``
continues exactly where a run stopped; an interrupted run (Ctrl-C, a notebook's stop button)
writes a checkpoint of its last complete iteration before it stops.

Several GPUs or processes: ``torchrun --nproc_per_node N -m glcic_lib train ...`` runs this
trainer under DistributedDataParallel (:mod:`glcic_lib.distributed` explains how, including
multi-node launches).  ``batch_size`` and ``accumulate`` keep their meaning for the whole job:
each of the N processes takes ``batch_size / N`` images of every micro-batch.  The hooks are
:meth:`Trainer.wrap_model` (synchronised batch norm + DDP), :meth:`Trainer.build_loader` (each
rank reads a disjoint share of the same stream) and :meth:`Trainer.holes`; only rank 0 writes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader

from . import distributed, losses
from .checkpoint import CheckpointError, _load_state, load_completion, read_checkpoint, save_checkpoint
from .config import checkpoint_dir
from .data import ImageFolder, StreamSampler, default_train_dir, mean_pixel, scaled_resize_range, to_float
from .device import autocast, pick_device, seed_everything
from .masks import Box, box_mask, local_box, random_box, sample_hole, scaled_hole_range, scaled_local_size
from .models import ContextDiscriminator, CompletionNetwork, paste

PHASES = ("completion", "discriminator", "joint")
DISCRIMINATORS = ("both", "global", "local", "none")
OPTIMIZERS = ("adadelta", "adam")
CHECKPOINT = "checkpoint.pt"
HISTORY = "history.jsonl"

#: Config fields that must match to resume a run (the rest, e.g. the schedule, may change).
RESUME_MUST_MATCH = ("crop_size", "resize_range", "hole_range", "local_size", "batch_size", "accumulate",
                     "width", "d_width", "discriminator", "optimizer", "real_patch", "seed")


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
    # A laptop CPU in about 15 minutes (measured on a shared 2-core machine: see
    # data/checkpoints/README.md): quarter width, 128 crops, holes [48, 64], local patch 64.
    "cpu": dict(crop_size=128, batch_size=8, accumulate=1, width=0.25, t_c=2000, t_d=150, t_joint=450,
                log_every=20, sample_every=200, checkpoint_every=200, num_workers=0),
    # CI: a few iterations of every phase at 64x64 (holes [24, 32], local patch 32), < 1 minute.
    "smoke": dict(crop_size=64, batch_size=4, accumulate=1, width=0.25, t_c=6, t_d=2, t_joint=4,
                  log_every=2, sample_every=6, checkpoint_every=6, num_workers=0, n_samples=2),
}


def preset(name: str, **overrides) -> TrainConfig:
    """A :class:`TrainConfig` from a named preset (``paper``, ``colab``, ``cpu``, ``smoke``) with
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
        A laptop in about 15 minutes: quarter-width networks, 128x128 crops (holes 48-64,
        local patch 64), batch 8, 2,000 + 150 + 450 iterations.  Measured on this project's
        2-core test machine when quiet: ~40 / 75 / 25 images/s in the three phases, so ~10
        minutes (5-20x longer while others share the CPU).  Learns the bundled images;
        blurry but real.
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


@dataclass
class TrainResult:
    """What :func:`train` returns: the latest checkpoint, the loss history, the run folder."""

    checkpoint: Path
    history: list[dict]
    out_dir: Path
    skipped_files: int = 0
    seconds: float = 0.0


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


def hole_masks(holes: list[Box], size: int) -> torch.Tensor:
    """(N, 1, size, size) float masks, 1 inside each image's hole."""
    return torch.from_numpy(np.stack([box_mask(h, size) for h in holes]))[:, None].float()


def crop_boxes(images: torch.Tensor, boxes: list[Box]) -> torch.Tensor:
    """Cut one box per image out of a batch (N, C, H, W): the local discriminator's patches."""
    if len(boxes) != images.shape[0]:
        raise ValueError(f"{len(boxes)} boxes for {images.shape[0]} images")
    return torch.stack([images[i, :, b.top:b.top + b.height, b.left:b.left + b.width] for i, b in enumerate(boxes)])


def make_optimizer(name: str, params, lr: float | None) -> torch.optim.Optimizer:
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=1.0 if lr is None else lr)
    return torch.optim.Adam(params, lr=2e-4 if lr is None else lr, betas=(0.5, 0.999))


class Trainer:
    """One training run.  Most users call :func:`train`; tests and notebooks may drive
    :meth:`step` themselves.  See the module docstring for the algorithm."""

    def __init__(self, config: TrainConfig, callbacks: Iterable[Callable[[dict], None]] = (), progress: bool = True,
                 rank: int = 0, world_size: int = 1):
        self.config = config
        self.callbacks = list(callbacks)
        self.progress = progress
        self.rank, self.world_size = int(rank), int(world_size)
        self.is_main = self.rank == 0
        self.device = pick_device(config.device)
        self.amp_dtype = amp_dtype(config.amp, self.device)
        self.use_amp = self.amp_dtype is not None
        # channels-last: measured 1.4-2x faster fp32 training on CPU (oneDNN), and the fast layout
        # for cuDNN's tensor cores; MPS keeps the default layout, and so do CPU processes under
        # DDP (gloo's coalesced broadcast refuses channels-last parameters)
        auto = self.device.type == "cuda" or (self.device.type == "cpu" and self.world_size == 1)
        self.channels_last = auto if config.channels_last is None else bool(config.channels_last)
        self.out_dir = Path(config.out_dir) if config.out_dir else checkpoint_dir() / (config.preset or "train")
        self.data_root = Path(config.data_dir) if config.data_dir else default_train_dir()
        self.data = ImageFolder(self.data_root, crop_size=config.crop_size, resize_range=config.resize_range)
        mean = config.mean_pixel or mean_pixel(self.data_root, files=self.data.files)

        seed_everything(distributed.rank_seed(config.seed, self.rank))
        self.completion = CompletionNetwork(width=config.width, mean_pixel=mean).to(self.device)
        if config.init_from:   # before any wrapping; a resumed run then loads its own weights over these
            start = load_completion(config.init_from)
            if start.width != config.width:
                raise CheckpointError(f"init_from {config.init_from} has width {start.width}, this run "
                                      f"width {config.width}")
            weights = start.state_dict()
            weights["mean_pixel"] = self.completion.mean_pixel   # this run's data keeps its own mean
            self.completion.load_state_dict(weights)
            # how the start model expects its input (e.g. the authors' "subtract" convention) comes too
            self.completion.input_mode = start.input_mode
        self.discriminator = None
        if config.discriminator != "none":
            self.discriminator = ContextDiscriminator(arms=config.discriminator, width=config.d_width,
                                                      global_size=config.crop_size,
                                                      local_size=config.local_size).to(self.device)
        if self.channels_last:
            self.completion.to(memory_format=torch.channels_last)
            if self.discriminator is not None:
                self.discriminator.to(memory_format=torch.channels_last)
        self.c_net = self.wrap_model(self.completion)
        self.d_net = self.wrap_model(self.discriminator) if self.discriminator is not None else None
        self.opt_c = make_optimizer(config.optimizer, self.completion.parameters(), config.lr)
        self.opt_d = (make_optimizer(config.optimizer, self.discriminator.parameters(), config.lr)
                      if self.discriminator is not None else None)
        # loss scaling guards float16 gradients against underflow (bfloat16 has float32's range)
        scale = self.amp_dtype == torch.float16
        self.scaler_c = torch.amp.GradScaler(self.device.type, enabled=scale)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=scale)
        self.iteration = 0           # completed iterations
        self.history: list[dict] = []
        self.skipped = 0             # unreadable files met while loading (all workers)
        self._samples = None         # the fixed validation batch of the sample grids, read once
        self.elapsed = 0.0           # training seconds over all sessions of this run
        self._loader_iter = None
        self._in_step = False        # True while an iteration is half done (see run)

    # ------------------------------------------------------------------ multi-process hooks
    def wrap_model(self, module: torch.nn.Module) -> torch.nn.Module:
        """The one place a network is wrapped for multi-process training: synchronised batch
        norm + DistributedDataParallel (:func:`glcic_lib.distributed.wrap_ddp`)."""
        if self.world_size > 1:
            return distributed.wrap_ddp(module, self.device)
        return module

    def build_loader(self, start_iteration: int) -> DataLoader:
        """The one place that builds sampler and loader; it starts at ``start_iteration``."""
        cfg = self.config
        workers = cfg.num_workers
        if workers is None:
            workers = min(8, os.cpu_count() or 1) if self.device.type == "cuda" else 0
        # batch_size is the micro-batch of the whole job: each of the N ranks loads batch_size / N
        rank_batch = distributed.per_rank_batch(cfg.batch_size, self.world_size)
        sampler = StreamSampler(len(self.data), cfg.seed, start=start_iteration * cfg.accumulate * cfg.batch_size,
                                rank=self.rank, world_size=self.world_size)
        return DataLoader(self.data, batch_size=rank_batch, sampler=sampler, num_workers=workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
                          prefetch_factor=4 if workers > 0 else None)

    # ------------------------------------------------------------------ batches and holes
    def holes(self, iteration: int, micro: int, n: int) -> tuple[list[Box], list[Box], list[Box]]:
        """Holes ``M_c``, their local boxes and the real images' boxes for this rank's ``n``
        images of one micro-batch: a pure function of ``(seed, iteration, micro, rank)``.
        They are drawn for the whole micro-batch (``n x world_size`` images) and each rank keeps
        its images' share, so every rank gets different holes and the holes do not depend on
        the number of processes (:func:`glcic_lib.distributed.share`)."""
        cfg = self.config
        ws = self.world_size
        rng = np.random.default_rng([cfg.seed, 7, iteration, micro, 0])
        holes = [sample_hole(cfg.crop_size, cfg.hole_range, rng) for _ in range(n * ws)]
        boxes = [local_box(h, cfg.local_size, cfg.crop_size) for h in holes]
        if cfg.real_patch == "same":
            real = list(boxes)
        else:
            real = [random_box(cfg.local_size, cfg.crop_size, cfg.hole_range, rng) for _ in range(n * ws)]
        if ws > 1:
            holes, boxes, real = (distributed.share(v, self.rank, ws) for v in (holes, boxes, real))
        return holes, boxes, real

    def make_micro(self, batch: dict, iteration: int, micro: int) -> dict:
        """A loaded batch on the device with its masks and boxes."""
        images = batch["image"]
        n, size = images.shape[0], self.config.crop_size
        holes, boxes, real = self.holes(iteration, micro, n)
        mask = hole_masks(holes, size)
        if self.device.type == "cuda":
            mask = mask.pin_memory()
        x = to_float(images.to(self.device, non_blocking=True))
        mask = mask.to(self.device, non_blocking=True)
        if self.channels_last:
            x, mask = x.contiguous(memory_format=torch.channels_last), mask.contiguous(memory_format=torch.channels_last)
        self.skipped += int(torch.as_tensor(batch.get("skipped", 0)).sum())
        return {"image": x, "mask": mask, "holes": holes, "box": boxes, "real_box": real}

    def next_micros(self, iteration: int) -> list[dict]:
        if self._loader_iter is None:
            self._loader_iter = iter(self.build_loader(iteration))
        return [self.make_micro(next(self._loader_iter), iteration, m) for m in range(self.config.accumulate)]

    # ------------------------------------------------------------------ losses
    def discriminate(self, images: torch.Tensor, boxes: list[Box]) -> torch.Tensor:
        """Discriminator logits for whole images and their local patches at ``boxes``."""
        return self.d_net(images, crop_boxes(images, boxes))

    def complete_micro(self, micro: dict) -> torch.Tensor:
        """The completion network's output on one micro-batch (with its graph)."""
        with autocast(self.device, self.use_amp, self.amp_dtype):
            return self.c_net(micro["image"], micro["mask"])

    def generator_losses(self, micro: dict, adversarial: bool = True, output: torch.Tensor | None = None) -> dict:
        """The completion network's losses on one micro-batch: ``mse``, ``adv`` (None without a
        discriminator or with ``adversarial=False``) and ``loss`` = ``mse + alpha * adv``
        (tensors with graphs).  ``output``: the network's output on this micro-batch when it was
        already computed with its graph (the joint phase shares one forward pass with D's step)."""
        x, m = micro["image"], micro["mask"]
        out = self.complete_micro(micro) if output is None else output
        mse = losses.masked_mse(out, x, m)
        if not adversarial or self.d_net is None:
            return {"mse": mse, "adv": None, "loss": mse, "output": out}
        completed = paste(out, x, m)
        trained = [p for p in self.discriminator.parameters() if p.requires_grad]
        for p in trained:   # gradients flow *through* D, not *into* it
            p.requires_grad_(False)
        try:
            with autocast(self.device, self.use_amp, self.amp_dtype):
                # the unwrapped D, not its DDP wrapper, which would wait for D gradients that never come
                logits = self.discriminator(completed, crop_boxes(completed, micro["box"]))
        finally:
            for p in trained:   # only these: the biases before batch norm stay frozen (see models.Block)
                p.requires_grad_(True)
        adv = losses.generator_loss(logits, saturating=self.config.saturating_gan)
        return {"mse": mse, "adv": adv, "loss": losses.joint_loss(mse, adv, self.config.alpha), "output": out}

    def discriminator_losses(self, micro: dict, output: torch.Tensor) -> dict:
        """BCE of the discriminator: real (x, real boxes) vs completed (paste(output), hole boxes)."""
        x, m = micro["image"], micro["mask"]
        completed = paste(output.detach(), x, m)
        with autocast(self.device, self.use_amp, self.amp_dtype):
            fake = self.discriminate(completed, micro["box"])
            real = self.discriminate(x, micro["real_box"])
        return {"d_loss": losses.discriminator_loss(real, fake),
                "d_real": torch.sigmoid(real.float()).mean(), "d_fake": torch.sigmoid(fake.float()).mean()}

    # ------------------------------------------------------------------ one iteration
    def _step(self, opt, scaler):
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    def update_completion(self, micros: list[dict], adversarial: bool,
                          outputs: list[torch.Tensor] | None = None) -> dict:
        """One step of the completion network: MSE (phase 1), or MSE + alpha * GAN (phase 3).
        ``outputs``: the network's outputs on ``micros``, already computed in training mode."""
        self.completion.train()
        logs = {"mse": 0.0, "g_adv": 0.0}
        for i, micro in enumerate(micros):
            parts = self.generator_losses(micro, adversarial, None if outputs is None else outputs[i])
            self.scaler_c.scale(parts["loss"] / len(micros)).backward()
            logs["mse"] += float(parts["mse"].detach()) / len(micros)
            if parts["adv"] is not None:
                logs["g_adv"] += float(parts["adv"].detach()) / len(micros)
        self._step(self.opt_c, self.scaler_c)
        if not adversarial or self.d_net is None:
            logs.pop("g_adv")
        return logs

    def update_discriminator(self, micros: list[dict], freeze_completion: bool,
                             outputs: list[torch.Tensor] | None = None) -> dict:
        """One step of the discriminators on real vs completed images (C not updated).
        ``outputs``: the completion network's outputs on ``micros`` when already computed."""
        if freeze_completion:
            self.completion.eval()   # phase 2: C is fixed, batch-norm statistics included
        else:
            self.completion.train()
        logs = {"d_loss": 0.0, "d_real": 0.0, "d_fake": 0.0}
        if freeze_completion:   # phase 2 logs C's (fixed) MSE; in phase 3 C's own step reports it
            logs["mse"] = 0.0
        for i, micro in enumerate(micros):
            if outputs is not None:
                out = outputs[i].detach()
            else:
                with torch.no_grad():
                    out = self.complete_micro(micro)
            parts = self.discriminator_losses(micro, out)
            self.scaler_d.scale(parts["d_loss"] / len(micros)).backward()
            for k in ("d_loss", "d_real", "d_fake"):
                logs[k] += float(parts[k].detach()) / len(micros)
            if freeze_completion:
                logs["mse"] += float(losses.masked_mse(out, micro["image"], micro["mask"])) / len(micros)
        self._step(self.opt_d, self.scaler_d)
        return logs

    def step(self, iteration: int, micros: list[dict] | None = None) -> dict:
        """Run 0-based ``iteration`` of the schedule (its phase follows from the config)."""
        phase = self.config.phase_at(iteration)
        micros = micros if micros is not None else self.next_micros(iteration)
        if phase == "completion" or self.d_net is None:
            logs = self.update_completion(micros, adversarial=False)
        elif phase == "discriminator":
            logs = self.update_discriminator(micros, freeze_completion=True)
        elif len(micros) == 1:
            # one forward pass of C serves both steps: D learns on its detached output, then C's
            # loss goes through the just-updated D (same maths as two passes, ~15% less work)
            self.completion.train()
            outputs = [self.complete_micro(micros[0])]
            logs = self.update_discriminator(micros, freeze_completion=False, outputs=outputs)
            logs.update(self.update_completion(micros, adversarial=True, outputs=outputs))
        else:   # accumulation: one graph at a time, so memory stays that of one micro-batch
            logs = self.update_discriminator(micros, freeze_completion=False)
            logs.update(self.update_completion(micros, adversarial=True))
        return {"phase": phase, **logs}

    # ------------------------------------------------------------------ the loop
    def run(self, resume: bool = False, overwrite: bool = False) -> TrainResult:
        cfg = self.config
        ckpt_path = self.out_dir / CHECKPOINT
        if resume:
            self.load(ckpt_path)
        elif ckpt_path.exists() and not overwrite:
            raise CheckpointError(f"{self.out_dir} already holds a run ({ckpt_path.name}); pass resume=True "
                                  f"(--resume) to continue it or overwrite=True (--overwrite) to start again")
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
            self._rewrite_history()
        if self.data.ignored and self.is_main:
            print(f"note: {self.data.ignored} non-image files under {self.data_root} were ignored")
        bar = None
        if self.progress and self.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.total, initial=self.iteration, desc=cfg.phase_at(min(self.iteration, cfg.total - 1)),
                       unit="it", dynamic_ncols=True)
        window: dict[str, float] = {}
        n_window, t_window = 0, time.perf_counter()
        session_start = time.perf_counter()
        start_elapsed = self.elapsed
        try:
            while self.iteration < cfg.total:
                t = self.iteration
                self._in_step = True
                logs = self.step(t)
                self.iteration = t + 1
                self._in_step = False
                self.elapsed = start_elapsed + time.perf_counter() - session_start
                for k, v in logs.items():
                    if k != "phase":
                        window[k] = window.get(k, 0.0) + v
                n_window += 1
                if bar is not None:
                    bar.update(1)
                done = self.iteration == cfg.total
                boundary = not done and cfg.phase_at(self.iteration) != logs["phase"]
                if self.iteration % cfg.log_every == 0 or done or boundary:
                    window = distributed.mean_across_ranks(window)  # losses of the whole batch, not a share
                    now = time.perf_counter()
                    event = {"kind": "log", "phase": logs["phase"], "iteration": self.iteration, "total": cfg.total,
                             **{k: v / n_window for k, v in window.items()},
                             "images_per_s": n_window * cfg.images_per_iteration / (now - t_window),
                             "elapsed_s": round(self.elapsed, 2), "skipped_files": self.skipped}
                    self._log(event, bar)
                    window, n_window, t_window = {}, 0, time.perf_counter()
                if self.is_main and (self.iteration % cfg.sample_every == 0 or done):
                    self.write_samples()
                if self.iteration % cfg.checkpoint_every == 0 or done:
                    self.save(ckpt_path)
        except KeyboardInterrupt:
            # Between iterations the state is consistent: save it so that --resume continues here.
            # In the middle of one (a network stepped, its partner not yet) it is not: keep the
            # last periodic checkpoint instead, and --resume repeats the lost iterations exactly.
            if not self._in_step:
                self.save(ckpt_path)
            if bar is not None:
                bar.close()
            raise
        if bar is not None:
            bar.close()
        return TrainResult(ckpt_path, list(self.history), self.out_dir, self.skipped, self.elapsed)

    def _log(self, event: dict, bar) -> None:
        self.history.append({k: v for k, v in event.items() if k != "kind"})
        if self.is_main:
            with open(self.out_dir / HISTORY, "a") as f:
                f.write(json.dumps(self.history[-1]) + "\n")
        if bar is not None:
            bar.set_description(event["phase"])
            bar.set_postfix({k: f"{event[k]:.4g}" for k in ("mse", "d_loss", "g_adv") if k in event})
        for cb in self.callbacks:
            cb(dict(event))

    def _rewrite_history(self) -> None:
        """history.jsonl holds exactly the entries up to the current iteration (after a resume)."""
        with open(self.out_dir / HISTORY, "w") as f:
            for h in self.history:
                f.write(json.dumps(h) + "\n")

    # ------------------------------------------------------------------ samples
    def sample_batch(self) -> dict:
        """Fixed validation images (the first ``n_samples`` files, centre crops) with fixed holes."""
        if self._samples is None:   # read once: the same images and holes every time
            cfg = self.config
            n = min(cfg.n_samples, len(self.data))
            fixed = ImageFolder(self.data_root, crop_size=cfg.crop_size, resize_range=cfg.resize_range,
                                augment=False)
            images = torch.stack([fixed[i]["image"] for i in range(n)])
            rng = np.random.default_rng([cfg.seed, 99])
            holes = [sample_hole(cfg.crop_size, cfg.hole_range, rng) for _ in range(n)]
            self._samples = {"image": to_float(images).to(self.device),
                             "mask": hole_masks(holes, cfg.crop_size).to(self.device)}
        return self._samples

    @torch.no_grad()
    def write_samples(self) -> Path:
        """A PNG grid, one row per validation image: input with the hole, completion, original."""
        from .imageio import write_image

        b = self.sample_batch()
        was_training = self.completion.training
        self.completion.eval()
        out = paste(self.completion(b["image"], b["mask"]).float(), b["image"], b["mask"])
        self.completion.train(was_training)
        holed = b["image"] * (1 - b["mask"]) + b["mask"]  # holes shown white
        rows = [torch.cat([h, o, x], dim=2) for h, o, x in zip(holed, out, b["image"])]
        grid = torch.cat(rows, dim=1).clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
        return write_image(self.out_dir / "samples" / f"iter_{self.iteration:06d}.png", grid)

    # ------------------------------------------------------------------ checkpoints
    def train_state(self) -> dict:
        state = {
            "iteration": self.iteration,
            "phase": self.config.phase_at(min(self.iteration, self.config.total - 1)),
            "config": self.config.to_dict(),
            "opt_c": self.opt_c.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "scaler_c": self.scaler_c.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "history": self.history,
            "skipped": self.skipped,
            "elapsed": self.elapsed,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        }
        return state

    def save(self, path: str | Path) -> Path | None:
        """Write the checkpoint atomically (rank 0 only)."""
        if not self.is_main:
            return None
        meta = {"preset": self.config.preset, "iteration": self.iteration, "data_dir": str(self.data_root),
                "note": "glcic_lib training run"}
        return save_checkpoint(path, self.completion, self.discriminator, self.train_state(), meta)

    def load(self, path: str | Path) -> None:
        """Restore a run from its checkpoint; a missing, corrupt or mismatched one is a CheckpointError."""
        path = Path(path)
        if not path.exists():
            raise CheckpointError(f"nothing to resume: {path} does not exist (start without --resume)")
        ckpt = read_checkpoint(path)
        state = ckpt.get("train_state")
        if not state:
            raise CheckpointError(f"{path} holds no training state (optimisers, iteration): it cannot be resumed")
        saved = state.get("config", {})
        mine = self.config.to_dict()
        for key in RESUME_MUST_MATCH:
            a, b = saved.get(key), mine[key]
            if isinstance(a, list):
                a = tuple(a)
            if a != b:
                raise CheckpointError(f"cannot resume {path}: it was trained with {key}={a!r} but this run has "
                                      f"{key}={b!r}")
        _load_state(self.completion, ckpt["completion"], "completion network", path)
        self.completion.input_mode = ckpt["completion"].get("config", {}).get("input_mode", self.completion.input_mode)
        if self.discriminator is not None:
            if not ckpt.get("discriminator"):
                raise CheckpointError(f"cannot resume {path}: it has no discriminator")
            _load_state(self.discriminator, ckpt["discriminator"], "discriminator", path)
        try:
            self.opt_c.load_state_dict(state["opt_c"])
            if self.opt_d is not None:
                self.opt_d.load_state_dict(state["opt_d"])
            self.scaler_c.load_state_dict(state["scaler_c"])
            self.scaler_d.load_state_dict(state["scaler_d"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"cannot resume {path}: optimiser state does not fit ({e})") from e
        self.iteration = int(state["iteration"])
        self.history = [h for h in state.get("history", []) if h["iteration"] <= self.iteration]
        self.skipped = int(state.get("skipped", 0))
        self.elapsed = float(state.get("elapsed", 0.0))
        rng = state.get("rng") or {}
        if rng.get("torch") is not None:
            torch.set_rng_state(rng["torch"])
        if rng.get("numpy") is not None:
            np.random.set_state(rng["numpy"])
        if rng.get("python") is not None:
            random.setstate(rng["python"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self._loader_iter = None


def train(config: TrainConfig, resume: bool = False, callbacks: Iterable[Callable[[dict], None]] = (),
          progress: bool = True, overwrite: bool = False) -> TrainResult:
    """Train as ``config`` says; write ``checkpoint.pt``, ``history.jsonl`` and ``samples/`` into
    ``config.out_dir``.  ``callbacks`` get a dict per log step (phase, iteration, losses, images/s).
    ``resume=True`` continues the run in ``out_dir`` from its checkpoint.  Under ``torchrun``
    (or in an initialised process group) every process calls this: see :mod:`glcic_lib.distributed`."""
    with distributed.session(config.device) as proc:   # one process: a no-op
        distributed.per_rank_batch(config.batch_size, proc.world_size)   # a clear error before any work
        return Trainer(config, callbacks=callbacks, progress=progress, rank=proc.rank,
                       world_size=proc.world_size).run(resume=resume, overwrite=overwrite)


# ---------------------------------------------------------------------------- benchmark

def throughput(preset_name: str, steps: int = 3, data_dir: str | Path | None = None, device: str | None = None,
               loader: bool = True, **overrides) -> dict:
    """Training images per second of each phase for a preset (one warm-up iteration, then
    ``steps`` timed ones on batches already loaded), plus the data loader's images per second
    for the same crop, batch and workers.  Nothing is written except a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = preset(preset_name, data_dir=str(data_dir) if data_dir else None, out_dir=tmp, device=device,
                     **overrides)
        trainer = Trainer(cfg, progress=False)
        micros = trainer.next_micros(0)
        result = {"preset": preset_name, "device": str(trainer.device), "batch_size": cfg.batch_size,
                  "accumulate": cfg.accumulate, "crop_size": cfg.crop_size, "width": cfg.width}
        phases = [(0, "completion", cfg.t_c)]
        if trainer.d_net is not None:
            phases += [(cfg.t_c, "discriminator", cfg.t_d), (cfg.t_c + cfg.t_d, "joint", cfg.t_joint)]
        sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
        for it, name, count in phases:
            if count == 0:
                continue
            trainer.step(it, micros)
            sync()
            t0 = time.perf_counter()
            for _ in range(steps):
                trainer.step(it, micros)
            sync()
            result[name] = steps * cfg.images_per_iteration / (time.perf_counter() - t0)
        if loader:
            from .data import loader_throughput

            workers = cfg.num_workers if cfg.num_workers is not None else (
                min(8, os.cpu_count() or 1) if trainer.device.type == "cuda" else 0)
            result["loader"] = loader_throughput(trainer.data_root, cfg.crop_size, cfg.batch_size,
                                                 num_workers=workers, batches=max(steps, 5))["images_per_s"]
        return result


# ---------------------------------------------------------------------------- command line

def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, help="folder of training images (default: $GLCIC_DATA or data/train)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<preset>)")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="named configuration (default: cpu, or smoke when GLCIC_SMOKE=1)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start again even if --out holds a run")
    p.add_argument("--discriminator", choices=DISCRIMINATORS, default=None, help="ablation arm (default: both)")
    p.add_argument("--iterations", type=int, nargs=3, metavar=("T_C", "T_D", "T_JOINT"), default=None,
                   help="iterations of the three phases")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per micro-step for the whole job; under torchrun each of the N processes "
                        "takes batch-size / N (must divide)")
    p.add_argument("--accumulate", type=int, default=None,
                   help="micro-steps per optimiser step (every process runs all of them): an iteration is "
                        "batch-size x accumulate images, whatever N")
    p.add_argument("--width", type=float, default=None, help="channel multiplier (1 = the paper)")
    p.add_argument("--crop", type=int, default=None, help="crop size (multiple of 64)")
    p.add_argument("--resize-range", type=int, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="smaller image side before cropping (default: crop x [1, 1.5], as in the paper)")
    p.add_argument("--hole-range", type=int, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="hole side lengths in pixels (default: crop x [3/8, 1/2])")
    p.add_argument("--local-size", type=int, default=None, help="local discriminator patch (default: crop / 2)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--alpha", type=float, default=None, help="weight of the adversarial loss (paper: 0.0004)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="data loader workers (default: auto)")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="start the completion network from this checkpoint (fine-tuning, curricula)")
    p.add_argument("--log-every", type=int, default=None, help="iterations between loss-history entries")
    p.add_argument("--sample-every", type=int, default=None, help="iterations between sample grids")
    p.add_argument("--checkpoint-every", type=int, default=None, help="iterations between checkpoints")
    p.add_argument("--benchmark", type=int, default=None, metavar="STEPS",
                   help="print training and loader throughput (images/s) for the preset and exit")


def _overrides(args: argparse.Namespace) -> dict:
    o = {}
    for arg, key in (("discriminator", "discriminator"), ("batch_size", "batch_size"), ("accumulate", "accumulate"),
                     ("width", "width"), ("crop", "crop_size"), ("resize_range", "resize_range"),
                     ("hole_range", "hole_range"), ("local_size", "local_size"), ("optimizer", "optimizer"), ("lr", "lr"),
                     ("alpha", "alpha"), ("seed", "seed"), ("workers", "num_workers"), ("device", "device"),
                     ("log_every", "log_every"), ("sample_every", "sample_every"),
                     ("checkpoint_every", "checkpoint_every"), ("init_from", "init_from")):
        if getattr(args, arg, None) is not None:
            o[key] = getattr(args, arg)
    if args.iterations:
        o["t_c"], o["t_d"], o["t_joint"] = args.iterations
    if args.no_amp:
        o["amp"] = False
    return o


def main(args: argparse.Namespace) -> int:
    from .config import pick

    args.preset = args.preset or pick("cpu", "smoke")
    overrides = _overrides(args)
    if args.benchmark:
        device = overrides.pop("device", None)
        print(json.dumps(throughput(args.preset, steps=args.benchmark, data_dir=args.data, device=device,
                                    **overrides), indent=1))
        return 0
    cfg = preset(args.preset, data_dir=args.data, out_dir=args.out, **overrides)
    try:
        result = train(cfg, resume=args.resume, progress=not args.no_progress, overwrite=args.overwrite)
    except KeyboardInterrupt:
        print("interrupted: checkpoint saved; continue with --resume")
        return 130
    last = result.history[-1] if result.history else {}
    if not distributed.env_info().is_main:   # under torchrun only rank 0 reports
        return 0
    print(f"done: {cfg.total} iterations in {result.seconds:.0f} s; last mse {last.get('mse', float('nan')):.4f}; "
          f"checkpoint {result.checkpoint}" + (f"; {result.skipped_files} unreadable files skipped"
                                                if result.skipped_files else ""))
    return 0
