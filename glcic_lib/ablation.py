"""The discriminator ablation (the paper's Figure 8), with numbers.

Four *arms* are trained with everything equal but the discriminator:

=========  ===========================================================================
``none``   the completion network with the MSE loss alone (all iterations)
``global`` MSE + GAN with the global discriminator only (whole image)
``local``  MSE + GAN with the local discriminator only (the patch around the hole)
``both``   MSE + GAN with both, concatenated: the paper's model
=========  ===========================================================================

Same preset, seed, data, holes and iteration budget ``T_C + T_D + T_joint`` for every arm.
Phase 1 (``T_C`` iterations of MSE only) involves no discriminator at all, and every random
choice in training is a function of ``(seed, iteration)``, so phase 1 is *the same computation*
in the four arms.  :func:`train_arms` therefore trains it once (``out/phase1``) and starts
every arm from it (``share_phase1=True``, the default): the arms are exactly what four
separate runs would give (a test checks the weights bit for bit on the CPU) for about half
the cost.  An arm whose run folder already holds a finished checkpoint is not trained again;
an unfinished one is resumed.

Then every arm is evaluated on the held-out set with fixed holes (:func:`glcic_lib.evaluate`)
raw and with post-processing, next to OpenCV's Telea and Navier-Stokes inpainting: ten rows,
written to the output folder as CSV/JSON/Markdown, an image grid and a bar chart.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .evaluation import BASELINES, EvalResult, evaluate

#: The arms, in the order of the paper's Figure 8.
ARMS = ("none", "global", "local", "both")
PHASE1_DIR = "phase1"
#: The folder of ``data/`` that holds the shipped run (:func:`load_shipped`).
SHIPPED_NAME = "ablation_photos"
#: Methods shown in the image grid (the bar chart shows all ten).
GRID_METHODS = ("none", "global", "local", "both", "both+post", "telea", "ns")


@dataclass
class AblationResult:
    """What :func:`run_ablation` returns.

    ``evaluation``: every arm raw (``"both"``) and post-processed (``"both+post"``) plus the
    baselines; ``checkpoints``: arm -> checkpoint path; ``costs``: seconds spent (``phase1``,
    one entry per arm for the part it trained *in this call or before*, ``evaluation``) and
    which arms were trained now, resumed or found finished; ``files``: what was written.
    """

    out_dir: Path
    evaluation: EvalResult
    checkpoints: dict[str, Path]
    costs: dict
    files: dict[str, Path] = field(default_factory=dict)

    def table(self, **kwargs) -> str:
        return self.evaluation.table(**kwargs)


# --------------------------------------------------------------------------- configs
def arm_config(preset_name: str, arm: str, data_dir=None, out_dir=None, **overrides):
    """The :class:`~glcic_lib.train.TrainConfig` of one arm: ``out_dir/arm``, ``discriminator=arm``."""
    from .train import preset

    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; the arms are {ARMS}")
    if "discriminator" in overrides or "out_dir" in overrides:
        raise ValueError("the ablation sets discriminator and out_dir itself; do not override them")
    return preset(preset_name, data_dir=None if data_dir is None else str(data_dir),
                  out_dir=None if out_dir is None else str(Path(out_dir) / arm), discriminator=arm, **overrides)


def phase1_config(preset_name: str, data_dir=None, out_dir=None, **overrides):
    """The shared phase-1 run: the arms' schedule cut to ``T_C`` MSE iterations."""
    from .train import preset

    cfg = preset(preset_name, data_dir=None if data_dir is None else str(data_dir),
                 out_dir=None if out_dir is None else str(Path(out_dir) / PHASE1_DIR),
                 discriminator="none", **{**overrides, "t_d": 0, "t_joint": 0})
    return cfg


def run_state(config) -> tuple[str, int]:
    """``("missing" | "partial" | "finished", iteration)`` of the run folder of ``config``.

    A finished or partial run trained with a different setup (another preset, seed, size or
    schedule) is an error that names the difference: results of different setups must never
    be mixed in one table.
    """
    from .checkpoint import CheckpointError, read_checkpoint
    from .train import CHECKPOINT, RESUME_MUST_MATCH

    path = Path(config.out_dir) / CHECKPOINT
    if not path.exists():
        return "missing", 0
    state = read_checkpoint(path).get("train_state") or {}
    saved, mine = state.get("config", {}), config.to_dict()
    for key in RESUME_MUST_MATCH + ("t_c", "t_d", "t_joint", "alpha", "data_dir"):
        a, b = saved.get(key), mine.get(key)
        a, b = (tuple(a) if isinstance(a, list) else a), (tuple(b) if isinstance(b, list) else b)
        if a != b:
            raise CheckpointError(f"{path} was trained with {key}={a!r}, but this ablation has {key}={b!r}; "
                                  f"use another output folder (or delete that run)")
    it = int(state.get("iteration", 0))
    return ("finished" if it >= config.total else "partial"), it


def _start_from_phase1(config, phase1_checkpoint: Path) -> None:
    """Write ``config.out_dir/checkpoint.pt``: a run of ``config`` paused after phase 1, whose
    completion network and its optimiser come from the shared phase-1 run, and whose
    discriminator is initialised exactly as a fresh run of ``config`` would initialise it."""
    from .checkpoint import _load_state, read_checkpoint
    from .train import CHECKPOINT, Trainer

    ckpt = read_checkpoint(phase1_checkpoint)
    state = ckpt["train_state"]
    trainer = Trainer(config, progress=False)  # seeds and builds C then D, as a fresh run does
    _load_state(trainer.completion, ckpt["completion"], "completion network", phase1_checkpoint)
    trainer.opt_c.load_state_dict(state["opt_c"])
    trainer.scaler_c.load_state_dict(state["scaler_c"])
    trainer.iteration = int(state["iteration"])
    trainer.history = list(state.get("history", []))
    trainer.elapsed = float(state.get("elapsed", 0.0))
    trainer.save(Path(config.out_dir) / CHECKPOINT)


# --------------------------------------------------------------------------- training
def train_arms(data_dir, out_dir, preset: str = "smoke", arms=ARMS, share_phase1: bool = True,
               progress: bool = True, **overrides) -> tuple[dict[str, Path], dict]:
    """Train (or resume, or skip) every arm; return ``({arm: checkpoint}, costs)``."""
    from .train import CHECKPOINT, train

    arms = list(arms)
    for a in arms:
        if a not in ARMS:
            raise ValueError(f"unknown arm {a!r}; the arms are {ARMS}")
    out_dir = Path(out_dir)
    configs = {a: arm_config(preset, a, data_dir, out_dir, **overrides) for a in arms}
    costs: dict = {"phase1_s": 0.0, "arms_s": {}, "status_before": {}}
    states = {a: run_state(c) for a, c in configs.items()}
    costs["status_before"] = {a: s for a, (s, _) in states.items()}
    t_c = next(iter(configs.values())).t_c
    phase1_ckpt = None
    if share_phase1 and t_c > 0 and any(s == "missing" for s, _ in states.values()):
        p1 = phase1_config(preset, data_dir, out_dir, **overrides)
        status, _ = run_state(p1)
        if status != "finished":
            if progress:
                print(f"phase 1 (MSE only, shared by the arms): {p1.t_c} iterations -> {p1.out_dir}")
            t0 = time.perf_counter()
            train(p1, resume=status == "partial", progress=progress)
            costs["phase1_s"] = time.perf_counter() - t0
        phase1_ckpt = Path(p1.out_dir) / CHECKPOINT
    for a in arms:
        cfg, (status, it) = configs[a], states[a]
        if status == "finished":
            continue
        t0 = time.perf_counter()
        how = {"partial": f"resuming from iteration {it}", "missing": "training"}[status]
        if status == "missing" and phase1_ckpt is not None:
            _start_from_phase1(cfg, phase1_ckpt)
            status, how = "partial", f"starting from the shared phase 1 (iteration {cfg.t_c})"
        if progress:
            print(f"arm {a!r}: {how} -> {cfg.out_dir}")
        train(cfg, resume=status == "partial", progress=progress)
        costs["arms_s"][a] = time.perf_counter() - t0
    return {a: Path(configs[a].out_dir) / CHECKPOINT for a in arms}, costs


# --------------------------------------------------------------------------- the whole ablation
def run_ablation(data_dir=None, out_dir=None, preset: str = "smoke", *, arms=ARMS, heldout=None,
                 size: int | str | None = "crop", limit: int | None = None, baselines=tuple(BASELINES),
                 share_phase1: bool = True, device=None, figures: bool = True, progress: bool = True,
                 **overrides) -> AblationResult:
    """Train the four arms (skipping finished ones) and evaluate them; write the results.

    * ``data_dir``: training images (default: ``$GLCIC_DATA`` or the bundled ``data/train``);
      ``out_dir``: one folder per arm plus the results (default ``runs/ablation_<preset>``).
    * ``preset``: a :data:`glcic_lib.train.PRESETS` name; ``overrides``: any TrainConfig field
      (e.g. ``t_c=2, t_d=1, t_joint=2`` for a quick test), the same for every arm.
    * ``heldout``: the held-out set (default: the bundled one), as for :func:`evaluate`.
    * ``size``: evaluation size: ``"crop"`` (default) scales the held-out images to the crop
      size the arms were trained at, an int to that shorter side, ``None`` keeps them.

    Files written to ``out_dir``: ``rows.csv`` (per image and method), ``results.json``,
    ``table.md``, ``grid.png`` (rows = images, columns = arms and baselines),
    ``metrics.png`` (bar chart with the spread over images) and ``costs.json``.
    """
    from .config import checkpoint_dir
    from .data import default_train_dir
    from .evaluation import _items

    t_start = time.perf_counter()
    data_dir = Path(data_dir) if data_dir is not None else default_train_dir()
    out_dir = Path(out_dir) if out_dir is not None else checkpoint_dir() / f"ablation_{preset}"
    if device is not None:
        overrides["device"] = device
    checkpoints, costs = train_arms(data_dir, out_dir, preset, arms, share_phase1, progress, **overrides)
    cfg = arm_config(preset, list(arms)[0], data_dir, out_dir, **overrides)
    if size == "crop":
        size = cfg.crop_size
    items = _items(heldout)
    if limit is not None:
        items = items[:limit]

    t0 = time.perf_counter()
    result, train_seconds = evaluate_arms(checkpoints, items, size=size, baselines=baselines, device=device,
                                          progress=progress)
    costs["evaluation_s"] = time.perf_counter() - t0
    costs["total_s"] = time.perf_counter() - t_start
    costs["arm_train_seconds"] = train_seconds
    result.meta.update({"preset": preset, "data_dir": str(data_dir), "size": size, "arms": list(arms),
                        "share_phase1": share_phase1, "overrides": {k: str(v) for k, v in overrides.items()},
                        "config": {k: v for k, v in cfg.to_dict().items() if k not in ("out_dir", "discriminator")}})

    files = result.save(out_dir, figures=False)
    if figures:
        files.update(save_figures(result, out_dir))
    costs_path = out_dir / "costs.json"
    costs_path.write_text(json.dumps(costs, indent=1))
    files["costs"] = costs_path
    return AblationResult(out_dir, result, checkpoints, costs, files)


def evaluate_arms(checkpoints: dict, heldout=None, *, size: int | None = None, limit: int | None = None,
                  baselines=tuple(BASELINES), device=None, progress: bool = True) -> tuple[EvalResult, dict]:
    """Evaluate every arm's checkpoint raw and post-processed, plus the baselines.

    ``checkpoints``: arm -> checkpoint path (a run's ``checkpoint.pt`` or a completion-only
    file such as the shipped ``data/ablation_photos/both.pt``).  Returns the evaluation and
    arm -> training seconds recorded in the checkpoint (0 when it records none).
    """
    from .checkpoint import load_completion, read_checkpoint
    from .evaluation import _items

    items = _items(heldout)
    if limit is not None:
        items = items[:limit]
    result, train_seconds = None, {}
    for a, path in checkpoints.items():
        ckpt = read_checkpoint(path)   # read once: the model and its recorded training time
        model = load_completion(path, ckpt)
        state = ckpt.get("train_state") or (ckpt.get("meta") or {})
        train_seconds[a] = float(state.get("elapsed", state.get("train_seconds", 0.0)) or 0.0)
        r = evaluate(model, items, "both", name=a, size=size, device=device, progress=progress)
        result = r if result is None else result.merge(r)
    if baselines:
        result = result.merge(evaluate(None, items, baselines=baselines, size=size, progress=progress))
    return result, train_seconds


# --------------------------------------------------------------------------- the shipped run
def shipped_dir() -> Path:
    """``data/ablation_photos``: the ablation run shipped with the course (see its README)."""
    from .config import bundled_data_dir

    return bundled_data_dir() / SHIPPED_NAME


def load_shipped(folder=None, heldout="photos", *, limit: int | None = None, device=None,
                 progress: bool = True) -> AblationResult:
    """The shipped ablation, evaluated now: ``folder/<arm>.pt`` (completion networks only) on the
    held-out set (default: the bundled photographs, at their stored 256x256), raw and
    post-processed, with Telea and Navier-Stokes.  Seconds, not hours: nothing is trained.
    ``costs`` is the run's ``costs.json`` (training seconds per arm).  A missing or partial
    folder is an error that names the missing files."""
    folder = Path(folder) if folder is not None else shipped_dir()
    missing = [f"{a}.pt" for a in ARMS if not (folder / f"{a}.pt").is_file()]
    if missing:
        raise FileNotFoundError(f"no complete shipped ablation in {folder}: missing {', '.join(missing)}")
    checkpoints = {a: folder / f"{a}.pt" for a in ARMS}
    result, seconds = evaluate_arms(checkpoints, heldout, limit=limit, device=device, progress=progress)
    costs_path = folder / "costs.json"
    costs = json.loads(costs_path.read_text()) if costs_path.is_file() else {}
    costs.setdefault("arm_train_seconds", seconds)
    result.meta.update({"shipped": str(folder), "heldout": str(heldout)})
    return AblationResult(folder, result, checkpoints, costs, {})


def arm_history(folder, arm: str) -> list[dict]:
    """An arm's loss history: ``folder/<arm>/history.jsonl`` (a run folder of :func:`run_ablation`)
    or ``folder/<arm>_history.jsonl`` (the shipped layout).  One dict per logged iteration."""
    folder = Path(folder)
    for path in (folder / arm / "history.jsonl", folder / f"{arm}_history.jsonl"):
        if path.is_file():
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    raise FileNotFoundError(f"no history of arm {arm!r} in {folder}")


def save_figures(result: EvalResult, out_dir) -> dict[str, Path]:
    """``grid.png`` (arms raw, ``both+post`` and the baselines) and ``metrics.png`` (all rows)."""
    import matplotlib.pyplot as plt

    from .evaluation import plot_grid, plot_metrics

    out_dir = Path(out_dir)
    files = {}
    grid_methods = [m for m in GRID_METHODS if m in result.methods] or result.methods
    for key, fig in (("grid", plot_grid(result, grid_methods, max_images=8, cell=1.8)),
                     ("metrics", plot_metrics(result))):
        files[key] = out_dir / f"{key}.png"
        fig.savefig(files[key], dpi=100, bbox_inches="tight")
        plt.close(fig)
    return files


def load_results(out_dir) -> EvalResult:
    """The evaluation a previous :func:`run_ablation` wrote (``results.json``, without images)."""
    path = Path(out_dir) / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"no ablation results in {out_dir} (run run_ablation first)")
    return EvalResult.from_json(path)


# --------------------------------------------------------------------------- cost
def schedule(preset_name: str, arms=ARMS, share_phase1: bool = True, **overrides) -> dict[str, int]:
    """Iterations the whole ablation trains, per kind of iteration.

    ``completion``: MSE-only updates of the completion network (phase 1, once when shared or
    once per arm, plus the ``none`` arm's phases 2 and 3, which have no discriminator);
    ``discriminator``: discriminator-only iterations (phase 2 of the other arms); ``joint``:
    iterations that update both networks (phase 3 of the other arms).
    """
    cfg = arm_config(preset_name, "both", **overrides)
    arms = list(arms)
    with_d = [a for a in arms if a != "none"]
    completion = cfg.t_c * (1 if share_phase1 else len(arms)) + ("none" in arms) * (cfg.t_d + cfg.t_joint)
    return {"completion": completion, "discriminator": cfg.t_d * len(with_d), "joint": cfg.t_joint * len(with_d),
            "images_per_iteration": cfg.images_per_iteration}


def estimate_seconds(preset_name: str, images_per_s: dict[str, float], arms=ARMS, share_phase1: bool = True,
                     **overrides) -> dict[str, float]:
    """Training time of the ablation from a throughput per kind of iteration.

    ``images_per_s``: ``{"completion": ..., "discriminator": ..., "joint": ...}`` training
    images per second, e.g. measured by :func:`glcic_lib.train.throughput` on the machine at
    hand (``"discriminator"`` and ``"joint"`` may be missing when only the ``none`` arm is
    asked for).  Returns seconds per kind and ``"total"``.  Evaluation (seconds) and start-up
    are not included; it is an estimate, data loading is assumed to keep up.
    """
    sched = schedule(preset_name, arms, share_phase1, **overrides)
    out = {}
    for kind in ("completion", "discriminator", "joint"):
        if sched[kind] == 0:
            out[kind] = 0.0
            continue
        rate = images_per_s.get(kind)
        if not rate or rate <= 0:
            raise ValueError(f"need a positive images_per_s[{kind!r}] to estimate {sched[kind]} {kind} iterations")
        out[kind] = sched[kind] * sched["images_per_iteration"] / float(rate)
    out["total"] = sum(out.values())
    return out


# --------------------------------------------------------------------------- command line
def configure_parser(p: argparse.ArgumentParser) -> None:
    """Arguments of ``ablate``."""
    from .train import PRESETS

    p.add_argument("--data", default=None, help="training images (default: $GLCIC_DATA or data/train)")
    p.add_argument("--out", default=None, help="output folder (default: runs/ablation_<preset>)")
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS), help="training preset (default: cpu)")
    p.add_argument("--heldout", default=None, help="held-out folder (images/ + masks/; default: the bundled set)")
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), help="arms to train (default: all four)")
    p.add_argument("--iterations", type=int, nargs=3, metavar=("T_C", "T_D", "T_JOINT"), default=None,
                   help="override the preset's iterations of the three phases (the same for every arm)")
    p.add_argument("--size", type=int, default=None,
                   help="evaluation size (shorter side); default: the preset's crop size")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N held-out images")
    p.add_argument("--seed", type=int, default=None, help="training seed (the same for every arm)")
    p.add_argument("--no-share-phase1", action="store_true",
                   help="train phase 1 separately in every arm (same result, about twice the cost)")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(args: argparse.Namespace) -> int:
    """Run ``ablate``: train, evaluate, print the table and the costs."""
    overrides = {}
    if args.iterations:
        overrides.update(t_c=args.iterations[0], t_d=args.iterations[1], t_joint=args.iterations[2])
    if args.seed is not None:
        overrides["seed"] = args.seed
    res = run_ablation(args.data, args.out, args.preset, arms=args.arms, heldout=args.heldout,
                       size=args.size if args.size is not None else "crop", limit=args.limit,
                       share_phase1=not args.no_share_phase1, device=args.device, progress=not args.no_progress,
                       **overrides)
    print(res.table())
    c = res.costs
    print(f"cost: phase 1 {c['phase1_s']:.0f} s, arms " + ", ".join(f"{a} {s:.0f} s" for a, s in c["arms_s"].items())
          + f", evaluation {c['evaluation_s']:.0f} s, total {c['total_s']:.0f} s")
    print("wrote " + ", ".join(str(p) for p in res.files.values()))
    return 0
