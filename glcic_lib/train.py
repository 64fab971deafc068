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
writes a checkpoint of its last complete iteration before it stops.  Partial checkpoint files of
saves killed earlier (``checkpoint.pt.*.tmp``) are removed when a run starts or resumes; a
checkpoint that cannot be written (a full disk) stops the run with one line naming the file and
the free space, the previous checkpoint intact for ``--resume``
(:class:`glcic_lib.run_state.CheckpointWriteError`).  The final checkpoint stores the network's
measured bfloat16 / float16 error, from which ``complete(precision="auto")`` decides.

Several GPUs or processes: ``torchrun --nproc_per_node N -m glcic_lib train ...`` runs this
trainer under DistributedDataParallel (:mod:`glcic_lib.distributed` explains how, including
multi-node launches).  ``batch_size`` and ``accumulate`` keep their meaning for the whole job:
each of the N processes takes ``batch_size / N`` images of every micro-batch.  The hooks are
:meth:`Trainer.wrap_model` (synchronised batch norm + DDP), :meth:`Trainer.build_loader` (each
rank reads a disjoint share of the same stream) and :meth:`Trainer.holes`; only rank 0 writes.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader

from . import distributed
from .checkpoint import CheckpointError, load_completion, remove_stale_temps
from .config import checkpoint_dir
from .data import ImageFolder, StreamSampler, default_train_dir, mean_pixel, to_float
from .device import pick_device, seed_everything
from .masks import sample_hole
from .augment import AUGMENTS
from .models import DECONV_INITS, INPUT_MODES, OUTPUT_MODES, ContextDiscriminator, CompletionNetwork, bilinear_deconv_init, paste
from .run_state import RunState
# the configuration, presets and one iteration's maths live in their own modules; their names
# stay importable from here, where the course's notebooks and tests have always found them
from .schedule import (CHECKPOINT, DISCRIMINATORS, HISTORY, HOLES, OPTIMIZERS, PHASES, PRESETS,  # noqa: F401
                       RESUME_MUST_MATCH, TrainConfig, amp_dtype, preset)
from .steps import TrainingSteps, crop_boxes, hole_masks, make_optimizer  # noqa: F401


class TrainingInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C, SIGTERM or a notebook's stop button (or a callback raising
    ``KeyboardInterrupt``).  ``iteration``: completed iterations when it stopped;
    ``saved_iteration``: the iteration ``checkpoint`` holds (None: nothing was ever saved).
    A subclass of ``KeyboardInterrupt``, so ``except KeyboardInterrupt`` still catches it."""

    def __init__(self, iteration: int, saved_iteration: int | None, checkpoint: Path, reason: str):
        self.iteration, self.saved_iteration, self.checkpoint, self.reason = iteration, saved_iteration, checkpoint, reason
        super().__init__(self.message())

    def message(self) -> str:
        if self.saved_iteration is None:
            return (f"interrupted ({self.reason}) at iteration {self.iteration} before any checkpoint was "
                    f"saved: nothing to resume, start again")
        lost = self.iteration - self.saved_iteration
        return (f"interrupted ({self.reason}) after iteration {self.iteration}: {self.checkpoint} holds iteration "
                f"{self.saved_iteration}" + (f" ({lost} iterations will be repeated)" if lost > 0 else "")
                + "; continue with --resume")


@dataclass
class TrainResult:
    """What :func:`train` returns: the latest checkpoint, the loss history, the run folder."""

    checkpoint: Path
    history: list[dict]
    out_dir: Path
    skipped_files: int = 0
    seconds: float = 0.0


class Trainer(TrainingSteps, RunState):
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
        self.completion = CompletionNetwork(width=config.width, mean_pixel=mean,
                                            input_mode=config.input_mode,
                                            output_mode=config.output_mode).to(self.device)
        if config.deconv_init == "bilinear":
            bilinear_deconv_init(self.completion)
        if config.init_from:   # before any wrapping; a resumed run then loads its own weights over these
            start = load_completion(config.init_from)
            if start.width != config.width:
                raise CheckpointError(f"init_from {config.init_from} has width {start.width}, this run "
                                      f"width {config.width}")
            weights = start.state_dict()
            weights["mean_pixel"] = self.completion.mean_pixel   # this run's data keeps its own mean
            self.completion.load_state_dict(weights)
            # how the start model expects its input (e.g. the authors' "subtract" convention) comes too
            self.completion.adopt_modes(start.config())
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
        self.opt_d = (make_optimizer(config.optimizer, self.discriminator.parameters(),
                                     config.d_lr if config.d_lr is not None else config.lr)
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
        self._stop: str | None = None  # the signal that asked the loop to stop (see _stop_signals)
        self._saved_iteration: int | None = None  # the iteration the checkpoint on disk holds

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

    # ------------------------------------------------------------------ the loop
    @contextlib.contextmanager
    def _stop_signals(self):
        """While the loop runs, Ctrl-C (SIGINT, also a notebook's stop button) and SIGTERM (what
        a scheduler or ``kill`` sends) only *ask* it to stop: it finishes the current iteration,
        saves a checkpoint of it and raises :class:`TrainingInterrupted`.  A second signal stops
        at once (the checkpoint then holds the last complete iteration saved).  Only in the
        main thread (Python delivers signals there); elsewhere nothing changes."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def ask(signum, frame):
            name = signal.Signals(signum).name
            if self._stop is not None:
                raise KeyboardInterrupt(f"{name} again: stopping now")
            self._stop = name
            if self.is_main:
                print(f"\n{name}: stopping after iteration {self.iteration + int(self._in_step)} and saving it "
                      f"(send it again to stop at once)", flush=True)

        previous = {sig: signal.signal(sig, ask) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop_requested(self) -> bool:
        """Whether any process was asked to stop (all processes stop at the same iteration)."""
        flag = self._stop is not None
        if self.world_size > 1:
            flag = distributed.mean_across_ranks({"stop": float(flag)})["stop"] > 0
            self._stop = self._stop or ("a signal to another process" if flag else None)
        return flag

    def run(self, resume: bool = False, overwrite: bool = False) -> TrainResult:
        with self._stop_signals():
            return self._run(resume, overwrite)

    def _run(self, resume: bool, overwrite: bool) -> TrainResult:
        cfg = self.config
        ckpt_path = self.out_dir / CHECKPOINT
        if self.is_main:   # partial files of saves killed in an earlier session of this run (no save runs now)
            removed = remove_stale_temps(ckpt_path, older_than_s=0)
            if removed:
                print(f"note: removed {len(removed)} partial checkpoint file{'s' * (len(removed) > 1)} of killed "
                      f"saves from {self.out_dir}", flush=True)
        if resume:
            self.load(ckpt_path)
            self._saved_iteration = self.iteration
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
                    self.save(ckpt_path, final=done)
                if not done and self._stop_requested():
                    raise KeyboardInterrupt(self._stop)
        except KeyboardInterrupt as e:
            # Between iterations the state is consistent: save it so that --resume continues here.
            # In the middle of one (a network stepped, its partner not yet) it is not: keep the
            # last saved checkpoint instead, and --resume repeats the lost iterations exactly.
            if not self._in_step and self._saved_iteration != self.iteration:
                self.save(ckpt_path)
            if bar is not None:
                bar.close()
            reason = self._stop or (str(e) if str(e) else "KeyboardInterrupt")
            raise TrainingInterrupted(self.iteration, self._saved_iteration, ckpt_path, reason) from None
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
    p.add_argument("--holes", choices=HOLES, default=None,
                   help="training holes: rect (the paper's one rectangle) or mixed (rectangles, small ones, "
                        "free-form strokes, border holes)")
    p.add_argument("--known-weight", type=float, default=None,
                   help="weight of an MSE on the known pixels beside the hole MSE (paper: 0)")
    p.add_argument("--chroma-weight", type=float, default=None,
                   help="weight of the colour differences in the reconstruction loss (paper: 1, plain MSE)")
    p.add_argument("--input-mode", choices=INPUT_MODES, default=None,
                   help="how the completion network's input is built (glcic_lib.models.network_input; default fill)")
    p.add_argument("--output-mode", choices=OUTPUT_MODES, default=None,
                   help="direct (Table 1's sigmoid output) or residual (corrections to the filled input)")
    p.add_argument("--augment", choices=AUGMENTS, default=None,
                   help="photometric augmentation of the training crops (exposure: some darkened or hazed)")
    p.add_argument("--deconv-init", choices=DECONV_INITS, default=None,
                   help="starting weights of the transposed convolutions (bilinear: no checkerboard at the start)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--d-lr", type=float, default=None,
                   help="the discriminators' learning rate (default: --lr, as in the paper)")
    p.add_argument("--joint-lr", type=float, default=None,
                   help="the completion network's learning rate in phases 2-3 (default: --lr)")
    p.add_argument("--alpha", type=float, default=None, help="weight of the adversarial loss (paper: 0.0004)")
    p.add_argument("--grid-weight", type=float, default=None,
                   help="weight of a penalty on period-4 patterns in the holes (glcic_lib.losses.grid_penalty; paper: 0)")
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
    p.add_argument("--memory-format", choices=("auto", "channels_last", "contiguous"), default="auto",
                   help="tensor layout of the networks (default auto: channels-last, measured faster on CPU "
                        "and CUDA); compare both with --benchmark")


def _overrides(args: argparse.Namespace) -> dict:
    o = {}
    for arg, key in (("discriminator", "discriminator"), ("batch_size", "batch_size"), ("accumulate", "accumulate"),
                     ("width", "width"), ("crop", "crop_size"), ("resize_range", "resize_range"),
                     ("hole_range", "hole_range"), ("local_size", "local_size"), ("optimizer", "optimizer"), ("lr", "lr"), ("d_lr", "d_lr"),
                     ("joint_lr", "joint_lr"),
                     ("alpha", "alpha"), ("seed", "seed"), ("workers", "num_workers"), ("device", "device"),
                     ("log_every", "log_every"), ("sample_every", "sample_every"),
                     ("checkpoint_every", "checkpoint_every"), ("init_from", "init_from"),
                     ("holes", "holes"), ("known_weight", "known_weight"),
                     ("chroma_weight", "chroma_weight"), ("input_mode", "input_mode"),
                     ("deconv_init", "deconv_init"), ("output_mode", "output_mode"),
                     ("augment", "augment"), ("grid_weight", "grid_weight")):
        if getattr(args, arg, None) is not None:
            o[key] = getattr(args, arg)
    if args.iterations:
        o["t_c"], o["t_d"], o["t_joint"] = args.iterations
    if args.no_amp:
        o["amp"] = False
    layout = getattr(args, "memory_format", "auto")
    if layout != "auto":
        o["channels_last"] = layout == "channels_last"
    return o


def main(args: argparse.Namespace) -> int:
    from .config import pick

    args.preset = args.preset or pick("cpu", "smoke")
    overrides = _overrides(args)
    if args.benchmark:
        device = overrides.pop("device", None)
        rates = throughput(args.preset, steps=args.benchmark, data_dir=args.data, device=device, **overrides)
        rates["memory_format"] = args.memory_format
        print(json.dumps(rates, indent=1))
        return 0
    cfg = preset(args.preset, data_dir=args.data, out_dir=args.out, **overrides)
    try:
        result = train(cfg, resume=args.resume, progress=not args.no_progress, overwrite=args.overwrite)
    except TrainingInterrupted as e:
        if distributed.env_info().is_main:
            print(e.message())
        return 130
    last = result.history[-1] if result.history else {}
    if not distributed.env_info().is_main:   # under torchrun only rank 0 reports
        return 0
    print(f"done: {cfg.total} iterations in {result.seconds:.0f} s; last mse {last.get('mse', float('nan')):.4f}; "
          f"checkpoint {result.checkpoint}" + (f"; {result.skipped_files} unreadable files skipped"
                                                if result.skipped_files else ""))
    return 0
