"""`--set key.sub=value` overrides for dataclass configs, with errors that list valid keys."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Any, TypeVar

from garagelab.core.errors import UserError

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def apply_overrides(config: T, assignments: Sequence[str]) -> T:
    """A copy of `config` with each `key.sub=value` applied, typed like the current value."""
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected key=value, e.g. --set width=64")
        config = _set(config, key.split("."), raw, key)
    return config


def _set(obj: Any, path: list[str], raw: str, full_key: str) -> Any:
    if not is_dataclass(obj):
        raise UserError(f"--set {full_key}: {'.'.join(path)} is not a group of settings")
    names = [f.name for f in fields(obj)]
    head = path[0]
    if head not in names:
        raise UserError(f"--set {full_key}: unknown key {head!r}; valid keys: {', '.join(names)}")
    current = getattr(obj, head)
    value = _set(current, path[1:], raw, full_key) if len(path) > 1 else parse_like(raw, current, full_key)
    return replace(obj, **{head: value})


def coerce_like(value: Any, current: Any, key: str) -> Any:
    """`value` (text from `--set`, or a number from JSON or Python) as the type of `current`: text
    parsed as `parse_like` does; a number must be finite, and whole where `current` is an int (a
    float where a count belongs failed deep inside a constructor, a NaN trained on silently).
    Values of other types pass through."""
    if isinstance(value, str) and not isinstance(current, str):
        return parse_like(value, current, key)
    if isinstance(current, bool) or not isinstance(current, int | float):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(f"{key} must be a finite number (got {value!r})")
    if not isinstance(current, int):
        return float(value)
    if not (isinstance(value, int) or value.is_integer()):
        raise UserError(f"{key} must be a whole number (got {value!r})")
    return int(value)


def parse_like(raw: str, current: Any, key: str) -> Any:
    """Parse `raw` into the type of `current` (bool, int, float, str, tuple, or JSON)."""
    try:
        if isinstance(current, bool):
            lowered = raw.strip().lower()
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            raise ValueError("expected true or false")
        if isinstance(current, int):
            return int(float(raw)) if "e" in raw.lower() else int(raw)
        if isinstance(current, float):
            value = float(raw)
            if not math.isfinite(value):  # no setting here means "off" by inf, and a NaN trains on silently
                raise ValueError("not a finite number")
            return value
        if isinstance(current, str):
            return raw
        if isinstance(current, tuple):
            items = [s for s in raw.split(",") if s.strip()]
            if current:
                try:
                    return tuple(parse_like(s, current[0], key) for s in items)
                except UserError as exc:  # name the whole value and its form, then the item's fault
                    example = ",".join(str(item) for item in current)
                    raise UserError(f"--set {key}={raw}: expected {type(current[0]).__name__} values separated "
                                    f"by commas, like {key}={example} ({exc.__cause__})") from exc  # fmt: skip
            return tuple(json.loads(s) for s in items)
        return json.loads(raw)
    except (ValueError, json.JSONDecodeError) as exc:
        expected = type(current).__name__
        raise UserError(f"--set {key}={raw}: not a valid {expected} ({exc})") from exc
