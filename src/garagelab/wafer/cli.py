"""`garagelab wafer simulate|table|calibrate|explore`."""

from __future__ import annotations

import argparse
import json
import math

from garagelab.core.cliargs import examples, positive_int
from garagelab.core.errors import UserError
from garagelab.wafer import paper

# the tables `calibrate` fits (the A100 side fits the first three)
# energy tables and the time tables they are derived from
ENERGY_TABLES = {"table7": "table3", "table8": "table4"}


def _int_list(text: str) -> list[int]:
    return [positive_int(part) for part in text.split(",") if part.strip()]


def region_arg(text: str) -> int | tuple[int, int]:
    """An argparse type: a square's side (420) or rows x cols (375x497)."""
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) == 1:
        return positive_int(parts[0])
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"a region is a side (420) or rows x cols (375x497), not {text!r}")
    return positive_int(parts[0]), positive_int(parts[1])


def register(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="<verb>")
    fmt = argparse.RawDescriptionHelpFormatter

    simulate = verbs.add_parser(
        "simulate",
        help="time to first token, time per token and energy of a request on a simulated wafer",
        epilog=examples(
            "garagelab wafer simulate --model llama3-8b --input 2048 --output 128",
            "garagelab wafer simulate --model path/to/config.json --decode-grid 420 --kv concat",
            "garagelab wafer simulate --model llama3-8b --batch 8 --set sram_bytes=98304",
            "garagelab wafer simulate --model llama3-8b --cost-model timestamps --json",
            "garagelab wafer simulate --model qwen2-72b --chips 4",
        ),
        formatter_class=fmt,
    )
    simulate.add_argument("--model", default="llama3-8b", help="llama3-8b, llama2-13b, qwen2-72b or a config.json")
    simulate.add_argument("--device", default="WSE-2", help="WSE-2 or WSE-3")
    simulate.add_argument("--input", type=positive_int, default=2048, help="prompt tokens")
    simulate.add_argument("--output", type=positive_int, default=128, help="generated tokens")
    simulate.add_argument("--batch", type=positive_int, default=1, help="requests decoded together")
    simulate.add_argument("--chips", type=positive_int, default=1,
                          help="chips the layers may be pipelined across, over the chip link (a model larger "
                          "than the chips allowed is refused)")  # fmt: skip
    simulate.add_argument("--prefill-grid", type=positive_int, help="prefill region side (default: autotuned)")
    simulate.add_argument(
        "--decode-grid",
        type=region_arg,
        help="decode region: a side (420) or rows x cols (375x497) (default: autotuned, squares and rectangles)",
    )
    simulate.add_argument("--kv", choices=("shift", "concat"), default="shift", help="KV cache method")
    simulate.add_argument("--attention", choices=("heads", "single"), default="heads",
                          help="heads: multi-head/grouped-query attention as the model config says; single: one "
                          "head as wide as all, as the paper's kernels run it (what `table` reproduces)")  # fmt: skip
    simulate.add_argument("--cost-model", choices=("closed", "timestamps"), default="closed")
    simulate.add_argument("--gpu", default="A100", help="GPU baseline: A100 or H100")
    simulate.add_argument("--gpus", type=_int_list, default=[1, 8, 16], help="GPU counts, e.g. 1,8,16")
    simulate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a device constant")
    simulate.add_argument("--json", action="store_true")
    simulate.set_defaults(func=_simulate)

    table = verbs.add_parser(
        "table",
        help="one of the paper's tables or figures: paper, ours, ratio",
        epilog=examples("garagelab wafer table 4", "garagelab wafer table fig10 --csv fig10.csv"),
        formatter_class=fmt,
    )
    table.add_argument("name", choices=("2", "3", "4", "5", "6", "7", "8", "fig9", "fig10"))
    table.add_argument("--csv", help="also write the rows to this CSV file")
    table.set_defaults(func=_table)

    calibrate = verbs.add_parser(
        "calibrate",
        help="fit the unpublished device constants to the paper's tables; report the fit error",
        epilog=examples(
            "garagelab wafer calibrate",
            "garagelab wafer calibrate --free-alpha --clock 0.85e9",
            "garagelab wafer calibrate --holdout all",
        ),
        formatter_class=fmt,
    )
    calibrate.add_argument("--clock", type=float, action="append", help="clock(s) in Hz (default: 1.1e9 and 0.85e9)")
    calibrate.add_argument("--free-alpha", action="store_true", help="fit alpha too (default: 1 cycle per hop)")
    calibrate.add_argument(
        "--holdout",
        choices=(*paper.HOLDOUT_TABLES, "all"),
        help="also refit without this table (or each in turn) and report its held-out (predicted) error "
        "beside its in-sample (fitted) error",
    )
    calibrate.set_defaults(func=_calibrate)

    explore = verbs.add_parser(
        "explore",
        help="sweep SRAM per core, region size, routing costs and batch; heat-maps in an HTML report",
        epilog=examples("garagelab wafer explore", "garagelab wafer explore --model llama2-13b --quick"),
        formatter_class=fmt,
    )
    explore.add_argument("--model", default="llama3-8b")
    explore.add_argument("--device", default="WSE-2")
    explore.add_argument("--gpu", default="A100")
    explore.add_argument("--context", type=positive_int, default=4096)
    explore.add_argument("--quick", action="store_true", help="coarser sweeps")
    explore.set_defaults(func=_explore)


def _device(name: str, assignments: list[str]):
    from garagelab.core.config import parse_like
    from garagelab.wafer.device import get_device

    device = get_device(name)
    changes = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not hasattr(device, key):
            raise UserError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(device.to_dict())}")
        changes[key] = parse_like(raw, getattr(device, key), key)
    return device.with_overrides(**changes)


def _simulate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from garagelab.wafer import gpu as gpus
    from garagelab.wafer.device import get_gpu
    from garagelab.wafer.llm import held_context, simulate
    from garagelab.wafer.models import load_model

    model = replace(load_model(args.model), attention=args.attention)
    device = _device(args.device, args.set)
    gpu = get_gpu(args.gpu)
    result = simulate(
        model,
        device,
        args.input,
        args.output,
        args.prefill_grid,
        args.decode_grid,
        args.kv,
        args.cost_model,
        args.batch,
        args.chips,
    )
    baseline, unfit = {}, {}
    for count in args.gpus:
        reason = gpus.cannot_run(model, gpu, count, args.input + args.output, args.batch)
        if reason:  # refused with the reason, never priced
            unfit[f"{count}x{gpu.name}"] = reason
            continue
        tpot = gpus.decode_seconds(model, gpu, count, args.input + args.output // 2, args.batch)
        ttft = gpus.prefill_seconds(model, gpu, count, args.input)
        baseline[f"{count}x{gpu.name}"] = {
            "ttft_s": ttft,
            "tpot_s": tpot,
            "decode_tpr": 1 / tpot,
            "energy_per_token_j": count * gpu.power_watts * tpot / args.batch,
        }
    if args.json:
        summary = {
            "model": model.name,
            "device": device.name,
            "input": args.input,
            "output": args.output,
            "batch": args.batch,
            "ttft_s": result.ttft_s,
            "tpot_s": result.tpot_s,
            "decode_tpr": result.decode_tpr,
            "prefill_tpr": result.prefill_tpr,
            "end_to_end_tpr": result.end_to_end_tpr,
            "throughput": result.throughput,
            "energy_per_token_j": result.energy_per_token_j,
            "prefill_grid": list(result.prefill.region),  # [rows, cols]
            "decode_grid": list(result.decode.region),
            "decode_regions": result.decode.regions,
            "chips": {"prefill": result.prefill.chips, "decode": result.decode.chips},
            "kv_capacity_tokens": held_context(model, device, result.decode),
            "sram_per_core_bytes": {"prefill": result.prefill.sram_per_core(), "decode": result.decode.sram_per_core()},
            "decode_communication_share": result.decode_communication_share,
            "relayout_s": result.relayout_s,
            "relayout_bytes": result.relayout.bytes_moved,
            "notes": result.notes,
            "gpus": baseline,
            "gpus_that_do_not_fit": unfit,
        }
        print(json.dumps(summary, indent=2))
        return 0
    d = result.decode
    print(
        f"{model.name} on {device.name}, {args.input} in / {args.output} out, batch {args.batch}, "
        f"{args.cost_model} cost model, {args.kv} KV cache, "
        f"{'single-head (as the paper)' if args.attention == 'single' else f'{model.heads}-head'} attention"
    )
    print(
        f"  prefill on {result.prefill.label} regions: TTFT {result.ttft_s * 1e3:.2f} ms "
        f"({result.prefill_tpr:,.0f} prompt tokens/s)"
    )
    moved = result.relayout
    print(
        f"  prefill -> decode re-layout: {result.relayout_s * 1e3:.2f} ms, {moved.bytes_moved / 1e9:.2f} GB of weights "
        f"and KV cache moved, busiest link {moved.busiest_link_bytes / 1e6:.2f} MB"
    )
    print(
        f"  decode on {d.label} regions ({d.layers_per_region} layer slots each, LM head included; "
        f"{d.regions} region{'s' if d.regions != 1 else ''}): "
        f"TPOT {result.tpot_s * 1e6:.1f} us, {result.decode_tpr:,.0f} tokens/s per request, "
        f"{result.throughput:,.0f} tokens/s in all, {result.decode_communication_share:.0%} communication"
    )
    print(
        f"  energy {result.energy_per_token_j:.3f} J per token at {result.power_watts / 1e3:.1f} kW; "
        f"this placement holds up to {held_context(model, device, d):,} tokens of context; "
        f"end-to-end {result.end_to_end_tpr:,.0f} tokens/s"
    )
    for phase, p in (("prefill", result.prefill), ("decode", result.decode)):
        sram = p.sram_per_core()
        print(
            f"  {phase} SRAM per core: {sram['weights']:,} B weights, {sram['kv_cache']:,} B KV cache, "
            f"{sram['workspace']:,} B kernel workspace of {device.sram_usable:,} B usable"
        )
    for name, row in baseline.items():
        speed = result.decode_tpr / row["decode_tpr"]
        energy = result.energy_per_token_j / row["energy_per_token_j"]
        print(
            f"  {name}: TTFT {row['ttft_s'] * 1e3:.1f} ms, {row['decode_tpr']:,.1f} tokens/s per request, "
            f"{row['energy_per_token_j']:.3f} J per token; the wafer decodes at {speed:.3g}x its speed per request "
            f"and spends {energy:.3g}x its energy per token"
        )
    for name, why in unfit.items():
        print(f"  {name}: cannot run it ({why})")
    for note in result.notes:
        print(f"  note: {note}")
    return 0


def _table(args: argparse.Namespace) -> int:
    import csv

    from garagelab.core.report import format_value
    from garagelab.wafer.tables import TABLES, summary

    rows = TABLES[args.name]()
    columns = list(rows[0])
    widths = [max(len(c), *(len(format_value(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(format_value(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))
    stats = summary(rows)
    if stats:
        print(f"mean error {stats['mean error']:.1%}, worst {stats['worst error']:.1%} (over published entries)")
    table = args.name if args.name.startswith("fig") else f"table{args.name}"
    if table in ENERGY_TABLES:
        print(
            "derived: energy at constant power from this model's times, which were fitted to Tables 3 and 4 "
            f"(`garagelab wafer calibrate --holdout {ENERGY_TABLES[table]}` shows how well those are predicted)"
        )
    elif table in paper.HOLDOUT_TABLES:
        print(
            f"in-sample: the device constants were fitted to this table among others; "
            f"`garagelab wafer calibrate --holdout {table}` shows the error predicted without it"
        )
    else:
        print(
            "predicted: the paper publishes no numbers for this table; the device constants were fitted to "
            "Tables 3, 4, 6 and Figs. 9-10"
        )
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            writer.writerows(rows)
        print(f"written to {args.csv}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from garagelab.core.report import Report
    from garagelab.core.runs import RunStore
    from garagelab.wafer.calibrate import (
        WSE_FITTED,
        error_by_table,
        fit_gpu,
        fit_wse,
        gpu_holdouts,
        wse_holdouts,
        wse_targets,
    )

    clocks = args.clock or [1.1e9, 0.85e9]
    for clock in clocks:
        if not (1e6 <= clock <= 1e11):
            raise UserError(f"--clock {clock}: give the clock in Hz, e.g. 1.1e9")
    holdout = list(paper.HOLDOUT_TABLES) if args.holdout == "all" else [args.holdout] if args.holdout else []
    config = {"clocks": clocks, "free_alpha": args.free_alpha, "holdout": holdout}
    with RunStore().start("wafer", "calibrate", config) as run:
        targets = wse_targets()
        report = Report(run.path, "wafer calibration")
        results = {}
        for clock in clocks:
            device, comparisons = fit_wse(clock_hz=clock, free_alpha=args.free_alpha, targets=targets)
            errors = error_by_table(comparisons)
            fitted = {name: getattr(device, name) for name in (*WSE_FITTED, "alpha")}
            results[f"{clock:g}"] = {"constants": fitted, "error_by_table": errors}
            print(f"clock {clock / 1e9:.2f} GHz: " + ", ".join(f"{k} = {v:.4g}" for k, v in fitted.items()))
            print("  mean error by table: " + ", ".join(f"{k} {v:.1%}" for k, v in errors.items()))
            report.section(f"WSE-2 at {clock / 1e9:.2f} GHz")
            report.text(", ".join(f"{k} = {v:.4g}" for k, v in fitted.items()))
            report.table(
                [
                    {"table": c.table, "target": c.label, "paper": c.paper, "ours": c.ours, "ratio": c.ratio}
                    for c in comparisons
                ]
            )
            if holdout:
                rows = _holdout_rows(wse_holdouts(holdout, errors, clock, args.free_alpha, targets))
                results[f"{clock:g}"]["holdout"] = rows
                report.text("Leave-one-table-out: each table's error fitted with it and predicted without it.")
                report.table(rows)
        gpu, gpu_comparisons = fit_gpu()
        gpu_errors = error_by_table(gpu_comparisons)
        print("A100 (SGLang rows): mean error by table: " + ", ".join(f"{k} {v:.1%}" for k, v in gpu_errors.items()))
        report.section("A100 baseline")
        report.table(
            [
                {"table": c.table, "target": c.label, "paper": c.paper, "ours": c.ours, "ratio": c.ratio}
                for c in gpu_comparisons
            ]
        )
        results["A100"] = {"constants": asdict(gpu), "error_by_table": gpu_errors}
        gpu_tables = [t for t in holdout if t in gpu_errors]
        if gpu_tables:
            rows = _holdout_rows(gpu_holdouts(gpu_tables, gpu_errors), "A100")
            results["A100"]["holdout"] = rows
            report.text("A100 leave-one-table-out.")
            report.table(rows)
        run.artifact("calibration.json").write_text(json.dumps(results, indent=2))
        report.write()
        run.set_headline(**{f"error_{k}": v for k, v in error_by_table(comparisons).items()})
    print(f"calibration saved to {run.path / 'calibration.json'}; report {run.path / 'index.html'}")
    return 0


def _holdout_rows(holdouts: list, device: str = "WSE-2") -> list[dict]:
    """Print and return one row per held-out table: fitted (in-sample) against predicted error."""
    rows = []
    for h in holdouts:
        print(
            f"  {device} {h.table}: {h.in_sample:.1%} fitted with it (in-sample), "
            f"{h.held_out:.1%} predicted without it (held out)"
        )
        rows.append({"table": h.table, "in-sample error": h.in_sample, "held-out error": h.held_out, **h.constants})
    return rows


def _explore(args: argparse.Namespace) -> int:
    from garagelab.core import plots
    from garagelab.core.report import Report
    from garagelab.core.runs import RunStore
    from garagelab.wafer import explore
    from garagelab.wafer.device import get_device, get_gpu
    from garagelab.wafer.models import load_model

    model = load_model(args.model)
    device = get_device(args.device)
    gpu = get_gpu(args.gpu)
    sides = [240, 360, 480, 600, 720] if args.quick else list(range(240, 751, 60))
    srams = [32, 48, 96, 192] if args.quick else [32, 48, 64, 96, 128, 192, 288]
    config = {"model": model.name, "device": device.name, "gpu": gpu.name, "context": args.context, "quick": args.quick}
    with RunStore().start("wafer", "explore", config) as run:
        report = Report(run.path, f"wafer design space: {model.name} on {device.name}")
        for phase in ("decode", "prefill"):
            values = explore.sram_by_side(model, device, phase, args.context, srams, sides)
            report.section(f"{phase}: SRAM per core against region size")
            report.text("Blank cells: a layer does not fit in a core's SRAM at that region size.")
            report.figure(
                explore.heatmap(values, srams, sides, "SRAM per core (KB)", "region side", f"{phase} TPR"),
                f"{phase}-sram",
            )
        alphas, betas = [0.5, 1, 2, 4], [1, 4, 8, 16, 32]
        side = 420
        report.section(f"decode: hop latency alpha against routing-stage cost beta ({side}x{side})")
        report.figure(
            explore.heatmap(
                explore.alpha_by_beta(model, device, side, args.context, alphas, betas),
                alphas,
                betas,
                "alpha (cycles/hop)",
                "beta (cycles/stage)",
                "decode TPR",
            ),
            "alpha-beta",
        )
        mesh_sides = [8, 16, 32, 64] if args.quick else [8, 16, 32, 64, 128]
        needed = explore.routes_needed(mesh_sides)
        fig, (ax,) = plots.figure()
        for algorithm, counts in needed.items():
            ax.plot(mesh_sides, counts, "o-", label=algorithm)
        ax.axhline(device.route_budget, color="k", ls="--", label=f"route budget ({device.route_budget})")
        ax.set(xscale="log", yscale="log", xlabel="mesh side", ylabel="routes per core", title="Routes each GEMM needs")
        ax.legend(fontsize=7)
        report.section("Route budget")
        report.figure(fig, "routes", "SUMMA and allgather need a route per core on the line; MeshGEMM and Cannon O(1).")
        batches = [1, 2, 4, 8, 16] if args.quick else [1, 2, 4, 8, 16, 32, 64]
        curves = explore.batch_curves(model, device, gpu, batches, args.context)
        fig, (ax_tpr, ax_total) = plots.figure(ncols=2)
        for name, points in curves.items():
            ax_tpr.plot(batches, [p[0] for p in points], "o-", label=name)
            ax_total.plot(batches, [p[1] for p in points], "o-", label=name)
        ax_tpr.set(xscale="log", yscale="log", xlabel="batch", ylabel="tokens/s per request", title="Per request")
        ax_total.set(xscale="log", yscale="log", xlabel="batch", ylabel="tokens/s", title="Throughput")
        ax_tpr.legend(fontsize=7)
        report.section("Batch > 1 against the GPU roofline")
        report.figure(fig, "batch")
        path = report.write()
        best = max((v for p in curves[device.name] for v in p[1:] if math.isfinite(v)), default=math.nan)
        run.set_headline(best_throughput=best)
    print(f"exploration report: {path}")
    return 0
