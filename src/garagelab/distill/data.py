"""Runs as data, and the CSV schema that `fit` reads and `run` writes.

One CSV holds both kinds of run, one per row:

| column | meaning | required |
|---|---|---|
| `N` (alias `N_S`) | non-embedding parameters of the model (the student) | yes |
| `D` (alias `D_S`) | training tokens of the model (the student) | yes |
| `loss` (alias `L_S`) | its cross-entropy on held-out data, nats per token | yes |
| `L_T` | the teacher's cross-entropy | distillation rows |
| `N_T`, `D_T` | the teacher's parameters and tokens | distillation rows without `L_T` |

A row with a teacher (`L_T`, or `N_T` and `D_T`) is a distillation run, any other row a
supervised run. Other columns (seed, flops, wall time...) are allowed and ignored by the fit.
Empty cells are missing values; sizes and losses must be positive numbers.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from garagelab.core.errors import UserError
from garagelab.core.textfiles import read_user_text
from garagelab.distill.laws import SupervisedLaw

REQUIRED = ("N", "D", "loss")
TEACHER = ("L_T", "N_T", "D_T")
# header names as spreadsheets and other tools write them: any case, spaces around, the
# student's columns with the paper's subscripts (N_S, D_S, L_S)
ALIASES = {name.lower(): name for name in (*REQUIRED, *TEACHER)} | {"n_s": "N", "d_s": "D", "l_s": "loss"}


@dataclass(frozen=True)
class SupervisedRuns:
    """Models trained on hard labels: size, tokens, loss."""

    n: np.ndarray
    d: np.ndarray
    loss: np.ndarray

    def __len__(self) -> int:
        return len(self.loss)

    def subset(self, mask: np.ndarray) -> SupervisedRuns:
        return SupervisedRuns(self.n[mask], self.d[mask], self.loss[mask])

    def log_columns(self) -> tuple[np.ndarray, ...]:
        return np.log(self.n), np.log(self.d), np.log(self.loss)


@dataclass(frozen=True)
class DistillationRuns:
    """Students distilled from a teacher of known loss (N_T, D_T may be NaN when unknown)."""

    n: np.ndarray
    d: np.ndarray
    teacher_loss: np.ndarray
    loss: np.ndarray
    n_t: np.ndarray
    d_t: np.ndarray

    def __len__(self) -> int:
        return len(self.loss)

    def subset(self, mask: np.ndarray) -> DistillationRuns:
        return DistillationRuns(*(getattr(self, f)[mask] for f in ("n", "d", "teacher_loss", "loss", "n_t", "d_t")))


@dataclass(frozen=True)
class RunTable:
    """Everything read from one CSV, split by kind."""

    supervised: SupervisedRuns
    distillation: DistillationRuns
    # for distillation rows that gave N_T, D_T but no L_T: filled in later from a supervised law
    teacher_loss_missing: np.ndarray

    def with_teacher_losses(self, law: SupervisedLaw) -> RunTable:
        """L_T filled in from `law` where a row gave only the teacher's N_T and D_T."""
        missing = self.teacher_loss_missing
        if not missing.any():
            return self
        runs = self.distillation
        filled = runs.teacher_loss.copy()
        filled[missing] = law.loss(runs.n_t[missing], runs.d_t[missing])
        return RunTable(self.supervised, replace(runs, teacher_loss=filled), np.zeros_like(missing))

    def with_tokens_per_param(self, minimum: float) -> RunTable:
        """Only the runs (of either kind) with at least `minimum` training tokens per parameter.

        Runs far below one token per parameter sit off the law (Epoch's Chinchilla fit leaves
        out the five with the fewest); the fit says how many it left out.
        """
        keep = self.distillation.d / self.distillation.n >= minimum
        return RunTable(
            self.supervised.subset(self.supervised.d / self.supervised.n >= minimum),
            self.distillation.subset(keep),
            self.teacher_loss_missing[keep],
        )


def _parse(value: str, path: Path, line: int, column: str) -> float:
    text = value.strip()
    if text == "":
        return math.nan
    try:
        number = float(text)
    except ValueError:
        raise UserError(f"{path} line {line}, column {column}: {text!r} is not a number") from None
    if math.isnan(number):
        raise UserError(f"{path} line {line}, column {column}: NaN is not allowed; drop the row or fill it in")
    if not number > 0 or math.isinf(number):
        raise UserError(f"{path} line {line}, column {column}: {text} must be a positive, finite number")
    return number


def read_runs(path: Path | str) -> RunTable:
    """Read and validate a runs CSV; every problem names the line and column."""
    path = Path(path)
    if not path.is_file():
        what = "a directory, not a file" if path.is_dir() else "no such file"
        raise UserError(f"{path}: {what}; give a CSV with columns N, D, loss (and L_T or N_T, D_T)")
    reader = csv.DictReader(io.StringIO(read_user_text(path), newline=""))
    header = [ALIASES.get(h.strip().lower(), h.strip()) for h in (reader.fieldnames or [])]
    twice = sorted({c for c in header if header.count(c) > 1 and c in (*REQUIRED, *TEACHER)})
    if twice:
        raise UserError(f"{path}: column {twice[0]} is given twice (names are read in any case, and N_S, D_S, "
                        "L_S are N, D, loss); keep one")  # fmt: skip
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(header) or 'none'}); the schema is N, D, loss and, "
            "for distillation runs, L_T or N_T and D_T"
        )
    reader.fieldnames = header
    sup, dist, need_lt = [], [], []
    for line, row in enumerate(reader, start=2):
        values = {c: _parse(row.get(c) or "", path, line, c) for c in (*REQUIRED, *TEACHER) if c in header}
        for column in REQUIRED:
            if math.isnan(values[column]):
                raise UserError(f"{path} line {line}, column {column}: value missing")
        lt, nt, dt = (values.get(c, math.nan) for c in TEACHER)
        if math.isnan(lt) and math.isnan(nt) and math.isnan(dt):
            sup.append((values["N"], values["D"], values["loss"]))
            continue
        if math.isnan(lt) and (math.isnan(nt) or math.isnan(dt)):
            column = "N_T" if math.isnan(nt) else "D_T"
            raise UserError(f"{path} line {line}, column {column}: a distillation row needs L_T, or both N_T and D_T")
        dist.append((values["N"], values["D"], lt, values["loss"], nt, dt))
        need_lt.append(math.isnan(lt))
    if not sup and not dist:
        raise UserError(f"{path}: no data rows")
    s = np.array(sup, dtype=float).reshape(-1, 3)
    t = np.array(dist, dtype=float).reshape(-1, 6)
    return RunTable(
        SupervisedRuns(s[:, 0], s[:, 1], s[:, 2]),
        DistillationRuns(*(t[:, k] for k in range(6))),
        np.array(need_lt, dtype=bool),
    )


def write_runs(path: Path | str, supervised: SupervisedRuns | None, distillation: DistillationRuns | None) -> Path:
    """Write runs in the schema `read_runs` reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["N", "D", "loss", "L_T", "N_T", "D_T"])
        if supervised is not None:
            for n, d, loss in zip(supervised.n, supervised.d, supervised.loss, strict=True):
                writer.writerow([_fmt(n), _fmt(d), _fmt(loss), "", "", ""])
        if distillation is not None:
            for row in zip(
                distillation.n,
                distillation.d,
                distillation.loss,
                distillation.teacher_loss,
                distillation.n_t,
                distillation.d_t,
                strict=True,
            ):
                writer.writerow([_fmt(v) for v in row])
    return path


def _fmt(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))
