"""`garagelab distill run`: a resumable sweep of tiny models, optionally fitted at the end."""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace

from garagelab.core.cliargs import positive_int
from garagelab.core.errors import UserError


def register(verbs: argparse._SubParsersAction, formatter: type) -> None:
    run = verbs.add_parser(
        "run",
        help="train tiny supervised and distilled LMs (JAX), appending to the CSV that fit reads",
        description="Train a grid of tiny language models: supervised IsoFLOP runs, fixed-M "
        "teachers, and students distilled from cached teacher logits. Every finished run is "
        "appended to runs.csv; --resume continues a killed sweep and skips finished runs.",
        epilog="examples:\n"
        "  garagelab distill run --preset quick\n"
        "  garagelab distill run --preset tiny --fit\n"
        "  garagelab distill run --preset tiny --model transformer --set sizes=4e3,16e3,64e3\n"
        "  garagelab distill run --corpus shakespeare --set train.learning_rate=3e-3\n"
        "  garagelab distill run --resume 12",
        formatter_class=formatter,
    )
    run.add_argument("--preset", default="tiny", help="grid preset: tiny (about 30 min) or quick (seconds)")
    run.add_argument("--model", choices=("mlp", "transformer"), help="model family (default: the preset's, mlp)")
    run.add_argument("--corpus", help="synthetic (default), shakespeare, or a UTF-8 text file")
    run.add_argument(
        "--seeds", type=positive_int, help="train every configuration with this many seeds (mean ± s.e. per point)"
    )
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a grid setting")
    run.add_argument("--resume", metavar="RUN", help="continue this sweep (id or directory name)")
    run.add_argument("--fit", action="store_true", help="fit both laws to the results and add them to the report")
    run.add_argument("--starts", default="2000", help="starts for --fit: 'paper' or a number (default 2000)")
    run.set_defaults(func=_run)


def _config(args: argparse.Namespace):
    from garagelab.core.config import apply_overrides
    from garagelab.distill.experiment.sweep import PRESETS

    if args.preset not in PRESETS:
        raise UserError(f"unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}")
    config = PRESETS[args.preset]
    if args.model:
        config = replace(config, model=args.model)
    if args.corpus:
        config = replace(config, corpus=args.corpus)
    if args.seeds:
        config = replace(config, seeds=args.seeds)
    return apply_overrides(config, args.set).check()


def _run(args: argparse.Namespace) -> int:
    from garagelab.core.report import Report
    from garagelab.core.runs import RunStore
    from garagelab.distill.experiment.report import add_sweep_section
    from garagelab.distill.experiment.sweep import Sweep, SweepConfig

    store = RunStore()
    if args.resume:
        run = store.reopen(args.resume)
        saved = store.read_config(store.get(args.resume))
        config = SweepConfig.from_dict(saved["sweep"])
        fit, starts = saved.get("fit", args.fit), saved.get("starts", args.starts)
    else:
        config = _config(args)
        fit, starts = args.fit, args.starts
        run = store.start(
            "distill",
            f"sweep-{args.preset}",
            {"sweep": asdict(config), "fit": fit, "starts": starts},
        )
    with run:
        csv_path = Sweep(config, run).execute()
        report = Report(run.path, f"distill sweep ({config.model}, {config.corpus})")
        headline = add_sweep_section(report, config, csv_path, fit=fit, starts=starts)
        report.write()
        run.set_headline(**headline)
    print(f"runs: {csv_path}; report: {run.path / 'index.html'}")
    return 0
