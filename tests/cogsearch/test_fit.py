"""Fitting: the JAX likelihood equals a plain NumPy one, fits recover known parameters, and a
model generating the data scores above simpler ones on held-out trials."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from garagelab.cogsearch.fit import FitConfig, Likelihood, fit
from garagelab.cogsearch.gru import GRUConfig, fit_gru
from garagelab.cogsearch.programs import BASELINES, SEED, load_program
from garagelab.cogsearch.reference import q_learning_loglik
from garagelab.cogsearch.simulate import generate, simulate


def test_jax_likelihood_matches_numpy() -> None:
    data = generate("q-learning", subjects=4, sessions=2, trials=40, seed=2)
    likelihood = Likelihood(load_program(SEED), data, FitConfig(restarts=1))
    point = np.array([0.4, -0.3], dtype=np.float32)
    losses = likelihood.losses(jnp.broadcast_to(jnp.asarray(point), (*likelihood.shape, 2)))  # [F, R, S]
    folds = data.folds()
    for s in range(data.n_subjects):
        for f in range(2):
            expected = q_learning_loglik(point, data.choices[s], data.rewards[s], data.new_session[s], folds[f, s])
            assert -losses[f, 0, s] == pytest.approx(expected, rel=1e-4)


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
