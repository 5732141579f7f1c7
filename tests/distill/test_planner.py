from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from garagelab.core.errors import UserError
from garagelab.distill.flops import PAPER_FLOPS, SCENARIOS
from garagelab.distill.laws import BUSBRIDGE2025
from garagelab.distill.planner import Teacher, cheapest_teacher, plan
from garagelab.distill.predict import crossover_tokens, optimal_teacher_loss
from garagelab.distill.sources import coefficient_samples, load_coefficients

C = BUSBRIDGE2025


def test_optimal_teacher_loss_is_the_bottom_of_the_u() -> None:
    best = optimal_teacher_loss(C, 546e6, 20 * 546e6)
    for factor in (0.98, 1.02, 1.2):
        assert C.student_loss(546e6, 20 * 546e6, best.teacher_loss * factor) > best.student_loss
    assert best.teacher_loss > C.supervised.E


def test_crossover_is_where_supervised_catches_up() -> None:
    teacher = float(C.supervised_loss(7.75e9, 20 * 7.75e9))
    for n_s in (546e6, 1.82e9, 4.82e9):
        d = crossover_tokens(C, n_s, teacher)
        below = C.student_loss(n_s, d / 1.5, teacher) - C.supervised_loss(n_s, d / 1.5)
        above = C.student_loss(n_s, d * 1.5, teacher) - C.supervised_loss(n_s, d * 1.5)
        assert below < 0 < above


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_plans_spend_exactly_the_budget(scenario: str) -> None:
    budget = 3e21
    result = plan(C, 1e9, compute=budget, scenario=scenario)
    assert result.supervised.compute.total == pytest.approx(budget, rel=1e-9)
    if scenario != "best-case":
        assert result.distillation.compute.total == pytest.approx(budget, rel=1e-6)
    assert result.verdict == ("distill" if result.margin > 0 else "pretrain")


def test_scenarios_are_ordered_by_what_they_pay_for() -> None:
    losses = {name: plan(C, 1e9, compute=1e21, scenario=name).distillation.loss for name in SCENARIOS}
    assert losses["best-case"] <= losses["teacher-inference"] + 1e-9
    assert losses["teacher-pretraining"] <= losses["teacher-pretraining-inference"] + 1e-9
    # the paper: with one student and a teacher to train, supervised wins
    for name in ("teacher-pretraining", "teacher-pretraining-inference"):
        assert plan(C, 1e9, compute=1e21, scenario=name).verdict == "pretrain"
    # an existing teacher at modest compute: distillation wins
    assert plan(C, 1e9, compute=1e20, scenario="teacher-inference").verdict == "distill"


def test_amortising_the_teacher_helps() -> None:
    one = plan(C, 1e9, compute=1e21, scenario="teacher-pretraining", students=1)
    many = plan(C, 1e9, compute=1e21, scenario="teacher-pretraining", students=64)
    assert many.distillation.loss < one.distillation.loss


def test_existing_teacher_uses_the_rest_of_the_budget() -> None:
    teacher = Teacher.parse("name=7B,N_T=7.75e9,D_T=1.55e11")
    result = plan(C, 1e9, compute=1e21, scenario="teacher-inference", teachers=[teacher])
    expected = 1e21 / (3 * PAPER_FLOPS.forward(1e9) + PAPER_FLOPS.forward(7.75e9))
    assert result.distillation.student_tokens == pytest.approx(float(expected))
    assert result.distillation.teacher == "7B"


def test_token_budget_and_uncertainty() -> None:
    samples = coefficient_samples("busbridge2025", 64)
    result = plan(C, 1e9, tokens=2e10, scenario="best-case", samples=samples)
    assert result.supervised.student_tokens == result.distillation.student_tokens == 2e10
    lo, hi = result.margin_interval
    assert lo <= result.margin <= hi and 0 <= result.p_distill_better <= 1


def test_cheapest_teacher_reaches_the_target_loss() -> None:
    n, d = cheapest_teacher(C, 2.0)
    assert float(C.supervised_loss(n, d)) == pytest.approx(2.0, rel=1e-6)
    for factor in (0.5, 2.0):  # a different size costs more for the same loss
        other_n = n * factor
        law = C.supervised
        rest = (2.0 - law.E) ** (1 / law.gamma) - law.A / other_n**law.alpha
        other_d = (law.B / rest) ** (1 / law.beta)
        assert PAPER_FLOPS.train(other_n, other_d) > PAPER_FLOPS.train(n, d)


def test_extrapolation_is_flagged() -> None:
    result = plan(C, 5e10, compute=1e21, scenario="best-case")
    assert any("outside the fitted" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("L_T=abc", "not a number"),
        ("N_T=7e9", "give L_T, or both"),
        ("X=1", "expected key=value"),
        ("L_T=-2", "positive"),
    ],
)
def test_teacher_parse_errors(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        Teacher.parse(text)


def test_a_teacher_below_the_irreducible_loss_is_refused(capsys) -> None:
    """L_T <= E is unreachable for these coefficients: refused, in predict and in plan, not priced."""
    from garagelab.cli import main

    below = f"L_T={0.9 * C.supervised.E:.4f}"
    with pytest.raises(UserError, match="at or below the irreducible loss E"):
        Teacher.parse(below).resolved_loss(C)
    above = 1.1 * C.supervised.E
    assert Teacher.parse(f"L_T={above:.4f}").resolved_loss(C) == pytest.approx(above, 1e-3)
    assert main(["distill", "predict", "--N", "1e9", "--D", "2e10", "--teacher", below]) == 2
    assert "irreducible loss" in capsys.readouterr().err


def test_bad_budgets_and_sources() -> None:
    with pytest.raises(UserError, match="exactly one budget"):
        plan(C, 1e9)
    with pytest.raises(UserError, match="unknown scenario"):
        plan(C, 1e9, compute=1e21, scenario="cheap")
    with pytest.raises(UserError, match="not a built-in"):
        load_coefficients("nosuchset")
    assert math.isfinite(plan(C, 1e9, compute=1e21).margin)
    assert np.isfinite([s.supervised.E for s in coefficient_samples("busbridge2025", 8)]).all()


@pytest.mark.parametrize(
    ("compute", "scenario", "students", "message"),
    [
        (1.0, "teacher-pretraining-inference", 1, "leaves a student of 1e\\+09 at most 1.36e-10 tokens"),
        (1e40, "teacher-inference", 1, "gives a student of 1e\\+09 at least 5e\\+22 tokens"),
        (1e40, "teacher-pretraining-inference", 1, "where the student's tokens are in range, the teacher's are"),
        (1e21, "teacher-pretraining-inference", 1e300, "the teacher's are inf..inf"),  # overflowed, with a warning
    ],
)
def test_a_budget_outside_the_planners_range_is_refused_with_its_side(
    compute: float, scenario: str, students: float, message: str
) -> None:
    """Too large a budget used to be refused as if it were too small ("cannot train ... on 1e+06 tokens")."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserError, match=message) as refused:
            plan(C, 1e9, compute=compute, scenario=scenario, students=students)
    assert "within 1e+06..1e+17 tokens" in str(refused.value)
