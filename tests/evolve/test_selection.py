"""Islands, MAP-Elites, the bandit, and the LLM proposer's prompt and answer handling (with a
replayed model: a test double built from crafted call records)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from garagelab.core.errors import UserError
from garagelab.evolve.code import CodeError
from garagelab.evolve.database import ProgramDB
from garagelab.evolve.engine import EngineConfig
from garagelab.evolve.islands import Island, Islands, MapElites, Member
from garagelab.evolve.proposers import Bandit, LLMProposer, MutationProposer, ProposalError
from garagelab.evolve.search import SearchConfig, execute
from garagelab.evolve.tasks.fit_points import FIT_POINTS, TEMPLATE
from garagelab.llm.client import ReplayClient
from garagelab.llm.records import CallRecord, Replay


def member(pid: int, score: float, size: int = 10) -> Member:
    return Member(pid, score, size, TEMPLATE)


def test_low_temperature_samples_the_best_cluster() -> None:
    island = Island()
    for pid, score in enumerate([-5.0, -3.0, -1.0, -0.5]):
        island.add(member(pid, score))
    rng = np.random.default_rng(0)
    picks = [island.sample(1, 0.01, rng)[0].score for _ in range(50)]
    assert picks.count(-0.5) == 50
    spread = {island.sample(1, 10.0, rng)[0].score for _ in range(200)}
    assert len(spread) == 4  # high temperature explores every cluster


def test_within_a_cluster_shorter_programs_are_favoured() -> None:
    island = Island()
    island.add(member(1, -1.0, size=10))
    island.add(member(2, -1.0, size=200))
    rng = np.random.default_rng(0)
    picks = [island.sample(1, 1.0, rng)[0].program_id for _ in range(200)]
    assert picks.count(1) > 120


def test_resetting_empties_the_weaker_half_and_seeds_it_from_the_stronger() -> None:
    islands = Islands(4)
    for index, score in enumerate([-4.0, -1.0, -3.0, -2.0]):
        islands.add(index, member(index, score))
    weak = islands.reset_weakest(np.random.default_rng(0))
    assert sorted(weak) == [0, 2]
    assert all(len(islands.islands[i]) == 1 and islands.islands[i].best.score in (-1.0, -2.0) for i in weak)


def test_map_elites_keeps_the_best_per_cell() -> None:
    grid = MapElites("mse", size_edges=(20,), metric_edges=(1.0,))
    assert grid.add(member(1, -2.0, size=10), {"mse": 2.0})
    assert not grid.add(member(2, -3.0, size=12), {"mse": 3.0})  # same cell, worse
    assert grid.add(member(3, -0.5, size=30), {"mse": 0.5})  # another cell
    assert grid.add(member(4, -9.0, size=10), {"mse": [1.0]})  # no number: a cell of its own
    assert {m.program_id for m in grid.cells().values()} == {1, 3, 4}


def test_map_elites_buckets_the_metric_by_the_values_seen() -> None:
    """Without edges every program used to share one metric bucket (a grid by size alone)."""
    grid = MapElites("mse", size_edges=())
    for pid, mse in enumerate([0.1, 0.2, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0]):
        grid.add(member(pid, -float(pid)), {"mse": mse})
    cells = grid.cells()
    assert len(cells) == 5  # quintiles of the ten values
    assert {m.program_id for m in cells.values()} == {0, 2, 4, 6, 8}  # the best (lowest id) of each pair


def test_a_map_elites_search_runs_and_refuses_a_metric_its_judge_lacks(tmp_path: Path) -> None:
    config = SearchConfig(engine=EngineConfig(budget=20, islands=2, workers=2, map_elites="mse"))
    assert execute(config, tmp_path / "p.sqlite", progress=False) is not None
    assert len(ProgramDB(tmp_path / "p.sqlite").programs()) == 20
    misspelt = SearchConfig(engine=EngineConfig(budget=20, islands=2, workers=2, map_elites="msee"))
    refused = r"--map-elites msee: task fit-points's judge reports no such number; it reports mse$"
    with pytest.raises(UserError, match=refused):
        execute(misspelt, tmp_path / "q.sqlite", progress=False)
    assert len(ProgramDB(tmp_path / "q.sqlite").programs()) == 1  # stopped at its template


def test_the_bandit_pulls_the_arm_that_yields() -> None:
    bandit = Bandit(["good", "bad"])
    for _ in range(200):
        arm = bandit.choose()
        bandit.update(arm, 1.0 if arm == "good" and bandit.pulls["good"] % 2 == 0 else 0.0)
    assert bandit.pulls["good"] > 2 * bandit.pulls["bad"]
    assert bandit.yields()["good"] > bandit.yields()["bad"]


@pytest.mark.parametrize("cost", ["second", "money"])
def test_a_costly_arm_must_yield_more_to_be_pulled_as_often(cost: str) -> None:
    """Two models improve on every other pull; one costs ten times as much per pull. Counted per
    proposal they are alike; per second or per unit of money the cheap one is pulled far more."""
    for unit, expect_cheap_ahead in ((cost, True), ("proposal", False)):
        bandit = Bandit(["cheap", "dear"], cost=unit)
        for _ in range(300):
            arm = bandit.choose()
            bandit.update(arm, float(bandit.pulls[arm] % 2 == 0), 1.0 if arm == "cheap" else 10.0)
        ratio = bandit.pulls["cheap"] / bandit.pulls["dear"]
        assert (ratio > 3) == expect_cheap_ahead, (unit, bandit.pulls)
        assert all(0.0 <= v <= 1.0 for v in bandit.values().values())
    with pytest.raises(UserError, match="bandit cost 'tokens'"):
        Bandit(["a"], cost="tokens")


def test_mutations_stay_parsable_and_within_the_size_cap() -> None:
    proposer = MutationProposer(FIT_POINTS, max_size=60)
    rng = np.random.default_rng(0)
    parents = [member(1, -1.0), Member(2, -0.5, 20, TEMPLATE.replace("0.5 * x", "np.sin(x) + x"))]
    for _ in range(50):
        proposal = proposer.propose(parents, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. "'float' object is not callable"
            compile(proposal.source, "p", "exec")
        assert "def f(x)" in proposal.source and proposal.parents == (1, 2)


def _answering(proposer: LLMProposer, parents: list[Member], text: str, finish: str = "stop") -> LLMProposer:
    """The proposer with a replayed model that gives `text` to the question it will ask."""
    mode, request = proposer.request(parents)
    record = CallRecord(mode, request, text, 10, 5, 0.1, "double", finish)
    return LLMProposer(ReplayClient(Replay([record])), proposer.task, mode=proposer.mode, chat=proposer.chat)


@pytest.mark.parametrize(
    ("mode", "chat", "answer"),
    [
        ("whole", True, "Better:\n```python\ndef f_v2(x):\n    return np.sin(x) * x\n```"),
        ("diff", True, "<<<<<<< SEARCH\n    return 0.5 * x\n=======\n    return np.sin(x) * x\n>>>>>>> REPLACE"),
        ("whole", False, "x):\n    return np.sin(x) * x\n\n\ndef f_v3(x):\n    return x"),
    ],
    ids=["whole-function chat", "search-replace diff", "completion"],
)
def test_llm_answers_become_programs(mode: str, chat: bool, answer: str) -> None:
    parents = [member(1, -2.0), member(2, -1.0)]
    unused = ReplayClient(Replay([CallRecord("chat", {}, "", 0, 0, 0, "")]))
    proposer = _answering(LLMProposer(unused, FIT_POINTS, mode=mode, chat=chat), parents, answer)
    proposal = proposer.propose(parents, np.random.default_rng(0))
    assert "return np.sin(x) * x" in proposal.source and "def f(x)" in proposal.source
    assert "import numpy as np" in proposal.source
    assert proposal.call is not None and proposal.call.text == answer


def test_the_prompt_shows_parents_worse_to_better() -> None:
    proposer = LLMProposer(ReplayClient(Replay([CallRecord("chat", {}, "", 0, 0, 0, "")])), FIT_POINTS)
    _, request = proposer.request([member(1, -2.0), member(2, -1.0)])
    question = request["messages"][1]["content"]
    assert question.index("def f_v0") < question.index("def f_v1") and "Write `f_v2`" in question


def test_an_answer_without_code_is_a_failed_proposal_that_keeps_the_call() -> None:
    parents = [member(1, -1.0)]
    base = LLMProposer(ReplayClient(Replay([CallRecord("chat", {}, "", 0, 0, 0, "")])), FIT_POINTS)
    proposer = _answering(base, parents, "I am sorry, I cannot do that.")
    with pytest.raises(ProposalError) as caught:
        proposer.propose(parents, np.random.default_rng(0))
    assert isinstance(caught.value, CodeError) and caught.value.call.text.startswith("I am sorry")


@pytest.mark.parametrize(
    ("mode", "chat", "answer"),
    [
        ("whole", True, "Better:\n```python\ndef f_v2(x):\n    y = np.sin(x)\n    return y *"),
        ("whole", True, "def f_v2(x):\n    y = np.sin(x)\n    z = y *"),  # unfenced: the cut line would be dropped
        ("diff", True, "<<<<<<< SEARCH\n    return 0.5 * x\n=======\n    return np.sin(x) * x\n>>>>>>> REPLACE\n<<<"),
        ("whole", False, "x):\n    y = np.sin(x)\n    return y"),
    ],
    ids=["fenced, cut", "unfenced, cut", "diff, cut", "completion, cut"],
)
def test_an_answer_cut_at_the_token_limit_is_refused_as_truncated(mode: str, chat: bool, answer: str) -> None:
    parents = [member(1, -2.0), member(2, -1.0)]
    unused = ReplayClient(Replay([CallRecord("chat", {}, "", 0, 0, 0, "")]))
    proposer = _answering(LLMProposer(unused, FIT_POINTS, mode=mode, chat=chat), parents, answer, "length")
    with pytest.raises(ProposalError, match="truncated: the answer hit the token limit"):
        proposer.propose(parents, np.random.default_rng(0))


def test_a_cut_answer_whose_code_block_closed_before_the_cut_is_used() -> None:
    parents = [member(1, -2.0), member(2, -1.0)]
    unused = ReplayClient(Replay([CallRecord("chat", {}, "", 0, 0, 0, "")]))
    answer = "```python\ndef f_v2(x):\n    return np.sin(x) * x\n```\nThis works because the sine"
    proposer = _answering(LLMProposer(unused, FIT_POINTS), parents, answer, "length")
    assert "return np.sin(x) * x" in proposer.propose(parents, np.random.default_rng(0)).source
