"""One training iteration of Algorithm 1: batches with their holes, the losses of both
networks and their optimiser steps.  :class:`TrainingSteps` is a part of
:class:`glcic_lib.train.Trainer` (which builds the networks, optimisers and loaders these
methods use); it is kept apart so that the maths of a step reads on its own."""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from . import distributed, losses
from .augment import apply_factors, draw_factors
from .data import to_float
from .device import autocast
from .masks import Box, MaskHole, box_mask, local_box, random_box, sample_hole, sample_training_hole
from .models import paste


def hole_masks(holes: list, size: int) -> torch.Tensor:
    """(N, 1, size, size) float masks, 1 inside each image's hole (a :class:`Box`, or a
    :class:`MaskHole` of any shape)."""
    return torch.from_numpy(np.stack([h.mask if isinstance(h, MaskHole) else box_mask(h, size)
                                      for h in holes]))[:, None].float()


def hole_box(hole) -> Box:
    """The rectangle a hole's local patch is centred on: the hole itself, or its bounding box."""
    return hole.box if isinstance(hole, MaskHole) else hole


def crop_boxes(images: torch.Tensor, boxes: list[Box]) -> torch.Tensor:
    """Cut one box per image out of a batch (N, C, H, W): the local discriminator's patches."""
    if len(boxes) != images.shape[0]:
        raise ValueError(f"{len(boxes)} boxes for {images.shape[0]} images")
    return torch.stack([images[i, :, b.top:b.top + b.height, b.left:b.left + b.width] for i, b in enumerate(boxes)])


def make_optimizer(name: str, params, lr: float | None) -> torch.optim.Optimizer:
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=1.0 if lr is None else lr)
    return torch.optim.Adam(params, lr=2e-4 if lr is None else lr, betas=(0.5, 0.999))


class TrainingSteps:
    """The per-iteration methods of :class:`glcic_lib.train.Trainer` (see its docstring)."""

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
        if cfg.holes == "mixed":
            holes = [sample_training_hole(cfg.crop_size, cfg.hole_range, rng) for _ in range(n * ws)]
        else:
            holes = [sample_hole(cfg.crop_size, cfg.hole_range, rng) for _ in range(n * ws)]
        boxes = [local_box(hole_box(h), cfg.local_size, cfg.crop_size) for h in holes]
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
        if self.config.augment == "exposure":   # drawn for the whole micro-batch, like the holes
            rng = np.random.default_rng([self.config.seed, 11, iteration, micro])
            factors = draw_factors(rng, n * self.world_size)
            if self.world_size > 1:
                factors = distributed.share(factors, self.rank, self.world_size)
            x = apply_factors(x, factors)
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
        """The completion network's losses on one micro-batch: ``mse`` (inside the holes), ``adv``
        (None without a discriminator or with ``adversarial=False``) and ``loss`` = ``mse +
        known_weight * mse_known + alpha * adv`` (with ``chroma_weight != 1`` the two MSE terms
        are :func:`glcic_lib.losses.opponent_mse`; the logged ``mse`` stays the plain RGB one)
        (tensors with graphs).  ``output``: the network's output on this micro-batch when it was
        already computed with its graph (the joint phase shares one forward pass with D's step)."""
        x, m = micro["image"], micro["mask"]
        out = self.complete_micro(micro) if output is None else output
        cw = self.config.chroma_weight

        def reconstruction(where):   # the plain MSE at chroma_weight 1 (the paper), bit for bit
            return losses.masked_mse(out, x, where) if cw == 1 else losses.opponent_mse(out, x, where, cw)

        mse = losses.masked_mse(out, x, m)
        recon = mse if cw == 1 else reconstruction(m)
        if self.config.known_weight > 0:   # the demo recipe: also reproduce the known pixels
            recon = recon + self.config.known_weight * reconstruction(1 - m)
        grid = None
        if self.config.grid_weight > 0:   # the demo recipe: no checkerboard in the holes
            grid = losses.grid_penalty(out, m)
            recon = recon + self.config.grid_weight * grid
        if not adversarial or self.d_net is None:
            return {"mse": mse, "adv": None, "loss": recon, "output": out, "grid": grid}
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
        return {"mse": mse, "adv": adv, "loss": losses.joint_loss(recon, adv, self.config.alpha), "output": out,
                "grid": grid}

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
    @staticmethod
    def _accumulating(net, index: int, count: int):
        """Under DDP, ``net.no_sync()`` for every micro-batch of an accumulated step but the last:
        their gradients add up locally and the last backward all-reduces the sum once, instead
        of one all-reduce per micro-batch (the same result, ``count - 1`` fewer rounds of
        communication).  Without DDP, or for the last micro-batch, nothing changes."""
        if index < count - 1 and hasattr(net, "no_sync"):
            return net.no_sync()
        return contextlib.nullcontext()

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
            with self._accumulating(self.c_net, i, len(micros)):
                parts = self.generator_losses(micro, adversarial, None if outputs is None else outputs[i])
                self.scaler_c.scale(parts["loss"] / len(micros)).backward()
            logs["mse"] += float(parts["mse"].detach()) / len(micros)
            if parts["adv"] is not None:
                logs["g_adv"] += float(parts["adv"].detach()) / len(micros)
            if parts["grid"] is not None:
                logs["grid"] = logs.get("grid", 0.0) + float(parts["grid"].detach()) / len(micros)
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
            with self._accumulating(self.d_net, i, len(micros)):
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
        if self.config.joint_lr is not None:   # the completion network's rate in phases 2-3
            lr = self.config.joint_lr if phase != "completion" else self.config.lr
            for group in self.opt_c.param_groups:
                group["lr"] = lr if lr is not None else group["lr"]
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
