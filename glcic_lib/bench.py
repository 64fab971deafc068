"""``python -m glcic_lib bench``: how fast and how big is completion, measured on this machine.

For each image size the command reports

* **MACs**: multiply-accumulates of one forward pass, counted from the layer table
  (:func:`glcic_lib.tables.count_macs`), so they do not depend on the machine;
* **time** of the default path, ``glcic_lib.complete(model, image, mask)`` end to end (uint8
  in, uint8 out: padding, the forward pass, pasting), median of ``--repeats`` runs after a
  warm-up run, and the achieved GFLOP/s (2 x MACs / time).  The default path and the baseline
  below are timed alternately (:func:`interleaved_times`), so load from elsewhere on a shared
  machine hits both;
* the same for a **plain baseline**: Table 1 written as an ``nn.Sequential`` of Conv2d /
  BatchNorm2d / ReLU in float32, called under ``torch.no_grad()`` (what one would write first),
  with the speedup of the default path over it, the **ratio** default / plain (the course's
  target at 512 x 512 is at most 0.25x, printed under the table), and the largest and the mean
  (inside the holes) difference between their uint8 outputs, in grey levels;
* with ``--compile``, the same for ``complete(..., compile=True)``: the first call's time
  (torch.compile at work) and the per-call time after it, and how many calls it takes to win
  the compile time back;
* **peak memory** of the default path: on CUDA ``torch.cuda.max_memory_allocated``; on the CPU
  the peak resident set size of a fresh Python process that completes one image of that size
  (tracemalloc cannot see torch's allocations, and a fresh process is the only clean peak);
* the time of OpenCV's classical inpainting, **Telea** and **Navier-Stokes**, on the same image
  and mask;
* and once per run the machine's **peak**: a large matrix multiply timed in float32 (and in
  the reduced precision the default path uses), so every GFLOP/s figure reads as a fraction
  of what the hardware can do.

The default path runs in the precision ``complete(precision="auto")`` picks for the model
(:func:`glcic_lib.inpaint.precision_choice`, printed with its reason under the header): float16
on a GPU (with ``cudnn.benchmark`` on) or bfloat16 on a CPU with AMX or AVX512-BF16
(channels-last, as everywhere) for a checkpoint whose stored reduced-precision error allows it,
float32 otherwise; ``--precision`` chooses.  The default model is the random
:func:`stress_model`, which has no stored measurement (so ``auto`` runs it in float32) and which
bfloat16 moves a lot (it is chaotic, see its docstring): ``--checkpoint`` measures a trained
model, ``--precision bfloat16`` times the reduced-precision path on the random one.  Timing numbers are
printed, never asserted by tests (a shared CI machine is too noisy for that).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import torch
from torch import nn

from .device import pick_device, synchronize
from .inpaint import PRECISIONS, _check_numpy, _to_uint8, complete, precision_choice, resolve_precision
from .models import CompletionNetwork, network_input
from .tables import count_macs, layer_costs

DEFAULT_SIZES = (256, 512, 1024, 2048)


# --------------------------------------------------------------------------------------------
# test inputs and models
# --------------------------------------------------------------------------------------------
def bench_inputs(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic ``size`` x ``size`` test image (smooth colours plus texture) and mask.

    The mask holds one centred square hole of side size/4 (the paper's training holes are
    96-128 px on 256 px images) and four smaller ones: about 10% of the image.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (a * xx + b * yy) + c)
                      for a, b, c in rng.uniform(0.5, 3, size=(3, 3))], axis=-1)
    image += rng.normal(0, 0.04, image.shape).astype(np.float32)
    image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    mask = np.zeros((size, size), bool)
    q = size // 4
    mask[size // 2 - q // 2: size // 2 + q // 2, size // 2 - q // 2: size // 2 + q // 2] = True
    for _ in range(4):
        hh, ww = rng.integers(size // 32 + 1, size // 8 + 2, size=2)
        y, x = rng.integers(0, size - hh), rng.integers(0, size - ww)
        mask[y:y + hh, x:x + ww] = True
    return image, mask


@torch.no_grad()
def stress_model(width: float = 1.0, seed: int = 0, logit_std: float = 4.0, size: int = 64) -> CompletionNetwork:
    """A random completion network whose outputs span the whole [0, 1] range, like a trained one.

    Freshly initialised networks output ~0.5 everywhere, which would hide precision errors.
    Here every batch norm gets the statistics of one synthetic batch (so each layer's output is
    standardised, as after training) and the output layer is rescaled so that its logits have
    mean 0 and standard deviation ``logit_std``: a hard case for reduced precision, used by the
    bench's output comparison and by the tests of the precision guarantee.

    A very hard case, in fact: at full width the network is *chaotic*.  Changing the input
    image by one grey level (random +-1) moves ~12% of its hole pixels by more than 2 levels,
    up to ~240; bfloat16 rounding does about the same (measured on 128x128 inputs).  A
    trained network is far smoother, so the bfloat16 verdict on this model is pessimistic.
    """
    torch.manual_seed(seed)
    model = CompletionNetwork(width=width)
    pairs = [bench_inputs(size, seed + i) for i in range(2)]
    images = [torch.from_numpy(img).permute(2, 0, 1).float() / 255 for img, _ in pairs]
    masks = [torch.from_numpy(m)[None].float() for _, m in pairs]
    image, mask = torch.stack(images), torch.stack(masks)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch sets the exact statistics
    model.train()
    model(image, mask)
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    last = model.body[-1].conv
    logits = model.body[:-1](model.prepare_input(image, mask))
    logits = last(logits)
    mean, std = logits.mean((0, 2, 3)), logits.std((0, 2, 3))
    last.weight.mul_((logit_std / std).view(-1, 1, 1, 1))
    last.bias.sub_(mean).mul_(logit_std / std)
    return model


def plain_sequential(model: CompletionNetwork | None = None, width: float = 1.0) -> nn.Sequential:
    """Table 1 as a plain ``nn.Sequential`` (Conv2d/ConvTranspose2d, BatchNorm2d, ReLU, Sigmoid),
    made of the modules of ``model``'s blocks (copied), or of a fresh network of ``width``.

    Input: the 4-channel tensor of :func:`glcic_lib.models.network_input`.  It is the baseline
    the bench compares the default path with.
    """
    net = copy.deepcopy(model) if model is not None else CompletionNetwork(width=width)
    # each block is conv -> batch norm -> ReLU (the output block: conv -> sigmoid)
    mods = [m for block in net.body for m in (block.conv, block.bn, block.act) if not isinstance(m, nn.Identity)]
    return nn.Sequential(*mods).eval()


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------
def _time_once(fn, device: torch.device) -> float:
    """Wall time (seconds) of one ``fn()``, with the device's queued work finished on both sides."""
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - t0


def median_time(fn, repeats: int, device: torch.device, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    return statistics.median(_time_once(fn, device) for _ in range(repeats))


def interleaved_times(fns: dict, repeats: int, device: torch.device) -> dict:
    """Median wall time (seconds) of each function in ``fns``, run in turn ``repeats`` times.

    Alternating the candidates (default, plain, default, plain, ...) instead of timing one
    after the other makes the comparison fair on a shared, noisy machine: a burst of load
    from elsewhere hits both.  Warm up the functions before calling this.
    """
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_time_once(fn, device))
    return {name: statistics.median(ts) for name, ts in times.items()}


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, n: int | None = None,
                repeats: int = 5) -> float:
    """GFLOP/s of an n x n matrix multiply (2 n^3 FLOPs): the practical peak of the hardware.

    The *fastest* of ``repeats`` runs, not the median: load from elsewhere only ever slows a
    run down, so the best time is the closest to what the hardware can do."""
    n = n or (8192 if device.type == "cuda" else 4096)
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    with torch.inference_mode():
        torch.mm(a, b)  # warm-up
        best = min(_time_once(lambda: torch.mm(a, b), device) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


# --------------------------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------------------------
def _rss_peak_mb() -> float:
    """This process's peak resident set size in MiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this process's own memory
    map.  Not ``ru_maxrss``: Linux carries it over ``fork`` + ``exec``, so a child started by a
    big process would report its parent's peak.  Elsewhere ``ru_maxrss`` (bytes on macOS).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _memory_child(size: int, width: float, precision: str, checkpoint: str | None) -> None:
    """Run in a fresh process: complete one size x size image and print the peak RSS (JSON)."""
    torch.manual_seed(0)
    model = CompletionNetwork(width=width).eval() if checkpoint is None else _load(checkpoint)
    image, mask = bench_inputs(size)
    before = _rss_peak_mb()
    complete(model, image, mask, device="cpu", precision=precision)
    print(json.dumps({"before_mb": before, "peak_mb": _rss_peak_mb()}))


def peak_memory_mb(size: int, width: float, precision: str, checkpoint: str | None,
                   device: torch.device, model: CompletionNetwork | None = None) -> dict:
    """Peak memory of the default path at ``size``: ``{"peak_mb", "before_mb", "how"}``."""
    if device.type == "cuda":
        image, mask = bench_inputs(size)
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated(device) / 2**20
        torch.cuda.reset_peak_memory_stats(device)
        complete(model, image, mask, device=device, precision=precision)
        return {"peak_mb": torch.cuda.max_memory_allocated(device) / 2**20, "before_mb": before,
                "how": "torch.cuda.max_memory_allocated"}
    if device.type != "cpu":
        return {"peak_mb": None, "before_mb": None, "how": f"not measured on {device.type}"}
    code = (f"from glcic_lib.bench import _memory_child; "
            f"_memory_child({size}, {width!r}, {precision!r}, {checkpoint!r})")
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["killed"])[-1]
        return {"peak_mb": None, "before_mb": None, "how": f"failed: {tail}"}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**res, "how": "peak RSS of a fresh process (includes Python and torch)"}


def _available_mb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _plain_memory_estimate_mb(size: int, width: float) -> float:
    """Rough float32 footprint of the plain baseline: the two largest neighbouring activations,
    three times over (im2col / workspace buffers), plus the weights."""
    rows = layer_costs("completion", size, width_mult=width)
    acts = [np.prod(r["in"]) + np.prod(r["out"]) for r in rows]
    params = sum(r["params"] for r in rows)
    return (3 * max(acts) + params) * 4 / 2**20


# --------------------------------------------------------------------------------------------
# the bench
# --------------------------------------------------------------------------------------------
@dataclass
class BenchRow:
    size: int
    gmacs: float
    default_ms: float | None = None
    default_gflops: float | None = None
    plain_ms: float | None = None
    plain_gflops: float | None = None
    speedup: float | None = None
    ratio: float | None = None  #: default_ms / plain_ms
    max_diff_levels: int | None = None
    mean_diff_levels: float | None = None  #: inside the holes
    compile_s: float | None = None  #: the first complete(compile=True) call, compiling included
    compiled_ms: float | None = None
    peak_mb: float | None = None
    baseline_mb: float | None = None
    telea_ms: float | None = None
    ns_ms: float | None = None
    note: str = ""


@dataclass
class BenchResult:
    device: str
    device_type: str
    torch: str
    threads: int
    width: float
    precision: str
    model: str
    peak_gflops: dict = field(default_factory=dict)
    precision_reason: str = ""  #: why the default path runs in ``precision`` (one line)
    rows: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _load(checkpoint: str) -> CompletionNetwork:
    from .pretrained import load_pretrained

    return load_pretrained(checkpoint)


def run_bench(sizes=DEFAULT_SIZES, width: float = 1.0, repeats: int = 3, precision: str = "auto",
              device=None, checkpoint: str | None = None, baseline: bool = True, opencv: bool = True,
              memory: bool = True, progress: bool = True, peak_size: int | None = None,
              compile: bool = False) -> BenchResult:
    """Measure everything the module docstring lists; returns a :class:`BenchResult`."""
    from tqdm.auto import tqdm

    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    bad = [s for s in sizes if s < 8]
    if bad:
        raise ValueError(f"sizes must be at least 8 pixels, got {bad}")
    device = pick_device(device)
    resolve_precision(precision, device)   # a bad name fails before any work
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if checkpoint is not None:
        model, what = _load(checkpoint), f"checkpoint {checkpoint}"
        width = model.width
    else:
        model, what = stress_model(width), f"random (stress_model, width {width:g})"
    dtype = resolve_precision(precision, device, model)
    why = precision_choice(model, device)[1] if precision == "auto" else f"{precision}: asked for (--precision)"
    result = BenchResult(device=str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
                         device_type=device.type,
                         torch=torch.__version__, threads=torch.get_num_threads(), width=width,
                         precision=str(dtype).replace("torch.", ""), model=what, precision_reason=why)
    result.peak_gflops["float32"] = matmul_peak(device, torch.float32, peak_size)
    if dtype != torch.float32:
        result.peak_gflops[result.precision] = matmul_peak(device, dtype, peak_size)
    plain = plain_sequential(model).to(device) if baseline else None
    for size in tqdm(list(sizes), desc="bench", disable=not progress):
        image, mask = bench_inputs(size)
        macs = count_macs("completion", size, size, width)
        row = BenchRow(size=size, gmacs=macs / 1e9)
        result.rows.append(row)
        avail = _available_mb()

        def run_default():
            return complete(model, image, mask, device=device, precision=precision)

        try:
            out = run_default()  # warm-up (builds the inference copy) and the output to compare
        except (RuntimeError, MemoryError) as e:  # CUDA / allocator out of memory
            row.note = f"default path failed: {str(e).splitlines()[0][:80]}"
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        timed = {"default": run_default}
        if plain is not None:
            if device.type == "cpu" and avail is not None and _plain_memory_estimate_mb(size, width) > 0.6 * avail:
                row.note += " plain baseline skipped (memory)"
            else:
                try:
                    img_t, mask_t = (t.to(device) for t in _check_numpy(image, mask))
                    x = network_input(img_t, mask_t, model.mean_pixel.to(device), model.input_mode)

                    def run_plain():
                        with torch.no_grad():
                            return plain(x)

                    y = run_plain()  # warm-up and the reference output
                    ref = _to_uint8(y)[0]
                    ref[~mask] = image[~mask]
                    diff = np.abs(out.astype(int) - ref.astype(int))
                    row.max_diff_levels = int(diff.max())
                    row.mean_diff_levels = float(diff[mask].mean())
                    del y
                    timed["plain"] = run_plain
                except (RuntimeError, MemoryError) as e:
                    row.note += f" plain baseline failed: {str(e).splitlines()[0][:60]}"
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
        if compile:
            def run_compiled():
                return complete(model, image, mask, device=device, precision=precision, compile=True)

            row.compile_s = _time_once(run_compiled, device)  # compiles for this size
            timed["compiled"] = run_compiled
        times = interleaved_times(timed, repeats, device)
        if "compiled" in times:
            row.compiled_ms = 1e3 * times["compiled"]
        row.default_ms = 1e3 * times["default"]
        row.default_gflops = 2 * macs / times["default"] / 1e9
        if "plain" in times:
            row.plain_ms = 1e3 * times["plain"]
            row.plain_gflops = 2 * macs / times["plain"] / 1e9
            row.speedup = row.plain_ms / row.default_ms
            row.ratio = row.default_ms / row.plain_ms
        if memory:
            mem = peak_memory_mb(size, width, precision, checkpoint, device, model)
            row.peak_mb, row.baseline_mb = mem["peak_mb"], mem["before_mb"]
            if mem["peak_mb"] is None:
                row.note += mem["how"]
        if opencv:
            bgr = np.ascontiguousarray(image[..., ::-1])
            hole = mask.astype(np.uint8) * 255
            row.telea_ms = 1e3 * median_time(lambda: cv2.inpaint(bgr, hole, 3, cv2.INPAINT_TELEA),
                                             repeats, torch.device("cpu"), warmup=0)
            row.ns_ms = 1e3 * median_time(lambda: cv2.inpaint(bgr, hole, 3, cv2.INPAINT_NS),
                                          repeats, torch.device("cpu"), warmup=0)
        row.note = row.note.strip()
    return result


def _fmt(v, spec: str, missing: str = "-") -> str:
    return missing if v is None else format(v, spec)


def format_table(result: BenchResult) -> str:
    """The bench as an aligned text table with a header naming the machine and the peaks."""
    peaks = ", ".join(f"{k} {v:,.0f} GFLOP/s" for k, v in result.peak_gflops.items())
    lines = [f"device: {result.device} ({result.threads} threads) | torch {result.torch} | "
             f"model: {result.model} | default precision: {result.precision}"
             + (" (last 2 layers float32)" if result.precision != "float32" else ""),
             *([f"precision: {result.precision_reason}"] if result.precision_reason else []),
             f"machine peak (matrix multiply): {peaks}"]
    p_def = result.peak_gflops.get(result.precision, result.peak_gflops.get("float32"))
    p32 = result.peak_gflops.get("float32")
    head = ["size", "GMACs", "default ms", "GFLOP/s", "%peak", "plain fp32 ms", "GFLOP/s", "%peak",
            "ratio", "max diff", "mean diff", "peak MB", "start MB", "Telea ms", "NS ms"]
    compiled = any(r.compile_s is not None for r in result.rows)
    if compiled:
        head[3:3] = ["compiled ms", "compile s"]
    rows = []
    for r in result.rows:
        vals = [
            f"{r.size}", f"{r.gmacs:.1f}", _fmt(r.default_ms, ".0f"), _fmt(r.default_gflops, ".0f"),
            _fmt(None if r.default_gflops is None else 100 * r.default_gflops / p_def, ".0f"),
            _fmt(r.plain_ms, ".0f"), _fmt(r.plain_gflops, ".0f"),
            _fmt(None if r.plain_gflops is None else 100 * r.plain_gflops / p32, ".0f"),
            _fmt(r.ratio, ".2f") + ("x" if r.ratio else ""), _fmt(r.max_diff_levels, "d"),
            _fmt(r.mean_diff_levels, ".2f"),
            _fmt(r.peak_mb, ".0f"), _fmt(r.baseline_mb, ".0f"), _fmt(r.telea_ms, ".0f"), _fmt(r.ns_ms, ".0f"),
        ]
        if compiled:
            vals[3:3] = [_fmt(r.compiled_ms, ".0f"), _fmt(r.compile_s, ".1f")]
        rows.append(vals + ([r.note] if r.note else []))
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt_row = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths)) + (
        "  " + vals[-1] if len(vals) > len(widths) else "")
    lines += [fmt_row(head), fmt_row(["-" * w for w in widths])] + [fmt_row(r) for r in rows]
    lines += ratio_lines(result)
    lines.append("default = glcic_lib.complete() end to end (uint8 in/out); plain = nn.Sequential Table 1, "
                 "float32, torch.no_grad(); ratio = default / plain time; %peak against the matrix-multiply "
                 "peak of the same precision; max diff = largest uint8 difference between the two, mean diff "
                 "= their mean difference inside the holes; "
                 + ("compiled = complete(compile=True) after its first call, compile s = that first call; "
                    if compiled else "") + "peak MB = "
                 + ("torch.cuda.max_memory_allocated, start MB = allocated before" if result.device_type == "cuda"
                    else "peak RSS of a fresh process that completes one image, start MB = its RSS "
                         "before (Python, torch, model, inputs)"))
    return "\n".join(lines)


#: The course's target for complete() at 512 x 512: at most this fraction of a plain fp32 forward.
TARGET_RATIO = 0.25


def hardware_bound(result: BenchResult, row: BenchRow) -> tuple[float, float] | None:
    """``(ratio, peak)``: the smallest default / plain ratio this machine allows, i.e. the
    default path running the row's FLOPs at 100% of the measured matrix-multiply peak of its
    precision, against the plain forward as measured; None when not measured."""
    peak = result.peak_gflops.get(result.precision)
    if not peak or not row.plain_ms or not row.gmacs:
        return None
    best_ms = 2 * row.gmacs / peak * 1e3   # GMACs -> GFLOP, at the peak rate
    return best_ms / row.plain_ms, peak


def ratio_lines(result: BenchResult, size: int = 512) -> list[str]:
    """The summary under the table: complete() at ``size`` against the plain fp32 forward of
    the same run (and, when measured, the compiled path and its break-even call count)."""
    row = next((r for r in result.rows if r.size == size and r.ratio is not None), None)
    if row is None:
        return [f"ratio at {size}x{size}: not measured (add {size} to --sizes and keep the baseline)"]
    verdict = "meets" if row.ratio <= TARGET_RATIO else "misses"
    lines = [f"complete() at {size}x{size}: {row.default_ms:.0f} ms = {row.ratio:.2f}x the plain fp32 forward "
             f"({row.plain_ms:.0f} ms) of this run; {verdict} the target <= {TARGET_RATIO:.2f}x"]
    bound = hardware_bound(result, row)
    if bound is not None:
        floor, peak = bound
        lines.append(f"hardware bound: even at 100% of this machine's {result.precision} matrix-multiply peak "
                     f"({peak:.0f} GFLOP/s) complete() would take {floor:.2f}x the plain forward"
                     + (f"; the target needs a faster {result.precision} unit (e.g. Intel AMX), not other code"
                        if floor > TARGET_RATIO else ""))
    if row.compiled_ms is not None:
        saved = row.default_ms - row.compiled_ms
        pays = (f"wins its compile time back after {math.ceil(1e3 * row.compile_s / saved)} calls" if saved > 0
                else "never wins its compile time back (not faster per call)")
        lines.append(f"complete(compile=True) at {size}x{size}: {row.compiled_ms:.0f} ms per call = "
                     f"{row.compiled_ms / row.plain_ms:.2f}x the plain forward, after {row.compile_s:.1f} s for "
                     f"the first call; {pays}")
    return lines


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Arguments of ``bench``."""
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                   help="square image sizes (default: 256 512 1024 2048)")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier of the network (default: 1, the paper)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement; the median is reported")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help="precision of the default path")
    p.add_argument("--checkpoint", default=None,
                   help="time a trained model (its width wins); default: a random paper-size network")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain float32 nn.Sequential baseline")
    p.add_argument("--no-opencv", action="store_true", help="skip OpenCV's Telea and Navier-Stokes")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--peak-size", type=int, default=None,
                   help="side of the matrices timed for the machine's peak (default: 8192 on CUDA, 4096 elsewhere)")
    p.add_argument("--compile", action="store_true",
                   help="also time complete(compile=True): torch.compile's first call and the calls after it")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def main(args: argparse.Namespace) -> int:
    """Run ``bench``."""
    result = run_bench(sizes=args.sizes, width=args.width, repeats=args.repeats, precision=args.precision,
                       device=args.device, checkpoint=args.checkpoint, baseline=not args.no_baseline,
                       opencv=not args.no_opencv, memory=not args.no_memory, progress=not args.json,
                       peak_size=args.peak_size, compile=args.compile)
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_table(result))
    return 0
