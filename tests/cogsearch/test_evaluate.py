"""The search's evaluation through the trust boundary: scores sound programs, refuses
randomness, non-finite choices, wrong logits and copies of behaviour, counts the parameters a
program really uses, and scores exactly as a direct fit of the same program would."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from garagelab.cogsearch.exported import trusted_program
from garagelab.cogsearch.fit import FitConfig, counted, fit
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
    _, _, used = counted(*trusted_program(source), data)
    assert used.tolist() == [0, 1, 2, 3]
    _, _, used = counted(*trusted_program(BASELINES["bias"]), data)
    assert used.tolist() == [0]
    whole = SEED.replace("logits = beta * q", "logits = beta * q + jnp.sum(params)")  # the whole vector
    _, _, used = counted(*trusted_program(whole), data)
    assert used.tolist() == [0, 1]


def test_the_rebuilt_computation_fits_exactly_as_the_program_itself() -> None:
    """The judge fits the computation the sandbox traced; it must score what the program scores
    (softplus and friends keep JAX's own derivative: an inlined one is 0 at 0, where fits start)."""
    data = generate("q-learning", subjects=3, sessions=2, trials=40, seed=3)
    config = FitConfig(restarts=1, max_steps=200)
    for name in ("q-learning", "fly-dfq", "miller-rat"):
        program = load_program(BASELINES[name], 2, name)
        direct = fit(replace(program, num_params=program.num_params + 4), data, config)
        likelihood, _, _ = counted(*trusted_program(BASELINES[name], 2, name), data, config)
        assert likelihood.fit().normalized_likelihood == direct.normalized_likelihood


def test_zero_parameters_and_wrong_logits(task) -> None:
    fixed = SEED.replace("num_params = 2", "num_params = 0").replace("jax.nn.softplus(p[0]) * 3.0", "1.0")
    outcome = run(task, fixed.replace("jax.nn.sigmoid(p[1])", "0.3"))
    assert outcome.ok and outcome.metrics["num_params"] == 0 and outcome.metrics["params_median"] == []
    one_logit = run(task, SEED.replace("logits = beta * q\n", "logits = jnp.sum(beta * q, keepdims=True)\n"))
    assert one_logit.failure == "invalid" and "expected 2 floats" in one_logit.message
    assert run(task, SEED.replace("return beta * q, q", "return beta * q[:1], q")).failure == "invalid"


def test_the_sandbox_warms_tracing_without_starting_xla() -> None:
    """XLA's thread pools do not survive a fork: a fork server that started them would hang its children."""
    code = (
        "from jax._src import xla_bridge\n"
        "from garagelab.cogsearch.exported import warm_up\n"
        "warm_up()\n"
        "assert not xla_bridge._backends, list(xla_bridge._backends)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
