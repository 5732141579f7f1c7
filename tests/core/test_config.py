from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from garagelab.core.config import apply_overrides
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
