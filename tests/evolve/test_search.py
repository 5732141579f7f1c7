"""Searches end to end: with the local model server, replayed from its recording, on a local
Ray instance; the live view and the CLI verbs."""

from __future__ import annotations

import http.server
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from garagelab.cli import main
from garagelab.core.errors import UserError
from garagelab.evolve.database import ProgramDB
from garagelab.evolve.engine import EngineConfig
from garagelab.evolve.live import summarize
from garagelab.evolve.search import Endpoint, SearchConfig, execute
from garagelab.evolve.tasks.fit_points import FIT_POINTS, TEMPLATE
from garagelab.llm.server import available


@pytest.fixture(scope="module")
def llm_search(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small search whose proposals all come from the local model."""
    if not available():
        pytest.fail("the local model stack is missing: run `python -m garagelab.llm.install` (make test does)")
    path = tmp_path_factory.mktemp("llm") / "programs.sqlite"
    engine = EngineConfig(budget=7, islands=2, workers=2, seed=2, max_failed_proposals=12)
    execute(SearchConfig(proposers=("llm",), engine=engine, max_tokens=200), path, progress=False)
    return path


def test_a_search_with_the_local_model_goes_end_to_end(llm_search: Path) -> None:
    db = ProgramDB(llm_search)
    calls, programs = db.calls(), db.programs()
    assert len(calls) >= len(programs) - 1 >= 1  # every proposal came from a recorded model call
    assert all(c.completion_tokens > 0 and c.latency_s > 0 for c in calls)
    assert {p.proposer for p in programs} == {"template", "llm"}
    assert all(p.evaluated for p in programs)
    assert "Versions of `f`" in calls[0].request["messages"][1]["content"]


def test_a_recorded_search_replays_without_a_model(llm_search: Path, tmp_path: Path) -> None:
    recorded = ProgramDB(llm_search).programs()
    engine = EngineConfig(budget=3, islands=2, workers=1, seed=2, max_failed_proposals=12)
    config = SearchConfig(proposers=("replay",), replay=str(llm_search), engine=engine, max_tokens=200)
    execute(config, tmp_path / "programs.sqlite", progress=False)
    db = ProgramDB(tmp_path / "programs.sqlite")
    replayed, answers = db.programs(), db.calls()
    assert {p.proposer for p in replayed} <= {"template", "replay"} and len(replayed) >= 2
    # every answer is a recorded one (the programs built from them may differ: the recording ran
    # two workers, so a replay asks its questions in another order and gets other answers to them)
    assert answers and {c.text for c in answers} <= {c.text for c in ProgramDB(llm_search).calls()}
    assert {p.source for p in replayed if p.proposer == "template"} <= {p.source for p in recorded}


@pytest.mark.slow
def test_the_ray_pool_evaluates_in_the_same_sandbox() -> None:
    pytest.importorskip("ray")
    from garagelab.evolve.pool import RayPool

    pool = RayPool(workers=2)
    try:
        good = pool.submit(FIT_POINTS, FIT_POINTS.template, frozenset())
        loop = FIT_POINTS.template.replace("return 0.5 * x", "while True:\n        pass")
        hostile = pool.submit(FIT_POINTS, loop, frozenset())
        assert good.result(timeout=120).ok
        assert hostile.result(timeout=120).failure == "timeout"
    finally:
        pool.shutdown()


def test_a_search_on_a_local_ray_instance(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    config = SearchConfig(pool="ray", engine=EngineConfig(budget=12, islands=2, workers=2, seed=4))
    best = execute(config, tmp_path / "programs.sqlite", progress=False)
    assert best is not None and summarize(ProgramDB(tmp_path / "programs.sqlite")).evaluated == 12


def test_cli_run_status_best_export_and_the_live_page(runs_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["evolve", "run", "--budget", "15", "--islands", "2", "--name", "cli"]) == 0
    run_dir = next(runs_dir.glob("evolve/*-cli"))
    page = (run_dir / "index.html").read_text()
    assert "progress.png" in page and "Best program" in page and 'http-equiv="refresh"' not in page
    assert (run_dir / "metrics.csv").read_text().count("\n") == 1 + 15  # header and one row per evaluation
    capsys.readouterr()
    assert main(["evolve", "status", str(run_dir)]) == 0
    assert "islands" in capsys.readouterr().out
    assert main(["evolve", "best", "1", "--top", "2"]) == 0
    assert capsys.readouterr().out.count("# program") == 2
    assert main(["evolve", "export", "1", "--out", str(tmp_path / "best.py")]) == 0
    assert "def f(x)" in (tmp_path / "best.py").read_text()
    assert main(["evolve", "export", "1", "--out", str(tmp_path / "all.jsonl")]) == 0
    lines = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert len(lines) == 15 and all(line["kind"] == "program" for line in lines)


class ModelStub(http.server.BaseHTTPRequestHandler):
    """Test double for a hosted model: answers at once with the fit-points program and a new
    constant (no answer repeats another), 100 prompt and 50 completion tokens, as the model asked."""

    constants = itertools.count(1)

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        program = TEMPLATE.replace("0.5 * x", f"{0.5 + next(ModelStub.constants) * 1e-3:.4f} * x")
        body = {
            "model": request["model"],
            "choices": [{"message": {"content": f"```python\n{program}```"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50},
        }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def two_models(tmp_path: Path) -> Iterator[Path]:
    """A --models file naming two stub endpoints, one ten times dearer than the other."""
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), ModelStub) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoints = [
        {
            "name": name,
            "llm": f"http://127.0.0.1:{server.server_address[1]}/v1",
            "model": f"{name}-model",
            "price": price,
        }
        for name, server, price in zip(("cheap", "dear"), servers, ([1.0, 2.0], [10.0, 20.0]), strict=True)
    ]
    path = tmp_path / "models.json"
    path.write_text(json.dumps(endpoints))
    yield path
    for server in servers:
        server.shutdown()


def test_several_models_in_one_search_each_at_its_price(runs_dir: Path, two_models: Path, capsys) -> None:
    argv = ["evolve", "run", "--proposers", "llm", "--models", str(two_models), "--budget", "12", "--islands", "1"]
    assert main([*argv, "--samplers", "2", "--bandit-cost", "money", "--name", "two"]) == 0
    run_dir = next(runs_dir.glob("evolve/*-two"))
    db = ProgramDB(run_dir / "programs.sqlite")
    by_proposer = {p.proposer for p in db.programs()}
    assert by_proposer == {"template", "cheap", "dear"}  # the bandit asked both
    rows = {row["model"]: row for row in summarize(db).llm["models"]}
    assert set(rows) == {"cheap-model", "dear-model"}
    for model, (prompt_price, completion_price) in (("cheap-model", (1.0, 2.0)), ("dear-model", (10.0, 20.0))):
        row = rows[model]
        assert row["cost"] == pytest.approx((100 * prompt_price + 50 * completion_price) * row["calls"] / 1e6)
    assert summarize(db).llm["cost"] == pytest.approx(sum(row["cost"] for row in rows.values()))
    capsys.readouterr()
    assert main(["evolve", "status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "cheap-model" in out and "dear-model" in out and "dear" in out


@pytest.mark.parametrize(
    ("endpoints", "proposers", "message"),
    [
        ((Endpoint("mutation"),), ("llm",), "give a name other than"),
        ((Endpoint("a"), Endpoint("a")), ("llm",), "names must differ"),
        ((Endpoint("a"),), ("mutation",), "add llm to --proposers"),
        ((Endpoint("a", "http://h/v1"),), ("llm",), "needs its model id"),
        ((Endpoint("a", price=(-1.0, 0.0)),), ("llm",), "must be finite and >= 0"),
    ],
)
def test_bad_model_lists_are_refused_with_the_reason(endpoints: tuple, proposers: tuple, message: str) -> None:
    with pytest.raises(UserError, match=message):
        SearchConfig(proposers=proposers, endpoints=endpoints)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evolve", "run", "--task", "nope"], "invalid choice"),
        (["evolve", "run", "--proposers", "mutation,magic"], "proposers magic"),
        (["evolve", "run", "--proposers", "replay"], "needs --replay"),
        (["evolve", "run", "--proposers", "llm", "--llm", "ftp://x"], "base URL"),
        (["evolve", "run", "--proposers", "replay", "--replay", "/nonexistent"], "no recording"),
        (["evolve", "status", "42"], "no run '42'"),
        (["evolve", "export", "1", "--out", "x.txt"], "give a .py"),
        (["evolve", "run", "--cost-budget", "2"], "--cost-budget needs --price"),
        (["evolve", "run", "--token-budget", "-5"], "--token-budget must be a finite number >= 0"),
        (["evolve", "run", "--reset-every", "-3"], "--reset-every: -3 must be at least 0"),  # was run
        (["evolve", "run", "--temperature", "nan"], "--temperature: nan must be a number of at least 0"),
        (["evolve", "run", "--price", "1"], "give PROMPT,COMPLETION prices"),
        (["evolve", "run", "--proposers", "llm", "--models", "/nonexistent.json"], "not a JSON list of model"),
        (["evolve", "run", "--workers", "10000"], "--workers 10000 is more than"),  # started hundreds at once
    ],
)
def test_bad_input_is_one_clear_line(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_the_live_page_reloads_itself_while_running(tmp_path: Path) -> None:
    from garagelab.evolve.live import write_live

    execute(SearchConfig(engine=EngineConfig(budget=4, islands=1, workers=1)), tmp_path / "p.sqlite", progress=False)
    db = ProgramDB(tmp_path / "p.sqlite")
    page = write_live(db, tmp_path, "search", live=True).read_text()
    assert 'http-equiv="refresh"' in page and "running" in page and (tmp_path / "progress.png").stat().st_size > 0


def test_a_spent_budget_stops_the_search_cleanly_and_resume_raises_it(llm_search: Path, tmp_path: Path, capsys) -> None:
    """Token, money and time budgets: proposing stops once one is spent (the evaluation in flight
    finishes), the spend is restored from the database on resume, and a larger budget goes on."""
    path = tmp_path / "programs.sqlite"
    engine = EngineConfig(budget=6, islands=2, workers=1, seed=2, max_failed_proposals=12, max_model_tokens=1)
    config = SearchConfig(proposers=("replay", "mutation"), replay=str(llm_search), engine=engine, max_tokens=200)
    execute(config, path, progress=False)
    first = summarize(ProgramDB(path)).evaluated
    assert len(ProgramDB(path).calls()) == 1 and 2 <= first < 6  # one (replayed) call spent it
    assert "search stopped early: model token budget spent" in capsys.readouterr().err
    execute(config, path, progress=False)  # the same budget: spent already, nothing proposed
    assert summarize(ProgramDB(path)).evaluated == first and len(ProgramDB(path).calls()) == 1
    larger = replace(config, engine=replace(engine, max_model_tokens=10**9))
    execute(larger, path, progress=False)
    assert summarize(ProgramDB(path)).evaluated == 6
    capsys.readouterr()

    priced = replace(engine, max_model_tokens=0, price_per_mtok=(1e6, 1e6), max_cost=1.0)  # a token costs 1
    execute(replace(config, engine=priced), tmp_path / "priced.sqlite", progress=False)
    priced_db = ProgramDB(tmp_path / "priced.sqlite")
    assert len(priced_db.calls()) == 1
    assert "cost budget spent" in capsys.readouterr().err
    # the live page and `evolve status` show the money spent at the search's price
    (call,) = priced_db.calls()
    assert summarize(priced_db).llm["cost"] == pytest.approx(call.prompt_tokens + call.completion_tokens)
    assert "cost" not in summarize(ProgramDB(path)).llm  # no price, no cost

    timed = EngineConfig(budget=6, islands=2, workers=1, max_minutes=1e-9)
    execute(SearchConfig(engine=timed), tmp_path / "timed.sqlite", progress=False)
    assert summarize(ProgramDB(tmp_path / "timed.sqlite")).evaluated == 1  # the template, then time is up
    assert "time budget spent" in capsys.readouterr().err
