"""The search's evaluator in the real sandbox: scores sound programs, refuses randomness,
non-finite choices and copies of behaviour, and counts the parameters a program really uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from garagelab.cogsearch.fit import counted
from garagelab.cogsearch.programs import BASELINES, SEED, load_program
from garagelab.cogsearch.simulate import generate
from garagelab.cogsearch.task import build_task


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory):
    data = generate("q-learning", subjects=4, sessions=2, trials=60, seed=7)
    path = data.save_npz(Path(tmp_path_factory.mktemp("data")) / "search.npz")
    return build_task(path, data, restarts=1, max_steps=200)


def run(task, source: str, fingerprints: frozenset[str] = frozenset()):
    return task.evaluate(source, fingerprints)


def test_seed_scores_and_duplicates_are_refused(task) -> None:
    outcome = run(task, SEED)
    assert outcome.ok and 0.5 < outcome.score < 1 and outcome.metrics["num_params"] == 2
    renamed = SEED.replace("delta", "error")  # the same behaviour under another name
    again = run(task, renamed, frozenset({outcome.fingerprint}))
    assert again.failure == "duplicate"


def test_randomness_is_refused(task) -> None:
    source = SEED.replace("logits = beta * q", "logits = beta * q + jax.random.normal(jax.random.PRNGKey(0), (2,))")
    outcome = run(task, source)
    assert outcome.failure == "lint" and "random" in outcome.message


def test_non_finite_choices_are_invalid(task) -> None:
    outcome = run(task, SEED.replace("logits = beta * q", "logits = beta * q / 0.0"))
    assert outcome.failure == "invalid" and "non-finite" in outcome.message


def test_forgotten_num_params_is_counted() -> None:
    data = generate("q-learning", subjects=2, sessions=1, trials=30)
    source = BASELINES["forgetting-perseveration"].replace("num_params = 4", "num_params = 2")
    _, _, used = counted(load_program(source), data)
    assert used.tolist() == [0, 1, 2, 3]
    _, _, used = counted(load_program(BASELINES["bias"]), data)
    assert used.tolist() == [0]
    whole = SEED.replace("logits = beta * q", "logits = beta * q + jnp.sum(params)")  # the whole vector
    _, _, used = counted(load_program(whole), data)
    assert used.tolist() == [0, 1]


def test_the_zygote_warms_tracing_without_starting_xla(tmp_path: Path) -> None:
    """XLA's thread pools do not survive a fork: a zygote that started them would hang its children."""
    path = generate("q-learning", subjects=3, trials=20, seed=1).save_npz(tmp_path / "data.npz")
    code = (
        "from jax._src import xla_bridge\n"
        "from garagelab.cogsearch.data import load_npz\n"
        "from garagelab.cogsearch.fit import warm_tracing\n"
        f"warm_tracing(load_npz({str(path)!r}))\n"
        "assert not xla_bridge._backends, list(xla_bridge._backends)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
