from __future__ import annotations

import numpy as np
import pytest

from garagelab.distill.flops import PAPER_FLOPS, SCENARIOS, distillation_compute
from garagelab.distill.laws import BUSBRIDGE2025, CoefficientSet

C = BUSBRIDGE2025


def plain_supervised(n, d):
    s = C.supervised
    return s.E + (s.A / n**s.alpha + s.B / d**s.beta) ** s.gamma


def plain_student(n, d, lt):
    t = C.distillation
    lt_s = plain_supervised(n, d)
    gap = (1 + (lt / (lt_s * t.d1)) ** (1 / t.f1)) ** (-t.c1 * t.f1)
    return lt + lt ** (-t.c0) * gap * (t.A / n**t.alpha + t.B / d**t.beta) ** t.gamma


def test_log_sum_exp_forms_match_the_plain_formulas() -> None:
    rng = np.random.default_rng(0)
    n = 10 ** rng.uniform(8, 10.5, 200)
    d = n * 10 ** rng.uniform(0, 3, 200)
    lt = rng.uniform(1.9, 3.5, 200)
    np.testing.assert_allclose(C.supervised_loss(n, d), plain_supervised(n, d), rtol=1e-12)
    np.testing.assert_allclose(C.student_loss(n, d, lt), plain_student(n, d, lt), rtol=1e-10)


def test_student_never_beats_teacher_and_limits() -> None:
    rng = np.random.default_rng(1)
    n = 10 ** rng.uniform(6, 13, 1000)
    d = 10 ** rng.uniform(6, 15, 1000)
    lt = rng.uniform(1.3, 6.0, 1000)
    assert np.all(C.student_loss(n, d, lt) >= lt * (1 - 1e-12))  # equal up to rounding at most
    # an infinitely large, infinitely trained student matches its teacher
    assert C.student_loss(1e30, 1e35, 2.1) == pytest.approx(2.1, rel=1e-9)
    # a random teacher (L_T -> infinity) is copied
    assert C.student_loss(1e9, 2e10, 1e4) == pytest.approx(1e4, rel=1e-9)
    # extreme inputs stay finite (the point of the log-sum-exp form)
    assert np.isfinite(C.student_loss(1.0, 1.0, 1.0001))


def test_table6_derived_exponents() -> None:
    assert C.supervised.a == pytest.approx(0.513, abs=1.5e-3)
    assert C.supervised.b == pytest.approx(0.486, abs=1.5e-3)
    assert C.distillation.a == pytest.approx(0.664, abs=1.5e-3)
    assert C.distillation.b == pytest.approx(0.335, abs=1.5e-3)


@pytest.mark.parametrize(("n", "gflops"), [(7.75e9, 16.99), (103e6, 0.3400)])
def test_table13_forward_flops(n: float, gflops: float) -> None:
    assert PAPER_FLOPS.forward(n) / 1e9 == pytest.approx(gflops, rel=5e-3)
    assert PAPER_FLOPS.forward(n) > 2 * n  # not the 2N shortcut


def test_scenario_compute() -> None:
    n_s, d_s, n_t, d_t = 1e9, 2e10, 7e9, 1.4e11
    f_s, f_t = PAPER_FLOPS.forward(n_s), PAPER_FLOPS.forward(n_t)
    best = distillation_compute(n_s, d_s, n_t, d_t, SCENARIOS["best-case"])
    assert best.total == pytest.approx(3 * f_s * d_s) and best.teacher == best.logits == 0
    both = distillation_compute(n_s, d_s, n_t, d_t, SCENARIOS["teacher-pretraining-inference"])
    assert both.total == pytest.approx(3 * f_s * d_s + f_t * d_s + 3 * f_t * d_t)
    shared = distillation_compute(n_s, d_s, n_t, d_t, SCENARIOS["teacher-pretraining"], students=4)
    assert shared.teacher == pytest.approx(3 * f_t * d_t / 4)
    assert sum(both.fractions().values()) == pytest.approx(1.0)


def test_coefficient_set_round_trips_through_dict() -> None:
    assert CoefficientSet.from_dict(C.to_dict()) == C


def test_domain_flags_extrapolation() -> None:
    notes = C.domain.warnings(1e9, 5e8, teacher_loss=1.5)
    assert any("tokens per parameter 0.5" in note for note in notes)
    assert any("teacher loss 1.5" in note for note in notes)
    assert C.domain.warnings(1e9, 2e10, teacher_loss=2.2) == []
