"""dm_control's `rewards.tolerance`, written against an array namespace so numpy and jax share it.

The shaped rewards of the DM Control Suite are products of these soft indicators; porting the
function once (rather than per engine) keeps the CPU and MJX rewards identical.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

SIGMOIDS = ("gaussian", "hyperbolic", "long_tail", "reciprocal", "cosine", "linear", "quadratic", "tanh_squared")


def _sigmoid(xp: ModuleType, x: Any, value_at_1: float, sigmoid: str) -> Any:
    """1 at x == 0, `value_at_1` at |x| == 1, falling off with the named shape."""
    if sigmoid in ("cosine", "linear", "quadratic"):
        if not 0 <= value_at_1 < 1:
            raise ValueError(f"value_at_margin must be in [0, 1) for {sigmoid}, got {value_at_1}")
    elif not 0 < value_at_1 < 1:
        raise ValueError(f"value_at_margin must be in (0, 1) for {sigmoid}, got {value_at_1}")
    if sigmoid == "gaussian":
        return xp.exp(-0.5 * (x * math.sqrt(-2 * math.log(value_at_1))) ** 2)
    if sigmoid == "hyperbolic":
        return 1 / xp.cosh(x * math.acosh(1 / value_at_1))
    if sigmoid == "long_tail":
        return 1 / ((x * math.sqrt(1 / value_at_1 - 1)) ** 2 + 1)
    if sigmoid == "reciprocal":
        return 1 / (xp.abs(x) * (1 / value_at_1 - 1) + 1)
    if sigmoid == "cosine":
        scaled = x * math.acos(2 * value_at_1 - 1) / math.pi
        return xp.where(xp.abs(scaled) < 1, (1 + xp.cos(math.pi * scaled)) / 2, 0.0)
    if sigmoid == "linear":
        scaled = x * (1 - value_at_1)
        return xp.where(xp.abs(scaled) < 1, 1 - scaled, 0.0)
    if sigmoid == "quadratic":
        scaled = x * math.sqrt(1 - value_at_1)
        return xp.where(xp.abs(scaled) < 1, 1 - scaled**2, 0.0)
    if sigmoid == "tanh_squared":
        return 1 - xp.tanh(x * math.atanh(math.sqrt(1 - value_at_1))) ** 2
    raise ValueError(f"unknown sigmoid {sigmoid!r}; valid: {', '.join(SIGMOIDS)}")


def tolerance(
    xp: ModuleType,
    x: Any,
    bounds: tuple[float, float] = (0.0, 0.0),
    margin: float = 0.0,
    sigmoid: str = "gaussian",
    value_at_margin: float = 0.1,
) -> Any:
    """1 where `x` lies in `bounds`, decaying to `value_at_margin` at `margin` outside them."""
    lower, upper = bounds
    if lower > upper:
        raise ValueError(f"lower bound {lower} exceeds upper bound {upper}")
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    in_bounds = (lower <= x) & (x <= upper)
    if margin == 0:
        return xp.where(in_bounds, 1.0, 0.0)
    distance = xp.where(x < lower, lower - x, x - upper) / margin
    return xp.where(in_bounds, 1.0, _sigmoid(xp, distance, value_at_margin, sigmoid))
