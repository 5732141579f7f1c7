"""The tuner's seed kernels: every problem of our suite has one, and every one is correct (each
knob setting the tuner tries is a candidate like any other; the verifier decides)."""

from __future__ import annotations

import pytest

from garagelab.evolve.pool import LocalPool
from garagelab.kernels.cli import problem_paths
from garagelab.kernels.loop import _TUNE, _neighbours, knob_line
from garagelab.kernels.seeds import seed_for
from garagelab.kernels.task import build_task

SUITE = problem_paths(["suite"])


@pytest.mark.slow
def test_every_seed_is_correct() -> None:
    """All 27, two at a time (a worker per CPU): each is built and verified in the sandbox."""
    pool = LocalPool(2)
    try:
        futures = {}
        for problem in SUITE:
            seed = seed_for(problem)
            assert seed is not None and _neighbours(seed), f"{problem.stem}: no seed with `# tune:` knobs"
            futures[problem.stem] = pool.submit(build_task(problem, "cpu", timing=False), seed, frozenset())
        failed = {stem: f"{o.failure}: {o.message[:300]}" for stem, f in futures.items() if not (o := f.result()).ok}
    finally:
        pool.shutdown()
    assert not failed, failed


@pytest.mark.slow
@pytest.mark.parametrize("end", [min, max])
def test_seeds_at_the_ends_of_their_knobs_are_correct(end) -> None:
    """Every knob at its smallest (or largest) option at once: tails, edge tiles, spilled registers."""
    for stem in ("14_matmul_transposed_b", "07_layernorm", "02_causal"):
        problem = next(p for p in SUITE if p.stem == stem)
        extreme = _TUNE.sub(lambda m: knob_line(m, end(int(v) for v in m[4].split(","))), seed_for(problem))
        assert extreme != seed_for(problem)
        outcome = build_task(problem, "cpu", timing=False).evaluate(extreme)
        assert outcome.ok, f"{stem}: {outcome.message}"


def test_a_variant_whose_model_reads_a_size_is_timed_at_that_size() -> None:
    """ALiBi's slopes read HEADS: the clean baseline process runs the problem at the verified
    size (it ran the file's own, and every timed ALiBi verification ended `invalid`)."""
    problem = next(p for p in SUITE if p.stem == "04_alibi")
    outcome = build_task(problem, "cpu", rounds=3).evaluate(seed_for(problem))
    assert outcome.ok and outcome.metrics["timed"], outcome.message
