"""Multi-process training (issue 8): torchrun / DistributedDataParallel, tested on CPU with gloo.

The unit tests need no processes.  The multi-process tests start two gloo processes on
localhost once (``torch.multiprocessing.spawn``) and run several scenarios in them, then
compare with single-process runs done here; one more test runs the real command line under
``torchrun``.  Every process uses one thread: the CI machine has two cores.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from glcic_lib import distributed
from glcic_lib.checkpoint import load_completion, read_checkpoint
from glcic_lib.models import CompletionNetwork
from glcic_lib.train import Trainer, preset, train

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="this PyTorch build has no gloo backend")

STOP = 10       # the interrupted runs stop there, inside the joint phase


def smoke(out_dir=None, **overrides):
    """The smoke preset (64x64 crops, batch 4, 6/2/4 iterations), no loader workers."""
    return preset("smoke", out_dir=str(out_dir) if out_dir else None, num_workers=0, **overrides)


def mse_config(**overrides):
    """Completion phase only, one fixed hole size (so every share holds as many hole pixels)."""
    return smoke(discriminator="none", hole_range=(28, 28), t_c=3, t_d=0, t_joint=0, **overrides)


def mse_run(out_dir, rank: int, world_size: int, steps: int = 3, **overrides) -> Trainer:
    """``steps`` iterations of :func:`mse_config` in float64.  In float32 the two summation
    orders differ by ~1e-4 relative in the first layers' gradients (batch norm's backward
    cancels a lot), and ADADELTA's first steps, nearly sign-like, would amplify that; in
    float64 the comparison can be tight."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        trainer = Trainer(mse_config(out_dir=str(out_dir), **overrides), progress=False, rank=rank,
                          world_size=world_size)
        for t in range(steps):
            micros = [dict(m, image=m["image"].double(), mask=m["mask"].double()) for m in trainer.next_micros(t)]
            trainer.step(t, micros)
    finally:
        torch.set_default_dtype(default)
    return trainer


def states(trainer) -> dict:
    out = {"completion": {k: v.detach().clone() for k, v in trainer.completion.state_dict().items()}}
    if trainer.discriminator is not None:
        out["discriminator"] = {k: v.detach().clone() for k, v in trainer.discriminator.state_dict().items()}
    return out


def flat(trainer) -> torch.Tensor:
    """Every parameter and buffer of both networks in one vector."""
    parts = [v.detach().reshape(-1).double() for v in trainer.completion.state_dict().values()]
    if trainer.discriminator is not None:
        parts += [v.detach().reshape(-1).double() for v in trainer.discriminator.state_dict().values()]
    return torch.cat(parts)


class StopAt:
    """A training callback that interrupts the run (like Ctrl-C) once ``iteration`` is logged."""

    def __init__(self, iteration: int):
        self.iteration = iteration

    def __call__(self, event: dict) -> None:
        if event["iteration"] >= self.iteration:
            raise KeyboardInterrupt


def _worker(rank: int, world_size: int, port: int, tmp: str) -> None:
    """One of the two gloo processes: runs every scenario, rank 0 saves what the tests compare."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    tmp = Path(tmp)
    info = distributed.init_process_group("cpu")
    assert (info.rank, info.world_size, info.backend) == (rank, world_size, "gloo")
    results: dict = {}

    # 1. the smoke schedule, step by step, checking after every step that all ranks agree
    trainer = Trainer(smoke(tmp / "lockstep"), progress=False, rank=rank, world_size=world_size)
    assert distributed.unwrap(trainer.c_net) is trainer.completion
    diffs, phases = [], []
    for t in range(trainer.config.total):
        phases.append(trainer.step(t)["phase"])
        mine = flat(trainer)
        gathered = [torch.empty_like(mine) for _ in range(world_size)]
        dist.all_gather(gathered, mine)
        diffs.append(max(float((g - gathered[0]).abs().max()) for g in gathered))
        if t + 1 == STOP:
            results["at_stop"] = states(trainer)
    results["lockstep"] = {"diffs": diffs, "phases": phases, **states(trainer)}

    # 2. the MSE phase with 2 x B images (B = 2 per rank); then with two accumulated micro-batches,
    #    whose first backward runs under DDP's no_sync (gradients all-reduced once per step)
    results["mse"] = states(mse_run(tmp / "mse", rank, world_size))
    results["mse_acc"] = states(mse_run(tmp / "mse_acc", rank, world_size, accumulate=2))

    # 2b. every phase with accumulation: the ranks still agree after every step
    trainer = Trainer(smoke(tmp / "lockstep_acc", accumulate=2), progress=False, rank=rank, world_size=world_size)
    acc_diffs = []
    for t in range(trainer.config.total):
        trainer.step(t)
        mine = flat(trainer)
        gathered = [torch.empty_like(mine) for _ in range(world_size)]
        dist.all_gather(gathered, mine)
        acc_diffs.append(max(float((g - gathered[0]).abs().max()) for g in gathered))
    results["lockstep_acc"] = acc_diffs

    # 3. interrupted in the joint phase (via train(), like Ctrl-C), resumed with the same number of
    #    processes; a copy of the interrupted run is resumed by the test in one process
    with pytest.raises(KeyboardInterrupt):
        train(smoke(tmp / "same"), callbacks=[StopAt(STOP)], progress=False)
    if rank == 0:
        shutil.copytree(tmp / "same", tmp / "other")
    distributed.barrier()
    results["same"] = train(smoke(tmp / "same"), resume=True, progress=False).history

    if rank == 0:
        torch.save(results, tmp / "results.pt")
    distributed.barrier()
    distributed.cleanup()


@pytest.fixture(scope="module")
def two_procs(tmp_path_factory, clean_env):
    """Run the two-process scenarios once; return their folder and rank 0's results."""
    tmp = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, distributed.free_port(), str(tmp)), nprocs=2, join=True)
    return tmp, torch.load(tmp / "results.pt", weights_only=False)


@pytest.fixture(scope="module")
def clean_env():
    """No torchrun variables from the outside (the workers set their own)."""
    mp_ = pytest.MonkeyPatch()
    for var in distributed.ENV_VARS:
        mp_.delenv(var, raising=False)
    yield mp_
    mp_.undo()


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def assert_states_close(a: dict, b: dict, atol: float, rtol: float = 1e-4) -> None:
    for net in a:
        assert a[net].keys() == b[net].keys()
        for k in a[net]:
            torch.testing.assert_close(a[net][k].double(), b[net][k].double(), atol=atol, rtol=rtol,
                                       msg=lambda m, k=k, net=net: f"{net}.{k}: {m}")


# ----------------------------------------------------------------------------- unit level

def test_per_rank_batch_splits_the_global_micro_batch():
    assert distributed.per_rank_batch(96, 4) == 24
    assert distributed.per_rank_batch(4, 1) == 4
    with pytest.raises(ValueError, match="batch_size 6 cannot be split over 4 processes"):
        distributed.per_rank_batch(6, 4)


def test_share_interleaves_like_the_stream_sampler():
    assert distributed.share(list(range(6)), 1, 2) == [1, 3, 5]
    assert sorted(sum((distributed.share(list(range(6)), r, 3) for r in range(3)), [])) == list(range(6))
    with pytest.raises(ValueError, match="5 items cannot be shared equally by 2 processes"):
        distributed.share(list(range(5)), 0, 2)
    with pytest.raises(ValueError, match=r"rank 2 must lie in \[0, world_size=2\)"):
        distributed.share([1, 2], 2, 2)


def test_env_info_reads_torchrun_variables(monkeypatch):
    for var in distributed.ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    assert distributed.env_info() == distributed.DistInfo(0, 1, 0, None)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = distributed.env_info()
    assert (info.rank, info.world_size, info.local_rank, info.is_main, info.distributed) == (3, 4, 1, False, True)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match=r"RANK=4 must lie in \[0, WORLD_SIZE=4\)"):
        distributed.env_info()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="RANK='x' is not an integer"):
        distributed.env_info()


def test_session_is_a_no_op_for_one_process_and_needs_a_master(monkeypatch):
    for var in distributed.ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    with distributed.session("cpu") as info:
        assert not info.distributed and not dist.is_initialized()
        assert distributed.is_main() and distributed.get_world_size() == 1
        distributed.barrier()                                      # nothing to wait for
        assert distributed.mean_across_ranks({"a": 2.0}) == {"a": 2.0}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(RuntimeError, match="MASTER_ADDR, MASTER_PORT is not set: start the processes with torchrun"):
        distributed.init_process_group("cpu")
    assert distributed.backend_for("cpu") == "gloo" and distributed.backend_for("cuda") == "nccl"


def test_sync_batchnorm_conversion_keeps_parameters_keys_and_single_process_results():
    torch.manual_seed(0)
    net = CompletionNetwork(width=0.125).train()
    ref = CompletionNetwork(width=0.125).train()
    ref.load_state_dict(net.state_dict())
    params = list(net.parameters())
    keys = list(net.state_dict())
    converted = distributed.convert_sync_batchnorm(net, "cpu")
    assert converted is net and list(net.parameters()) == params and list(net.state_dict()) == keys
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in ref.modules())
    assert n_bn > 0 and sum(isinstance(m, distributed.CPUSyncBatchNorm) for m in net.modules()) == n_bn
    x, mask = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:20, 8:20] = 1
    torch.testing.assert_close(net(x, mask), ref(x, mask))        # no process group: plain batch norm
    torch.testing.assert_close(net.state_dict(), ref.state_dict())  # running statistics too
    assert distributed.unwrap(net) is net


def test_epoch_sampler_shards_disjointly_and_reshuffles_per_epoch():
    data = list(range(10))
    shares = [list(distributed.epoch_sampler(data, epoch=0, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert sorted(shares[0] + shares[1]) == data
    again = list(distributed.epoch_sampler(data, epoch=0, seed=1, rank=0, world_size=2))
    other = list(distributed.epoch_sampler(data, epoch=1, seed=1, rank=0, world_size=2))
    assert again == shares[0] and other != shares[0]


def test_each_rank_gets_its_share_of_the_holes(tmp_path):
    """Holes are drawn for the whole micro-batch: rank r keeps items r, r + N, ... (so ranks
    differ, and the union over ranks is what one process would use)."""
    trainer = Trainer(smoke(tmp_path), progress=False)
    whole = trainer.holes(3, 0, 4)
    trainer.world_size = 2
    parts = []
    for rank in range(2):
        trainer.rank = rank
        parts.append(trainer.holes(3, 0, 2))
    for i in range(3):                                        # holes, their boxes, real boxes
        assert parts[0][i] == whole[i][0::2] and parts[1][i] == whole[i][1::2]
    assert parts[0][0] != parts[1][0]


def test_a_batch_that_does_not_split_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(distributed.free_port()))
    monkeypatch.setattr(distributed, "init_process_group",
                        lambda device=None: distributed.DistInfo(0, 3, 0, "gloo"))  # no peers needed
    with pytest.raises(ValueError, match="batch_size 4 cannot be split over 3 processes"):
        train(smoke(tmp_path), progress=False)


# ----------------------------------------------------------------------------- two processes

def test_two_processes_run_all_phases_in_lockstep(two_procs):
    _, res = two_procs
    lock = res["lockstep"]
    assert lock["phases"] == ["completion"] * 6 + ["discriminator"] * 2 + ["joint"] * 4
    # parameters *and* batch-norm statistics identical on both ranks after every step
    assert lock["diffs"] == [0.0] * 12
    assert all(torch.isfinite(v.double()).all() for v in lock["completion"].values())


def test_two_processes_of_b_match_one_process_of_2b_in_the_mse_phase(two_procs, tmp_path):
    _, res = two_procs
    single = mse_run(tmp_path, 0, 1)                                     # batch 4 in one process
    # weights after three ADADELTA steps and the batch-norm running statistics (synchronised)
    assert_states_close(res["mse"], states(single), atol=1e-7, rtol=1e-6)
    fresh = Trainer(mse_config(out_dir=str(tmp_path)), progress=False)
    assert float((flat(single) - flat(fresh)).abs().max()) > 1e-3        # it did learn something


def test_accumulation_skips_all_but_the_last_all_reduce_and_keeps_the_result(two_procs, tmp_path):
    _, res = two_procs
    assert res["lockstep_acc"] == [0.0] * 12   # all phases, 2 micro-batches per step, ranks identical
    single = mse_run(tmp_path, 0, 1, accumulate=2)
    assert_states_close(res["mse_acc"], states(single), atol=1e-7, rtol=1e-6)


def test_no_sync_is_used_for_every_micro_batch_but_the_last():
    from glcic_lib.steps import TrainingSteps

    class Wrapped:
        def __init__(self):
            self.entered = 0

        def no_sync(self):
            outer = self

            class Ctx:
                def __enter__(self):
                    outer.entered += 1

                def __exit__(self, *exc):
                    return False
            return Ctx()

    net = Wrapped()
    for i in range(3):
        with TrainingSteps._accumulating(net, i, 3):
            pass
    assert net.entered == 2                      # micro-batches 0 and 1, not the last
    with TrainingSteps._accumulating(torch.nn.Linear(1, 1), 0, 3):   # no DDP wrapper: nothing to skip
        pass


def test_interrupted_run_resumes_with_the_same_number_of_processes(two_procs):
    tmp, res = two_procs
    final = read_checkpoint(tmp / "same" / "checkpoint.pt")
    assert final["train_state"]["iteration"] == 12
    got = {"completion": final["completion"]["state_dict"], "discriminator": final["discriminator"]["state_dict"]}
    assert_states_close(got, {k: res["lockstep"][k] for k in ("completion", "discriminator")}, atol=1e-6)
    lines = [json.loads(line) for line in (tmp / "same" / "history.jsonl").read_text().splitlines()]
    assert [h["iteration"] for h in lines] == [2, 4, 6, 8, 10, 12]        # written once, by rank 0
    assert [h["iteration"] for h in res["same"]] == [2, 4, 6, 8, 10, 12]
    assert sorted(p.name for p in (tmp / "same" / "samples").iterdir()) == ["iter_000006.png", "iter_000012.png"]
    assert not list((tmp / "same").glob("*.tmp"))
    load_completion(tmp / "same" / "checkpoint.pt")                        # a normal checkpoint


def test_a_two_process_run_resumes_in_one_process(two_procs):
    """The checkpoint of an interrupted 2-process run holds plain state dicts and resumes with
    one process.  (Its end result is not compared with the 2-process run: the same images and
    holes, but float32 summation orders differ, and a dozen GAN steps amplify that; the MSE
    test above compares 2 x B and 1 x 2B in float64.)"""
    tmp, res = two_procs
    ckpt = read_checkpoint(tmp / "other" / "checkpoint.pt")
    assert ckpt["train_state"]["iteration"] == STOP
    assert not any(k.startswith("module.") for k in ckpt["completion"]["state_dict"])   # unwrapped
    trainer = Trainer(smoke(tmp / "other"), progress=False)
    trainer.load(tmp / "other" / "checkpoint.pt")
    assert_states_close(states(trainer), res["at_stop"], atol=0, rtol=0)   # exactly the 2-process state
    result = train(smoke(tmp / "other"), resume=True, progress=False)
    assert [h["iteration"] for h in result.history] == [2, 4, 6, 8, 10, 12]
    assert result.history[-1]["phase"] == "joint" and np.isfinite(result.history[-1]["mse"])
    final = read_checkpoint(result.checkpoint)
    assert final["train_state"]["iteration"] == 12
    assert all(torch.isfinite(v.double()).all() for v in final["completion"]["state_dict"].values())


def test_torchrun_command_line(tmp_path):
    """``torchrun --nproc_per_node 2 -m glcic_lib train``: the real entry point, all phases."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLCIC_CKPT": str(tmp_path / "ckpt")}
    for var in distributed.ENV_VARS:
        env.pop(var, None)
    out = tmp_path / "run"

    def torchrun(*extra):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
               "127.0.0.1", "--master_port", str(distributed.free_port()), "-m", "glcic_lib", "train",
               "--preset", "smoke", "--out", str(out), "--no-progress", "--workers", "0", *extra]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)

    run = torchrun("--iterations", "2", "1", "1")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("done: 4 iterations") == 1                   # rank 0 reports, once
    ckpt = read_checkpoint(out / "checkpoint.pt")
    assert ckpt["train_state"]["iteration"] == 4 and ckpt["train_state"]["phase"] == "joint"
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [(h["iteration"], h["phase"]) for h in history] == [(2, "completion"), (3, "discriminator"), (4, "joint")]
    load_completion(out / "checkpoint.pt")
