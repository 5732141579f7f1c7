"""The tolerance port: dm_control's values at the bounds and the margin, the same on numpy and jax."""

from __future__ import annotations

import numpy as np
import pytest

from garagelab.playground.tolerance import SIGMOIDS, tolerance


@pytest.mark.parametrize("sigmoid", SIGMOIDS)
def test_one_inside_and_value_at_margin_outside(sigmoid: str) -> None:
    value_at_margin = 0.0 if sigmoid in ("linear", "quadratic", "cosine") else 0.1
    x = np.array([-1.0, 0.0, 1.0, 2.0, -2.0, 7.0])
    out = tolerance(np, x, bounds=(-1, 1), margin=1, sigmoid=sigmoid, value_at_margin=value_at_margin)
    np.testing.assert_allclose(out[:3], 1.0)
    np.testing.assert_allclose(out[3:5], value_at_margin, atol=1e-12)
    assert 0 <= out[5] <= value_at_margin + 1e-12


def test_matches_dm_control_gaussian_by_hand() -> None:
    # dm_control: exp(-0.5 * (d * sqrt(-2 ln 0.1))^2) at d = 0.5 is 0.1 ** 0.25
    assert tolerance(np, np.array(1.5), bounds=(0, 1), margin=1) == pytest.approx(0.1**0.25)


def test_zero_margin_is_an_indicator() -> None:
    out = tolerance(np, np.array([-0.1, 0.0, 0.5, 0.51]), bounds=(0, 0.5))
    np.testing.assert_array_equal(out, [0, 1, 1, 0])


def test_jax_gives_the_numpy_values() -> None:
    jnp = pytest.importorskip("jax.numpy")
    x = np.linspace(-3, 3, 13)
    for sigmoid in SIGMOIDS:
        vam = 0.0 if sigmoid in ("linear", "quadratic") else 0.2
        ours = tolerance(np, x, (-0.5, 0.5), margin=2, sigmoid=sigmoid, value_at_margin=vam)
        theirs = tolerance(jnp, jnp.asarray(x), (-0.5, 0.5), margin=2, sigmoid=sigmoid, value_at_margin=vam)
        np.testing.assert_allclose(np.asarray(theirs), ours, atol=1e-6)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="lower bound"):
        tolerance(np, 0.0, bounds=(1, 0))
    with pytest.raises(ValueError, match="unknown sigmoid"):
        tolerance(np, np.array(2.0), margin=1, sigmoid="nope")
