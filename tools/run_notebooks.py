"""Run the course notebooks top to bottom and report wall time, errors and every checked claim.

    .venv/bin/python tools/run_notebooks.py                 # all notebooks, full mode
    .venv/bin/python tools/run_notebooks.py --smoke 00 03   # notebooks 00 and 03 in smoke mode
    .venv/bin/python tools/run_notebooks.py --out /tmp/nb   # also keep the executed notebooks and their figures

Each notebook runs in a fresh kernel with ``notebooks/`` as the working directory (as in
JupyterLab), stopping at the first failing cell.  The report lists, per notebook, the wall time,
the failing cell (number, error) if any, and every line a cell printed through
:func:`glcic_lib.notebook.claim` (``CLAIM ok: ...`` / ``CLAIM FAILED: ...``).  In a full run a
failed claim raises and so stops the notebook; ``--soft-claims`` (``GLCIC_CLAIMS_SOFT=1``) lets
it go on and only report.  Training runs write under ``--ckpt`` (default: a temporary folder,
so nothing lands in ``runs/``).  The exit status is 1 if any notebook failed or any claim did.
A JSON copy of the report goes to ``--out`` when given.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
CLAIM_PREFIXES = ("CLAIM ok: ", "CLAIM FAILED: ")


def _text_of(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") in ("execute_result", "display_data"):
        return output.get("data", {}).get("text/plain", "")
    return ""


def run_one(path: Path, smoke: bool, ckpt: Path, timeout: int, out: Path | None) -> dict:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    env_before = dict(os.environ)
    os.environ["GLCIC_CKPT"] = str(ckpt)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if smoke:
        os.environ["GLCIC_SMOKE"] = "1"
    else:
        os.environ.pop("GLCIC_SMOKE", None)
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    result = {"notebook": path.name, "mode": "smoke" if smoke else "full", "error": None, "claims": [],
              "cells": len(nb.cells), "cell_seconds": {}}
    t0 = time.perf_counter()
    try:
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                tc = time.perf_counter()
                try:
                    client.execute_cell(cell, index)
                except (CellExecutionError, CellTimeoutError) as e:
                    lines = str(e).strip().splitlines()
                    result["error"] = {"cell": index + 1, "message": lines[-1] if lines else type(e).__name__}
                    break
                finally:
                    if cell.cell_type == "code":
                        result["cell_seconds"][index + 1] = round(time.perf_counter() - tc, 1)
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    for index, cell in enumerate(nb.cells, 1):
        for output in cell.get("outputs", []):
            for line in _text_of(output).splitlines():
                if line.startswith(CLAIM_PREFIXES):
                    result["claims"].append({"cell": index, "ok": line.startswith(CLAIM_PREFIXES[0]),
                                             "text": line.split(": ", 1)[1]})
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(out / f"{path.stem}.{result['mode']}.ipynb"))
        fig_dir = out / f"{path.stem}.{result['mode']}_figures"
        for index, cell in enumerate(nb.cells, 1):
            k = 0
            for output in cell.get("outputs", []):
                png = output.get("data", {}).get("image/png") if "data" in output else None
                if png:
                    fig_dir.mkdir(exist_ok=True)
                    k += 1
                    (fig_dir / f"cell{index:02d}_{k}.png").write_bytes(base64.b64decode(png))
    return result


def select(names: list[str]) -> list[Path]:
    every = sorted(NOTEBOOKS.glob("*.ipynb"))
    if not names:
        return every
    chosen = []
    for name in names:
        found = [p for p in every if p.stem.startswith(name) or p.name == name]
        if not found:
            raise SystemExit(f"no notebook matches {name!r}; choose from {[p.stem for p in every]}")
        chosen += [p for p in found if p not in chosen]
    return chosen


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*", help="numbers or names (default: all), e.g. 00 03")
    p.add_argument("--smoke", action="store_true", help="smoke mode (GLCIC_SMOKE=1): small and quick")
    p.add_argument("--soft-claims", action="store_true", help="a failed claim is reported, not raised (GLCIC_CLAIMS_SOFT=1)")
    p.add_argument("--ckpt", type=Path, default=None, help="GLCIC_CKPT for the runs (default: a temporary folder)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per cell (default 3600)")
    p.add_argument("--out", type=Path, default=None, help="keep the executed notebooks, their figures and report.json here")
    args = p.parse_args(argv)
    if args.soft_claims:
        os.environ["GLCIC_CLAIMS_SOFT"] = "1"
    paths = select(args.notebooks)
    results = []
    with tempfile.TemporaryDirectory(prefix="glcic_nb_") as tmp:
        ckpt = args.ckpt or Path(tmp) / "runs"
        for path in paths:
            print(f"running {path.name} ({'smoke' if args.smoke else 'full'} mode) ...", flush=True)
            r = run_one(path, args.smoke, ckpt, args.timeout, args.out)
            results.append(r)
            status = "ok" if r["error"] is None else f"FAILED at cell {r['error']['cell']}: {r['error']['message']}"
            failed = sum(not c["ok"] for c in r["claims"])
            print(f"  {r['seconds']:.0f} s, {status}; {len(r['claims'])} claims checked, {failed} failed", flush=True)
            for c in r["claims"]:
                print(f"    cell {c['cell']:>2} {'ok    ' if c['ok'] else 'FAILED'} {c['text']}")
    print("\nsummary:")
    print(f"  {'notebook':<48} {'mode':<5} {'seconds':>8}  {'claims':>7}  result")
    for r in results:
        n_ok = sum(c["ok"] for c in r["claims"])
        print(f"  {r['notebook']:<48} {r['mode']:<5} {r['seconds']:>8.0f}  {n_ok:>3}/{len(r['claims']):<3}  "
              f"{'ok' if r['error'] is None else 'error in cell %d' % r['error']['cell']}")
    print(f"  total {sum(r['seconds'] for r in results):.0f} s")
    if args.out is not None:
        (args.out / "report.json").write_text(json.dumps(results, indent=1))
    bad = any(r["error"] for r in results) or any(not c["ok"] for r in results for c in r["claims"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
