"""`garagelab kernels problems|verify|search|report`."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from garagelab.core.cliargs import check_new_total, examples, non_negative_int, positive_float, positive_int
from garagelab.core.errors import UserError
from garagelab.core.textfiles import read_user_text
from garagelab.kernels.loop import STRATEGIES
from garagelab.kernels.seeds import seed_for, with_shared_cpp

SUITE = Path(__file__).resolve().parent / "suite"


def resolve_problem(name: str) -> Path:
    """A problem file: a path, or the name of one of ours (`05_softmax`, `attention/02_causal`)."""
    path = Path(name)
    if path.is_file():
        return path
    ours = sorted(SUITE.glob("*.py")) + sorted((SUITE / "attention").glob("*.py"))
    ours = [p for p in ours if not p.name.startswith("_")]
    exact = [p for p in ours if name in (p.stem, p.stem.partition("_")[2], f"{p.parent.name}/{p.stem}")]
    loose = [p for p in ours if name in p.stem]
    for matches in (exact, loose):
        if len(matches) == 1:
            return matches[0]
    if len(loose) > 1:
        raise UserError(f"problem {name!r} is ambiguous: {', '.join(p.stem for p in loose)}")
    raise UserError(f"problem {name!r}: not a file and not one of ours (see `garagelab kernels problems`)")


def register(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="<verb>")
    fmt = argparse.RawDescriptionHelpFormatter

    problems = verbs.add_parser(
        "problems",
        help="list problems (ours, or a KernelBench folder) with their sizes",
        epilog=examples("garagelab kernels problems", "garagelab kernels problems ~/KernelBench/KernelBench/level1"),
        formatter_class=fmt,
    )
    problems.add_argument("folder", nargs="?", help="a folder of KernelBench-format files (default: ours)")
    problems.add_argument("--size", default="cpu", choices=("cpu", "gpu", "full"))
    problems.set_defaults(func=_problems)

    verify = verbs.add_parser(
        "verify",
        help="verify a candidate ModelNew against a problem, in the sandbox: static rules, correctness, "
        "honesty checks, speed against eager PyTorch",
        epilog=examples(
            "garagelab kernels verify my_softmax.py --problem 05_softmax",
            "garagelab kernels verify cand.py --problem ~/KernelBench/KernelBench/level1/23_Softmax.py --no-timing",
        ),
        formatter_class=fmt,
    )
    verify.add_argument("candidate", help="a Python file defining class ModelNew")
    verify.add_argument("--problem", required=True, help="one of ours (name or number_name) or a problem file")
    verify.add_argument("--size", default="cpu", choices=("cpu", "gpu", "full"))
    verify.add_argument("--no-timing", action="store_true", help="correctness and honesty only")
    verify.set_defaults(func=_verify)

    search = verbs.add_parser(
        "search",
        help="the closed loop on one problem for a wall-clock budget: propose, verify, feed the verdict back",
        description="Runs in runs/kernels/<stamp>-<problem>/: programs.sqlite holds every attempt, verdict and "
        "model call (`garagelab evolve status|best|export` read it); best.py is the fastest correct kernel.",
        epilog=examples(
            "garagelab kernels search --problem matmul --proposer tune --budget-s 120",
            "garagelab kernels search --problem softmax --proposer llm --llm local --budget-s 900",
            "garagelab kernels search --problem relu --proposer llm --llm https://api.deepseek.com/v1 "
            "--model deepseek-reasoner --api-key-env DEEPSEEK_API_KEY --strategy best-of-n",
            "garagelab kernels search --problem ~/KernelBench/KernelBench/level1 --size gpu --strategy evolve",
        ),
        formatter_class=fmt,
    )
    search.add_argument(
        "--problem",
        required=True,
        action="append",
        help="one of ours (name or number_name), a problem file, a folder of them (KernelBench's levelN/), or "
        "'suite' (all of ours); repeatable: one run per problem, each with the whole budget",
    )
    search.add_argument("--proposer", choices=("llm", "tune", "both"), default="llm",
                        help="llm: a model; tune: the offline knob tuner; both: the two, chosen per attempt by a "
                        "bandit on improvements per second")  # fmt: skip
    search.add_argument("--seed-kernel", help="a kernel to start from, with `# tune:` knobs for the tuner (tune and "
                        "both: default ours for the problem; llm: none unless given)")  # fmt: skip
    search.add_argument("--replay", default="", metavar="RUN|FILE",
                        help="the model's answers from a recorded search (a run directory, programs.sqlite or "
                        ".jsonl) instead of a model")  # fmt: skip
    search.add_argument("--strategy", choices=STRATEGIES, default="refine")
    search.add_argument("--budget-s", type=positive_float, default=900.0,
                        help="wall-clock seconds (NVIDIA: 15 minutes)")  # fmt: skip
    search.add_argument("--max-attempts", type=positive_int, default=100)
    search.add_argument("--size", default="cpu", choices=("cpu", "gpu", "full"))
    search.add_argument("--llm", default="local", help="'local' (llama-server started for the run) or a base URL")
    search.add_argument("--model", default="", help="local: a built-in GGUF name or a .gguf path; remote: the model id")
    search.add_argument("--api-key-env", default="", help="environment variable with the endpoint's API key")
    search.add_argument("--max-tokens", type=positive_int, default=2048)
    search.add_argument(
        "--seed", type=non_negative_int, default=0, help="the evolve strategy's sampling and the tuner's"
    )
    search.add_argument("--remeasure", type=non_negative_int, default=3, metavar="K",
                        help="at the end, verify the top K kernels (and the tuner's seed) again with twice the rounds; "
                        "the winner is named from these (0: the search's best as measured)")  # fmt: skip
    search.add_argument("--pool", choices=("local", "ray"), default="local", help="where verifications run")
    search.add_argument("--ray-address", default="", help="an existing Ray cluster (default: start a local one)")
    search.add_argument("--name", default="")
    search.set_defaults(func=_search)

    resume = verbs.add_parser(
        "resume",
        help="continue a stopped search from its database (the time already spent counts against the budget)",
        epilog=examples("garagelab kernels resume 12", "garagelab kernels resume 12 --budget-s 1800"),
        formatter_class=fmt,
    )
    resume.add_argument("run", help="the search's run id or directory")
    resume.add_argument("--budget-s", type=positive_float, help="a new total budget (default: the run's)")
    resume.add_argument("--max-attempts", type=positive_int, help="a new total number of attempts")
    resume.set_defaults(func=_resume)

    report = verbs.add_parser(
        "report",
        help="KernelBench's metrics over searches (one per problem): compile rate, fast_0, fast_p, geomean",
        epilog=examples("garagelab kernels report runs/kernels/*"),
        formatter_class=fmt,
    )
    report.add_argument("runs", nargs="+", help="search run directories (or ids)")
    report.add_argument("--markdown", action="store_true", help="print the tables as Markdown (for a README)")
    report.set_defaults(func=_report)


def _problems(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Column, Table

    from garagelab.kernels.problems import footprint, scan_folder

    folders = [Path(args.folder)] if args.folder else [SUITE, SUITE / "attention"]
    table = Table(Column("problem", no_wrap=True), f"{args.size} sizes", "elements", "tolerance")
    for folder in folders:
        problems, skipped = scan_folder(folder)
        for problem in problems:
            name = problem.name if folder != SUITE / "attention" else f"attention/{problem.name}"
            try:  # one broken problem (an op PyTorch's meta device lacks, say) is one row, not the end
                sizes = problem.constants(args.size)
                elements = f"{footprint(problem, sizes):,}"
            except Exception as exc:
                reason = (
                    str(exc).removeprefix(f"{problem.name}: ")
                    if isinstance(exc, UserError)
                    else f"{type(exc).__name__}: {exc}"
                )
                table.add_row(name, f"skipped: {reason[:160]}", "", "")
                continue
            shown = ", ".join(f"{k}={v}" for k, v in sizes.items()) or "(the file's own)"
            table.add_row(name, shown, elements, f"{problem.tolerance(args.size)[0]:g}")
        for path, reason in skipped:
            table.add_row(path.stem, f"skipped: {reason}", "", "")
    Console().print(table)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from garagelab.kernels.task import build_task

    candidate = Path(args.candidate)
    if not candidate.is_file():
        raise UserError(f"{candidate}: no such candidate file")
    task = build_task(resolve_problem(args.problem), args.size, timing=not args.no_timing)
    outcome = task.evaluate(read_user_text(candidate))
    verdict = "correct" if outcome.ok else outcome.failure
    print(f"{task.name}: {verdict} ({outcome.seconds:.1f} s)")
    if outcome.message:
        print(outcome.message)
    for key, value in outcome.metrics.items():
        if isinstance(value, list) and all(isinstance(v, float) for v in value):
            value = " - ".join(f"{v:.4g}" for v in value)
        print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    return 0 if outcome.ok else 1


def problem_paths(names: list[str]) -> list[Path]:
    """Problem files from `--problem` values: names of ours, files, folders, or `suite`."""
    from garagelab.kernels.problems import load_folder

    paths: list[Path] = []
    for name in names:
        if name == "suite":
            paths += [p.path for folder in (SUITE, SUITE / "attention") for p in load_folder(folder)]
        elif Path(name).is_dir():
            paths += [p.path for p in load_folder(name)]
        else:
            paths.append(resolve_problem(name))
    return paths


def _search(args: argparse.Namespace) -> int:
    from garagelab.core.runs import RunStore

    problems = problem_paths(args.problem)
    settings = {key: getattr(args, key) for key in SEARCH_SETTINGS}
    if args.proposer != "llm" and not args.seed_kernel:  # a problem with no seed is skipped before any run starts
        unseeded = [p for p in problems if seed_for(p) is None]
        for problem in unseeded:
            print(f"{problem.stem}: skipped, no seed kernel (give --seed-kernel FILE with `# tune:` knobs)")
        problems = [p for p in problems if p not in unseeded]
        if not problems:
            raise UserError("no problem to tune: none has a seed kernel (give --seed-kernel FILE)")
    runs, failed = [], 0
    for problem in problems:
        with RunStore().start("kernels", args.name or problem.stem, {**settings, "problem": str(problem)}) as run:
            final = _loop(problem, settings, run)
        runs.append(run.path)
        failed += final is None
    if len(runs) > 1:
        _print_report(runs)
    return 1 if failed == len(runs) else 0


def _resume(args: argparse.Namespace) -> int:
    import json

    from garagelab.core.runs import RunStore
    from garagelab.evolve.search import DB_NAME
    from garagelab.kernels.loop import spent

    store = RunStore()
    record = store.get(args.run)
    if record.system != "kernels":
        raise UserError(f"run {record.label} is a {record.system} run, not a kernels search")
    settings = store.read_config(record)
    attempts, seconds = spent(record.path / DB_NAME)
    check_new_total("--budget-s", args.budget_s, seconds, f"the search has spent {seconds:.0f} s")
    check_new_total("--max-attempts", args.max_attempts, attempts, f"the search has made {attempts} attempts")
    for key in ("budget_s", "max_attempts"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    with store.reopen(args.run) as run:
        (run.path / "config.json").write_text(json.dumps(settings, indent=2))
        final = _loop(Path(settings["problem"]), settings, run)
    return 0 if final is not None else 1


SEARCH_SETTINGS = ("proposer", "seed_kernel", "strategy", "budget_s", "max_attempts", "size", "llm", "model",
                   "api_key_env", "max_tokens", "seed", "pool", "ray_address", "remeasure", "replay")  # fmt: skip


@contextlib.contextmanager
def _verifications(settings: dict):
    """Where a search's verifications run: here (None), or on Ray workers, each with the same
    judge, sandbox and walls (a GPU worker when the size runs on CUDA)."""
    if settings.get("pool") != "ray":
        yield None
        return
    from garagelab.evolve.pool import RayPool
    from garagelab.kernels.task import default_device

    gpus = 1 if default_device(settings["size"]) == "cuda" else 0
    pool = RayPool(1, settings.get("ray_address") or None, gpus=gpus)
    try:
        yield pool
    finally:
        pool.shutdown()


def _loop(problem: Path, settings: dict, run):
    """One problem's loop in `run` (its database resumes if it holds attempts); best.py and the
    headline are written when a correct kernel is found."""
    from garagelab.evolve.search import DB_NAME
    from garagelab.kernels.loop import LoopConfig, run_loop

    s = settings
    config = LoopConfig(s["budget_s"], s["max_attempts"], s["strategy"], s["size"], s["seed"], s.get("remeasure", 3))
    with _proposer(problem, s) as proposer, _verifications(s) as pool:
        final = run_loop(problem, proposer, run.path / DB_NAME, config, pool=pool)
    if final is None:
        print(f"{problem.stem}: no correct kernel within the budget (or none held up when re-measured); attempts and "
              f"verdicts: {run.path / DB_NAME}")  # fmt: skip
        return None
    winner = final.winner
    (run.path / "best.py").write_text(winner.source)
    low, high = winner.interval
    run.set_headline(speedup=round(winner.outcome.score, 3), interval=[round(low, 3), round(high, 3)],
                     attempt=winner.number, beats_eager=final.beats_eager, beats_seed=final.beats_seed)  # fmt: skip
    verdict = "beats eager PyTorch beyond noise" if final.beats_eager else "not faster than eager beyond noise"
    print(f"{problem.stem}: attempt {winner.number}, {winner.outcome.score:.3g}x eager PyTorch "
          f"(90 % interval {low:.3g}-{high:.3g}: {verdict})")  # fmt: skip
    if final.seed is not None:
        seed_low, seed_high = final.seed.interval
        than = "beats" if final.beats_seed else "no setting beat"
        print(f"  {than} the seed beyond noise (seed {final.seed.outcome.score:.3g}x, {seed_low:.3g}-{seed_high:.3g})")
    print(f"run: {run.path}\nkernel: {run.path / 'best.py'}")
    return final


def _seed_source(problem: Path, settings: dict) -> str | None:
    """The kernel a search starts from: --seed-kernel, else ours for the problem where the
    tuner needs one (a model alone starts from the problem unless given a seed)."""
    if settings["seed_kernel"]:
        path = Path(settings["seed_kernel"])
        if not path.is_file():
            raise UserError(
                f"--seed-kernel {path}: no such file (give a kernel file, e.g. one of ours in kernels/seeds)"
            )
        return with_shared_cpp(read_user_text(path))  # ours (kernels/seeds) as they are, markers and all
    if settings["proposer"] == "llm":
        return None
    seed = seed_for(problem)
    if seed is None:
        raise UserError(f"no seed kernel for {problem.stem}: give --seed-kernel FILE with `# tune:` knobs")
    return seed


@contextlib.contextmanager
def _proposer(problem: Path, settings: dict):
    """The search's proposer: the tuner, a model (an endpoint, or a recording's answers), or both;
    the model's client (a server, when it starts one) lives as long as the search."""
    from garagelab.kernels.mixed import proposer_for
    from garagelab.kernels.task import default_device

    s = settings
    seed = _seed_source(problem, s)
    with contextlib.ExitStack() as stack:
        try:
            proposer = proposer_for(s["proposer"], seed, lambda: stack.enter_context(_model_client(s)), s["seed"],
                                    strategy=s["strategy"], device=default_device(s["size"]))  # fmt: skip
        except ValueError as exc:
            raise UserError(f"{s['seed_kernel'] or problem.stem}: {exc}") from None
        yield proposer


@contextlib.contextmanager
def _model_client(settings: dict):
    """The model's client: the endpoint's, or one answering from a recorded search (--replay)."""
    from garagelab.evolve.search import Endpoint, SearchConfig, model_client, recorded_calls

    if settings.get("replay"):
        from garagelab.llm.client import ReplayClient
        from garagelab.llm.records import Replay

        yield ReplayClient(Replay(recorded_calls(settings["replay"])))
        return
    endpoint = Endpoint("llm", settings["llm"], settings["model"], settings["api_key_env"])
    with model_client(endpoint, SearchConfig(max_tokens=settings["max_tokens"])) as client:
        yield client


def _report(args: argparse.Namespace) -> int:
    from garagelab.core.runs import RunStore

    _print_report([RunStore().directory(key) for key in args.runs], markdown=args.markdown)
    return 0


def _print_report(paths: list[Path], markdown: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    from garagelab.evolve.search import DB_NAME
    from garagelab.kernels.metrics import read_search, summarize

    results = []
    for path in paths:
        if not (path / DB_NAME).is_file():  # a folder of the run store that is not a search: a note, not the end
            print(f"skipped {path}: not a kernels search (no {DB_NAME})")
            continue
        results.append(read_search(path / DB_NAME, path.name))
    if not results:
        raise UserError("none of these folders is a kernels search (`garagelab kernels search` makes them)")
    header = ["search", "attempts", "first correct", "speed-up (re-measured)", "90 % interval", "beats eager",
              "seed (re-measured)", "beats seed"]  # fmt: skip
    rows = [_report_row(result) for result in results]
    summary = summarize(results)
    totals = [[key, f"{value:.3g}" if isinstance(value, float) else str(value)] for key, value in summary.items()]
    if markdown:
        for table in ([header, *rows], [["metric", "value"], *totals]):
            print("\n".join("| " + " | ".join(row) + " |" for row in [table[0], ["---"] * len(table[0]), *table[1:]]))
            print()
        return
    per_problem, overall = Table(*header), Table("metric", "value")
    for row in rows:
        per_problem.add_row(*row)
    for row in totals:
        overall.add_row(*row)
    Console().print(per_problem, overall)


def _report_row(result) -> list[str]:
    """One search in the report: its best kernel, re-measured where the search re-measured
    (a speed-up beats eager, or the seed, only if its interval's lower end clears 1, or the seed's)."""

    def span(interval) -> str:
        return "-".join(f"{v:.3g}" for v in interval) if interval else "-"

    best = f"{result.best:.3g}x" if result.best is not None else "-"
    remeasured = result.final_interval is not None
    seed = result.seed or {}
    seed_text = f"{seed['speedup']:.3g}x ({span(seed['speedup_interval'])})" if seed else "-"
    return [
        result.name, str(len(result.failures)), str(result.first_correct or "-"), best, span(result.final_interval),
        ("yes" if result.beats_eager else "no") if remeasured else "-", seed_text,
        ("yes" if result.beats_seed else "no") if seed else "-",
    ]  # fmt: skip
