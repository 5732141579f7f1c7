"""Argument helpers every system's CLI uses: example epilogs and checked numbers."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from garagelab.core.errors import UserError


def examples(*lines: str) -> str:
    """An epilog listing example command lines."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number of at least 0 (where 0 switches something off)."""
    return _whole_number(text, 0)


def whole_number_up_to(maximum: int, why: str, minimum: int = 0) -> Callable[[str], int]:
    """An argparse type: a whole number from `minimum` to `maximum`, and `why` not more. For a count
    whose time and memory grow with it, a slip of the keyboard (1e8 for 1e3) is then refused instead
    of running for days or exhausting memory; for a port, instead of being passed on."""

    def count(text: str) -> int:
        value = _whole_number(text, minimum)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{text} is more than {maximum:,}: {why}")
        return value

    return count


def check_new_total(option: str, given: float | None, done: float, done_text: str) -> None:
    """Refuse a resume's `option` (a new total: steps, evaluations, seconds) that is not above what
    the run has done (`done_text` says it, e.g. "run 12 has trained 4,096 steps"). A smaller one
    would rewrite the run's config.json to say less than it did, then stop at once."""
    if given is not None and given <= done:
        raise UserError(f"{done_text}; {option} is the new total, so give more")


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    value = _number(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number of at least 0 (where 0 switches a term off)."""
    value = _number(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} must be a number of at least 0")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text} must be at least {minimum}")
    return value
