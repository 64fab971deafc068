"""Device selection, mixed precision and seeding, shared by inference and training."""
from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch


def pick_device(preference: str | torch.device | None = None) -> torch.device:
    """CUDA if available, else Apple MPS, else CPU; ``preference`` (or ``$GLCIC_DEVICE``) overrides."""
    preference = preference or os.environ.get("GLCIC_DEVICE") or None
    if preference is not None:
        dev = torch.device(preference)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but CUDA is not available")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise RuntimeError("device 'mps' was requested but MPS is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device | None = None) -> str:
    """One human line: which device, its name, and whether smoke mode is on."""
    from .config import smoke_mode

    device = device or pick_device()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        mem = torch.cuda.get_device_properties(device).total_memory / 2**30
        what = f"CUDA GPU: {name} ({mem:.0f} GiB)"
    elif device.type == "mps":
        what = "Apple GPU (MPS)"
    else:
        what = f"CPU ({torch.get_num_threads()} threads)"
    return f"device: {what} | torch {torch.__version__} | smoke mode: {'on' if smoke_mode() else 'off'}"


#: Environment override of :func:`cpu_has_bfloat16`: "1" (say yes), "0" (say no), unset (detect).
CPU_BF16_ENV = "GLCIC_CPU_BF16"

#: /proc/cpuinfo flags of CPUs that compute bfloat16 in hardware (Intel AMX, AVX512-BF16).
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpuinfo_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags Linux lists in ``path`` (empty elsewhere or when unreadable)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def cpu_has_bfloat16() -> bool:
    """True when this CPU computes bfloat16 in hardware (Intel AMX or AVX512-BF16).

    ``$GLCIC_CPU_BF16`` decides when set (``1``/``0``; the test suite pins it so that results
    do not depend on the machine); otherwise torch's own probes (``torch.cpu``), then
    ``torch.backends.cpu.get_cpu_capability()`` (``"AMX..."``), then the Linux CPU flags
    :data:`BF16_CPU_FLAGS` in ``/proc/cpuinfo``.
    """
    env = os.environ.get(CPU_BF16_ENV, "").strip().lower()
    if env in {"1", "true", "yes", "on"}:
        return True
    if env in {"0", "false", "no", "off"}:
        return False
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        try:
            if getattr(cpu, probe)():
                return True
        except (AttributeError, RuntimeError):
            continue
    try:
        if "AMX" in torch.backends.cpu.get_cpu_capability().upper():
            return True
    except (AttributeError, RuntimeError):
        pass
    return bool(_cpuinfo_flags() & set(BF16_CPU_FLAGS))


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA, MPS) to finish, so a timer measures it; a no-op
    on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def autocast(device: torch.device, enabled: bool = True, dtype: torch.dtype | None = None):
    """Mixed precision: ``dtype`` (any device) when given, else float16 on CUDA; a no-op
    context when disabled, or without a dtype off CUDA."""
    if not enabled:
        return contextlib.nullcontext()
    if dtype is not None:
        return torch.autocast(device.type, dtype=dtype)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g
