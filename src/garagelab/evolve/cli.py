"""`garagelab evolve run|resume|status|best|export`."""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from garagelab.core.cliargs import examples, non_negative_float, non_negative_int, positive_int
from garagelab.core.errors import UserError

if TYPE_CHECKING:
    from garagelab.evolve.engine import EngineConfig
    from garagelab.evolve.search import SearchConfig

# evaluations at once per CPU for the local pool: an evaluation is CPU-bound, so more than a few
# per CPU only adds processes and memory
LOCAL_WORKERS_PER_CPU = 4


def register(parser: argparse.ArgumentParser) -> None:
    from garagelab.evolve.tasks import TASKS

    verbs = parser.add_subparsers(dest="verb", metavar="<verb>")
    fmt = argparse.RawDescriptionHelpFormatter

    run = verbs.add_parser(
        "run",
        help="start a program search (offline mutations, a local or remote model, or a replay)",
        description="Start a search. Its directory holds programs.sqlite (every program, evaluation and model "
        "call) and index.html, a live view that reloads itself while the search runs.",
        epilog=examples(
            "garagelab evolve run --task fit-points --budget 200",
            "garagelab evolve run --proposers mutation,llm --llm local",
            "garagelab evolve run --proposers llm --llm https://api.deepseek.com/v1 --model deepseek-chat "
            "--api-key-env DEEPSEEK_API_KEY",
            "garagelab evolve run --proposers replay --replay runs/evolve/20261127-101500-fit-points",
            "garagelab evolve run --pool ray --workers 8 --map-elites mse",
        ),
        formatter_class=fmt,
    )
    run.add_argument("--task", default="fit-points", choices=sorted(TASKS), help="what to evolve")
    run.add_argument("--name", default="", help="run name (default: the task)")
    add_search_arguments(run)
    run.set_defaults(func=_run)

    resume = verbs.add_parser(
        "resume",
        help="continue an interrupted search; nothing evaluated is lost",
        epilog=examples("garagelab evolve resume 12", "garagelab evolve resume 12 --budget 500"),
        formatter_class=fmt,
    )
    resume.add_argument("run", help="run id or directory name (`garagelab runs list --system evolve`)")
    resume.add_argument("--budget", type=positive_int, help="a new total budget of evaluations")
    add_spend_arguments(resume, default=None)
    resume.set_defaults(func=_resume)

    status = verbs.add_parser(
        "status",
        help="a search's progress: best score, islands, proposer yield, failures",
        epilog=examples("garagelab evolve status 12", "garagelab evolve status 12 --watch"),
        formatter_class=fmt,
    )
    status.add_argument("run", help="run id, directory name, or path to a run directory")
    status.add_argument("--watch", action="store_true", help="refresh every 2 s until Ctrl-C")
    status.set_defaults(func=_status)

    best = verbs.add_parser("best", help="print the best program of a search with its score")
    best.add_argument("run", help="run id, directory name, or path to a run directory")
    best.add_argument("--top", type=positive_int, default=1, help="the best N programs")
    best.set_defaults(func=_best)

    export = verbs.add_parser(
        "export",
        help="write a search's programs (and model calls) as JSON lines, or its best program as a .py",
        epilog=examples("garagelab evolve export 12 --out programs.jsonl", "garagelab evolve export 12 --out best.py"),
        formatter_class=fmt,
    )
    export.add_argument("run", help="run id, directory name, or path to a run directory")
    export.add_argument("--out", required=True, help="*.py: the best program; *.jsonl: every program and call")
    export.set_defaults(func=_export)


def add_search_arguments(parser: argparse.ArgumentParser, budget: int = 200, islands: int = 4) -> None:
    """The engine, proposer and model options (shared with the systems that search: cogsearch)."""
    parser.add_argument("--budget", type=positive_int, default=budget, help="evaluations, the template's included")
    parser.add_argument("--proposers", default="mutation", help="comma-separated: mutation, llm, replay")
    parser.add_argument("--islands", type=positive_int, default=islands)
    parser.add_argument("--workers", type=positive_int, default=2, help="evaluations in parallel")
    parser.add_argument(
        "--samplers", type=positive_int, default=1, help="proposals asked at once (model calls in flight)"
    )
    parser.add_argument("--rate-limit", type=float, default=0.0, metavar="CALLS_PER_MINUTE",
                        help="space model calls to stay within this rate (0: none)")  # fmt: skip
    parser.add_argument("--reset-every", type=non_negative_int, default=100,
                        help="evaluations between island resets (0: never)")  # fmt: skip
    parser.add_argument("--map-elites", default="", metavar="METRIC", help="select parents from a size x METRIC grid")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    add_spend_arguments(parser)
    parser.add_argument("--price", type=_price, default=(0.0, 0.0), metavar="PROMPT,COMPLETION",
                        help="money per million prompt and completion tokens, for --cost-budget")  # fmt: skip
    parser.add_argument("--llm", default="local", help="'local' (llama-server started for the run) or a base URL")
    parser.add_argument(
        "--model",
        default="",
        help="local: smollm2-135m, qwen2.5-coder-1.5b or -0.5b (after `garagelab llm install --model NAME`) "
        "or a .gguf path; remote: the model id",
    )
    parser.add_argument("--api-key-env", default="", help="environment variable with the endpoint's API key")
    parser.add_argument("--models", default="", metavar="FILE.json",
                        help="several models, each a proposer the bandit chooses: a JSON list of "
                        "{name, llm, model, api_key_env, price: [prompt, completion], rate_limit}")  # fmt: skip
    parser.add_argument("--bandit-cost", choices=("proposal", "second", "money"), default="proposal",
                        help="count each proposer's yield per proposal, per second or per unit of money")  # fmt: skip
    parser.add_argument("--llm-mode", choices=("whole", "diff"), default="whole", help="whole functions or diffs")
    parser.add_argument("--completion", action="store_true", help="completion prompts (base models)")
    parser.add_argument("--temperature", type=non_negative_float, default=0.8, help="sampling temperature (0: greedy)")
    parser.add_argument("--replay", default="", help="run directory, programs.sqlite or .jsonl to replay calls from")
    parser.add_argument("--pool", choices=("local", "ray"), default="local")
    parser.add_argument("--ray-address", default="", help="an existing Ray cluster (default: start a local one)")


def add_spend_arguments(parser: argparse.ArgumentParser, default: float | None = 0) -> None:
    """Budgets besides evaluations (`default` None on resume: keep the run's)."""
    parser.add_argument("--token-budget", type=int, default=default, help="stop after this many model tokens (0: none)")
    parser.add_argument("--cost-budget", type=float, default=default, help="stop after this much money (needs --price)")
    parser.add_argument("--time-budget", type=float, default=default, metavar="MINUTES", help="stop after this long")


def spend_limits(args: argparse.Namespace) -> dict[str, float]:
    """The EngineConfig fields the budget options set (those given)."""
    given = {"max_model_tokens": args.token_budget, "max_cost": args.cost_budget, "max_minutes": args.time_budget}
    return {k: v for k, v in given.items() if v is not None}


def _price(text: str) -> tuple[float, float]:
    try:
        prompt, completion = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give PROMPT,COMPLETION prices per million tokens") from None
    return prompt, completion


def search_config(args: argparse.Namespace, task: str, engine: EngineConfig | None = None) -> SearchConfig:
    """A SearchConfig from `add_search_arguments` options, over a task's engine defaults."""
    from garagelab.evolve.engine import EngineConfig
    from garagelab.evolve.search import SearchConfig, read_endpoints

    most = LOCAL_WORKERS_PER_CPU * len(os.sched_getaffinity(0))
    if args.pool == "local" and args.workers > most:  # a new run's; a resumed one keeps what it had
        raise UserError(
            f"--workers {args.workers} is more than {most} ({LOCAL_WORKERS_PER_CPU} per CPU here): each evaluation "
            "runs in processes of its own on this machine, so more only adds processes and memory (10,000 put "
            "a whole 200-evaluation budget in flight at once); for more machines, --pool ray --ray-address"
        )
    engine = replace(
        engine or EngineConfig(),
        budget=args.budget,
        islands=args.islands,
        workers=args.workers,
        samplers=args.samplers,
        bandit_cost=args.bandit_cost,
        reset_every=args.reset_every,
        map_elites=args.map_elites,
        seed=args.seed,
        price_per_mtok=args.price,
        **spend_limits(args),
    )
    return SearchConfig(
        task=task,
        proposers=tuple(p.strip() for p in args.proposers.split(",") if p.strip()),
        engine=engine,
        llm=args.llm,
        model=args.model,
        api_key_env=args.api_key_env,
        llm_mode=args.llm_mode,
        completion=args.completion,
        temperature=args.temperature,
        rate_limit=args.rate_limit,
        replay=args.replay,
        endpoints=read_endpoints(args.models) if args.models else (),
        pool=args.pool,
        ray_address=args.ray_address,
    )


def _run(args: argparse.Namespace) -> int:
    from garagelab.evolve.search import start

    path = start(search_config(args, args.task), args.name)
    report_search(path)
    return 0


def _resume(args: argparse.Namespace) -> int:
    from garagelab.evolve.search import resume

    report_search(resume(args.run, budget=args.budget, limits=spend_limits(args)))
    return 0


def report_search(path: Path) -> None:
    from garagelab.evolve.live import summarize
    from garagelab.evolve.search import open_db

    db = open_db(str(path))
    summary = summarize(db)
    db.close()
    best = f"best score {summary.best.score:.6g} (program {summary.best.id})" if summary.best else "no score"
    print(f"{summary.evaluated} evaluations, {best}\nrun: {path}\nview: {path / 'index.html'}")


def _status(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    from garagelab.evolve.live import status_table, summarize
    from garagelab.evolve.search import open_db

    db = open_db(args.run)
    try:
        if not args.watch:
            Console().print(status_table(summarize(db)))
            return 0
        with Live(status_table(summarize(db)), refresh_per_second=1) as live:
            try:
                while True:
                    time.sleep(2)
                    live.update(status_table(summarize(db)))
            except KeyboardInterrupt:
                return 0
    finally:
        db.close()


def _ranked(run: str) -> list:
    from garagelab.evolve.search import open_db

    db = open_db(run)
    try:
        programs = [p for p in db.programs() if p.score is not None and not p.failure]
    finally:
        db.close()
    if not programs:
        raise UserError(f"run {run} has no successfully evaluated program yet")
    return sorted(programs, key=lambda p: (-p.score, p.size, p.id))


def _best(args: argparse.Namespace) -> int:
    for program in _ranked(args.run)[: args.top]:
        print(f"# program {program.id}: score {program.score:.6g}, size {program.size}, from {program.proposer}")
        print(program.source.rstrip() + "\n")
    return 0


def _export(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from garagelab.evolve.search import open_db

    out = Path(args.out)
    if out.suffix == ".py":
        best = _ranked(args.run)[0]
        out.write_text(f"# score {best.score:.6g} (program {best.id})\n{best.source.rstrip()}\n")
    elif out.suffix == ".jsonl":
        db = open_db(args.run)
        try:
            with out.open("w") as handle:
                for program in db.programs():
                    handle.write(json.dumps({"kind": "program", **asdict(program)}) + "\n")
                for call in db.calls():
                    handle.write(json.dumps({"kind": "llm_call", **asdict(call)}) + "\n")
        finally:
            db.close()
    else:
        raise UserError(f"--out {out}: give a .py (best program) or .jsonl (everything) path")
    print(f"wrote {out}")
    return 0
