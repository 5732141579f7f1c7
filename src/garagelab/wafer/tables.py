"""The paper's tables and figures, side by side with the simulator (paper, ours, ratio).

Each function returns rows (dicts) for one table; `garagelab wafer table NAME` prints them and
`experiments/wafer/*.py` writes them as CSV and markdown with plots.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from garagelab.core.errors import UserError
from garagelab.wafer import gpu as gpus
from garagelab.wafer import paper
from garagelab.wafer.cost import closed_form
from garagelab.wafer.device import A100, WSE2, DeviceModel, GPUModel
from garagelab.wafer.kernels import gemm, gemv
from garagelab.wafer.llm import max_context, phase_work, plan, price, simulate
from garagelab.wafer.models import PAPER_MODELS, LLMConfig

NAN = float("nan")


def _ratio(ours: float, published: float | None) -> float:
    return ours / published if published else NAN


def table6(device: DeviceModel = WSE2, gpu: GPUModel = A100) -> list[dict]:
    """GEMV [1, n] x [n, n]: MeshGEMV on its best grid, A100 x1/8/16, energy ratios."""
    rows = []
    for n in paper.GEMV_SIZES:
        best = min(
            (closed_form(gemv("ktree", n, n, (s, s), broadcast=False).program, device).cycles, s)
            for s in range(240, min(device.usable) + 1, 30)
        )
        wse_us = device.seconds(best[0]) * 1e6
        rows.append(
            {
                "system": f"{device.name} ({best[1]}x{best[1]})",
                "n": n,
                "paper": paper.GEMV_WSE_US[n],
                "ours": wse_us,
                "ratio": _ratio(wse_us, paper.GEMV_WSE_US[n]),
                "energy ratio paper": "",
                "energy ratio ours": "",
            }
        )
        for count, published, energy in zip(
            paper.DECODE_GPUS, paper.GEMV_A100_US[n], paper.GEMV_ENERGY_RATIO[n], strict=True
        ):
            ours = gpus.gemv_seconds(n, gpu, count) * 1e6
            ours_energy = count * gpu.power_watts * ours / (device.power_watts * wse_us)
            rows.append(
                {
                    "system": f"{count} x {gpu.name}",
                    "n": n,
                    "paper": published,
                    "ours": ours,
                    "ratio": _ratio(ours, published),
                    "energy ratio paper": energy,
                    "energy ratio ours": ours_energy,
                }
            )
    return rows


def _phase_seconds(model: LLMConfig, device: DeviceModel, phase: str, side: int, length: int) -> tuple[float, int]:
    """Seconds of one decode token or one whole prefill on side x side regions, priced per
    layer as the paper's numbers are (its code runs one layer and scales), and the chips the
    layers would need at that grid."""
    wafer = plan(model, device, phase, side, length, chips=None)
    return device.seconds(price(phase_work(model, wafer, length), device).cycles), wafer.chips


def _paper_method_note(chips: int) -> str:
    if chips == 1:
        return ""
    return f"needs {chips} chips at this grid; priced per layer as the paper does (chip links not counted)"


def _chips_note(chips: int) -> str:
    return "" if chips == 1 else f"{chips} chips, layers pipelined over the chip link"


def _gpu_phase_seconds(model: LLMConfig, gpu: GPUModel, phase: str, count: int, length: int) -> float:
    if phase == "decode":
        return gpus.decode_seconds(model, gpu, count, length)
    return gpus.prefill_seconds(model, gpu, count, length)


def _phase_table(phase: str, device: DeviceModel, gpu: GPUModel) -> list[dict]:
    grids = paper.DECODE_GRIDS if phase == "decode" else paper.PREFILL_GRIDS
    published = paper.DECODE_TPR if phase == "decode" else paper.PREFILL_TPR
    length = paper.DECODE_CONTEXT if phase == "decode" else paper.PREFILL_INPUT
    rows = []
    for name, model in PAPER_MODELS.items():
        for side, value in zip(grids, published[name]["wse"], strict=True):
            seconds, chips = _phase_seconds(model, device, phase, side, length)
            ours = 1 / seconds if phase == "decode" else length / seconds
            rows.append(
                {
                    "model": name,
                    "system": f"{device.name} {side}x{side}",
                    "paper TPR": value,
                    "ours TPR": ours,
                    "ratio": _ratio(ours, value),
                    "note": _paper_method_note(chips),
                }
            )
        for count, value in zip(paper.DECODE_GPUS, published[name]["a100"], strict=True):
            refusal = gpus.tensor_parallel_refusal(model, count)
            shortfall = gpus.memory_shortfall(model, gpu, count, length)
            if refusal:
                ours, note = NAN, f"cannot run: {refusal}"
            elif shortfall and not value:
                ours, note = NAN, f"does not fit: {shortfall}"
            else:
                seconds = _gpu_phase_seconds(model, gpu, phase, count, length)
                ours = 1 / seconds if phase == "decode" else length / seconds
                note = ""
                if shortfall:  # kept to compare with a published run that must have offloaded
                    note = f"exceeds GPU memory ({shortfall}); the paper's run must offload or quantise"
            rows.append(
                {
                    "model": name,
                    "system": f"{count} x {gpu.name}",
                    "paper TPR": value if value else NAN,
                    "ours TPR": ours,
                    "ratio": _ratio(ours, value),
                    "note": note,
                }
            )
    return rows


def table3(device: DeviceModel = WSE2, gpu: GPUModel = A100) -> list[dict]:
    """Prefill TPR, 4K input."""
    return _phase_table("prefill", device, gpu)


def table4(device: DeviceModel = WSE2, gpu: GPUModel = A100) -> list[dict]:
    """Decode TPR."""
    return _phase_table("decode", device, gpu)


def _energy_table(phase: str, device: DeviceModel, gpu: GPUModel) -> list[dict]:
    """Energy of the A100 cluster over the wafer's for the same work (LLaMA3-8B), the wafer on
    its fastest grid of the paper's, both at constant power: n * P_gpu * t_gpu / (P_wse * t_wse)."""
    grids = paper.DECODE_GRIDS if phase == "decode" else paper.PREFILL_GRIDS
    published = paper.DECODE_ENERGY_RATIO if phase == "decode" else paper.PREFILL_ENERGY_RATIO
    length = paper.DECODE_CONTEXT if phase == "decode" else paper.PREFILL_INPUT
    rows = []
    for name, ratios in published.items():
        model = PAPER_MODELS[name]
        wse_s, side = min((_phase_seconds(model, device, phase, side, length)[0], side) for side in grids)
        for count, value in zip(paper.DECODE_GPUS, ratios, strict=True):
            gpu_s = _gpu_phase_seconds(model, gpu, phase, count, length)
            ours = count * gpu.power_watts * gpu_s / (device.power_watts * wse_s)
            rows.append(
                {
                    "model": name,
                    "systems": f"{count} x {gpu.name} / {device.name} {side}x{side}",
                    "paper energy ratio": value,
                    "ours energy ratio": ours,
                    "ratio": _ratio(ours, value),
                }
            )
    return rows


def table7(device: DeviceModel = WSE2, gpu: GPUModel = A100) -> list[dict]:
    """Prefill energy, A100 cluster over WSE-2 (4K input)."""
    return _energy_table("prefill", device, gpu)


def table8(device: DeviceModel = WSE2, gpu: GPUModel = A100) -> list[dict]:
    """Decode energy per token, A100 cluster over WSE-2."""
    return _energy_table("decode", device, gpu)


def fig9(device: DeviceModel = WSE2, sizes=(2048, 4096, 8192), sides=(180, 360, 540, 720)) -> list[dict]:
    """GEMM compute efficiency (ideal compute cycles / total) per algorithm and mesh size."""
    rows = []
    for n in sizes:
        for side in sides:
            row: dict = {"GEMM": f"{n // 1024}K", "mesh": f"{side}x{side}"}
            for algorithm in ("meshgemm", "summa", "cannon"):
                cost = closed_form(gemm(algorithm, n, n, n, (side, side)).program, device)
                row[f"{algorithm} cycles"] = cost.cycles
                row[f"{algorithm} efficiency"] = cost.macs_per_core / device.macs_per_cycle / cost.cycles
            rows.append(row)
    return rows


def fig10(device: DeviceModel = WSE2, sizes=(4096, 8192, 16384), sides=(120, 240, 360, 480, 600, 720)) -> list[dict]:
    """MeshGEMV (K-tree) against the pipeline-allreduce GEMV: time and communication share."""
    rows = []
    for n in sizes:
        for side in sides:
            tree = closed_form(gemv("ktree", n, n, (side, side), broadcast=False).program, device)
            pipe = closed_form(gemv("pipeline", n, n, (side, side), broadcast=False).program, device)
            rows.append(
                {
                    "GEMV": f"{n // 1024}K",
                    "mesh": f"{side}x{side}",
                    "MeshGEMV us": device.seconds(tree.cycles) * 1e6,
                    "pipeline us": device.seconds(pipe.cycles) * 1e6,
                    "speed-up": pipe.cycles / tree.cycles,
                    "MeshGEMV comm share": tree.communication_share,
                    "pipeline comm share": pipe.communication_share,
                }
            )
    return rows


TABLE2_SHAPES = ((2048, 128), (2048, 2048), (4096, 128), (4096, 4096))


def table2(
    device: DeviceModel = WSE2,
    gpu: GPUModel = A100,
    models: dict[str, LLMConfig] = PAPER_MODELS,
    shapes: tuple[tuple[int, int], ...] = TABLE2_SHAPES,
) -> list[dict]:
    """Predicted end-to-end TPR (output tokens / whole request time) with autotuned grids;
    a request that cannot run is a row that says why."""
    rows = []
    for name, model in models.items():
        for inputs, outputs in shapes:
            try:
                result = simulate(model, device, inputs, outputs, chips=None)
            except UserError as exc:  # refused with the reason, never priced by scaling
                rows.append(
                    {
                        "model": name,
                        "input/output": f"{inputs}/{outputs}",
                        "grids (prefill, decode)": "-",
                        "ours TPR": NAN,
                        f"best {gpu.name} cluster TPR": NAN,
                        "speed-up": NAN,
                        "note": f"does not fit: {exc}",
                    }
                )
                continue
            best_gpu = max(
                (
                    outputs
                    / (
                        gpus.prefill_seconds(model, gpu, n, inputs)
                        + outputs * gpus.decode_seconds(model, gpu, n, inputs + outputs // 2)
                    )
                    for n in paper.DECODE_GPUS
                    if gpus.cannot_run(model, gpu, n, inputs + outputs) is None  # clusters that split and hold it
                ),
                default=NAN,
            )
            rows.append(
                {
                    "model": name,
                    "input/output": f"{inputs}/{outputs}",
                    "grids (prefill, decode)": f"{result.prefill.label}, {result.decode.label}",
                    "ours TPR": result.end_to_end_tpr,
                    f"best {gpu.name} cluster TPR": best_gpu,
                    "speed-up": result.end_to_end_tpr / best_gpu,
                    "note": _chips_note(max(result.prefill.chips, result.decode.chips)),
                }
            )
    return rows


def table5(device: DeviceModel = WSE2, sides=(360, 420, 540, 660)) -> list[dict]:
    """Predicted maximum decode length (tokens of context) on one chip, shift vs concat KV
    caches; a grid on which the model does not fit one chip says so. The columns name their unit:
    bare, "shift" and "concat" read as cycles or bytes like the other tables' columns."""
    shift_tokens, concat_tokens = "shift (tokens)", "concat (tokens)"
    rows = []
    for name in ("llama3-8b", "llama2-13b"):
        model = PAPER_MODELS[name]
        for side in sides:
            row = {"model": name, "mesh": f"{side}x{side}"}
            try:
                plan(model, device, "decode", side, 1)
            except UserError as exc:  # refused with the reason, never priced by scaling
                rows.append({**row, shift_tokens: NAN, concat_tokens: NAN, "shift / concat": NAN, "note": str(exc)})
                continue
            shift = max_context(model, device, side, "shift")
            concat = max_context(model, device, side, "concat")
            rows.append(
                {
                    **row,
                    shift_tokens: shift,
                    concat_tokens: concat,
                    "shift / concat": shift / concat if concat else NAN,
                    "note": "",
                }
            )
    return rows


TABLES: dict[str, Callable[..., list[dict]]] = {
    "2": table2,
    "3": table3,
    "4": table4,
    "5": table5,
    "6": table6,
    "7": table7,
    "8": table8,
    "fig9": fig9,
    "fig10": fig10,
}


def summary(rows: list[dict], column: str = "ratio") -> dict[str, float]:
    """Mean and worst |log ratio| of a table's published entries, as relative errors."""
    ratios = np.array([r[column] for r in rows if isinstance(r.get(column), float) and math.isfinite(r[column])])
    if not len(ratios):
        return {}
    logs = np.abs(np.log(ratios))
    return {"mean error": float(np.expm1(logs.mean())), "worst error": float(np.expm1(logs.max()))}


def write_table(rows: list[dict], directory, name: str, title: str) -> str:
    """Write rows as `name`.csv and `name`.md in `directory`; returns the markdown."""
    import csv
    from pathlib import Path

    from garagelab.core.report import format_value

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0])
    with (directory / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_value(row[c]) for c in columns) + " |" for row in rows]
    stats = summary(rows)
    if stats:
        lines += ["", f"Mean error {stats['mean error']:.1%}, worst {stats['worst error']:.1%} over published entries."]
    text = "\n".join(lines) + "\n"
    (directory / f"{name}.md").write_text(text)
    return text
