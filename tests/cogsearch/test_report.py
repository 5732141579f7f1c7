"""The report's choices never look at held-out subjects."""

from __future__ import annotations

import itertools

import numpy as np

from garagelab.cogsearch.report import ModelScore, choose_reference, few_subjects_warning, subject_interval


def discovered(search: float, heldout: float, name: str) -> ModelScore:
    return ModelScore(name, "discovered", 3, 40, heldout, np.full(4, heldout), search_score=search)


def test_reference_is_chosen_on_search_subjects_only() -> None:
    models = [discovered(0.71, 0.550, "a"), discovered(0.70, 0.556, "b"), discovered(0.69, 0.553, "c")]
    assert choose_reference(models).name == "a"
    # any held-out scores, in any order: the choice stays the same
    for heldout in itertools.permutations((0.50, 0.60, 0.55)):
        shuffled = [discovered(m.search_score, h, m.name) for m, h in zip(models, heldout, strict=True)]
        assert choose_reference(shuffled).name == "a"


def test_too_few_held_out_subjects_are_flagged() -> None:
    assert "cannot give p below 1" in few_subjects_warning(1)
    assert "cannot give p below 0.0625" in few_subjects_warning(5)
    assert few_subjects_warning(6) is None  # smallest p 0.031


def test_subject_interval_is_calibrated() -> None:
    """90% intervals of a mean over subjects, on data with a known mean: 300 data sets of 30
    subjects whose scores are drawn from Beta(20, 16) (mean 0.5556, like the fly scores)."""
    rng = np.random.default_rng(1)
    truth = 20 / 36
    covered = []
    for k in range(300):
        lo, hi = subject_interval(rng.beta(20, 16, size=30), seed=k)
        covered.append(lo <= truth <= hi)
    assert 0.84 <= np.mean(covered) <= 0.95, np.mean(covered)
    assert np.isnan(subject_interval(np.array([0.5]))).all()  # one subject: no interval
