"""The mutation proposer's mechanisms: HOLE wraps the rewritten expression, PARAM becomes a new
fitted parameter counted in the module, a named mechanism rewrites that variable's value."""

from __future__ import annotations

import ast

import numpy as np

from garagelab.evolve.islands import Member
from garagelab.evolve.proposers import Mechanism, MutationProposer
from garagelab.evolve.task import Task

PROGRAM = """num_params = 2


def agent(params, choice, reward, state):
    beta = params[0]
    chosen = choice * 1.0
    logits = beta * state
    return logits, state
"""


def proposer(*mechanisms: str) -> MutationProposer:
    task = Task("t", "", PROGRAM, "agent", "m:serve", "m:judge", mechanisms=mechanisms, parameters="params:num_params")
    return MutationProposer(task)


def mechanism_only(p: MutationProposer, seed: int = 0) -> str:
    tree = ast.parse(PROGRAM)
    function = tree.body[1]
    assert p._mechanism(function, [], np.random.default_rng(seed)) and p._number_parameters(tree)
    return ast.unparse(tree)


def test_named_mechanism_with_a_fresh_parameter() -> None:
    source = mechanism_only(proposer("logits = HOLE + PARAM * chosen"))
    assert "num_params = 3" in source
    assert "logits = beta * state + params[2] * chosen" in source


def test_two_parameters_get_two_indices() -> None:
    source = mechanism_only(proposer("beta = HOLE * PARAM + PARAM"))
    assert "num_params = 4" in source
    assert "beta = params[0] * params[3] + params[2]" in source or "beta = params[0] * params[2] + params[3]" in source


def test_a_mechanism_needing_a_later_name_does_not_apply() -> None:
    # `chosen` is assigned after `beta`: rewriting beta with it would read it before it exists
    p = proposer("beta = HOLE + chosen")
    tree = ast.parse(PROGRAM)
    assert not p._mechanism(tree.body[1], [], np.random.default_rng(0))


def test_parse_tells_names_from_comparisons() -> None:
    assert Mechanism.parse("q = HOLE * 2").target == "q"
    assert Mechanism.parse("HOLE <= 2").target == "" and Mechanism.parse("x").hole is False


def test_propose_uses_the_library_without_breaking_programs() -> None:
    p = proposer("logits = HOLE + PARAM * chosen", "jnp.tanh(HOLE)")
    rng = np.random.default_rng(3)
    parent = Member(1, 0.5, 10, PROGRAM)
    for _ in range(30):
        source = p.propose([parent], rng).source
        ast.parse(source)
        assert "HOLE" not in source and "PARAM" not in source
        assert "jnp.tanh((logits, state))" not in source  # a returned tuple is not a value
