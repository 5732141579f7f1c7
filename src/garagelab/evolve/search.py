"""A search as a run: configuration, proposers, pool and model server wired to the engine.

`start` creates `runs/evolve/<stamp>-<name>/` holding `config.json`, `programs.sqlite` (every
program, evaluation and model call), `metrics.csv` (one row per evaluation) and `index.html`
(the live view, reloading itself while the run goes on). `resume` reopens the same directory
and continues from the database: kill -9 at any moment loses nothing evaluated.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from garagelab.core.cliargs import check_new_total
from garagelab.core.errors import UserError
from garagelab.core.runs import Run, RunStore
from garagelab.evolve.database import Program, ProgramDB
from garagelab.evolve.engine import Engine, EngineConfig
from garagelab.evolve.islands import Member
from garagelab.evolve.live import write_live
from garagelab.evolve.pool import LocalPool, Pool, RayPool
from garagelab.evolve.proposers import LLMProposer, MutationProposer, Proposer, replay_proposer
from garagelab.evolve.sandbox import Outcome
from garagelab.evolve.task import Task, get_task
from garagelab.llm.client import ClientConfig, LLMClient
from garagelab.llm.records import CallRecord, read_jsonl

PROPOSERS = ("mutation", "llm", "replay")
DB_NAME = "programs.sqlite"
LIVE_EVERY_S = 2.0


@dataclass(frozen=True)
class Endpoint:
    """One model a search may ask: the bandit chooses between them (and the other proposers)
    per proposal, as proposers named after them."""

    name: str
    llm: str = "local"  # "local" (garagelab starts llama-server) or an OpenAI-compatible base URL
    model: str = ""  # local: a built-in GGUF name or a .gguf path; remote: the model id
    api_key_env: str = ""
    price: tuple[float, float] = (0.0, 0.0)  # money per million prompt, completion tokens
    rate_limit: float = 0.0  # calls per minute (0: none)

    def model_id(self) -> str:
        """The model its calls ask for (what its price is keyed by)."""
        if self.llm == "local":
            from garagelab.llm.install import DEFAULT_MODEL, model_path

            return model_path(self.model or DEFAULT_MODEL).stem
        return self.model

    @classmethod
    def from_dict(cls, data: dict) -> Endpoint:
        return cls(**{**data, "price": tuple(data.get("price", (0.0, 0.0)))})

    def check(self) -> None:
        if self.llm != "local" and not self.llm.startswith(("http://", "https://")):
            raise UserError(f"model {self.name}: llm {self.llm!r}: give 'local' or a base URL (http://host:port/v1)")
        if self.llm != "local" and not self.model:
            raise UserError(f"model {self.name}: a remote endpoint needs its model id")
        if len(self.price) != 2 or not all(math.isfinite(v) and v >= 0 for v in [*self.price, self.rate_limit]):
            raise UserError(f"model {self.name}: price (two numbers) and rate_limit must be finite and >= 0")


def read_endpoints(path: str) -> tuple[Endpoint, ...]:
    """Endpoints from a JSON list of {name, llm, model, api_key_env, price: [prompt, completion], rate_limit}."""
    try:
        entries = json.loads(Path(path).read_text())
        endpoints = tuple(Endpoint.from_dict(entry) for entry in entries)
    except (OSError, json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise UserError(
            f"--models {path}: not a JSON list of model endpoints ({exc}); see docs/evolve/README.md"
        ) from exc
    if not endpoints:
        raise UserError(f"--models {path}: no endpoints listed")
    return endpoints


@dataclass(frozen=True)
class SearchConfig:
    task: str = "fit-points"
    proposers: tuple[str, ...] = ("mutation",)
    engine: EngineConfig = field(default_factory=EngineConfig)
    llm: str = "local"  # "local" (garagelab starts llama-server) or an OpenAI-compatible base URL
    model: str = ""  # local: a built-in GGUF name or a .gguf path; remote: the model id
    api_key_env: str = ""  # the environment variable holding the key of a remote endpoint
    llm_mode: str = "whole"  # "whole" function or "diff" (SEARCH/REPLACE) answers
    completion: bool = False  # completion mode (base models) instead of chat
    temperature: float = 0.8
    max_tokens: int = 384
    rate_limit: float = 0.0  # model calls per minute (0: none)
    replay: str = ""  # a run directory, programs.sqlite or .jsonl whose model calls are replayed
    endpoints: tuple[Endpoint, ...] = ()  # several models (--models): each a proposer, instead of llm/model
    pool: str = "local"  # "local" processes or "ray"
    ray_address: str = ""  # empty: a local Ray instance

    def __post_init__(self) -> None:
        unknown = [p for p in self.proposers if p not in PROPOSERS]
        if unknown or not self.proposers:
            raise UserError(f"proposers {','.join(unknown) or '(none)'}: choose from {', '.join(PROPOSERS)}")
        if "replay" in self.proposers and not self.replay:
            raise UserError("the replay proposer needs --replay RUN_DIR|FILE")
        if self.llm_mode not in ("whole", "diff"):
            raise UserError(f"--llm-mode {self.llm_mode!r}: choose whole or diff")
        if self.pool not in ("local", "ray"):
            raise UserError(f"--pool {self.pool!r}: choose local or ray")
        if min(self.engine.budget, self.engine.islands, self.engine.workers, self.engine.samplers) < 1:
            raise UserError("budget, islands, workers and samplers must each be at least 1")
        engine = self.engine
        limits = {
            "--token-budget": engine.max_model_tokens,
            "--cost-budget": engine.max_cost,
            "--time-budget": engine.max_minutes,
            "--rate-limit": self.rate_limit,
        }
        for flag, value in {**limits, "--price": min(engine.price_per_mtok)}.items():
            if not math.isfinite(value) or value < 0:
                raise UserError(f"{flag} must be a finite number >= 0 (0: no limit), got {value}")
        if engine.max_cost and not any(engine.price_per_mtok) and not any(any(e.price) for e in self.endpoints):
            raise UserError("--cost-budget needs --price PROMPT,COMPLETION (money per million tokens) to count a cost")
        if self.endpoints:
            for endpoint in self.endpoints:
                if not endpoint.name or endpoint.name in (*PROPOSERS, "template"):
                    raise UserError(f"--models: name {endpoint.name!r}: give a name other than {', '.join(PROPOSERS)}")
                endpoint.check()
            names = [e.name for e in self.endpoints]
            if len(set(names)) < len(names):
                raise UserError(f"--models: endpoint names must differ ({', '.join(names)})")
            if "llm" not in self.proposers:
                raise UserError("--models lists endpoints for the llm proposer: add llm to --proposers")

    def model_endpoints(self) -> tuple[Endpoint, ...]:
        """The models the llm proposer asks: --models, or the one of --llm/--model (named "llm")."""
        if "llm" not in self.proposers:
            return ()
        single = Endpoint("llm", self.llm, self.model, self.api_key_env, self.engine.price_per_mtok, self.rate_limit)
        return self.endpoints or (single,)

    def engine_config(self) -> EngineConfig:
        """The engine's configuration with each endpoint's price by the model its calls ask for."""
        prices = {e.model_id(): e.price for e in self.model_endpoints() if any(e.price)}
        return replace(self.engine, prices=prices)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SearchConfig:
        try:
            engine = EngineConfig(**data.get("engine", {}))
            rest = {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name != "engine"}
            rest["proposers"] = tuple(rest.get("proposers", ("mutation",)))
            rest["endpoints"] = tuple(Endpoint.from_dict(entry) for entry in rest.get("endpoints", ()))
            return cls(engine=engine, **rest)
        except TypeError as exc:
            raise UserError(f"the run's config.json does not describe a search ({exc})") from exc


def recorded_calls(source: str) -> list[CallRecord]:
    """Model calls to replay, from a run directory, its programs.sqlite, or a .jsonl file."""
    path = Path(source)
    if path.is_dir():
        path = path / DB_NAME
    if path.suffix == ".jsonl":
        return read_jsonl(path)
    if not path.is_file():
        raise UserError(f"{source}: no recording there (give a run directory, a programs.sqlite or a .jsonl)")
    db = ProgramDB(path)
    try:
        return db.calls()
    finally:
        db.close()


@contextlib.contextmanager
def model_client(endpoint: Endpoint, config: SearchConfig) -> Iterator[LLMClient]:
    """A client for one endpoint; for "local", a llama-server run for the search."""
    settings = {
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "concurrency": config.engine.samplers,
        "calls_per_minute": endpoint.rate_limit,
    }
    if endpoint.llm == "local":
        from garagelab.llm.install import DEFAULT_MODEL
        from garagelab.llm.server import LocalServer

        with LocalServer(endpoint.model or DEFAULT_MODEL, slots=config.engine.samplers) as server:
            yield LLMClient(server.client_config(**settings))
        return
    endpoint.check()
    yield LLMClient(
        ClientConfig(base_url=endpoint.llm, model=endpoint.model, api_key_env=endpoint.api_key_env, **settings)
    )


def _pool(config: SearchConfig) -> Pool:
    if config.pool == "ray":
        return RayPool(config.engine.workers, config.ray_address or None)
    return LocalPool(config.engine.workers)


@contextlib.contextmanager
def _proposers(config: SearchConfig, task: Task) -> Iterator[dict[str, Proposer]]:
    proposers: dict[str, Proposer] = {}
    options = {"mode": config.llm_mode, "chat": not config.completion}
    if "mutation" in config.proposers:
        proposers["mutation"] = MutationProposer(task, config.engine.max_size)
    if "replay" in config.proposers:
        proposers["replay"] = replay_proposer(recorded_calls(config.replay), task, **options)
    with contextlib.ExitStack() as stack:
        for endpoint in config.model_endpoints():
            client = stack.enter_context(model_client(endpoint, config))
            proposers[endpoint.name] = LLMProposer(client, task, name=endpoint.name, **options)
        yield proposers


class _Observer:
    """After each evaluation: a metrics row, the headline, and (throttled) the live page."""

    def __init__(self, run: Run | None, directory: Path, title: str) -> None:
        self.run = run
        self.directory = directory
        self.title = title
        self.last_write = 0.0
        self.interval = LIVE_EVERY_S  # grows so that drawing the page takes at most a tenth of the time

    def __call__(self, engine: Engine, program: Program, outcome: Outcome) -> None:
        best = engine.best()
        if self.run is not None:
            self.run.log(
                evaluation=engine.evaluated(),
                program=program.id,
                proposer=program.proposer,
                score=outcome.score if outcome.ok else "",
                failure=outcome.failure,
                seconds=round(outcome.seconds, 3),
                best=best.score if best else "",
            )
        if time.monotonic() - self.last_write > self.interval:
            self.write(engine, live=True)

    def write(self, engine: Engine, live: bool) -> Path:
        start = time.monotonic()
        if self.run is not None and (best := engine.best()) is not None:
            self.run.set_headline(best=round(best.score, 6), evaluations=engine.evaluated())
        page = write_live(engine.db, self.directory, self.title, live=live, bandit=engine.bandit)
        self.last_write = time.monotonic()
        self.interval = max(LIVE_EVERY_S, 10 * (self.last_write - start))
        return page


def execute(
    config: SearchConfig,
    db_path: Path,
    run: Run | None = None,
    progress: bool = True,
    name: str = "",
    task: Task | None = None,
) -> Member | None:
    """Run (or continue) the search stored at `db_path` until its budget of evaluations.
    `task`: one built for this run (a system's task bound to its data) instead of a registered one."""
    task = task or get_task(config.task)
    db = ProgramDB(db_path)
    db.start_run(name, task.name, config.to_dict())
    stored = db.config()["config"]
    if SearchConfig.from_dict(stored).task != config.task:
        raise UserError(f"{db_path} holds a search for task {stored['task']}, not {config.task}")
    pool = _pool(config)
    observer = _Observer(run, db_path.parent, f"search: {task.name}")
    try:
        with _proposers(config, task) as proposers:
            engine = Engine(
                task, db, config.engine_config(), proposers, pool, on_evaluation=observer, progress=progress
            )
            try:
                best = engine.run()
            finally:
                observer.write(engine, live=False)
            if engine.stopped:  # said where a person and a script both see it
                print(f"search stopped early: {engine.stopped}; resume it with a larger budget", file=sys.stderr)
                if run is not None:
                    run.set_headline(stopped=engine.stopped)
    finally:
        pool.shutdown()
        db.close()
    return best


def start(config: SearchConfig, name: str = "", store: RunStore | None = None, progress: bool = True) -> Path:
    """A new search run; returns its directory."""
    store = store or RunStore()
    get_task(config.task)  # a clear error before a directory is made
    with store.start("evolve", name or config.task, config.to_dict()) as run:
        execute(config, run.path / DB_NAME, run, progress, name or config.task)
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
    if record.system != "evolve":
        raise UserError(f"run {record.label} is a {record.system} run, not an evolve search")
    config = extended(SearchConfig.from_dict(store.read_config(record)), budget, limits, record.path)
    with store.reopen(key) as run:
        (run.path / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        execute(config, run.path / DB_NAME, run, progress)
    return run.path


def extended(
    config: SearchConfig, budget: int | None, limits: dict[str, float] | None, directory: Path
) -> SearchConfig:
    """`config` with a resume's new evaluation `budget` and spend `limits` (those given). A budget
    not above the evaluations the run in `directory` has made is refused (`check_new_total`)."""
    database = Path(directory) / DB_NAME
    if budget is not None and database.is_file():
        db = ProgramDB(database)
        try:
            done = db.evaluated_count()
        finally:
            db.close()
        check_new_total("--budget", budget, done, f"the search has made {done:,} evaluations")
    changes = {**({"budget": budget} if budget is not None else {}), **(limits or {})}
    return replace(config, engine=replace(config.engine, **changes)) if changes else config


def open_db(key: str, store: RunStore | None = None) -> ProgramDB:
    """The program database of a run (by id or directory name) or at a path."""
    path = Path(key)
    if not path.is_file():  # a run directory, id or name rather than the database file itself
        path = (store or RunStore()).directory(key) / DB_NAME
    if not path.is_file():
        raise UserError(f"{path}: no program database (the run has not evaluated anything yet)")
    return ProgramDB(path)
