"""`garagelab distill fit|predict|plan|plot|run`."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from garagelab.core.cliargs import examples, non_negative_int, positive_float, whole_number_up_to
from garagelab.core.errors import UserError
from garagelab.distill.conventions import add_flop_options, flop_model, parse_coefficients, parse_fixed
from garagelab.distill.flops import PAPER_FLOPS
from garagelab.distill.laws import CoefficientSet
from garagelab.distill.objective import RESIDUAL_SCALES, Loss

if TYPE_CHECKING:
    from garagelab.core.runs import Run
    from garagelab.distill.data import RunTable
    from garagelab.distill.stages import Stages

SCENARIO_NAMES = (
    "best-case",
    "teacher-inference",
    "teacher-pretraining",
    "teacher-pretraining-inference",
)


# every sample is a coefficient set held in memory and priced in turn (about 0.3 ms each)
SAMPLE_COUNT = whole_number_up_to(
    100_000, "10,000 samples already place the 5% and 95% points to within about half a percentile"
)


# a bootstrap keeps every resample's run weights in memory (8 bytes a run); 1e8 asked for 30 GiB
BOOTSTRAP_COUNT = whole_number_up_to(100_000, "the paper uses 4,096, and 1,000 take about 4 minutes on 2 cores")
# each simulated data set is refitted free and once per coefficient: seconds each
NULL_COUNT = whole_number_up_to(10_000, "the threshold's 90% point is within about a percentile at 1,000")


def _with_flops(coefficients: CoefficientSet, args: argparse.Namespace) -> CoefficientSet:
    """The coefficient set with the FLOP model the command line asks for (default: its own)."""
    return replace(coefficients, flops=flop_model(coefficients.flops, args.flops, args.n_vocab, args.n_ctx))


def _starts(text: str) -> str | int:
    if text == "paper":
        return text
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use 'paper' or a number of starts") from None
    if value < 1:
        raise argparse.ArgumentTypeError("starts must be at least 1")
    return value


def register(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="<verb>")
    fmt = argparse.RawDescriptionHelpFormatter

    fit = verbs.add_parser(
        "fit",
        help="fit the supervised and distillation laws to runs in a CSV",
        description="Fit Eq. 1 and Eq. 8 as the paper does: summed Huber (delta 1e-4) on log "
        "residuals, L-BFGS from the paper's grid of starts (9,600 / 43,200). CSV columns: N, D, "
        "loss, and for distillation rows L_T or N_T, D_T (see README).",
        epilog=examples(
            "garagelab distill fit runs.csv",
            "garagelab distill fit runs.csv --starts 2000 --bootstrap 256",
            "garagelab distill fit runs.csv --extrapolate-supervised 2.2 --extrapolate-distillation 2.3",
            "garagelab distill fit distill_runs.csv --law distillation --supervised-from busbridge2025",
            "garagelab distill fit chinchilla.csv --law supervised --fix gamma=1 --huber-delta 1e-3 "
            "--min-tokens-per-param 0.45 --bootstrap 1000",
            "garagelab distill fit --resume 12   # finish a killed fit: its finished stages are read back",
        ),
        formatter_class=fmt,
    )
    fit.add_argument("csv", type=Path, nargs="?", help="runs CSV (the schema `distill run` writes)")
    fit.add_argument("--law", choices=("both", "supervised", "distillation"), default="both")
    fit.add_argument(
        "--starts",
        type=_starts,
        default="paper",
        help="'paper' (full grid) or a number drawn from it",
    )
    fit.add_argument(
        "--bootstrap", type=BOOTSTRAP_COUNT, default=0, help="bootstrap refits for 90%% intervals (paper: 4096)"
    )
    fit.add_argument(
        "--bootstrap-kind",
        choices=("cases", "residuals"),
        default="cases",
        help="cases: resample runs (the paper's); residuals: keep N, D and resample the fit's residuals",
    )
    fit.add_argument(
        "--profile",
        type=NULL_COUNT,
        default=0,
        metavar="NULLS",
        help="profile intervals whose threshold is simulated from NULLS data sets drawn from the fit (1 + 1 per "
        "coefficient refits each; minutes). At 2%% noise they held d1 every time, c0 and f1 no better than the "
        "bootstrap (docs/distill/README.md, Calibration)",
    )
    fit.add_argument(
        "--profile-coefficients",
        action="append",
        default=[],
        metavar="NAMES",
        help="which coefficients get profile intervals (default: c0,f1,d1, the distillation law's teacher terms)",
    )
    fit.add_argument(
        "--profile-threshold",
        choices=("estimate", "ends"),
        default="ends",
        help="where --profile simulates its threshold: at the estimate only, or also at each end the scan finds, "
        "interpolated between (the test inverted where it decides: 2-4 more simulations per coefficient, about "
        "three times the time). At 1%% noise a threshold simulated at the truth held c0 and f1 in 79%% and 93%% "
        "of 14 data sets, one at the estimate in 71%% and 86%% (docs/distill/README.md, Calibration)",
    )
    fit.add_argument(
        "--supervised-from",
        help="coefficients for Lt_S when fitting only the distillation law (built-in name or fit JSON)",
    )
    fit.add_argument(
        "--extrapolate-supervised",
        type=positive_float,
        help="also fit on runs with loss >= this, predict the rest",
    )
    fit.add_argument("--extrapolate-distillation", type=positive_float, help="the same for the distillation law")
    fit.add_argument(
        "--bounds",
        choices=("physical", "none"),
        default="physical",
        help="physical (default): exponents and gap coefficients >= 0; none: unbounded",
    )
    fit.add_argument(
        "--min-tokens-per-param",
        type=positive_float,
        help="leave out runs with fewer training tokens per parameter (Epoch's Chinchilla fit: 0.45)",
    )
    fit.add_argument("--min-E", type=positive_float, help="lower bound on E, e.g. a known entropy rate of the data")
    fit.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="hold a coefficient fixed, e.g. gamma=1 (Epoch's Chinchilla protocol); distillation: A', gamma', c0...",
    )
    fit.add_argument("--huber-delta", type=positive_float, default=1e-4, help="Huber delta (paper: 1e-4; Epoch: 1e-3)")
    fit.add_argument(
        "--residuals", choices=RESIDUAL_SCALES, default="log", help="score residuals of log loss (paper) or raw loss"
    )
    add_flop_options(fit, "stored in fit.json for plan; default: the paper's")
    fit.add_argument("--backend", choices=("auto", "jax", "numpy"), default="auto")
    fit.add_argument("--seed", type=non_negative_int, default=0)
    fit.add_argument("--name", default="fit", help="run name (the fit goes to runs/distill/<time>-<name>/)")
    fit.add_argument(
        "--resume",
        metavar="RUN",
        help="finish a killed fit in its directory with its own settings: the fits, bootstraps and profile "
        "stages it had finished are read back, not redone",
    )
    fit.set_defaults(func=_fit)

    predict = verbs.add_parser(
        "predict",
        help="losses, the best teacher and the supervised crossover for given sizes",
        epilog=examples(
            "garagelab distill predict --N 546e6 --D 1.09e10",
            "garagelab distill predict --N 1e9 --D 2e10 --teacher N_T=7.75e9,D_T=1.55e11",
            "garagelab distill predict --input runs.csv --output predicted.csv --coefficients fit.json",
        ),
        formatter_class=fmt,
    )
    predict.add_argument("--coefficients", default="busbridge2025", help="built-in name or fit JSON")
    predict.add_argument("--N", type=positive_float, help="(student) parameters")
    predict.add_argument("--D", type=positive_float, help="(student) tokens")
    predict.add_argument("--teacher", help="L_T=2.3 or N_T=7.75e9,D_T=1.55e11")
    predict.add_argument("--input", type=Path, help="runs CSV to predict every row of")
    predict.add_argument("--output", type=Path, help="where to write the predictions CSV (with --input)")
    predict.add_argument(
        "--samples", type=SAMPLE_COUNT, default=256, help="coefficient samples for the 90%% intervals (0: none)"
    )
    predict.set_defaults(func=_predict)

    plan = verbs.add_parser(
        "plan",
        help="distil or pretrain? the best teacher, tokens and compute split",
        epilog=examples(
            "garagelab distill plan --student 1e9 --compute 1e21",
            "garagelab distill plan --student 1e9 --compute 1e22 --scenario teacher-inference "
            "--teacher name=7B,N_T=7.75e9,D_T=1.55e11",
            "garagelab distill plan --student 3e9 --tokens 6e10 --scenario best-case",
            "garagelab distill plan --student 1e9 --compute 1e21 --students 8 --json",
        ),
        formatter_class=fmt,
    )
    plan.add_argument("--student", type=positive_float, required=True, help="student parameters N_S")
    budget = plan.add_mutually_exclusive_group(required=True)
    budget.add_argument("--compute", type=positive_float, help="total FLOP budget")
    budget.add_argument("--tokens", type=positive_float, help="student token budget D_S")
    plan.add_argument("--scenario", choices=SCENARIO_NAMES, default="teacher-pretraining-inference")
    plan.add_argument("--teacher", action="append", default=[], help="an existing teacher (repeatable)")
    plan.add_argument("--students", type=positive_float, default=1.0, help="students sharing the teacher's pretraining")
    plan.add_argument("--coefficients", default="busbridge2025", help="built-in name or fit JSON")
    plan.add_argument("--samples", type=SAMPLE_COUNT, default=256, help="coefficient samples for the margin's interval")
    add_flop_options(plan, "default: what the fit stored, or the paper's")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(func=_plan)

    plot = verbs.add_parser(
        "plot",
        help="the paper's figures from a coefficient set, as PNGs and an HTML page",
        epilog=examples("garagelab distill plot", "garagelab distill plot --coefficients fit.json --student 3e5"),
        formatter_class=fmt,
    )
    plot.add_argument("--coefficients", default="busbridge2025", help="built-in name or fit JSON")
    plot.add_argument("--student", type=positive_float, help="student size for the compute plots (default: mid-range)")
    plot.add_argument("--runs", type=Path, help="runs CSV to overlay on the figures")
    add_flop_options(plot, "default: what the fit stored, or the paper's")
    plot.set_defaults(func=_plot)

    from garagelab.distill.experiment.cli import register as register_run

    register_run(verbs, fmt)


def _fit(args: argparse.Namespace) -> int:
    from garagelab.core.runs import RunStore
    from garagelab.distill.stages import Stages

    store = RunStore()
    if args.resume:
        if args.csv is not None:
            raise UserError("give a runs CSV or --resume RUN, not both: a resumed fit keeps its own CSV and settings")
        record = store.get(args.resume)
        config = store.read_config(record)
        if record.system != "distill" or "law" not in config or "csv" not in config:
            raise UserError(
                f"run {record.label} is not a `distill fit` run (a sweep resumes with `distill run --resume`)"
            )
        if record.status == "done":
            raise UserError(f"run {record.label} has finished: its fit is {record.path / 'fit.json'}")
        args = argparse.Namespace(**{**config, "csv": Path(config["csv"]), "resume": None})
        settings = _fit_settings(args)  # refuses a CSV that is gone, as a new fit would
        if config.get("csv_sha256") not in (None, _digest(args.csv)):
            raise UserError(
                f"{args.csv} has changed since run {record.label} started: its finished stages were fitted to the "
                "old runs; start a new fit"
            )
        run = store.reopen(record.id)
    else:
        if args.csv is None:
            raise UserError("give the runs CSV to fit (or --resume RUN to finish a killed fit)")
        settings = _fit_settings(args)
        # resolved, since a resume may start elsewhere; its digest, since a resume reads it again
        config = {**vars(args), "csv": str(args.csv.resolve()), "csv_sha256": _digest(args.csv)}
        config.pop("func", None)
        run = store.start("distill", args.name, config)
    with run:
        stages = Stages(run.path / "stages")
        path = _fit_in(run, args, stages, **settings)
        if stages.reused:
            print(f"resumed: {len(stages.reused)} finished stages read back from {stages.folder}")
    print(f"fit saved to {path}; report {run.path / 'index.html'}")
    return 0


def _digest(path: Path) -> str:
    """The runs file's SHA-256 (called once the runs were read from it)."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fit_settings(args: argparse.Namespace) -> dict:
    """The runs and each law's fit options, every setting checked before any fitting starts."""
    from garagelab.distill.coverage import DISTILLATION_COEFFICIENTS
    from garagelab.distill.data import read_runs
    from garagelab.distill.fit import supervised_bounds
    from garagelab.distill.profile import check_nulls

    table = read_runs(args.csv)
    if args.min_tokens_per_param:
        kept = table.with_tokens_per_param(args.min_tokens_per_param)
        left_out = len(table.supervised) + len(table.distillation) - len(kept.supervised) - len(kept.distillation)
        print(f"left out {left_out} runs with fewer than {args.min_tokens_per_param:g} tokens per parameter")
        table = kept
    sup_fixed, dist_fixed = parse_fixed(args.fix)
    if args.profile:
        check_nulls(args.profile)
    elif args.profile_coefficients:
        raise UserError("--profile-coefficients needs --profile NULLS, e.g. --profile 100")
    # by default the teacher terms, less any held fixed
    default_profiled = [name for name in DISTILLATION_COEFFICIENTS if name not in dist_fixed]
    sup_profiled, dist_profiled = parse_coefficients(
        "--profile-coefficients", args.profile_coefficients or default_profiled
    )
    options = {
        "starts": args.starts,
        "backend": args.backend,
        "seed": args.seed,
        "loss": Loss(args.huber_delta, args.residuals),
        "bootstrap_kind": args.bootstrap_kind,
    }
    dist_options = {**options, "bounds": args.bounds, "fixed": dist_fixed}
    sup_options = {**options, "bounds": supervised_bounds(args.bounds, args.min_E), "fixed": sup_fixed}
    at_ends = args.profile_threshold == "ends"
    profiles = (
        {"profile": args.profile, "profile_coefficients": sup_profiled, "profile_at_ends": at_ends},
        {"profile": args.profile, "profile_coefficients": dist_profiled, "profile_at_ends": at_ends},
    )
    want_sup = args.law in ("both", "supervised")
    want_dist = args.law in ("both", "distillation")
    # the filter, when it is what emptied a law's rows, is the thing to change
    kept = f" left by --min-tokens-per-param {args.min_tokens_per_param:g}" if args.min_tokens_per_param else ""
    if want_sup and len(table.supervised) == 0:
        raise UserError(f"{args.csv} has no supervised rows (rows without a teacher){kept}; use --law distillation")
    if want_dist and len(table.distillation) == 0:
        raise UserError(f"{args.csv} has no distillation rows (rows with L_T or N_T, D_T){kept}; use --law supervised")
    for fixed, profiled, law, wanted in (
        (sup_fixed, sup_profiled, "supervised", want_sup),
        (dist_fixed, dist_profiled, "distillation", want_dist),
    ):
        chosen = (("--fix", list(fixed)), ("--profile-coefficients", profiled if args.profile_coefficients else []))
        for option, names in chosen:
            if names and not wanted:
                raise UserError(
                    f"{option} {', '.join(names)}: the {law} law is not fitted with --law {args.law}; "
                    "drop it or fit that law"
                )
        if both := [name for name in profiled if name in fixed]:
            raise UserError(f"--profile-coefficients {', '.join(both)}: held fixed by --fix, so there is no interval")
    if args.profile and not ((want_sup and sup_profiled) or (want_dist and dist_profiled)):  # the default's
        raise UserError(
            f"--profile: its default coefficients ({', '.join(dist_profiled)}) are the distillation law's, not "
            f"fitted with --law {args.law}; name the supervised law's with --profile-coefficients"
        )
    if want_dist and not want_sup and not args.supervised_from:
        raise UserError("--law distillation needs --supervised-from (a built-in name or fit JSON) for Lt_S")

    return {"table": table, "sup_options": sup_options, "dist_options": dist_options, "profiles": profiles,
            "want_sup": want_sup, "want_dist": want_dist}  # fmt: skip


def _fit_in(
    run: Run,
    args: argparse.Namespace,
    stages: Stages,
    *,
    table: RunTable,
    sup_options: dict,
    dist_options: dict,
    profiles: tuple[dict, dict],
    want_sup: bool,
    want_dist: bool,
) -> Path:
    """Fit in `run` (each law's fit, bootstrap and profile stages kept in `stages`), write
    fit.json and the report, print the coefficients; returns fit.json's path."""
    from garagelab.core.report import Report
    from garagelab.distill.fit import (
        FitResult,
        extrapolate_distillation,
        extrapolate_supervised,
        fit_distillation,
        fit_supervised,
        fitted_domain,
    )
    from garagelab.distill.reports import add_fit_section, law_fit_rows
    from garagelab.distill.sources import load_coefficients

    sup_fit = (
        fit_supervised(table.supervised, bootstrap=args.bootstrap, stages=stages, **sup_options, **profiles[0])
        if want_sup
        else None
    )
    supervised_law = sup_fit.to_law() if sup_fit else load_coefficients(args.supervised_from).supervised
    table = table.with_teacher_losses(supervised_law)
    dist_runs = table.distillation
    dist_fit = (
        fit_distillation(
            dist_runs,
            supervised_law,
            sup_fit.bootstrap_laws() if sup_fit else (),
            bootstrap=args.bootstrap,
            stages=stages,
            **dist_options,
            **profiles[1],
        )
        if want_dist
        else None
    )
    flops = flop_model(PAPER_FLOPS, args.flops, args.n_vocab, args.n_ctx)
    result = FitResult(args.name, sup_fit, dist_fit, fitted_domain(table.supervised, dist_runs), flops)
    path = result.save(run.artifact("fit.json"))
    extrapolations = []
    if args.extrapolate_supervised and want_sup:
        extrapolations.append(extrapolate_supervised(table.supervised, args.extrapolate_supervised, **sup_options))
    if args.extrapolate_distillation and want_dist:
        extrapolations.append(
            extrapolate_distillation(dist_runs, supervised_law, args.extrapolate_distillation, **dist_options)
        )
    report = Report(run.path, f"distill fit: {args.csv.name}")
    add_fit_section(report, result, table, extrapolations)
    report.write()
    headline = {}
    for law_fit in (sup_fit, dist_fit):
        if law_fit is None:
            continue
        headline[f"{law_fit.law}_objective"] = law_fit.objective
        print(f"{law_fit.law} law ({law_fit.runs} runs, {law_fit.starts} starts, {law_fit.seconds:.1f} s):")
        for row in law_fit_rows(law_fit):
            profile = f"  profile {row['90% profile interval']}" if row.get("90% profile interval") else ""
            print(f"  {row['coefficient']:>6} = {row['value']:.6g}  {row['90% interval']}{profile}")
        if law_fit.checks is not None:
            print(f"  {law_fit.checks.line('health')}")
    for extrapolation in extrapolations:
        summary = extrapolation.summary()
        print(
            f"extrapolation ({summary['law']}, fit on loss >= {summary['threshold']}): "
            f"{summary['held_out_runs']} held-out runs, mean |rel. error| "
            f"{100 * summary['mean_abs_rel_error']:.2f}%, max {100 * summary['max_abs_rel_error']:.2f}%"
        )
        headline[f"{summary['law']}_extrapolation_mean_err"] = summary["mean_abs_rel_error"]
    run.set_headline(**headline)
    return path


def _predict(args: argparse.Namespace) -> int:
    from garagelab.distill.planner import Teacher
    from garagelab.distill.predict import TOKEN_RANGE, crossover_tokens, distillation_advantage, optimal_teacher_loss
    from garagelab.distill.sources import coefficient_samples, load_coefficients, samples_note

    coefficients = load_coefficients(args.coefficients)
    if args.input is not None:
        return _predict_csv(coefficients, args.input, args.output)
    if args.N is None or args.D is None:
        raise UserError("give --N and --D (or --input runs.csv)")
    # the teacher is checked before anything is printed, so a bad one is an error, not a half answer
    teacher = Teacher.parse(args.teacher) if args.teacher else None
    lt = teacher.resolved_loss(coefficients) if teacher else math.nan
    samples = coefficient_samples(args.coefficients, args.samples) if args.samples else []
    supervised = float(coefficients.supervised_loss(args.N, args.D))
    best = optimal_teacher_loss(coefficients, args.N, args.D)
    choices = [optimal_teacher_loss(c, args.N, args.D) for c in samples]  # the costly part: once per sample
    print(
        f"supervised loss L(N={args.N:.4g}, D={args.D:.4g}) = {_nats(supervised)}"
        + _spread([float(c.supervised_loss(args.N, args.D)) for c in samples])
    )
    print(
        f"best teacher loss L_T* = {_nats(best.teacher_loss)}"
        + _spread([choice.teacher_loss for choice in choices])
        + f", giving a student loss of {_nats(best.student_loss)}"
        + _spread([choice.student_loss for choice in choices])
    )
    if teacher:
        student = float(coefficients.student_loss(args.N, args.D, lt))
        crossover = crossover_tokens(coefficients, args.N, lt)
        # each sample prices the same teacher: by its loss, or by its size through its own law
        sample_lts = [teacher.resolved_loss(c) if math.isnan(teacher.loss) else lt for c in samples]
        print(
            f"distilled from {teacher.label()} (L_T={_nats(lt)}): student loss {_nats(student)}"
            + _spread([float(c.student_loss(args.N, args.D, t)) for c, t in zip(samples, sample_lts, strict=True)])
        )
        if math.isnan(crossover) and distillation_advantage(coefficients, args.N, TOKEN_RANGE[0], lt) >= 0:
            print("supervised training beats this teacher at every student token count from 1M to 100P")
        elif math.isnan(crossover):
            print("supervised training does not overtake this teacher between 1M and 100P tokens")
        else:
            crossovers = [crossover_tokens(c, args.N, t) for c, t in zip(samples, sample_lts, strict=True)]
            print(
                f"supervised training overtakes this teacher beyond {crossover:.4g} student tokens"
                + _spread(crossovers, "{:.3g}".format)
            )
    print(samples_note(args.coefficients, samples))
    for caveat in coefficients.caveats:
        print(f"warning: {caveat}")
    notes = coefficients.domain.warnings(args.N, args.D, lt if teacher else None)
    if teacher and not math.isnan(teacher.n) and not math.isnan(teacher.d):
        notes += coefficients.domain.warnings(teacher.n, teacher.d, what="teacher")
    for note in notes:
        print(f"warning: extrapolation: {note}")
    return 0


def _nats(value: float) -> str:
    """A loss to 4 decimals, or to 4 significant digits where decimals would run to hundreds of
    digits (a teacher given as L_T=1e300 is accepted, with an extrapolation warning)."""
    return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4g}"


def _spread(values: list[float], fmt: Callable[[float], str] = _nats) -> str:
    """' (90%: lo .. hi)' of a quantity's values over the coefficient samples, or '' without samples."""
    from garagelab.distill.bootstrap import CONFIDENCE, percentile_interval

    if not values:
        return ""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < CONFIDENCE * len(values):
        return f" (90%: undetermined, {len(values) - len(finite)} of {len(values)} samples have none)"
    lo, hi = percentile_interval(finite)
    return f" (90%: {fmt(lo)} .. {fmt(hi)})"


def _predict_csv(coefficients, input_path: Path, output: Path | None) -> int:
    import csv

    import numpy as np

    from garagelab.distill.data import read_runs

    table = read_runs(input_path).with_teacher_losses(coefficients.supervised)
    runs = table.distillation
    rows = [
        {"N": n, "D": d, "loss": y, "L_T": "", "predicted": p}
        for n, d, y, p in zip(
            table.supervised.n,
            table.supervised.d,
            table.supervised.loss,
            coefficients.supervised_loss(table.supervised.n, table.supervised.d),
            strict=True,
        )
    ]
    rows += [
        {"N": n, "D": d, "loss": y, "L_T": t, "predicted": p}
        for n, d, y, t, p in zip(
            runs.n,
            runs.d,
            runs.loss,
            runs.teacher_loss,
            coefficients.student_loss(runs.n, runs.d, runs.teacher_loss),
            strict=True,
        )
    ]
    output = output or input_path.with_name(input_path.stem + "-predicted.csv")
    with output.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["N", "D", "loss", "L_T", "predicted", "relative_error"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "relative_error": (row["predicted"] - row["loss"]) / row["loss"]})
    errors = np.array([abs(r["predicted"] - r["loss"]) / r["loss"] for r in rows])
    print(f"{len(rows)} predictions written to {output}; mean |relative error| {100 * errors.mean():.2f}%")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from garagelab.distill.planner import Teacher, plan
    from garagelab.distill.reports import plan_rows, plan_summary
    from garagelab.distill.sources import coefficient_samples, load_coefficients, samples_note

    coefficients = _with_flops(load_coefficients(args.coefficients), args)
    samples = coefficient_samples(args.coefficients, args.samples) if args.samples > 0 else []
    result = plan(
        coefficients,
        args.student,
        compute=args.compute,
        tokens=args.tokens,
        scenario=args.scenario,
        teachers=[Teacher.parse(t) for t in args.teacher],
        students=args.students,
        samples=samples,
    )
    note = samples_note(args.coefficients, samples)
    if args.json:
        print(json.dumps({**result.to_dict(), "intervals": note}, indent=2, default=float))
        return 0
    print(plan_summary(result))
    print(note)
    for row in plan_rows(result):
        print(
            f"  {row['option']:>12}: loss {row['loss']:.4f}, student tokens {row['student tokens']:.3g}, "
            f"compute {row['compute']:.3g} (student {row['student %']:.0f}%, logits {row['logits %']:.0f}%, "
            f"teacher {row['teacher %']:.0f}%), teacher: {row['teacher']}"
        )
    for note in result.warnings:
        print(f"warning: {note}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    import numpy as np

    from garagelab.core.report import Report
    from garagelab.core.runs import RunStore
    from garagelab.distill.data import read_runs
    from garagelab.distill.reports import add_law_figures
    from garagelab.distill.sources import load_coefficients

    coefficients = _with_flops(load_coefficients(args.coefficients), args)
    runs = read_runs(args.runs) if args.runs else None
    student = args.student or float(np.sqrt(coefficients.domain.n_min * coefficients.domain.n_max))
    config = {"coefficients": args.coefficients, "student": student, "runs": str(args.runs or "")}
    with RunStore().start("distill", "plot", config) as run:
        report = Report(run.path, f"distill figures: {coefficients.name}")
        report.text(coefficients.source)
        add_law_figures(report, coefficients, student, runs=runs)
        path = report.write()
    print(f"figures in {run.path}; open {path}")
    return 0
