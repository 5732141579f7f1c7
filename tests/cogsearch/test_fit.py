"""Fitting: the JAX likelihood equals a plain NumPy one, fits recover known parameters, and a
model generating the data scores above simpler ones on held-out trials."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from garagelab.cogsearch.fit import FitConfig, Likelihood, fit
from garagelab.cogsearch.gru import GRUConfig, fit_gru
from garagelab.cogsearch.programs import BASELINES, SEED, load_program
from garagelab.cogsearch.reference import q_learning_loglik
from garagelab.cogsearch.simulate import generate, simulate


def test_jax_likelihood_matches_numpy() -> None:
    """Every (fold, restart, subject) problem at its own point: the flattened batch keeps them apart."""
    data = generate("q-learning", subjects=4, sessions=2, trials=40, seed=2)
    likelihood = Likelihood(load_program(SEED), data, FitConfig(restarts=2))
    points = np.random.default_rng(0).normal(0.0, 0.5, (*likelihood.shape, 2)).astype(np.float32)
    for heldout in (False, True):
        losses = likelihood.losses(points, heldout=heldout)  # [F, R, S]
        folds = data.folds()[::-1] if heldout else data.folds()
        for f, r, s in np.ndindex(*likelihood.shape):
            args = (data.choices[s], data.rewards[s], data.new_session[s], folds[f, s])
            assert -losses[f, r, s] == pytest.approx(q_learning_loglik(points[f, r, s], *args), rel=1e-4)


def test_optimizer_starts_from_optax_state() -> None:
    likelihood = Likelihood(load_program(SEED), generate("q-learning", subjects=3, trials=20, seed=1))
    params = jnp.ones((*likelihood.shape, likelihood.n_params))
    expected = likelihood.optimizer.init(params)
    assert jax.tree.structure(likelihood.start_state()) == jax.tree.structure(expected)
    for ours, theirs in zip(jax.tree.leaves(likelihood.start_state()), jax.tree.leaves(expected), strict=True):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def test_fit_recovers_parameters() -> None:
    program = load_program(SEED)
    beta, alpha = 5.0, 0.3
    truth = np.array([math.log(math.expm1(beta / 3.0)), math.log(alpha / (1 - alpha))])
    data = simulate(program, np.tile(truth, (6, 1)), sessions=2, trials=400, seed=4)
    result = fit(program, data, FitConfig(restarts=2, max_steps=1000))
    fitted = np.median(result.params, axis=(0, 1))
    assert np.log1p(np.exp(fitted[0])) * 3.0 == pytest.approx(beta, rel=0.25)
    assert 1 / (1 + np.exp(-fitted[1])) == pytest.approx(alpha, abs=0.1)
    assert 0.5 < result.normalized_likelihood < 1 and result.per_subject.shape == (6,)


def test_generating_model_beats_simpler_ones_held_out() -> None:
    data = generate("forgetting-perseveration", subjects=8, sessions=2, trials=250, seed=5)
    config = FitConfig(restarts=1, max_steps=500)
    scores = {
        name: fit(load_program(BASELINES[name], 2, name), data, config).normalized_likelihood
        for name in ("bias", "q-learning", "forgetting-perseveration")
    }
    assert scores["forgetting-perseveration"] > scores["q-learning"] > scores["bias"]


def test_gru_learns_something() -> None:
    data = generate("q-learning", subjects=12, sessions=2, trials=100, seed=6)
    search, heldout = data.split_subjects(1 / 3)
    result = fit_gru(search, heldout, GRUConfig(hidden=8, steps=150))
    bias = fit(load_program(BASELINES["bias"]), heldout, FitConfig(restarts=1, max_steps=300))
    assert result.normalized_likelihood > bias.normalized_likelihood
    assert result.per_subject.shape == (heldout.n_subjects,)
