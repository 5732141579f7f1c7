"""A resumable sweep of tiny supervised and distillation runs, written as the CSV `fit` reads.

Three phases, each run appended to `runs.csv` the moment it finishes (a killed sweep resumes
and skips every run already in the file):

1. supervised runs: IsoFLOP profiles plus fixed-M teachers (teachers keep their weights);
2. students of every teacher on IsoFLOP budgets, distilled from the teacher's logits, which
   are cached once per teacher over the student stream and deleted when its students are done;
3. students of teachers with (nearly) equal loss but different size and tokens, picked from
   phase 1, to check that the teacher enters only through its loss.
"""

from __future__ import annotations

import csv
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from garagelab.core.errors import UserError
from garagelab.core.progress import ProgressBar
from garagelab.core.runs import Run
from garagelab.distill.experiment.corpus import MarkovSource, load_text_corpus
from garagelab.distill.experiment.models import Model, model_for_params
from garagelab.distill.experiment.train import (
    TrainConfig,
    evaluate,
    examples_for,
    load_params,
    save_params,
    train,
    write_teacher_cache,
)

COLUMNS = (
    "key",
    "kind",
    "N",
    "D",
    "loss",
    "L_T",
    "N_T",
    "D_T",
    "teacher",
    "model",
    "corpus",
    "seed",
    "flops",
    "seconds",
)


# seeds a sweep may train: a slip of the keyboard (1e5 for 5) would otherwise run for years
MAX_SEEDS = 100


@dataclass(frozen=True)
class SweepConfig:
    """The grid of a sweep; every field can be overridden with `--set name=value`."""

    model: str = "mlp"
    corpus: str = "synthetic"
    vocab: int = 32  # synthetic source only
    order: int = 3
    support: int = 8
    sizes: tuple[float, ...] = (4e3, 8e3, 16e3, 32e3, 64e3, 128e3, 256e3)
    budgets: tuple[float, ...] = (1e10, 3e10, 1e11, 3e11, 1e12)
    teacher_sizes: tuple[float, ...] = (8e3, 16e3, 32e3, 64e3, 128e3, 256e3)
    teacher_tokens_per_param: float = 20.0
    student_sizes: tuple[float, ...] = (8e3, 16e3, 32e3, 64e3)
    student_budgets: tuple[float, ...] = (1e10, 3e10, 1e11, 3e11)
    equal_loss_pairs: int = 3
    equal_loss_student: float = 16e3
    equal_loss_budget: float = 1e11
    min_tokens_per_param: float = 1.0
    max_tokens_per_param: float = 6000.0
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    # training seeds per configuration (seed, seed + 1, ...): replica r > 0 of a run has the
    # key suffix -s<r> and its students learn from replica r of their teacher
    seeds: int = 1

    def check(self) -> SweepConfig:
        """The config, or a UserError naming the setting that cannot run (a negative size ran, and
        a negative learning rate appended diverged runs to runs.csv as if they were data)."""
        counts = {"vocab": 2, "order": 1, "support": 1, "equal_loss_pairs": 0, "seeds": 1}
        counts.update({f"train.{k}": 1 for k in ("batch_tokens", "eval_tokens")})
        for name, least in counts.items():
            if _setting(self, name) < least:
                raise UserError(f"--set {name}: must be at least {least}, not {_setting(self, name)}")
        positive = ("sizes", "budgets", "teacher_sizes", "student_sizes", "student_budgets",
                    "teacher_tokens_per_param", "equal_loss_student", "equal_loss_budget", "min_tokens_per_param",
                    "max_tokens_per_param", "train.learning_rate")  # fmt: skip
        for name in positive:
            values = _setting(self, name)
            if not all(v > 0 for v in (values if isinstance(values, tuple) else (values,))):
                raise UserError(f"--set {name}: every value must be above 0, not {values}")
        fractions = {"train.warmup": (0, 1), "train.min_learning_rate": (0, 1), "train.weight_decay": (0, 1)}
        for name, (low, high) in fractions.items():
            if not low <= _setting(self, name) < high:
                raise UserError(f"--set {name}: must lie in [{low}, {high}), not {_setting(self, name)}")
        if self.min_tokens_per_param >= self.max_tokens_per_param:
            raise UserError("--set min_tokens_per_param must be below max_tokens_per_param")
        if self.seeds > MAX_SEEDS:
            raise UserError(f"--seeds {self.seeds} is more than {MAX_SEEDS}: each seed trains the whole grid "
                            "again (the tiny preset's takes about 30 minutes)")  # fmt: skip
        return self

    @classmethod
    def from_dict(cls, data: dict) -> SweepConfig:
        """Rebuild a config saved with `dataclasses.asdict` (lists back to tuples)."""
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        values["train"] = TrainConfig(**values.get("train", {}))
        return cls(**values)


def _setting(config: SweepConfig, name: str):
    """A setting by its `--set` name (`train.x` for the optimiser's)."""
    return getattr(config.train, name.removeprefix("train.")) if name.startswith("train.") else getattr(config, name)


PRESETS: dict[str, SweepConfig] = {
    "tiny": SweepConfig(),
    # under a minute, for tests and the tour: enough runs to fit both laws
    "quick": SweepConfig(
        sizes=(2e3, 4e3, 8e3),
        budgets=(3e8, 1e9),
        teacher_sizes=(4e3, 8e3),
        student_sizes=(2e3, 3e3),
        student_budgets=(3e8, 1e9),
        equal_loss_pairs=1,
        equal_loss_student=2e3,
        equal_loss_budget=3e8,
        train=TrainConfig(eval_tokens=8192),
    ),
}


@dataclass(frozen=True)
class PlannedRun:
    key: str
    kind: str
    model: Model
    tokens: float
    teacher: str = ""
    replica: int = 0

    @property
    def flops(self) -> float:
        return 3.0 * self.model.forward_flops() * self.tokens


def replica_key(key: str, replica: int) -> str:
    return key if replica == 0 else f"{key}-s{replica}"


def configuration(key: str) -> str:
    """A run's key without its replica suffixes: the same configuration under every seed."""
    return re.sub(r"-s\d+(?=\]|$)", "", key)


def _tokens(model: Model, budget: float) -> float:
    return budget / (6.0 * model.non_embedding_params())


class Sweep:
    """One sweep in one run directory."""

    def __init__(self, config: SweepConfig, run: Run) -> None:
        self.config = config
        self.run = run
        self.csv_path = run.path / "runs.csv"
        if config.corpus == "synthetic":
            self.corpus = MarkovSource(config.vocab, config.order, config.support, seed=config.seed)
        else:
            self.corpus = load_text_corpus(config.corpus)
        self.vocab = self.corpus.vocab
        self.done = self._read_done()
        self._streams: dict[str, np.ndarray] = {}
        self.config_window = self._model(1e4).window
        self.supervised_runs = {r.key: r for r in self.supervised_plan()}

    # -- bookkeeping ---------------------------------------------------------------------
    def _read_done(self) -> dict[str, dict[str, str]]:
        if not self.csv_path.exists():
            return {}
        with self.csv_path.open(newline="") as handle:
            return {row["key"]: row for row in csv.DictReader(handle)}

    def _append(self, row: dict[str, object]) -> None:
        new = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
            handle.flush()
            os.fsync(handle.fileno())
        self.done[str(row["key"])] = {k: str(v) for k, v in row.items()}
        self.run.log(**{k: row[k] for k in ("key", "N", "D", "loss", "L_T", "seconds")})

    def _model(self, target: float) -> Model:
        return model_for_params(self.config.model, target, self.vocab)

    def _stream(self, purpose: str, tokens: float) -> np.ndarray:
        """The purpose's stream, long enough for `tokens` predicted tokens (grown on demand)."""
        have = self._streams.get(purpose)
        # every row of a stream loses up to two windows to example boundaries
        need = int(tokens * 1.02) + 256 * 2 * (self.config_window + 1)
        if have is None or have.size < need:
            self._streams[purpose] = self.corpus.stream(purpose, need)
        return self._streams[purpose]

    # -- the grid ------------------------------------------------------------------------
    def _keep(self, model: Model, tokens: float) -> bool:
        ratio = tokens / model.non_embedding_params()
        return self.config.min_tokens_per_param <= ratio <= self.config.max_tokens_per_param

    def supervised_plan(self) -> list[PlannedRun]:
        runs: dict[str, PlannedRun] = {}
        for replica in range(self.config.seeds):
            for n in self.config.sizes:
                model = self._model(n)
                for budget in self.config.budgets:
                    tokens = _tokens(model, budget)
                    key = replica_key(f"sup-N{n:g}-C{budget:g}", replica)
                    if self._keep(model, tokens):
                        runs.setdefault(key, PlannedRun(key, "supervised", model, tokens, replica=replica))
            for n in self.config.teacher_sizes:
                model = self._model(n)
                key = replica_key(f"sup-N{n:g}-M{self.config.teacher_tokens_per_param:g}", replica)
                tokens = self.config.teacher_tokens_per_param * model.non_embedding_params()
                runs[key] = PlannedRun(key, "supervised", model, tokens, replica=replica)
        return list(runs.values())

    def student_plan(self, teacher_key: str) -> list[PlannedRun]:
        """Students of one teacher, trained with the teacher's replica seed."""
        replica = self.supervised_runs[teacher_key].replica
        runs = []
        for n in self.config.student_sizes:
            model = self._model(n)
            for budget in self.config.student_budgets:
                tokens = _tokens(model, budget)
                if self._keep(model, tokens):
                    key = f"dist-N{n:g}-C{budget:g}-T[{teacher_key}]"
                    runs.append(PlannedRun(key, "distillation", model, tokens, teacher_key, replica))
        return runs

    def teacher_keys(self) -> list[str]:
        return [
            replica_key(f"sup-N{n:g}-M{self.config.teacher_tokens_per_param:g}", replica)
            for replica in range(self.config.seeds)
            for n in self.config.teacher_sizes
        ]

    def equal_loss_teachers(self) -> list[tuple[str, str]]:
        """Pairs of finished supervised runs with the closest losses and sizes at least 2x apart."""
        rows = [r for r in self.done.values() if r["kind"] == "supervised" and configuration(r["key"]) == r["key"]]
        pairs = []
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                n_a, n_b = float(a["N"]), float(b["N"])
                if max(n_a, n_b) / min(n_a, n_b) >= 2.0:
                    pairs.append((abs(float(a["loss"]) - float(b["loss"])), a["key"], b["key"]))
        chosen, used = [], set()
        for _, key_a, key_b in sorted(pairs):
            # checked first: equal_loss_pairs=0 asks for none (it used to run every pair)
            if len(chosen) >= self.config.equal_loss_pairs:
                break
            if key_a in used or key_b in used:
                continue
            chosen.append((key_a, key_b))
            used |= {key_a, key_b}
        return chosen

    # -- running -------------------------------------------------------------------------
    def execute(self) -> Path:
        supervised = list(self.supervised_runs.values())
        students = {key: self.student_plan(key) for key in self.teacher_keys()}
        planned = supervised + [r for runs in students.values() for r in runs]
        pending = [r for r in planned if r.key not in self.done]
        equal_student = self._model(self.config.equal_loss_student)
        equal_flops = (
            2
            * self.config.equal_loss_pairs
            * 3.0
            * equal_student.forward_flops()
            * _tokens(equal_student, self.config.equal_loss_budget)
        )
        total = sum(r.flops for r in pending) + equal_flops
        # size each stream once for its longest run (growing it later would re-sample it)
        if any(r.kind == "supervised" for r in pending):
            self._stream("teacher", max(r.tokens for r in supervised))
        with ProgressBar(total, "distill sweep", unit="FLOP") as bar:
            for planned_run in supervised:
                self._supervised(planned_run, bar)
            for teacher_key, runs in students.items():
                self._students(teacher_key, runs, bar)
            for key_a, key_b in self.equal_loss_teachers():
                for teacher_key in (key_a, key_b):
                    model = equal_student
                    tokens = _tokens(model, self.config.equal_loss_budget)
                    key = f"eq-N{self.config.equal_loss_student:g}-C{self.config.equal_loss_budget:g}-T[{teacher_key}]"
                    self._students(
                        teacher_key,
                        [PlannedRun(key, "distillation", model, tokens, teacher_key)],
                        bar,
                    )
        return self.csv_path

    def _weights_path(self, key: str) -> Path:
        return self.run.path / "models" / f"{key}.npz"

    def _supervised(self, planned: PlannedRun, bar: ProgressBar) -> None:
        if planned.key in self.done:
            return
        start = time.perf_counter()
        stream = self._stream("teacher", planned.tokens)
        params = train(planned.model, stream, planned.tokens, self.config.train, self.config.seed + planned.replica)
        loss = evaluate(
            planned.model,
            params,
            self._stream("eval", self.config.train.eval_tokens * 1.1),
            self.config.train.eval_tokens,
        )
        save_params(params, self._weights_path(planned.key))
        self._append(self._row(planned, loss, "", "", "", "", time.perf_counter() - start))
        bar.advance(planned.flops, postfix=f"{planned.key} loss {loss:.4f}")

    def _students(self, teacher_key: str, runs: list[PlannedRun], bar: ProgressBar) -> None:
        pending = [r for r in runs if r.key not in self.done]
        if not pending:
            return
        teacher_row = self.done.get(teacher_key)
        if teacher_row is None:
            raise UserError(f"teacher {teacher_key} has not been trained; rerun the sweep from the start")
        teacher_model = self.supervised_runs[teacher_key].model
        teacher_params = load_params(teacher_model, self._weights_path(teacher_key))
        longest = max(r.tokens for r in pending)
        stream = self._stream("student", longest)
        cache_path = self.run.path / "cache" / f"{teacher_key}.npy"
        cache = write_teacher_cache(teacher_model, teacher_params, stream, longest, cache_path)
        eval_stream = self._stream("eval", self.config.train.eval_tokens * 1.1)
        for planned in pending:
            start = time.perf_counter()
            count = examples_for(planned.model, planned.tokens)
            params = train(
                planned.model,
                stream,
                planned.tokens,
                self.config.train,
                self.config.seed + planned.replica,
                cache[:count],
            )
            loss = evaluate(planned.model, params, eval_stream, self.config.train.eval_tokens)
            row = self._row(
                planned,
                loss,
                teacher_row["loss"],
                teacher_row["N"],
                teacher_row["D"],
                teacher_key,
                time.perf_counter() - start,
            )
            self._append(row)
            bar.advance(planned.flops, postfix=f"{planned.key} loss {loss:.4f}")
        del cache
        cache_path.unlink(missing_ok=True)

    def _row(
        self,
        planned: PlannedRun,
        loss: float,
        lt: str,
        nt: str,
        dt: str,
        teacher: str,
        seconds: float,
    ) -> dict[str, object]:
        # a nat worse than guessing uniformly over the vocabulary (ln V) is a diverged run, not a point
        # of the law, and would be fitted as data (learning rate 1e4 gave 261-853 nats at V = 32);
        # the margin spares a short run that has barely left its initial ln V
        if not loss <= math.log(planned.model.vocab) + 1.0:  # NaN included; the runs before are kept
            raise UserError(
                f"run {planned.key} diverged: held-out loss {loss:.4g} nats, worse than guessing "
                f"(ln {planned.model.vocab} = {math.log(planned.model.vocab):.3f}); start a new sweep with a "
                "lower train.learning_rate"
            )
        return {
            "key": planned.key,
            "kind": planned.kind,
            "N": planned.model.non_embedding_params(),
            "D": examples_for(planned.model, planned.tokens) * planned.model.predictions,
            "loss": f"{loss:.6f}",
            "L_T": lt,
            "N_T": nt,
            "D_T": dt,
            "teacher": teacher,
            "model": repr(planned.model),
            "corpus": getattr(self.corpus, "name", self.config.corpus),
            "seed": self.config.seed + planned.replica,
            "flops": f"{planned.flops:.4g}",
            "seconds": f"{seconds:.2f}",
        }


def entropy_floor(config: SweepConfig) -> float | None:
    """The loss floor of the corpus, where known (the synthetic source)."""
    if config.corpus != "synthetic":
        return None
    return MarkovSource(config.vocab, config.order, config.support, seed=config.seed).entropy_rate()
