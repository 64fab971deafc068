"""Training on several GPUs (or CPU processes) with ``torchrun`` and DistributedDataParallel.

The paper trained for two months on four GPUs.  This module lets the *same* trainer
(:mod:`glcic_lib.train`) run as ``N`` cooperating processes, one per GPU, with PyTorch's own
distributed engine; nothing else in the training code changes.

Launching
---------
One machine, ``N`` GPUs (or ``N`` CPU processes; gloo is used when there is no GPU)::

    torchrun --nproc_per_node N -m glcic_lib train --preset paper --data DIR --out runs/paper

Several machines (here 2 nodes x 4 GPUs): run the *same* line on every node, naming one node
(any of them) as the rendezvous point, reachable on that port from all the others::

    torchrun --nnodes 2 --nproc_per_node 4 --rdzv-id glcic-1 --rdzv-backend c10d \\
             --rdzv-endpoint node0.example.org:29500 -m glcic_lib train --preset paper ...

What a cluster or cloud user needs: the same code and Python environment on every node; the
training images readable on every node (a shared file system, or the same copy on each node's
local disk: every process reads its own share of the images); the run folder (``--out``) on
storage that rank 0 can write (only rank 0 writes checkpoints, ``history.jsonl`` and sample
grids), and, for ``--resume``, the checkpoint readable by *every* process, so either a shared
file system or a copy of ``checkpoint.pt`` on each node; open TCP ports between the nodes (the
rendezvous port plus those NCCL picks; on a scheduler such as Slurm, run one ``torchrun`` per
node with ``srun``).  ``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`session` reads them, so a plain
``python -m glcic_lib train`` (no variables) stays an ordinary single-process run.

How a batch is split (the global batch keeps its meaning)
---------------------------------------------------------
In :class:`glcic_lib.train.TrainConfig`, an iteration is ``accumulate`` micro-steps of
``batch_size`` images and one optimiser step: ``batch_size x accumulate`` images per iteration
(the paper: 96 x 1; the Colab preset: 24 x 2).  **These numbers describe the whole job,
whatever the number of processes N**: in every micro-step each of the N processes takes
``batch_size / N`` of the ``batch_size`` images (an error if N does not divide it; see
:func:`per_rank_batch`), so an iteration still sees ``batch_size x accumulate`` images, the
optimiser still takes one step per iteration, and ``t_c``, ``t_d``, ``t_joint`` (iteration
counts) mean the same thing.  So with the paper's batch of 96: one GPU runs 96 per step (or
24 x 4 accumulated), four GPUs 24 each.  DistributedDataParallel averages the gradients of the
N processes, which is the gradient of the whole micro-batch (exactly so when the N shares hold
equally many hole pixels; the masked MSE is a mean over each share's hole pixels, just as
gradient accumulation already averages the means of the micro-batches).

Which images and which holes each process gets
----------------------------------------------
The trainer reads one seeded, endless stream of images (:class:`glcic_lib.data.StreamSampler`,
shuffled anew each epoch from ``(seed, epoch)``: the role of PyTorch's DistributedSampler with
``set_epoch``, but resumable in the middle of an epoch).  Process ``r`` reads stream positions
``r, r + N, r + 2N, ...``: the N shares are disjoint and together they are exactly the images a
single process would read.  Each image's crop is seeded by its stream position and the holes of
a micro-step are drawn once from ``(seed, iteration, micro-step)`` for the whole micro-batch,
process ``r`` keeping the holes of its own images (:func:`share`).  So every process gets
different images, crops and holes, reproducibly, and the data of a run does not depend on N at
all: a run resumed with another number of processes continues with the same images and holes.
PyTorch's own generators (``torch``, ``numpy``, ``random``) are seeded ``seed + rank``
(:func:`rank_seed`) in case anything else draws from them.

The networks
------------
* Batch norm: with one batch split over N processes, each would otherwise normalise with the
  statistics of its share only.  :func:`convert_sync_batchnorm` turns every BatchNorm into a
  synchronised one (statistics over all N shares, like one big batch):
  :class:`torch.nn.SyncBatchNorm` on GPUs; PyTorch's class refuses CPU tensors, so on CPU
  (gloo) we use :class:`CPUSyncBatchNorm`, the same computation written with the
  differentiable ``torch.distributed.nn.functional.all_reduce``.
* :func:`wrap_ddp` wraps the completion network and the discriminator in
  :class:`~torch.nn.parallel.DistributedDataParallel`.  Buffers (batch-norm running
  statistics, the mean pixel) are copied from rank 0 once at the start but not before every
  forward (``forward_sync_buffers=False``): the synchronised batch norm already keeps them equal
  on every process, and re-broadcasting them between the two discriminator forwards of a GAN
  step breaks autograd (an in-place change of a tensor saved for backward).
  DDP starts every process from rank 0's weights and all-reduces (averages) gradients during
  ``backward``.
* Phases with a frozen network.  DDP expects, after every forward of a wrapped network with
  gradients on, a gradient for each of its parameters; otherwise the next step fails.  The
  trainer is arranged so that this always holds, without ``find_unused_parameters`` (which costs
  an extra graph traversal every step): the completion network's forwards in the discriminator
  steps run under ``torch.no_grad()`` (DDP then expects nothing), the discriminator step uses
  every discriminator parameter, and in the completion network's joint step the discriminator,
  frozen with ``requires_grad_(False)``, is called *unwrapped* (:func:`unwrap`): gradients flow
  through it into the completion network, and its own DDP wrapper is not involved.
* Checkpoints hold the unwrapped networks' state dicts (the same keys as a single-process run;
  synchronised batch norm has the same parameters and buffers), so ``--resume`` works with any
  N, and a distributed checkpoint loads with :func:`glcic_lib.checkpoint.load_completion`.

Only rank 0 (:func:`is_main`) writes files and shows progress bars; the losses it logs are
averaged over all processes (:func:`mean_across_ranks`); callbacks run on every process.

Two practical notes.  With ``accumulate > 1`` only the last micro-step of an iteration
all-reduces gradients: the others run under ``DistributedDataParallel.no_sync`` and add up
locally (``steps.TrainingSteps._accumulating``), the same result with fewer rounds of
communication (a test checks 2 processes x B against 1 process x 2B with accumulation).  Ctrl-C under torchrun reaches every process;
rank 0 then writes a checkpoint of its last complete iteration when it can, and in any case
the last periodic checkpoint (written atomically) stays valid for ``--resume``.
"""
from __future__ import annotations

import contextlib
import datetime
import inspect
import os
import socket
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.distributed as dist
from torch import nn

#: Environment variables that torchrun sets for every process.
ENV_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` in ``[0, world_size)``, ``local_rank`` on its node
    (which GPU it drives), the ``backend`` (``nccl``, ``gloo`` or None for one process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer (set by torchrun)") from None


def env_info() -> DistInfo:
    """Rank, local rank and world size from torchrun's variables (1 process when unset)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank} must lie in [0, WORLD_SIZE={world})")
    return DistInfo(rank, world, local, None)


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one process that writes files."""
    return get_rank() == 0


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for in a single process)."""
    if is_distributed():
        dist.barrier()


def backend_for(device: torch.device | str) -> str:
    """NCCL for CUDA tensors, gloo for CPU (and everything else)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_process_group(device: torch.device | str | None = None, timeout_s: float = 1800) -> DistInfo:
    """Join the process group described by torchrun's environment variables.

    Selects this process's GPU (``LOCAL_RANK``) before anything touches CUDA, so that plain
    ``torch.device("cuda")`` means *its* GPU.  One process (no ``WORLD_SIZE`` or 1): nothing to
    do.  A group that already exists (a test harness, a notebook) is used as it is.
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", dist.get_rank()),
                        dist.get_backend())
    info = env_info()
    if not info.distributed:
        return info
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise RuntimeError(f"WORLD_SIZE={info.world_size} but {', '.join(missing)} is not set: "
                           f"start the processes with torchrun")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if info.local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK={info.local_rank} but this node has {torch.cuda.device_count()} "
                               f"GPU(s): use --nproc_per_node <= the number of GPUs")
        torch.cuda.set_device(info.local_rank)
    backend = backend_for(device)
    dist.init_process_group(backend=backend, init_method="env://", rank=info.rank, world_size=info.world_size,
                            timeout=datetime.timedelta(seconds=timeout_s))
    return DistInfo(info.rank, info.world_size, info.local_rank, backend)


def cleanup() -> None:
    """Leave the process group (clean teardown; safe to call when there is none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def session(device: torch.device | str | None = None) -> Iterator[DistInfo]:
    """``with session() as info:`` join the torchrun group for the block and leave it after,
    also on errors.  A group that existed before is left alone; one process: a no-op."""
    existed = dist.is_available() and dist.is_initialized()
    info = init_process_group(device)
    try:
        yield info
    finally:
        if not existed and info.distributed:
            cleanup()


# ----------------------------------------------------------------------------- batches and seeds

def per_rank_batch(batch_size: int, world_size: int) -> int:
    """Images per process in one micro-step: the micro-batch ``batch_size`` split over the
    processes (``accumulate`` is not involved: every process runs all the micro-steps)."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if batch_size % world_size:
        raise ValueError(f"batch_size {batch_size} cannot be split over {world_size} processes: the "
                         f"(global) micro-batch must be a multiple of the number of processes")
    return batch_size // world_size


def share(items: Sequence, rank: int, world_size: int) -> list:
    """Process ``rank``'s part of a list drawn for a whole micro-batch: ``items[rank::world_size]``
    (process ``r`` holds the images at stream positions ``r, r + N, ...``)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} must lie in [0, world_size={world_size})")
    if len(items) % world_size:
        raise ValueError(f"{len(items)} items cannot be shared equally by {world_size} processes")
    return list(items[rank::world_size])


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank`` for the global generators (``seed + rank``)."""
    return int(seed) + int(rank)


def epoch_sampler(dataset, epoch: int, seed: int = 0, shuffle: bool = True,
                  rank: int | None = None, world_size: int | None = None):
    """PyTorch's :class:`~torch.utils.data.distributed.DistributedSampler` for epoch-based
    loops (evaluation, your own scripts), with ``set_epoch(epoch)`` already called so that each
    epoch is shuffled differently.  The trainer itself uses the resumable
    :class:`glcic_lib.data.StreamSampler`, which shards the same way."""
    from torch.utils.data.distributed import DistributedSampler

    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
    sampler.set_epoch(epoch)
    return sampler


# ----------------------------------------------------------------------------- networks

class _AllReduceSum(torch.autograd.Function):
    """Sum over all processes, differentiable: the backward pass sums the gradients the same
    way (each process's statistics influence every process's loss)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _AllReduceSum.apply(grad)


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """Batch norm with statistics over all processes, for CPU tensors (gloo).

    :class:`torch.nn.SyncBatchNorm` does the same on GPUs but refuses CPU tensors.  In training
    mode with more than one process, each process sums its share (per channel: count, sum,
    then squared deviations from the global mean) and an all-reduce adds the shares up; the
    all-reduce is differentiable (its backward all-reduces the gradients), so the gradient is
    that of one big batch (checked in float64 against one process to 1e-14).  Outside that case it is an ordinary ``BatchNorm2d``: same
    parameters, buffers and state-dict keys.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        all_reduce = _AllReduceSum.apply
        self._check_input_dim(x)
        dims = (0, 2, 3)
        n_local = torch.tensor([float(x.shape[0] * x.shape[2] * x.shape[3])], dtype=x.dtype, device=x.device)
        stats = all_reduce(torch.cat([n_local, x.sum(dim=dims)]))
        n, mean = stats[0], stats[1:] / stats[0]
        centred = x - mean.view(1, -1, 1, 1)
        var = all_reduce((centred * centred).sum(dim=dims)) / n     # biased: used to normalise
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1).clamp(min=1), alpha=m)
        y = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y


def _to_cpu_sync(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, CPUSyncBatchNorm):
        new = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias      # the same Parameter objects
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        new_child = _to_cpu_sync(child)
        if new_child is not child:
            setattr(module, name, new_child)
    return module


def convert_sync_batchnorm(module: nn.Module, device: torch.device | str) -> nn.Module:
    """Every BatchNorm of ``module`` synchronised across processes (in place where possible;
    use the returned module).  CUDA: :class:`torch.nn.SyncBatchNorm`; else
    :class:`CPUSyncBatchNorm`.  Parameters are kept (same objects), so optimisers built before
    or after both work."""
    if torch.device(device).type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_cpu_sync(module)


def wrap_ddp(module: nn.Module, device: torch.device | str) -> nn.Module:
    """Synchronised batch norm + DistributedDataParallel (see the module docstring for the
    options).  The module is changed in place: keep using it (unwrapped) for checkpoints."""
    device = torch.device(device)
    module = convert_sync_batchnorm(module, device)
    ddp = nn.parallel.DistributedDataParallel
    # buffers: copied from rank 0 once at the start, not before every forward (newer PyTorch
    # spells this forward_sync_buffers=False; broadcast_buffers=False there also skips the start)
    if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters:
        options = {"forward_sync_buffers": False}
    else:
        options = {"broadcast_buffers": False}
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return ddp(module, device_ids=[index], output_device=index, **options)
    return ddp(module, **options)


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the module itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


# ----------------------------------------------------------------------------- reductions

def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all processes (a new tensor; the input itself in one process)."""
    if not is_distributed():
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def mean_across_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average a dict of numbers over all processes (every process must call it, with the same
    keys).  Used for the logged losses, so rank 0 reports the whole batch, not its share."""
    if not is_distributed() or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device())
    t = all_reduce_mean(t).cpu()
    return {k: float(v) for k, v in zip(keys, t)}


def free_port() -> int:
    """A free TCP port on localhost (for ``MASTER_PORT`` in tests and local launches)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
