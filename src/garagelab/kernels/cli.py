"""`garagelab kernels problems|verify` (search and report follow with the loop)."""

from __future__ import annotations

import argparse
from pathlib import Path

from garagelab.core.cliargs import examples
from garagelab.core.errors import UserError

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


def _problems(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Column, Table

    from garagelab.kernels.problems import footprint, load_folder

    folders = [Path(args.folder)] if args.folder else [SUITE, SUITE / "attention"]
    table = Table(Column("problem", no_wrap=True), f"{args.size} sizes", "elements", "tolerance")
    for folder in folders:
        for problem in load_folder(folder):
            sizes = problem.constants(args.size)
            name = problem.name if folder != SUITE / "attention" else f"attention/{problem.name}"
            shown = ", ".join(f"{k}={v}" for k, v in sizes.items()) or "(the file's own)"
            table.add_row(name, shown, f"{footprint(problem, sizes):,}", f"{problem.tolerance(args.size)[0]:g}")
    Console().print(table)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from garagelab.evolve.sandbox import evaluate
    from garagelab.kernels.task import build_task

    candidate = Path(args.candidate)
    if not candidate.is_file():
        raise UserError(f"{candidate}: no such candidate file")
    task = build_task(resolve_problem(args.problem), args.size, timing=not args.no_timing)
    outcome = evaluate(candidate.read_text(), fingerprints=frozenset(), **task.sandbox())
    verdict = "correct" if outcome.ok else outcome.failure
    print(f"{task.name}: {verdict} ({outcome.seconds:.1f} s)")
    if outcome.message:
        print(outcome.message)
    for key, value in outcome.metrics.items():
        print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    return 0 if outcome.ok else 1
