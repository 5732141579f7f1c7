"""The tiny reproduction's verdicts are printed only when the effect exceeds its seed noise."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "experiments" / "distill" / "tiny_reproduction.py"


@pytest.fixture(scope="module")
def tiny():
    spec = importlib.util.spec_from_file_location("tiny_reproduction", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(key: str, loss: float, seed: int, n: float = 8e3, d: float = 1e5, teacher_loss: float | None = None) -> dict:
    suffix = f"-s{seed}" if seed else ""
    if key.startswith("dist-"):
        key = key.replace("]", f"{suffix}]")
        kind = "distillation"
    else:
        key += suffix
        kind = "supervised"
    lt = "" if teacher_loss is None else str(teacher_loss)
    return {"key": key, "kind": kind, "N": str(n), "D": str(d), "loss": str(loss), "L_T": lt, "seed": str(seed)}


NOISE = (0.0, 0.004, -0.004)  # per seed, shared by the runs of one seed


def students(config: str, weak: float, strong: float, d: float = 1e5) -> list[dict]:
    return [
        run(f"dist-{config}-T[sup-N{size}-M20]", loss + NOISE[s], s, d=d, teacher_loss=lt)
        for s in range(3)
        for size, loss, lt in ((8000, weak, 3.0), (64000, strong, 2.0))
    ]


def test_capacity_gap_needs_an_effect_beyond_its_noise(tiny) -> None:
    rows = students("N8000-C1e+10", weak=2.50, strong=2.60) + students("N8000-C1e+11", weak=2.5, strong=2.5004)
    rows[-1] = {**rows[-1], "loss": str(float(rows[-1]["loss"]) + 0.01)}  # seed noise on the tiny gap
    table, _ = tiny.capacity_gap(rows)
    verdicts = {row["student"]: row["interior minimum"] for row in table}
    assert verdicts == {"N8000-C1e+10": "yes", "N8000-C1e+11": "within noise"}


def test_no_gap_when_the_strongest_teacher_is_best(tiny) -> None:
    table, _ = tiny.capacity_gap(students("N8000-C1e+10", weak=2.60, strong=2.50))
    assert table[0]["interior minimum"] == "no"


def test_one_seed_gives_no_verdict(tiny) -> None:
    rows = [r for r in students("N8000-C1e+10", weak=2.50, strong=2.60) if r["seed"] == "0"]
    table, _ = tiny.capacity_gap(rows)
    assert table[0]["interior minimum"] == "no seed noise (1 seed)"


def test_crossover_is_reported_from_significant_win_to_significant_loss(tiny) -> None:
    rows = []
    for d, gap in ((1e5, -0.05), (1e6, 0.0005), (1e7, 0.05)):
        budget = f"C{d:g}"
        rows += [run(f"sup-N8000-{budget}", 2.5 + NOISE[s], s, d=d) for s in range(3)]
        rows += [
            run(f"dist-N8000-{budget}-T[sup-N64000-M20]", 2.5 + gap + NOISE[s] * (1 + s), s, d=d, teacher_loss=2.0)
            for s in range(3)
        ]
    (row,) = tiny.crossover(rows)[0]
    assert row["sign per D_S (beyond 2 s.e.)"] == "-0+"
    assert row["verdict"] == "crossover"
    assert 1e5 < row["crossover D_S"] < 1e7
