"""glcic_lib.threads: the torch thread count setup() and glcic doctor use."""
from __future__ import annotations

import pytest
import torch

from glcic_lib import threads


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    before = torch.get_num_threads()
    threads._reset_for_tests()
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    yield
    threads._reset_for_tests()
    torch.set_num_threads(before)


def test_env_override_sets_the_count_and_measures_nothing(monkeypatch):
    monkeypatch.setenv(threads.THREADS_ENV, "2")
    monkeypatch.setattr(threads, "measure_threads", lambda *a, **k: pytest.fail("must not measure"))
    choice = threads.choose_threads()
    assert (choice.threads, choice.source) == (2, "GLCIC_THREADS") and torch.get_num_threads() == 2
    assert "set by GLCIC_THREADS" in choice.describe()


@pytest.mark.parametrize("bad", ["zero", "0", "-3"])
def test_a_bad_override_says_what_is_wrong(monkeypatch, bad):
    monkeypatch.setenv(threads.THREADS_ENV, bad)
    with pytest.raises(ValueError, match="GLCIC_THREADS"):
        threads.choose_threads()


def test_omp_num_threads_is_kept(monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(threads, "measure_threads", lambda *a, **k: pytest.fail("must not measure"))
    choice = threads.choose_threads()
    assert (choice.threads, choice.source) == (1, "OMP_NUM_THREADS")


@pytest.mark.parametrize("timings, expected", [({1: 0.010, 2: 0.050}, 1),   # loaded machine: one thread
                                               ({1: 0.010, 2: 0.004}, 2),   # idle machine: both cores
                                               ({1: 0.010, 2: 0.0095}, 1)])  # no clear gain: fewer
def test_measured_choice_keeps_the_faster_and_is_cached(monkeypatch, timings, expected):
    torch.set_num_threads(2)
    calls = []
    monkeypatch.setattr(threads, "measure_threads", lambda c, **k: calls.append(c) or timings)
    choice = threads.choose_threads()
    assert (choice.threads, choice.source) == (expected, "measured") and torch.get_num_threads() == expected
    assert calls == [(1, 2)]
    assert threads.choose_threads() is choice and len(calls) == 1      # once per process
    assert "fastest here: 1 -> 10 ms" in choice.describe() and "GLCIC_THREADS=N overrides" in choice.describe()
    threads.choose_threads(force=True)
    assert len(calls) == 2


def test_a_count_changed_by_hand_is_reported(monkeypatch):
    torch.set_num_threads(2)
    monkeypatch.setattr(threads, "measure_threads", lambda c, **k: {1: 0.01, 2: 0.05})
    threads.choose_threads()
    torch.set_num_threads(2)
    assert threads.choose_threads().threads == 2


def test_real_measurement_is_quick():
    import time

    t0 = time.perf_counter()
    timings = threads.measure_threads((1, 2))
    assert set(timings) == {1, 2} and all(0 < t < 1 for t in timings.values())
    assert time.perf_counter() - t0 < 5   # about half a second; generous for a loaded CI machine


def test_setup_prints_the_choice_and_doctor_reports_it(monkeypatch, capsys):
    from glcic_lib.doctor import check_device
    from glcic_lib.notebook import setup

    monkeypatch.setenv(threads.THREADS_ENV, "1")
    monkeypatch.delenv("GLCIC_DEVICE", raising=False)
    setup(seed=0)
    line = capsys.readouterr().out.splitlines()[0]
    assert "1 torch thread (set by GLCIC_THREADS)" in line
    status, message, details = check_device("cpu")
    assert "1 torch thread (set by GLCIC_THREADS)" in message
    assert details["threads"] == 1 and details["threads_source"] == "GLCIC_THREADS"
