"""A search as a run through the CLI: start, resume, report; the prompt a model would get."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from garagelab.cli import main
from garagelab.cogsearch.data import load_source
from garagelab.cogsearch.programs import BASELINES, SEED
from garagelab.cogsearch.search import ENGINE, CogSearchConfig, prepare
from garagelab.cogsearch.simulate import generate
from garagelab.cogsearch.task import build_task
from garagelab.evolve.database import ProgramDB
from garagelab.evolve.islands import Member
from garagelab.evolve.proposers import LLMProposer
from garagelab.evolve.search import SearchConfig, execute

TINY = ["--restarts", "1", "--max-steps", "100", "--no-report", "--seed", "3"]


@pytest.mark.slow
def test_run_resume_report(runs_dir: Path, capsys) -> None:
    assert main(["cogsearch", "run", "--data", "synthetic:q-learning:6", "--budget", "4", "--name", "t", *TINY]) == 0
    (directory,) = (runs_dir / "cogsearch").iterdir()
    assert {"search_data.npz", "heldout_data.npz", "programs.sqlite", "index.html"} <= {
        p.name for p in directory.iterdir()
    }
    assert ProgramDB(directory / "programs.sqlite").evaluated_count() == 4
    assert main(["cogsearch", "resume", directory.name, "--budget", "6", "--time-budget", "30", "--no-report"]) == 0
    assert ProgramDB(directory / "programs.sqlite").evaluated_count() == 6
    # a smaller total would rewrite the run's config.json to a budget below what it evaluated
    assert main(["cogsearch", "resume", directory.name, "--budget", "5", "--no-report"]) == 2
    assert "the search has made 6 evaluations; --budget is the new total" in capsys.readouterr().err
    assert json.loads((directory / "config.json").read_text())["search"]["engine"]["budget"] == 6
    # the resume's budgets are stored with the run, so the next resume keeps them
    assert json.loads((directory / "config.json").read_text())["search"]["engine"]["max_minutes"] == 30
    assert main(["cogsearch", "report", str(directory), "--top", "1", "--no-gru"]) == 0
    report = json.loads((directory / "report.json").read_text())
    names = {m["name"] for m in report["models"]}
    assert set(BASELINES) <= names and any(m["kind"] == "discovered" for m in report["models"])
    assert all(0 < m["heldout"] < 1 and len(m["per_subject"]) == report["heldout_subjects"] for m in report["models"])
    assert (directory / "report.html").is_file() and (directory / "cogsearch-pareto.png").is_file()


def test_bad_data_is_one_line(capsys) -> None:
    assert main(["cogsearch", "run", "--data", "missing.json", "--budget", "2"]) == 2
    assert capsys.readouterr().err.strip() == "error: missing.json: no such file"
    assert main(["cogsearch", "report", "/nonexistent"]) == 2


def test_prompt_describes_the_experiment_and_shows_programs(tmp_path: Path) -> None:
    data = generate("q-learning", subjects=3, sessions=1, trials=20)
    task = build_task(data.save_npz(tmp_path / "d.npz"), data)
    parents = [Member(1, 0.61, 50, SEED), Member(2, 0.7, 80, BASELINES["forgetting-perseveration"])]
    _, body = LLMProposer(None, task).request(parents)
    prompt = body["messages"][1]["content"]
    assert "2-armed bandit" in prompt and "3 subjects" in prompt and "agent_state=None" in prompt
    assert "def agent_v0(" in prompt and "def agent_v1(" in prompt and "# score 0.7" in prompt


@pytest.mark.slow
def test_the_offline_proposer_improves_on_the_seed(tmp_path: Path) -> None:
    """One worker and a fixed seed: the same search every time. Data with forgetting and
    perseveration that Q-learning, the seed, lacks; the mechanism library brings them in."""
    engine = replace(ENGINE, budget=25, islands=1, workers=1, seed=4)
    config = CogSearchConfig(
        data="synthetic:afp:12", max_steps=300, search=SearchConfig(task="cogsearch", engine=engine)
    )
    task = prepare(tmp_path, config, load_source(config.data, config.heldout, config.seed))
    best = execute(config.search, tmp_path / "programs.sqlite", progress=False, task=task)
    db = ProgramDB(tmp_path / "programs.sqlite")
    seed = next(p for p in db.programs() if p.proposer == "template")
    assert best.score > seed.score + 0.03
    assert "params[2]" in best.source  # a mechanism with a new fitted parameter did it


@pytest.mark.slow
def test_analyze_writes_signatures_lineage_and_recovery(runs_dir: Path) -> None:
    assert main(["cogsearch", "run", "--data", "synthetic:q-learning:9", "--budget", "6", "--name", "a", *TINY]) == 0
    (directory,) = (runs_dir / "cogsearch").iterdir()
    assert main(["cogsearch", "analyze", directory.name]) == 0
    analysis = json.loads((directory / "analysis.json").read_text())
    data, *models = analysis["signatures"]
    assert data["source"] == "data" and len(models) == 4 and len(data["choice weights"]) == 5
    for row in (data, *models):
        assert 0 <= row["P(stay | loss)"] <= 1 and 0 <= row["P(stay | win)"] <= 1
    # Q-learning data: a win makes a repeat more likely than a loss, in the data and in every model
    assert all(row["P(stay | win)"] > row["P(stay | loss)"] for row in (data, *models))
    lineage = analysis["lineage"]
    assert lineage[0]["proposer"] == "template" and lineage[-1]["program"] == analysis["reference"]
    assert set(analysis["recovery"]) and (directory / "analysis.html").is_file()


@pytest.mark.slow
def test_replicated_searches_report_their_spread(runs_dir: Path, capsys) -> None:
    """--seeds K: K searches on one subject split, differing in the engine's seed, each reported,
    then the spread of their discovered programs' held-out scores beside the baselines."""
    argv = ["cogsearch", "run", "--data", "synthetic:q-learning:9", "--budget", "4", "--name", "r", "--seeds", "2"]
    assert main([*argv, "--no-gru", *[a for a in TINY if a != "--no-report"]]) == 0
    directories = sorted((runs_dir / "cogsearch").iterdir())
    assert [d.name.split("-", 2)[-1] for d in directories] == ["r-seed3", "r-seed4"]
    configs = [json.loads((d / "config.json").read_text()) for d in directories]
    assert [c["search"]["engine"]["seed"] for c in configs] == [3, 4] and configs[0]["seed"] == configs[1]["seed"]
    splits = [np.load(d / "heldout_data.npz")["choices"] for d in directories]
    np.testing.assert_array_equal(*splits)  # the same held-out subjects in every replicate
    table = (directories[0] / "replicates.md").read_text()
    assert table == (directories[1] / "replicates.md").read_text()
    assert "Discovered, over 2 replicates: held-out" in table and "| q-learning" in table.lower()
    for name in BASELINES:
        assert f"| {name} |" in table
    assert main([*argv, "--no-report"]) == 2
    assert "leave out --no-report" in capsys.readouterr().err
