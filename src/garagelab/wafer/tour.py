"""Tour step: LLaMA3-8B decode on a simulated WSE-2 against A100s, and one plot."""

from __future__ import annotations

from garagelab.core.tour import TourContext

TITLE = "WaferLLM: LLM inference on a simulated wafer-scale mesh"


def run(ctx: TourContext) -> dict[str, float]:
    from garagelab.wafer import gpu as gpus
    from garagelab.wafer.calibrate import refit_devices, refit_gpus
    from garagelab.wafer.device import A100, WSE2
    from garagelab.wafer.kernels import gemv
    from garagelab.wafer.llm import simulate
    from garagelab.wafer.models import MODELS
    from garagelab.wafer.plots import decode_vs_grid_figure, mesh_heatmap_figure

    model = MODELS["llama3-8b"]
    report = ctx.report
    result = simulate(model, WSE2, 2048, 128)
    report.text(
        f"{model.name}, 2048 tokens in and 128 out, on a simulated {WSE2.name} ({WSE2.usable[0]}x{WSE2.usable[1]} "
        f"cores, constants calibrated to the paper): prefill on {result.prefill.label} regions, "
        f"decode on {result.decode.label}."
    )
    rows = [
        {
            "system": f"{WSE2.name} (simulated)",
            "TTFT ms": result.ttft_s * 1e3,
            "decode tokens/s": result.decode_tpr,
            "J per token": result.energy_per_token_j,
        }
    ]
    for count in (1, 8, 16):
        tpot = gpus.decode_seconds(model, A100, count, 2048 + 64)
        rows.append(
            {
                "system": f"{count} x A100 (model)",
                "TTFT ms": gpus.prefill_seconds(model, A100, count, 2048) * 1e3,
                "decode tokens/s": 1 / tpot,
                "J per token": count * A100.power_watts * tpot,
            }
        )
    report.table(rows)
    sides = [240, 360, 480, 600, 720] if ctx.quick else list(range(240, 751, 60))
    report.figure(
        decode_vs_grid_figure(model, WSE2, A100, sides, 2048, spread=refit_devices(), gpu_spread=refit_gpus()),
        "wafer-decode-grid",
        "Decode speed against region size: bigger regions compute faster but reduce over longer lines. "
        "Shaded: the range of the prediction over the device constants refitted without each paper table.",
    )
    if not ctx.quick:
        report.figure(
            mesh_heatmap_figure(
                gemv("ktree", 4096, 4096, (60, 60), broadcast=False).program, WSE2, "K-tree reduce, 60x60"
            ),
            "wafer-ktree-heatmap",
            "When each core is done with a K-tree GEMV reduction: chains into group roots, then across roots.",
        )
    return {"decode_tpr": result.decode_tpr}
