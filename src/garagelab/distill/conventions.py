"""Fitting and compute conventions a user can change: fixed coefficients and the FLOP model.

Published fits differ in conventions more than in data: Epoch's Chinchilla replication ties
the exponent on the sum to 1 (gamma = 1) and uses a Huber delta of 1e-3; the paper prices
compute with a FLOP model that has context and vocabulary terms; many people use plain 6ND.
These are options of `fit` (stored in fit.json) and of `plan` and `plot` (which default to
what the fit stored).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace

from garagelab.core.cliargs import non_negative_float
from garagelab.core.errors import UserError
from garagelab.distill.flops import FlopModel

# the coefficients of each law as a user names them: the distillation law's own power term is
# primed in the paper (A', gamma'), its teacher terms are unique to it
SUPERVISED_NAMES = ("E", "A", "B", "alpha", "beta", "gamma")
DISTILLATION_NAMES = ("A'", "B'", "alpha'", "beta'", "gamma'", "c0", "c1", "f1", "d1")
FLOP_KINDS = ("paper", "6ND")


def parse_fixed(items: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """`--fix gamma=1 --fix "c1=500,d1=1.3"` -> (supervised, distillation) {name: value}."""
    supervised: dict[str, float] = {}
    distillation: dict[str, float] = {}
    for part in _parts(items):
        name, sep, raw = part.partition("=")
        if not sep:
            raise UserError(f"--fix {part!r}: expected name=value, e.g. gamma=1")
        try:
            value = float(raw)
        except ValueError:
            raise UserError(f"--fix {part!r}: {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise UserError(f"--fix {part!r}: the value must be finite")
        law, key = _coefficient("--fix", part, name.strip())
        (supervised if law == "supervised" else distillation)[key] = value
    return supervised, distillation


def parse_coefficients(option: str, items: list[str]) -> tuple[list[str], list[str]]:
    """`--profile-coefficients "c0,f1,d1"` -> (supervised, distillation) coefficient names."""
    supervised: list[str] = []
    distillation: list[str] = []
    for part in _parts(items):
        law, key = _coefficient(option, part, part)
        names = supervised if law == "supervised" else distillation
        if key not in names:
            names.append(key)
    return supervised, distillation


def _parts(items: list[str]) -> list[str]:
    return [part for item in items for part in filter(None, (p.strip() for p in item.split(",")))]


def _coefficient(option: str, part: str, name: str) -> tuple[str, str]:
    """(law, name as the law spells it) of a user's coefficient name (distillation ones primed)."""
    if name in SUPERVISED_NAMES:
        return "supervised", name
    if name in DISTILLATION_NAMES:
        return "distillation", name.removesuffix("'")
    raise UserError(
        f"{option} {part!r}: unknown coefficient {name!r}; supervised law: {', '.join(SUPERVISED_NAMES)}; "
        f"distillation law: {', '.join(DISTILLATION_NAMES)}"
    )


def add_flop_options(parser: argparse.ArgumentParser, default_note: str) -> None:
    """--flops, --n-vocab and --n-ctx; None when not given, so a stored model is kept."""
    group = parser.add_argument_group("FLOP model", f"how compute is priced ({default_note})")
    group.add_argument(
        "--flops",
        choices=FLOP_KINDS,
        help="paper: 2N (1 + context and vocabulary terms) per token forward (App. H.1); 6ND: 2N",
    )
    group.add_argument("--n-vocab", type=non_negative_float, help="vocabulary size of the FLOP model (paper: 32168)")
    group.add_argument("--n-ctx", type=non_negative_float, help="context length of the FLOP model (paper: 4096)")


def flop_model(base: FlopModel, kind: str | None, n_vocab: float | None, n_ctx: float | None) -> FlopModel:
    """`base` with the user's changes; 6ND drops the context and vocabulary terms."""
    if kind == "6ND":
        if n_vocab or n_ctx:
            raise UserError("--flops 6ND has no vocabulary or context term; drop --n-vocab/--n-ctx")
        return replace(base, n_vocab=0.0, n_ctx=0.0)
    if kind == "paper":
        base = FlopModel()
    changes = {k: v for k, v in (("n_vocab", n_vocab), ("n_ctx", n_ctx)) if v is not None}
    return replace(base, **changes)


def describe_flops(model: FlopModel) -> str:
    if model.n_vocab == 0 and model.n_ctx == 0:
        return "6ND (forward 2N per token)"
    return f"2N(1 + context {model.n_ctx:g} and vocabulary {model.n_vocab:g} terms) per token forward"
