"""The `runs` and `tour` verbs, which belong to no single system."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from garagelab.core.runs import RunStore, iter_metrics


def register(subparsers: argparse._SubParsersAction) -> None:
    runs = subparsers.add_parser("runs", help="list and inspect runs of every system")
    runs_sub = runs.add_subparsers(dest="verb", metavar="<verb>")
    runs.set_defaults(func=lambda args: _print_help(runs))
    listing = runs_sub.add_parser("list", help="every run with its status and headline numbers")
    listing.add_argument("--system", help="only runs of this system (e.g. distill, tour)")
    listing.set_defaults(func=_runs_list)
    show = runs_sub.add_parser("show", help="one run: config, last metrics, files")
    show.add_argument("id", help="numeric id or directory name, as `runs list` shows")
    show.set_defaults(func=_runs_show)

    tour = subparsers.add_parser(
        "tour",
        help="run every system's quick default and write an HTML report",
        description="Run every system's quick default; writes runs/tour/<timestamp>/index.html.",
    )
    tour.add_argument("--quick", action="store_true", help="smallest settings (for smoke tests)")
    tour.set_defaults(func=_tour)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _runs_list(args: argparse.Namespace) -> int:
    records = RunStore().list(args.system)
    table = Table("id", "system", "run", "status", "started", "ended", "headline")
    for r in records:
        headline = ", ".join(f"{k}={_short(v)}" for k, v in r.headline.items())
        table.add_row(str(r.id), r.system, r.label, r.status, r.started, r.ended or "", headline)
    Console(width=200).print(table)
    return 0


def _runs_show(args: argparse.Namespace) -> int:
    store = RunStore()
    record = store.get(args.id)
    config = store.read_config(record)
    console = Console(width=200)
    console.print(f"run {record.id}: {record.path}")
    console.print(f"status {record.status}, started {record.started}, ended {record.ended or '-'}")
    if record.headline:
        console.print("headline: " + json.dumps(record.headline))
    console.print("config: " + json.dumps(config, indent=2))
    rows = list(iter_metrics(record.path))
    if rows:
        console.print(f"metrics: {len(rows)} rows; last: " + json.dumps(rows[-1]))
    files = sorted(p.relative_to(record.path) for p in record.path.rglob("*") if p.is_file())
    console.print("files: " + ", ".join(str(f) for f in files if not f.name.startswith(".")))
    return 0


def _tour(args: argparse.Namespace) -> int:
    from garagelab.core.tour import run_tour  # imports every system's tour step

    result = run_tour(RunStore(), quick=args.quick)
    print(f"tour report: {result.report}")
    if result.failures:
        print(f"tour: failed steps: {', '.join(result.failures)} (details in the report)")
        return 1
    return 0


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
