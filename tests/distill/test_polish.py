from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from garagelab.distill.evaluate import numpy_evaluator
from garagelab.distill.fit import distillation_columns
from garagelab.distill.laws import BUSBRIDGE2025
from garagelab.distill.objective import DISTILLATION, LOG_HUBER, SUPERVISED, Loss, law_to_theta
from garagelab.distill.polish import NON_FINITE_RESIDUAL, polish, polish_many, residuals, residuals_and_jacobian
from garagelab.distill.simulate import simulate_distillation, simulate_supervised

C = BUSBRIDGE2025
BOX = DISTILLATION.box("physical")


def _columns(noise: float, seed: int, runs: int = 200) -> tuple[np.ndarray, ...]:
    return distillation_columns(simulate_distillation(C, runs=runs, noise=noise, seed=seed), C.supervised)


def _start() -> np.ndarray:
    """The true coefficients moved along the d1 ridge: a point the search could end at."""
    theta = law_to_theta(C.distillation)
    theta[5], theta[8] = 3.0, 0.0  # c0, log d1
    return theta


def _lbfgsb(columns: tuple[np.ndarray, ...], theta: np.ndarray) -> float:
    """The polish this replaced: L-BFGS-B in float64 with tight tolerances."""
    evaluate = numpy_evaluator(DISTILLATION, columns, loss=LOG_HUBER)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = evaluate(x[None, :], np.zeros(1, dtype=int))
        return float(f[0]), g[0]

    bounds = [(None if np.isinf(lo) else lo, None if np.isinf(hi) else hi) for lo, hi in zip(*BOX, strict=True)]
    options = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 15000, "maxls": 50}
    return float(minimize(fun, theta, jac=True, method="L-BFGS-B", bounds=bounds, options=options).fun)


def test_objective_is_the_summed_huber_loss_the_search_minimises() -> None:
    """scipy's cost with loss="huber", f_scale=delta is the summed Huber loss of `residuals`,
    the search's objective, and the polish reports that objective at the point it returns."""
    columns = _columns(0.005, 1)
    evaluate = numpy_evaluator(DISTILLATION, columns, loss=LOG_HUBER)
    theta = _start()
    r, delta = residuals(DISTILLATION, theta, columns, LOG_HUBER), LOG_HUBER.delta
    huber = np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)).sum()
    assert huber == pytest.approx(evaluate(theta[None, :], np.zeros(1, dtype=int))[0][0])
    polished, f = polish(DISTILLATION, columns, theta, BOX, LOG_HUBER)
    assert f == evaluate(polished[None, :], np.zeros(1, dtype=int))[0][0]


@pytest.mark.parametrize("scale", ["log", "raw"])
@pytest.mark.parametrize("spec", [SUPERVISED, DISTILLATION])
def test_residual_jacobian_matches_finite_differences(spec, scale) -> None:
    """The polish's analytic Jacobian is the derivative of the residuals it minimises, on both
    scales, and zero for a residual clipped at the non-finite cap (flat there)."""
    loss = Loss(residuals=scale)
    if spec is SUPERVISED:
        columns = simulate_supervised(C, noise=0.01, seed=2).log_columns()
        theta = law_to_theta(C.supervised)
    else:
        columns, theta = _columns(0.01, 2, runs=80), _start()
    theta = theta + np.random.default_rng(0).normal(0, 0.02, theta.size)
    jacobian = residuals_and_jacobian(spec, theta, columns, loss)[1]
    assert jacobian.shape == (len(columns[0]), theta.size)
    for k in range(theta.size):
        step = np.zeros_like(theta)
        step[k] = 1e-6
        numeric = (residuals(spec, theta + step, columns, loss) - residuals(spec, theta - step, columns, loss)) / 2e-6
        np.testing.assert_allclose(jacobian[:, k], numeric, rtol=1e-5, atol=1e-8)
    far = (*columns[:-1], columns[-1] + 2 * NON_FINITE_RESIDUAL)  # every residual clipped or not finite
    assert not residuals_and_jacobian(spec, theta, far, loss)[1].any()


def test_a_point_whose_law_overflows_is_a_wall_to_the_polish() -> None:
    """Along the B'-beta' ridge some resamples' polishes walk log B' up to where B' overflows
    float64. Such a point has no law to report (B' = inf), so its residuals are the non-finite
    cap and their Jacobian zero: the polish rejects it. The law's log-space predictions (what
    the Jacobian is made of) are finite there: residuals taken from them had no wall, and in a
    version that did so (never committed) a resample's polish reached log B' = 4e12."""
    columns = _columns(0.005, 1)
    theta = _start()
    theta[1], theta[3] = 800.0, 40.0  # log B', beta'
    r, jacobian = residuals_and_jacobian(DISTILLATION, theta, columns, LOG_HUBER)
    assert np.all(r == NON_FINITE_RESIDUAL) and not jacobian.any()
    assert np.isfinite(DISTILLATION.jacobian(theta, columns)[0]).all()


def test_polish_goes_below_where_lbfgsb_stops_on_the_near_l1_objective() -> None:
    """With delta 1e-4 against 0.5% noise the objective is nearly L1, and L-BFGS-B stops short
    of the minimum; the gain is of the size of a 90% interval's threshold (~1% of the objective)."""
    gains = []
    for seed in range(4):
        columns = _columns(0.005, seed)
        theta, f = polish(DISTILLATION, columns, _start(), BOX, LOG_HUBER)
        assert np.all(theta >= BOX[0]) and np.all(theta <= BOX[1])
        gains.append(1 - f / _lbfgsb(columns, _start()))
    assert min(gains) > -1e-9, gains
    assert max(gains) > 5e-3, gains


def test_polish_recovers_noise_free_coefficients_and_keeps_pinned_ones() -> None:
    columns = _columns(0.0, 2, runs=300)
    truth = law_to_theta(C.distillation)
    start = truth + np.array([0.1, -0.1, 0.02, -0.02, 0.03, 0.2, 0.0, 0.005, 0.05])
    pinned = DISTILLATION.box("physical", {"c1": C.distillation.c1})
    theta, f = polish(DISTILLATION, columns, start, pinned, Loss(1e-4))
    assert theta[6] == C.distillation.c1
    assert f < 1e-10
    predicted = DISTILLATION.log_predictions(theta, columns)
    np.testing.assert_allclose(predicted, columns[-1], atol=1e-5)


def test_weights_count_runs_and_parallel_polish_matches_serial() -> None:
    columns = _columns(0.005, 3, runs=60)
    weights = np.random.default_rng(0).multinomial(60, np.full(60, 1 / 60), size=20)
    tasks = [(DISTILLATION, columns, _start(), BOX, LOG_HUBER, w) for w in weights]
    serial = [polish(*task) for task in tasks]
    parallel = list(polish_many(tasks))  # 20 tasks: worker processes
    for (a, fa), (b, fb) in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
        assert fa == fb
    # a weight of 2 is the run listed twice
    repeated = tuple(np.repeat(column, weights[0]) for column in columns)
    _, f = polish(DISTILLATION, repeated, _start(), BOX, LOG_HUBER)
    assert f == pytest.approx(serial[0][1], rel=1e-9)
