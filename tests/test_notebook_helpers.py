"""glcic_lib.notebook's exercise checker: digests hide the answers, hints on wrong answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from glcic_lib.notebook import DIGEST_PREFIX, answer_digest, check_answer


def test_digest_hides_the_answer_and_is_stable():
    d = answer_digest(4)
    assert d.startswith(DIGEST_PREFIX) and len(d) == len(DIGEST_PREFIX) + 16
    assert answer_digest(4) == d  # deterministic across calls (and sessions: no salt from the run)
    assert answer_digest(5) != d


def test_equivalent_answers_share_a_digest():
    assert answer_digest(4) == answer_digest(4.0) == answer_digest(np.int64(4)) == answer_digest(torch.tensor(4))
    assert answer_digest("Telea ") == answer_digest("telea")
    assert answer_digest((1, 2)) == answer_digest([1, 2]) == answer_digest((np.int64(1), 2.0))
    assert answer_digest(0.6931, decimals=3) == answer_digest(0.69315, decimals=3)
    assert answer_digest(0.69, decimals=3) != answer_digest(0.6931, decimals=3)
    assert answer_digest(-0.0001, decimals=2) == answer_digest(0.0, decimals=2)


def test_check_answer_verdicts(capsys):
    assert check_answer("ex", None, answer_digest(3)) is None
    assert "not answered yet" in capsys.readouterr().out
    assert check_answer("ex", 3, answer_digest(3)) is True
    assert "correct" in capsys.readouterr().out
    assert check_answer("ex", 2, answer_digest(3), hint="count the taps") is False
    out = capsys.readouterr().out
    assert "not right yet" in out and "Hint: count the taps" in out
    # plain values (answers that depend on the run), with rounding or a relative tolerance
    assert check_answer("ex", 0.693, np.log(2), decimals=3) is True
    assert check_answer("ex", 105, 100.0, rel_tol=0.1) is True
    assert check_answer("ex", 120, 100.0, rel_tol=0.1) is False
    assert check_answer("ex", "a", 100.0, rel_tol=0.1) is False
    assert check_answer("ex", "Joint", "joint") is True
    capsys.readouterr()


def test_a_wrong_answer_does_not_print_the_expected_one(capsys):
    check_answer("ex", 2, 12345, hint="think")
    assert "12345" not in capsys.readouterr().out


def test_check_code_verdicts_and_strict_mode(capsys, monkeypatch):
    from glcic_lib.notebook import attempted, check_code

    monkeypatch.delenv("GLCIC_EXERCISES_STRICT", raising=False)

    def skeleton():
        raise NotImplementedError

    def returns_none():
        return None

    def check_with(fn, expected):
        def check():
            assert attempted(fn()) == expected, f"got {fn()!r}, expected {expected!r}"
        return check

    assert check_code("ex", lambda: skeleton()) is None
    assert "not attempted yet" in capsys.readouterr().out
    assert check_code("ex", check_with(returns_none, 3)) is None
    assert check_code("ex", check_with(lambda: 3, 3)) is True
    assert "ex: correct!" in capsys.readouterr().out
    assert check_code("ex", check_with(lambda: 2, 3), hint="add one") is False
    out = capsys.readouterr().out
    assert "got 2, expected 3" in out and "Hint: add one" in out
    assert check_code("ex", lambda: 1 / 0) is False
    assert "ZeroDivisionError" in capsys.readouterr().out
    monkeypatch.setenv("GLCIC_EXERCISES_STRICT", "1")
    with pytest.raises(AssertionError, match="not filled in"):
        check_code("ex", lambda: skeleton())
    with pytest.raises(AssertionError, match="got 2"):
        check_code("ex", check_with(lambda: 2, 3))


def test_exercise_regions_and_fill_solutions_by_hand():
    from glcic_lib.notebook import exercise_regions, fill_solutions

    cell = ("x = 1\n"
            "def f(a):\n"
            "    # --- your code below (double)\n"
            "    raise NotImplementedError\n"
            "    # --- your code above\n"
            "print(f(2))")
    assert exercise_regions(cell) == {"double": "    raise NotImplementedError"}
    filled = fill_solutions(cell, {"double": "    return 2 * a"})
    ns = {}
    exec(filled.replace("print(f(2))", "r = f(2)"), ns)
    assert ns["r"] == 4 and filled.count("your code below (double)") == 1
    assert fill_solutions(cell, {}) == cell
