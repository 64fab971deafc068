"""How many CPU threads torch should use here: measured once per process, or set by you.

On a CPU with another job running, torch's default (one thread per core) can be many times
slower than one thread: the threads of every operation wait for the slowest, and a busy core
makes one of them slow.  :func:`choose_threads` therefore times a small convolution forward
with one thread and with the default count, keeps the faster, and remembers the decision for
the rest of the process (well under a second).  :func:`glcic_lib.notebook.setup` calls it, and
``glcic doctor`` reports it.

Overrides, strongest first:

* ``GLCIC_THREADS=N``: use ``N`` threads, measure nothing;
* ``OMP_NUM_THREADS=N`` (read by torch itself when it starts): kept as it is, measure nothing.

In a notebook, set ``os.environ["GLCIC_THREADS"] = "2"`` *before* the setup cell runs (or
call ``torch.set_num_threads(2)`` after it).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch

#: The environment variable that fixes the thread count.
THREADS_ENV = "GLCIC_THREADS"


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count in use, where it came from and, if measured, the seconds per forward
    pass for each count tried (``timings``: {threads: seconds})."""

    threads: int
    source: str  #: "GLCIC_THREADS", "OMP_NUM_THREADS", "measured" or "one core"
    timings: dict = field(default_factory=dict)

    def describe(self) -> str:
        """One short phrase, e.g. ``1 torch thread (measured fastest: 1 -> 9 ms, 2 -> 31 ms)``."""
        what = f"{self.threads} torch thread{'s' * (self.threads != 1)}"
        if self.source == "measured":
            tried = ", ".join(f"{n} -> {1000 * s:.0f} ms" for n, s in sorted(self.timings.items()))
            return f"{what} (fastest here: {tried}; {THREADS_ENV}=N overrides)"
        if self.source == "one core":
            return f"{what} (one CPU core)"
        return f"{what} (set by {self.source})"


_CHOICE: ThreadChoice | None = None


def _env_threads() -> int | None:
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{THREADS_ENV}={raw!r} is not a whole number of threads") from None
    if n < 1:
        raise ValueError(f"{THREADS_ENV}={raw!r}: the thread count must be at least 1")
    return n


def _time_forward(threads: int, x: torch.Tensor, conv: torch.nn.Module, repeats: int) -> float:
    """Best-of-``repeats`` seconds of one forward pass with ``threads`` threads."""
    torch.set_num_threads(threads)
    best = float("inf")
    with torch.no_grad():
        conv(x)  # warm-up: the thread pool and the kernels' buffers
        for _ in range(repeats):
            t0 = time.perf_counter()
            conv(x)
            best = min(best, time.perf_counter() - t0)
    return best


def measure_threads(candidates: tuple[int, ...], repeats: int = 3, size: int = 48) -> dict[int, float]:
    """Seconds per forward pass of a small convolution stack for each thread count (interleaved
    rounds, best of each, so a burst of load hits both counts alike).  Restores nothing: the
    caller sets the count it picks."""
    gen = torch.Generator().manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(32, 32, 3, padding=1)).eval()
    x = torch.rand(2, 32, size, size, generator=gen)
    times = {n: float("inf") for n in candidates}
    for _ in range(2):  # two interleaved rounds
        for n in candidates:
            times[n] = min(times[n], _time_forward(n, x, conv, repeats))
    return times


def choose_threads(force: bool = False) -> ThreadChoice:
    """Set torch's CPU thread count once per process and return the decision.

    ``GLCIC_THREADS`` wins; else an ``OMP_NUM_THREADS`` that torch already honours is kept;
    else one thread and the default count (one per core) are timed on a small convolution and
    the faster is kept (ties go to fewer threads).  ``force`` measures again."""
    global _CHOICE
    if _CHOICE is not None and not force:
        if torch.get_num_threads() != _CHOICE.threads and _CHOICE.source == "measured":
            # changed by hand since (torch.set_num_threads): report what is in use
            _CHOICE = ThreadChoice(torch.get_num_threads(), "torch.set_num_threads")
        return _CHOICE
    env = _env_threads()
    if env is not None:
        torch.set_num_threads(env)
        _CHOICE = ThreadChoice(env, THREADS_ENV)
    elif os.environ.get("OMP_NUM_THREADS", "").strip():
        _CHOICE = ThreadChoice(torch.get_num_threads(), "OMP_NUM_THREADS")
    else:
        default = torch.get_num_threads()
        cores = os.cpu_count() or 1
        most = max(default, 1) if default > 1 else min(cores, 2) if cores > 1 else 1
        if most <= 1:
            torch.set_num_threads(1)
            _CHOICE = ThreadChoice(1, "one core")
        else:
            timings = measure_threads((1, most))
            # more threads must be clearly faster (10%) to be worth the risk under load
            best = most if timings[most] < 0.9 * timings[1] else 1
            torch.set_num_threads(best)
            _CHOICE = ThreadChoice(best, "measured", timings)
    return _CHOICE


def current_choice() -> ThreadChoice | None:
    """The decision :func:`choose_threads` made in this process (None before it ran)."""
    return _CHOICE


def _reset_for_tests() -> None:
    global _CHOICE
    _CHOICE = None


__all__ = ["THREADS_ENV", "ThreadChoice", "choose_threads", "current_choice", "measure_threads"]
