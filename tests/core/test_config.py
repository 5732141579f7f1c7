from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from garagelab.core.config import apply_overrides, coerce_like
from garagelab.core.errors import UserError


@dataclass(frozen=True)
class Inner:
    learning_rate: float = 1e-3
    steps: int = 10
    widths: tuple[int, ...] = (8, 16)
    resume: bool = False


@dataclass(frozen=True)
class Outer:
    name: str = "a"
    ppo: Inner = field(default_factory=Inner)


def test_overrides_apply_typed_values() -> None:
    cfg = apply_overrides(
        Outer(),
        ["ppo.learning_rate=3e-4", "ppo.steps=1e3", "ppo.widths=4,5", "name=b", "ppo.resume=yes"],
    )
    assert cfg == Outer("b", Inner(3e-4, 1000, (4, 5), True))


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("ppo.nope=1", "unknown key 'nope'; valid keys: learning_rate, steps, widths, resume"),
        ("ppo.steps=ten", "not a valid int"),
        ("ppo.resume=maybe", "not a valid bool"),
        ("name", "expected key=value"),
        ("name.x=1", "is not a group of settings"),
        ("ppo.learning_rate=nan", r"not a valid float \(not a finite number\)"),  # trained on silently
        ("ppo.widths=4x5", "ppo.widths=4x5: expected int values separated by commas, like ppo.widths=8,16"),
    ],
)
def test_bad_overrides_are_user_errors(assignment: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        apply_overrides(Outer(), [assignment])


def test_coerce_like_takes_text_or_numbers_and_refuses_what_cannot_run() -> None:
    assert coerce_like("3e2", 1, "n") == 300 and coerce_like(300.0, 1, "n") == 300 and coerce_like(2, 0.5, "x") == 2.0
    assert coerce_like(10**30, 1, "n") == 10**30  # a big whole number is not pushed through float
    assert coerce_like([1, 2], (1,), "t") == [1, 2] and coerce_like("on", False, "b") is True
    for value, message in ((2.5, "n must be a whole number"), (float("nan"), "n must be a finite number"),
                           (True, "n must be a finite number"), ("x", "not a valid int")):  # fmt: skip
        with pytest.raises(UserError, match=message):
            coerce_like(value, 1, "n")
