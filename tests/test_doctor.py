"""``glcic doctor``: the report on this CPU, failures as one-line errors (never a traceback),
the command line and its exit codes."""
import math

import pytest
import torch

from glcic_lib import cli, doctor
from glcic_lib.doctor import CHECK_NAMES, DoctorReport, run_doctor

PHASES = ("train: completion", "train: discriminator", "train: joint")


@pytest.fixture(scope="module")
def report() -> DoctorReport:
    return run_doctor(device="cpu", steps=1)


def test_the_cpu_report_runs_every_check_and_every_phase(report):
    assert report.ok, report.table()
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    for name in PHASES:
        check = report.get(name)
        assert check.status == "ok", check.message
        assert check.details["images_per_s"] > 0
        assert check.details["losses"] and all(math.isfinite(v) for v in check.details["losses"].values())
        assert "images/s" in check.message
    assert "g_adv" in report.get("train: joint").details["losses"]   # the joint phase is adversarial
    assert report.get("device").details["device"] == "cpu"
    precision = report.get("precision").details
    assert (precision["train"], precision["inference"]) == ("float32", "float32")  # conftest: no bf16
    assert "complete() on the demo model: float32: this CPU has no bfloat16 hardware" in report.get("precision").message
    assert report.get("peak memory").details["peak_mb"] > 0
    assert "demo model completed a 64x64 image" in report.get("inference").message


def test_the_table_is_aligned_and_also_renders_as_html(report):
    lines = str(report).splitlines()
    assert lines[0] == doctor.HEADER and lines[-1].startswith("ready")
    rows = lines[1:-1]
    assert len(rows) == len(report.checks)
    starts = {row.index(check.message) for row, check in zip(rows, report.checks)}
    assert len(starts) == 1   # every message starts in the same column
    html = report._repr_html_()
    assert "<table>" in html and "train: joint" in html


def test_a_check_that_raises_is_an_error_line_naming_it(monkeypatch, capsys):
    def broken(device, size):
        raise RuntimeError("simulated breakage")

    monkeypatch.setattr(doctor, "check_inference", broken)
    assert cli.run(["doctor", "--device", "cpu", "--steps", "1"]) == 1
    captured = capsys.readouterr()
    line = next(row for row in captured.out.splitlines() if "inference" in row and "ERROR" in row)
    assert "inference failed: RuntimeError: simulated breakage" in line
    assert "report this line" in line
    assert "1 error" in captured.out.splitlines()[-1]
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error_and_exit_code_1(capsys):
    assert cli.run(["doctor", "--device", "cuda"]) == 1
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.strip().startswith("ERROR"))
    assert "device" in line and "--device cuda" in line and "CUDA is not available" in line
    assert "skipped" in line
    assert "train: joint" not in out   # nothing runs without a device
    assert "Traceback" not in out


def test_a_nan_loss_names_the_phase_the_dtype_and_the_fix(tmp_path, monkeypatch):
    # the CUDA code path (float16 autocast + loss scaling) runs on a CPU too
    trainer = doctor.build_trainer(tmp_path, torch.device("cpu"), 64, 2, amp="float16")
    real_step = trainer.step

    def step(iteration, micros=None):
        logs = real_step(iteration, micros)
        return {**logs, "mse": float("nan")} if logs["phase"] == "joint" else logs

    monkeypatch.setattr(trainer, "step", step)
    state = {"trainer": trainer, "micros": trainer.next_micros(0)}
    assert doctor._run("train: completion", doctor.check_phase, state, "completion", 1).status == "ok"
    check = doctor._run("train: joint", doctor.check_phase, state, "joint", 1)
    assert check.status == "error"
    assert check.message == "loss mse is nan in the joint phase with float16: try --no-amp (float32 training)"


def test_bad_sizes_old_torch_missing_widgets_and_data_are_reported(monkeypatch, tmp_path, capsys):
    assert cli.run(["doctor", "--device", "cpu", "--size", "100"]) == 1
    out = capsys.readouterr().out
    assert "--size 100 is not a multiple of 64" in out and "train: completion" not in out

    monkeypatch.setattr(torch, "__version__", "2.0.1")
    status, message, _ = doctor.check_torch()
    assert status == "error" and "torch 2.0.1 is older than 2.1" in message

    real_import = doctor.importlib.import_module

    def no_anywidget(name):
        if name == "anywidget":
            raise ModuleNotFoundError("No module named 'anywidget'")
        return real_import(name)

    monkeypatch.setattr(doctor.importlib, "import_module", no_anywidget)
    status, message, _ = doctor.check_widgets()
    assert status == "warning" and "anywidget" in message and "pip install ipywidgets anywidget" in message

    monkeypatch.setenv("GLCIC_DATA", str(tmp_path / "nowhere"))
    status, message, _ = doctor.check_data()
    assert status == "warning" and "GLCIC_DATA" in message


def test_the_cli_prints_the_report_and_exits_0(capsys):
    assert cli.run(["doctor", "--device", "cpu", "--steps", "1", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == doctor.HEADER
    for name in CHECK_NAMES:
        assert any(f"  {name} " in row for row in out), name
    assert "batch 2" in next(row for row in out if "trainer" in row)
    assert out[-1].startswith("ready")


@pytest.mark.parametrize("version, want", [("2.13.0+cpu", (2, 13)), ("2.1.0a0+git", (2, 1)), ("1.13.1", (1, 13))])
def test_version_parsing(version, want):
    assert doctor._version_tuple(version) == want
