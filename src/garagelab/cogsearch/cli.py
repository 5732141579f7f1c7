"""`garagelab cogsearch data|baselines|run|resume|report`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from garagelab.core.cliargs import examples, non_negative_int, positive_int
from garagelab.core.errors import UserError

if TYPE_CHECKING:
    from garagelab.cogsearch.search import CogSearchConfig

DATA_HELP = "fly folder, rat .json, long .csv, .npz, or synthetic:GENERATOR[:SUBJECTS] (afp, q-learning, ...)"


def register(parser: argparse.ArgumentParser) -> None:
    from garagelab.evolve.cli import add_search_arguments, add_spend_arguments

    verbs = parser.add_subparsers(dest="verb", metavar="<verb>")
    fmt = argparse.RawDescriptionHelpFormatter

    data = verbs.add_parser(
        "data",
        help="load a data set, show its search / held-out split, optionally write it out",
        epilog=examples(
            "garagelab cogsearch data ../shared/data/fly/mohanta2022",
            "garagelab cogsearch data ../shared/data/fly/mohanta2022+../shared/data/fly/rajagopalan2022",
            "garagelab cogsearch data synthetic:afp:60 --out afp/   # search.csv and heldout.csv",
        ),
        formatter_class=fmt,
    )
    data.add_argument("source", help=DATA_HELP)
    data.add_argument("--heldout", type=float, default=1 / 3, help="fraction of subjects held out")
    data.add_argument("--seed", type=non_negative_int, default=0)
    data.add_argument("--out", help="a folder to write search.csv and heldout.csv (long format) into")
    data.set_defaults(func=_data)

    baselines = verbs.add_parser(
        "baselines",
        help="fit every built-in model (and the GRU) to the held-out subjects of a data set",
        epilog=examples("garagelab cogsearch baselines ../shared/data/fly/mohanta2022 --gru"),
        formatter_class=fmt,
    )
    baselines.add_argument("source", help=DATA_HELP)
    baselines.add_argument("--heldout", type=float, default=1 / 3, help="fraction of subjects held out")
    baselines.add_argument("--split", choices=("search", "heldout"), default="heldout", help="subjects to fit")
    baselines.add_argument("--gru", action="store_true", help="also train the population GRU")
    baselines.add_argument("--seed", type=non_negative_int, default=0)
    baselines.set_defaults(func=_baselines)

    run = verbs.add_parser(
        "run",
        help="search for a cognitive model of a data set; writes a live page, then the held-out report",
        description="Start a search. Its run directory holds the search / held-out split, programs.sqlite, "
        "index.html (live) and, at the end, report.html comparing the best programs with every baseline "
        "on subjects the search never saw.",
        epilog=examples(
            "garagelab cogsearch run --data synthetic:afp --budget 150",
            "garagelab cogsearch run --data ../shared/data/fly/mohanta2022 --proposers mutation,llm --llm local",
            "garagelab cogsearch run --data rats.json --proposers llm --llm http://localhost:8080/v1 --model m",
        ),
        formatter_class=fmt,
    )
    run.add_argument("--data", required=True, help=DATA_HELP)
    run.add_argument("--name", default="", help="run name")
    run.add_argument("--heldout", type=float, default=1 / 3, help="fraction of subjects held out")
    run.add_argument("--restarts", type=positive_int, default=1, help="fits per subject from random starts")
    run.add_argument("--max-steps", type=positive_int, default=300, help="optimiser steps per fit")
    run.add_argument("--no-report", action="store_true", help="skip the held-out report at the end")
    run.add_argument("--no-gru", action="store_true", help="leave the GRU out of the report")
    run.add_argument("--seeds", type=positive_int, default=1,
                     help="independent searches (seeds SEED, SEED+1, ...) on the same subject split, and the "
                     "spread of their discovered programs' held-out scores")  # fmt: skip
    add_search_arguments(run, budget=200, islands=2)
    run.set_defaults(func=_run)

    resume = verbs.add_parser(
        "resume",
        help="continue an interrupted search; nothing evaluated is lost",
        epilog=examples("garagelab cogsearch resume 12 --budget 400"),
        formatter_class=fmt,
    )
    resume.add_argument("run", help="run id or directory name (`garagelab runs list --system cogsearch`)")
    resume.add_argument("--budget", type=positive_int, help="a new total budget of evaluations")
    add_spend_arguments(resume, default=None)
    resume.add_argument("--no-report", action="store_true", help="skip the held-out report at the end")
    resume.set_defaults(func=_resume)

    report = verbs.add_parser(
        "report",
        help="fit the best programs and every baseline on the held-out subjects; write report.html",
        epilog=examples("garagelab cogsearch report 12 --top 5"),
        formatter_class=fmt,
    )
    report.add_argument("run", help="run id, directory name, or path to a run directory")
    report.add_argument("--top", type=positive_int, default=3, help="how many of the best programs to compare")
    report.add_argument("--no-gru", action="store_true", help="skip the GRU")
    report.set_defaults(func=_report)

    analyze = verbs.add_parser(
        "analyze",
        help="behavioural signatures, lineage and parameter recovery of the best program; write analysis.html",
        epilog=examples("garagelab cogsearch analyze 12"),
        formatter_class=fmt,
    )
    analyze.add_argument("run", help="run id, directory name, or path to a run directory")
    analyze.set_defaults(func=_analyze)


def _data(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from garagelab.cogsearch.data import load_source, save_long_csv

    search, heldout = load_source(args.source, args.heldout, args.seed)
    table = Table("", "search", "held out")
    for key, value in search.summary().items():
        table.add_row(key, str(value), str(heldout.summary()[key]))
    for source, count in search.metadata.get("sources", {}).items():  # a merged set: subjects per source
        table.add_row(f"  from {source}", str(count), str(heldout.metadata["sources"][source]))
    Console().print(table)
    if args.out:
        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        print(
            f"wrote {save_long_csv(search, folder / 'search.csv')} and {save_long_csv(heldout, folder / 'heldout.csv')}"
        )
    return 0


def _baselines(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from garagelab.cogsearch.data import load_source
    from garagelab.cogsearch.gru import fit_gru
    from garagelab.cogsearch.programs import BASELINES
    from garagelab.cogsearch.report import ModelScore, score_program
    from garagelab.core.progress import track

    search, heldout = load_source(args.source, args.heldout, args.seed)
    data = heldout if args.split == "heldout" else search
    rows = [
        score_program(name, "baseline", source, data)
        for name, source in track(list(BASELINES.items()), "fitting baselines", unit="models")
    ]
    table = Table(
        "model",
        "parameters",
        "normalised likelihood, mean per subject",
        "90% interval",
        "pooled over choices",
        title=f"{data.name}: {data.n_subjects} subjects",
    )
    rows.sort(key=lambda m: -m.heldout)
    if args.gru:
        if args.split != "heldout":
            print("note: the GRU is scored on held-out subjects only (it trains on the search subjects)")
        result = fit_gru(search, heldout)
        name = "GRU (population, held out)"
        rows.append(ModelScore(name, "gru", result.num_params, 0, result.normalized_likelihood, result.per_subject))
    for model in rows:
        lo, hi = model.interval()
        table.add_row(
            model.name, str(model.num_params), f"{model.heldout:.4f}", f"{lo:.4f} .. {hi:.4f}", f"{model.pooled:.4f}"
        )
    Console().print(table)
    return 0


def _run(args: argparse.Namespace) -> int:
    from garagelab.cogsearch.search import ENGINE, CogSearchConfig, start
    from garagelab.evolve.cli import search_config

    config = CogSearchConfig(
        data=args.data,
        heldout=args.heldout,
        restarts=args.restarts,
        max_steps=args.max_steps,
        seed=args.seed,
        search=search_config(args, "cogsearch", ENGINE),
    )
    if args.seeds == 1:
        return _finish(start(config, args.name), args.no_report, not args.no_gru)
    if args.no_report:
        raise UserError("--seeds compares the replicates' held-out reports; leave out --no-report")
    return _replicates(config, args)


def _replicates(config: CogSearchConfig, args: argparse.Namespace) -> int:
    """K searches differing only in the engine's seed (the subject split is the same), each
    reported, then the spread of what they discovered."""
    from dataclasses import replace

    from garagelab.cogsearch.replicates import replicate_table
    from garagelab.cogsearch.search import start

    paths = []
    for k in range(args.seeds):
        engine = replace(config.search.engine, seed=args.seed + k)
        replicate = replace(config, search=replace(config.search, engine=engine))
        print(f"replicate {k + 1} of {args.seeds}: search seed {engine.seed}")
        paths.append(start(replicate, f"{args.name or 'search'}-seed{engine.seed}"))
        _finish(paths[-1], False, not args.no_gru)
    table = replicate_table(paths)
    for path in paths:
        (path / "replicates.md").write_text(table + "\n")
    print(table)
    print(f"written to replicates.md in each of the {args.seeds} run directories")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from garagelab.cogsearch.search import resume
    from garagelab.evolve.cli import spend_limits

    return _finish(resume(args.run, budget=args.budget, limits=spend_limits(args)), args.no_report)


def _finish(path: Path, skip_report: bool, gru: bool = True) -> int:
    from garagelab.cogsearch.report import build_report
    from garagelab.evolve.cli import report_search

    report_search(path)
    if not skip_report:
        print(f"report: {build_report(path, gru=gru)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from garagelab.cogsearch.report import build_report
    from garagelab.core.runs import RunStore

    print(f"report: {build_report(RunStore().directory(args.run), args.top, gru=not args.no_gru)}")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from garagelab.cogsearch.analyze import analyze
    from garagelab.core.runs import RunStore

    print(f"analysis: {analyze(RunStore().directory(args.run))}")
    return 0
