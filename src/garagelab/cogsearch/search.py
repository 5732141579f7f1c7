"""A cognitive-model search as a run: split the data, bind the task, run the evolve engine.

`runs/cogsearch/<stamp>-<name>/` holds `config.json`, `search_data.npz` (the subjects the search
fits and scores), `heldout_data.npz` (subjects it never sees, for the report), the engine's
`programs.sqlite`, `metrics.csv` and live `index.html`, and after the report `report.html`
and `report.json`. `resume` continues from the database: nothing evaluated is lost.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from garagelab.cogsearch.data import BehaviourDataset, load_npz, load_source
from garagelab.cogsearch.task import build_task
from garagelab.core.errors import UserError
from garagelab.core.runs import RunStore
from garagelab.evolve.engine import EngineConfig
from garagelab.evolve.search import DB_NAME, SearchConfig, execute, extended
from garagelab.evolve.task import Task

SEARCH_DATA, HELDOUT_DATA = "search_data.npz", "heldout_data.npz"
# Scores are likelihoods a few thousandths apart: sample parents at a matching temperature.
ENGINE = EngineConfig(budget=200, islands=2, temperature=0.005, temperature_period=100)


@dataclass(frozen=True)
class CogSearchConfig:
    data: str  # see data.SOURCES
    heldout: float = 1 / 3  # fraction of subjects held out (a fly folder brings its own split)
    # search fits are a screening: one restart (from the middle of every range), at most 300
    # steps; held out, they score as well as 2 restarts x 500 steps on the fly set (per-subject
    # fits overfit with more steps) at ~60 % of the time. The report refits with REPORT_FIT.
    restarts: int = 1
    max_steps: int = 300
    seed: int = 0
    search: SearchConfig = field(default_factory=lambda: SearchConfig(task="cogsearch", engine=ENGINE))

    def __post_init__(self) -> None:
        if self.restarts < 1 or self.max_steps < 100:
            raise UserError("--restarts must be at least 1 and --max-steps at least 100")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CogSearchConfig:
        try:
            return cls(**{**data, "search": SearchConfig.from_dict(data.get("search", {"task": "cogsearch"}))})
        except TypeError as exc:
            raise UserError(f"the run's config.json does not describe a cogsearch run ({exc})") from exc


def run_task(directory: Path, config: CogSearchConfig) -> Task:
    """The task of a run, bound to its saved search subjects."""
    path = directory / SEARCH_DATA
    if not path.is_file():
        raise UserError(f"{path} is missing; the run directory was altered")
    return build_task(path, load_npz(path), config.restarts, config.max_steps)


def prepare(directory: Path, config: CogSearchConfig, split: tuple[BehaviourDataset, BehaviourDataset]) -> Task:
    """Save the (search, held-out) split into `directory` and bind the task to it."""
    search, heldout = split
    search.save_npz(directory / SEARCH_DATA)
    heldout.save_npz(directory / HELDOUT_DATA)
    return run_task(directory, config)


def start(config: CogSearchConfig, name: str = "", store: RunStore | None = None, progress: bool = True) -> Path:
    """A new search run; returns its directory."""
    store = store or RunStore()
    split = load_source(config.data, config.heldout, config.seed)  # a clear error before a directory exists
    with store.start("cogsearch", name or "search", config.to_dict()) as run:
        task = prepare(run.path, config, split)
        execute(config.search, run.path / DB_NAME, run, progress, name or "cogsearch", task=task)
    return run.path


def resume(
    key: str,
    store: RunStore | None = None,
    progress: bool = True,
    budget: int | None = None,
    limits: dict[str, float] | None = None,
) -> Path:
    """Continue an interrupted search (or extend a finished one with a larger `budget`, or
    `limits`: new values of EngineConfig's max_model_tokens, max_cost, max_minutes)."""
    store = store or RunStore()
    record = store.get(key)
    if record.system != "cogsearch":
        raise UserError(f"run {record.label} is a {record.system} run, not a cogsearch search")
    config = CogSearchConfig.from_dict(store.read_config(record))
    config = replace(config, search=extended(config.search, budget, limits, record.path))
    with store.reopen(key) as run:
        (run.path / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        execute(config.search, run.path / DB_NAME, run, progress, task=run_task(run.path, config))
    return run.path
