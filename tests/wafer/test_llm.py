from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from garagelab.core.errors import UserError
from garagelab.wafer import gpu as gpus
from garagelab.wafer import paper
from garagelab.wafer.calibrate import (
    error_by_table,
    fit_gpu,
    fit_wse,
    gpu_holdouts,
    refit_devices,
    refit_gpus,
    wse_holdouts,
    wse_targets,
)
from garagelab.wafer.device import A100, WSE2, WSE3
from garagelab.wafer.explore import batch_curves, phase_tpr
from garagelab.wafer.kvcache import KVCache, capacity, slots_per_core
from garagelab.wafer.llm import (
    _simulate_on,
    best_placement,
    candidate_regions,
    check_work,
    decode_layer_work,
    decode_token_work,
    held_context,
    phase_seconds,
    phase_work,
    plan,
    prefill_layer_work,
    prefill_work,
    price,
    simulate,
)
from garagelab.wafer.models import MODELS, PAPER_MODELS, LLMConfig, from_hf_config, load_model
from garagelab.wafer.plots import decode_vs_grid_figure
from garagelab.wafer.program import PLMRViolation, check_plmr, memory_per_core
from garagelab.wafer.tables import summary, table2, table3, table4, table6, table8

LLAMA = MODELS["llama3-8b"]


def test_hf_config_loading(tmp_path: Path) -> None:
    config = {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = load_model(str(tmp_path))
    assert (model.kv_dim, model.q_dim, model.layers) == (1024, 4096, 32)
    assert model.params() == pytest.approx(8.03e9, rel=0.01)
    assert from_hf_config({**config, "num_key_value_heads": None}).kv_heads == 32  # MHA
    with pytest.raises(UserError, match="missing hidden_size"):
        from_hf_config({k: v for k, v in config.items() if k != "hidden_size"}, source="cfg.json")
    with pytest.raises(UserError, match="do not split"):
        from_hf_config({**config, "num_key_value_heads": 5})
    with pytest.raises(UserError, match=r"mixture-of-experts model \(num_local_experts = 8\)"):
        from_hf_config({**config, "num_local_experts": 8, "num_experts_per_tok": 2})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        load_model(str(tmp_path / "bad.json"))


def test_kv_cache_methods_store_every_token_and_fill_as_the_formula_says() -> None:
    rng = np.random.default_rng(0)
    for method in ("shift", "concat"):
        cache = KVCache(method, (4, 6), kv_dim=10, slots=3)
        keys, values = [], []
        with pytest.raises(PLMRViolation, match=f"KV cache \\({method}\\) is full after"):
            while True:
                key, value = rng.normal(size=10), rng.normal(size=10)
                cache.append(key, value)
                keys.append(key)
                values.append(value)
                if method == "shift":
                    assert cache.count.max() <= np.ceil(len(cache) / 6) + 1  # spread evenly
        assert len(cache) == capacity(method, 6, 3) == (18 if method == "shift" else 3)
        stored_k, stored_v = cache.tokens()
        np.testing.assert_allclose(stored_k, keys)
        np.testing.assert_allclose(stored_v, values)
        query = rng.normal(size=10)
        scores = np.array(keys) @ query / np.sqrt(10)
        weights = np.exp(scores - scores.max())
        np.testing.assert_allclose(cache.attention(query), weights / weights.sum() @ np.array(values))
    assert slots_per_core(4096, kv_dim=1024, width_parts=256, layers=2) == 4096 // (2 * 2 * 4 * 2)


def test_the_context_a_placement_holds_counts_the_workspace_at_that_context() -> None:
    """The KV slots beside the planned context's workspace overstate the context the cores hold
    (decode's scores grow with it); `held_context` is the longest a replan at that context keeps
    with the same layers per region, and one token more does not fit them."""
    wafer = plan(LLAMA, WSE2, "decode", 360, 2176)
    held = held_context(LLAMA, WSE2, wafer)
    assert 2176 <= held < wafer.kv_slot_tokens
    assert plan(LLAMA, WSE2, "decode", 360, held).layers_per_region == wafer.layers_per_region
    try:
        beyond = plan(LLAMA, WSE2, "decode", 360, held + 1).layers_per_region
    except UserError:
        beyond = 0  # no placement at all
    assert beyond < wafer.layers_per_region


def test_a_request_past_the_held_context_is_refused_even_within_the_kv_slots() -> None:
    """Pricing a request on a placement checks the context the placement holds (10,800 tokens
    for LLaMA3-8B decode on 360x360 planned at 2,176), not its KV slots (11,160): a request of
    11,000 tokens was priced before."""
    decode = plan(LLAMA, WSE2, "decode", 360, 2176)
    prefill = plan(LLAMA, WSE2, "prefill", 360, 2048)
    held = held_context(LLAMA, WSE2, decode)
    assert held < 11_000 < decode.kv_slot_tokens
    with pytest.raises(UserError, match=f"holds a context of {held} tokens, fewer than the 11000"):
        _simulate_on(LLAMA, WSE2, 2048, 11_000 - 2048, prefill, decode, "closed", 1)
    assert _simulate_on(LLAMA, WSE2, 2048, held - 2048, prefill, decode, "closed", 1).tpot_s > 0


def test_plan_packs_layers_under_sram_and_refuses_models_larger_than_the_chips_allowed() -> None:
    wafer = plan(LLAMA, WSE2, "decode", 360, 4096)
    per_layer = wafer.weight_bytes_per_layer + wafer.kv_bytes_per_layer
    room = WSE2.sram_usable - wafer.workspace_bytes
    assert wafer.layers_per_region * per_layer <= room < (wafer.layers_per_region + 1) * per_layer
    assert wafer.chips == 1 and wafer.regions <= 4 and wafer.kv_slot_tokens >= 4096
    # regions are aligned squares: 750x994 holds 2x2 of 360x360 (the area would allow 5), 1x1 of 540x540
    with pytest.raises(UserError, match=r"needs 2 regions \(25 layers each\) and a WSE-2 holds 1 \(1x1\); allow 2"):
        plan(LLAMA, WSE2, "decode", 540, 4096)
    with pytest.raises(UserError, match=r"qwen2-72b decode on 660x660 regions does not fit"):
        plan(MODELS["qwen2-72b"], WSE2, "decode", 660, 4096)
    big = plan(MODELS["qwen2-72b"], WSE2, "decode", 660, 4096, chips=None)
    assert big.chips == big.regions == 9 and "9 chips" in big.notes[0]
    assert plan(MODELS["qwen2-72b"], WSE2, "decode", 660, 4096, chips=12).chips == 9  # as many as it needs
    with pytest.raises(UserError, match=r"one layer needs .* bytes per core"):
        plan(LLAMA, WSE2, "decode", 60, 4096)


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_no_kernel_of_a_layer_overflows_sram_beside_the_resident_weights_and_kv_cache(phase: str) -> None:
    """The plan once packed layers by weights and KV cache alone, while each kernel was only
    checked against the whole SRAM: a core's resident layers plus a kernel's activations,
    partial sums and double buffers could need more than it has."""
    wafer = plan(LLAMA, WSE2, phase, 360, 4096, chips=None)
    resident = wafer.layers_per_region * (wafer.weight_bytes_per_layer + wafer.kv_bytes_per_layer)
    work = decode_layer_work(LLAMA, 360, 4096) if phase == "decode" else prefill_layer_work(LLAMA, 360, 4096)
    for op, _ in work:
        # the op's own copy of a weight tile is one of the resident layers', nothing more
        assert op.resident_bytes <= wafer.weight_bytes_per_layer
        held = memory_per_core(op.program) - op.resident_bytes
        assert resident + held <= WSE2.sram_usable, op.program.name
    biggest = max(memory_per_core(op.program) - op.resident_bytes for op, _ in work)
    assert wafer.workspace_bytes >= biggest > 0
    assert resident + wafer.workspace_bytes <= WSE2.sram_usable


def test_workspace_takes_sram_from_layers_and_grows_with_what_a_kernel_holds() -> None:
    # every head's prefill scores are held at once: 32 heads x 12 x 12 per core, twice (C and P)
    prefill = plan(LLAMA, WSE2, "prefill", 360, 4096, chips=None)
    assert prefill.workspace_bytes >= 2 * 32 * 12 * 12 * 2
    single = plan(replace(LLAMA, attention="single"), WSE2, "prefill", 360, 4096, chips=None)
    assert single.workspace_bytes < prefill.workspace_bytes and single.layers_per_region > prefill.layers_per_region
    # decode holds one score per cached token on a core (730 at 262k tokens: more than the LM
    # head's GEMV needs), so a longer context leaves less room
    short, long = plan(LLAMA, WSE2, "decode", 360, 4096), plan(LLAMA, WSE2, "decode", 360, 262_144, chips=None)
    assert long.workspace_bytes > short.workspace_bytes


def test_a_small_model_is_not_given_more_layers_per_region_than_it_has() -> None:
    """Qwen2-0.5B (24 layers and an LM head worth 8) was shown as "43 layers each" per region,
    and the SRAM of the 11 slots it does not need was taken from its KV cache."""
    small = LLMConfig("qwen2-0.5b", hidden=896, layers=24, heads=14, kv_heads=2, head_dim=64, ffn=4864, vocab=151936)
    wafer = plan(small, WSE2, "decode", 360, 4096)
    assert wafer.regions == 1 and wafer.layers_per_region == 32
    full = WSE2.sram_usable // (wafer.weight_bytes_per_layer + wafer.kv_bytes_per_layer)
    assert full > 32  # the case the cap is for
    assert wafer.kv_slot_tokens > plan(small, WSE2, "decode", 360, 4096, batch=2).kv_slot_tokens


def test_long_prompts_region_hop_streams_within_sram() -> None:
    """Qwen2-72B's 4096-token prefill crashed `wafer table 2`: the hop between regions held
    the whole prompt's activations in one core; it now streams in chunks that fit."""
    (row,) = table2(models={"qwen2-72b": MODELS["qwen2-72b"]}, shapes=((4096, 128),))
    assert np.isfinite(row["ours TPR"]) and not row["note"].startswith("does not fit")
    wafer = plan(MODELS["qwen2-72b"], WSE2, "prefill", 720, 4096, chips=None)
    for op, _ in prefill_work(MODELS["qwen2-72b"], wafer, 4096):
        check_plmr(op.program, WSE2.sram_usable, WSE2.route_budget)


def test_table_rows_that_cannot_run_say_why() -> None:
    tiny_sram = WSE2.with_overrides(sram_bytes=3 * 1024, sram_reserved=1024)  # 2 KB: a layer needs 2.2
    (row,) = table2(tiny_sram, models={"llama3-8b": LLAMA}, shapes=((2048, 128),))
    assert row["note"].startswith("does not fit: llama3-8b prefill: no region size")
    assert np.isnan(row["ours TPR"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"alpha": -1.0}, "alpha must be finite and non-negative"),
        ({"clock_hz": 0.0}, "clock_hz must be finite and positive"),
        ({"macs_per_cycle": float("nan")}, "macs_per_cycle must be finite and positive"),
        ({"usable": (800, 994)}, "must fit inside the fabric"),
        ({"sram_reserved": 60_000}, "sram_reserved must be below sram_bytes"),
    ],
)
def test_device_overrides_are_validated(override: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        WSE2.with_overrides(**override)


def test_gpu_overrides_are_validated() -> None:
    with pytest.raises(UserError, match="peak_flops must be finite and positive"):
        A100.with_overrides(peak_flops=0.0)
    assert A100.with_overrides(allreduce_latency_s=0.0).allreduce_latency_s == 0.0


def test_decode_slows_and_prefill_speeds_up_with_the_grid_as_in_the_paper() -> None:
    decode = [
        1 / price(decode_token_work(LLAMA, plan(LLAMA, WSE2, "decode", s, 4096, chips=None), 4096), WSE2).cycles
        for s in paper.DECODE_GRIDS
    ]
    prefill = [
        1 / price(prefill_work(LLAMA, plan(LLAMA, WSE2, "prefill", s, 4096, chips=None), 4096), WSE2).cycles
        for s in paper.PREFILL_GRIDS
    ]
    assert decode[0] > decode[1] > decode[2]
    assert prefill[0] < prefill[1] < prefill[2]


def test_calibrated_defaults_reproduce_the_papers_tables() -> None:
    assert summary(table4())["mean error"] < 0.10
    assert summary(table6())["mean error"] < 0.20


@pytest.mark.slow
def test_simulate_request_and_gpu_baseline() -> None:
    result = simulate(LLAMA, WSE2, 512, 64)
    assert result.ttft_s > 0 and result.tpot_s > 0
    assert 0 < result.relayout_s < result.ttft_s  # weights and KV cache move to decode's layout once
    assert result.total_s == pytest.approx(result.ttft_s + result.relayout_s + 64 * result.tpot_s)
    assert result.energy_per_token_j == pytest.approx(WSE2.power_watts * result.tpot_s)
    one_gpu = 1 / gpus.decode_seconds(LLAMA, A100, 1, 576)
    assert 20 < result.decode_tpr / one_gpu < 60  # the paper: 30-40x over one A100
    batched = simulate(LLAMA, WSE2, 512, 64, batch=8)
    assert batched.throughput > result.throughput and batched.decode_tpr < result.decode_tpr
    concat = simulate(LLAMA, WSE2, 8, 4, kv_method="concat", decode_region=360)
    assert concat.decode.kv_slot_tokens < result.decode.kv_slot_tokens
    with pytest.raises(UserError, match=r"4100 tokens \+ 8,200 workspace for its kernels\) but a core has"):
        simulate(LLAMA, WSE2, 4000, 100, kv_method="concat", decode_region=360)


def test_timestamp_cost_model_prices_decode_like_the_closed_form() -> None:
    wafer = plan(LLAMA, WSE2, "decode", 240, 2048)
    work = decode_token_work(LLAMA, wafer, 2048)
    closed, stamped = price(work, WSE2, "closed"), price(work, WSE2, "timestamps")
    assert stamped.cycles == pytest.approx(closed.cycles, rel=0.02)


def test_timestamp_simulation_reports_progress(capsys: pytest.CaptureFixture[str]) -> None:
    """`simulate --cost-model timestamps` ran 11 minutes without a word."""
    small = LLMConfig("small", hidden=512, layers=2, heads=8, kv_heads=8, head_dim=64, ffn=1024, vocab=1000)
    result = simulate(small, WSE2, 16, 4, prefill_side=120, decode_region=120, cost_model="timestamps")
    assert result.tpot_s > 0
    assert "small (timestamps): 1/1 (100%)" in capsys.readouterr().err


def test_a_held_out_table_never_reaches_its_fit() -> None:
    """`calibrate --holdout`: the constants fitted without a table do not move when that
    table's published numbers change, and start away from the shipped (in-sample) constants."""
    targets = wse_targets()
    in_sample = error_by_table(fit_wse(targets=targets)[1])
    (base,) = wse_holdouts(["table4"], in_sample, targets=targets)
    doubled = [replace(t, paper=2 * t.paper) if t.table == "table4" else t for t in targets]
    (moved,) = wse_holdouts(["table4"], in_sample, targets=doubled)
    assert moved.constants == base.constants
    assert moved.held_out > 0.4  # the doubled table is far from what the other tables predict
    assert base.held_out == pytest.approx(0.029, abs=0.01)  # decode is predicted without Table 4
    (gpu_prefill,) = gpu_holdouts(["table3"], error_by_table(fit_gpu()[1]))
    assert gpu_prefill.held_out > 2 * gpu_prefill.in_sample  # no other table pins prefill scaling


def test_energy_tables_use_the_papers_power_ratio_and_fastest_grid() -> None:
    """Tables 7/8: with the paper's own times, n * P_gpu * t_gpu / (P_wse * t_wse) on the fastest
    WSE grid gives every published ratio (to their rounding); ours are that formula on our times."""
    for tpr, ratios in (
        (paper.DECODE_TPR["llama3-8b"], paper.DECODE_ENERGY_RATIO["llama3-8b"]),
        (paper.PREFILL_TPR["llama3-8b"], paper.PREFILL_ENERGY_RATIO["llama3-8b"]),
    ):
        for count, a100, published in zip(paper.DECODE_GPUS, tpr["a100"], ratios, strict=True):
            ratio = count * A100.power_watts * max(tpr["wse"]) / (WSE2.power_watts * a100)
            assert ratio == pytest.approx(published, rel=0.01, abs=0.006)
    for row in table8():
        assert row["systems"].endswith("420x420")  # the fastest decode grid, as in the paper
        assert 0.7 < row["ratio"] < 1.3


def test_gpu_memory_is_checked() -> None:
    """`memory_bytes` was never used: Qwen2-72B (145 GB of fp16 weights) was priced on one A100."""
    assert "1 x A100 hold 80 GB" in gpus.memory_shortfall(MODELS["qwen2-72b"], A100, 1, 4096)
    assert gpus.memory_shortfall(MODELS["qwen2-72b"], A100, 8, 4096) is None
    assert gpus.memory_shortfall(LLAMA, A100, 1, 4096) is None
    assert "KV cache" in gpus.memory_shortfall(LLAMA, A100, 1, 4096, batch=200)
    rows = {row["system"]: row for row in table4() if row["model"] == "qwen2-72b"}
    assert rows["1 x A100"]["note"].startswith("exceeds GPU memory")  # the paper published a run
    assert rows["8 x A100"]["note"] == ""


def test_a_gpu_count_that_cannot_split_the_heads_is_refused_not_priced() -> None:
    """LLaMA2-13B's 40 heads do not split over 16 GPUs (the paper's table has no entry); the
    roofline priced it at 121 tokens/s, and 1e9 A100s for LLaMA3-8B just as readily."""
    thirteen = MODELS["llama2-13b"]
    assert "40 attention heads" in gpus.tensor_parallel_refusal(thirteen, 16)
    assert gpus.tensor_parallel_refusal(thirteen, 8) is None
    assert gpus.tensor_parallel_refusal(LLAMA, 16) is None  # 8 key/value heads, replicated twice
    assert "key/value heads" in gpus.tensor_parallel_refusal(replace(LLAMA, kv_heads=3, heads=48), 16)
    with pytest.raises(UserError, match="16 GPUs cannot run llama2-13b"):
        gpus.decode_seconds(thirteen, A100, 16, 4096)
    with pytest.raises(UserError, match="does not divide"):
        gpus.prefill_seconds(LLAMA, A100, 10**9, 4096)
    for table in (table3, table4):
        (row,) = [r for r in table() if r["model"] == "llama2-13b" and r["system"] == "16 x A100"]
        assert np.isnan(row["ours TPR"]) and row["note"].startswith("cannot run: tensor parallelism")
    assert set(batch_curves(thirteen, WSE2, A100, (1,), 1024)) == {"WSE-2", "1 x A100", "8 x A100"}  # no 16
    # nor is a batch the GPUs cannot hold (a million tokens of KV cache is 131 GB): a gap, not a price
    curves = batch_curves(LLAMA, WSE2, A100, (1, 64), 10**6)
    assert np.isnan(curves["1 x A100"]).all() and np.isfinite(curves["8 x A100"][0]).all()
    assert np.isnan(curves["8 x A100"][1]).all()


def test_attention_heads_split_the_reductions_and_widen_the_prefill_scores() -> None:
    from garagelab.wafer.llm import _head_layout, allreduce_op, decode_layer_work, prefill_layer_work

    heads, single = LLAMA, PAPER_MODELS["llama3-8b"]  # 32 heads of 128 / one of 4096
    assert _head_layout(single, 360) == (1, 360)  # the paper's single head spans the row
    assert _head_layout(heads, 360) == (1, 11)  # 12 columns a core: a head is shared by 11 cores
    assert _head_layout(heads, 16) == (2, 1)  # 256 columns a core: two whole heads, no reduction along x
    # a segmented reduction costs one segment's: less than along the whole row
    segment, row = (price([(allreduce_op(64, (360, 360), 1, g), 1)], WSE2).cycles for g in (11, None))
    assert segment < row and segment == price([(allreduce_op(64, (11, 11), 1), 1)], WSE2).cycles
    decode = {m.attention: price(decode_layer_work(m, 360, 4096), WSE2).cycles for m in (heads, single)}
    assert decode["heads"] < decode["single"]
    one = replace(heads, name="one", heads=1, kv_heads=1, head_dim=4096)  # a one-head config is the paper's
    as_config, as_paper = (
        price(decode_layer_work(m, 360, 4096), WSE2).cycles for m in (one, replace(one, attention="single"))
    )
    assert as_config == as_paper
    # prefill: the same MACs, but 32 heads' scores are held, normalised and shifted
    work = {m.attention: prefill_layer_work(m, 720, 4096) for m in (heads, single)}
    assert price(work["heads"], WSE2).cycles > price(work["single"], WSE2).cycles

    def gemm_macs(ops) -> float:
        return sum(op.form.evaluate(WSE2).macs_per_core * n for op, n in ops if "gemm" in op.program.name)

    def score_words(ops) -> int:
        return max(op.program.buffers["C"].shape[-1] for op, _ in ops if "gemm-t" in op.program.name)

    assert gemm_macs(work["heads"]) == gemm_macs(work["single"])
    assert score_words(work["heads"]) == 32 * score_words(work["single"])


def test_simulate_prices_the_configs_heads_unless_asked_for_the_papers_single_head(capsys) -> None:
    from garagelab.cli import main

    request = ["wafer", "simulate", "--model", "llama3-8b", "--input", "512", "--output", "16"]
    assert main(request) == 0
    assert "32-head attention" in capsys.readouterr().out
    assert main([*request, "--attention", "single"]) == 0
    assert "single-head (as the paper)" in capsys.readouterr().out
    with pytest.raises(UserError, match="attention 'flash'"):
        replace(LLAMA, attention="flash")


def test_plotted_predictions_carry_the_spread_of_the_refitted_constants() -> None:
    """Bands: one device per held-out table, each fitted without it, and the decode plot shades
    the range of its prediction over them (the in-sample curve inside it, the band not flat)."""
    devices = refit_devices()
    assert len(devices) == len(paper.HOLDOUT_TABLES)
    assert len({d.beta for d in devices}) == len(devices)  # each refit saw different tables
    model, sides = MODELS["llama3-8b"], [360, 600]
    figure = decode_vs_grid_figure(model, WSE2, A100, sides, 2048, spread=devices, gpu_spread=refit_gpus())
    (band,) = [c for c in figure.axes[0].collections if isinstance(c, PolyCollection)]
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    shipped = [phase_tpr(model, WSE2, "decode", side, 2048) for side in sides]
    assert low < min(shipped) and max(shipped) < high


def test_a_batch_is_prefilled_together() -> None:
    """Batch prefill: the projections and the MLP run on every prompt's tokens at once (better
    use of the mesh than one prompt at a time), attention on each prompt alone."""
    one = simulate(LLAMA, WSE2, 256, 8, prefill_side=360, decode_region=360)
    four = simulate(LLAMA, WSE2, 256, 8, prefill_side=360, decode_region=360, batch=4)
    assert one.ttft_s < four.ttft_s < 4 * one.ttft_s
    assert four.prefill_tpr > one.prefill_tpr
    alone = price(prefill_work(LLAMA, four.prefill, 256), WSE2).cycles
    together = price(prefill_work(LLAMA, four.prefill, 256, batch=4), WSE2).cycles
    assert alone < together < 4 * alone
    assert four.relayout.bytes_moved > one.relayout.bytes_moved  # four prompts' KV caches move


def test_wse3_is_a_labelled_projection_with_a_larger_fabric_and_faster_cores() -> None:
    """WSE-3 was WSE-2 with a bigger fabric, priced without a word; nothing measured on it is
    published, so its results say what they rest on."""
    assert WSE3.region_grid(360) == (2, 3) and WSE2.region_grid(360) == (2, 2)
    on_3 = simulate(LLAMA, WSE3, 512, 16, prefill_side=360, decode_region=360)
    on_2 = simulate(LLAMA, WSE2, 512, 16, prefill_side=360, decode_region=360)
    assert any("WSE-3 is a projection" in note for note in on_3.notes)
    assert not any("projection" in note for note in on_2.notes)
    assert on_3.ttft_s < on_2.ttft_s  # prefill is compute-heavy: twice the MACs per cycle show
    assert on_3.energy_per_token_j <= on_2.energy_per_token_j  # same power, no slower


def test_decode_runs_on_rectangles_each_axis_split_as_the_layout_says() -> None:
    """Hidden size over the rows, q/KV/FFN widths over the columns, cached tokens over the rows."""
    wide, tall = plan(LLAMA, WSE2, "decode", (187, 994), 4096), plan(LLAMA, WSE2, "decode", (375, 300), 4096)
    assert wide.label == "187x994" and wide.cores == 187 * 994 * wide.regions
    e, qkv = LLAMA.hidden, LLAMA.q_dim + 2 * LLAMA.kv_dim
    work = decode_layer_work(LLAMA, (187, 994), 4096)
    gemvs = [op.program for op, _ in work if op.program.name.startswith("gemv")]
    assert all(program.grid == (187, 994) for program in gemvs)
    assert gemvs[0].buffers["W"].shape[-2:] == (-(-e // 187), -(-qkv // 994))  # QKV: K along y
    assert gemvs[1].buffers["W"].shape[-2:] == (-(-LLAMA.q_dim // 994), -(-e // 187))  # O: K along x
    # the KV cache: a token's K and V split over the columns, tokens over the rows (shift: +1)
    assert wide.kv_bytes_per_layer == 2 * -(-LLAMA.kv_dim // 994) * 2 * (-(-4096 // 187) + 1)
    assert tall.kv_bytes_per_layer == 2 * -(-LLAMA.kv_dim // 300) * 2 * (-(-4096 // 375) + 1)
    # regions pack as rectangles: 2 x 2 of 375x497 use the whole 750x994 fabric
    assert WSE2.region_grid((375, 497)) == (2, 2) and WSE2.region_grid((187, 994)) == (4, 1)
    with pytest.raises(UserError, match="prefill runs on square regions"):
        plan(LLAMA, WSE2, "prefill", (360, 480), 2048)


def test_consecutive_regions_are_neighbours_on_the_fabric() -> None:
    """Regions lie in a snake, so every region hop is one region's width or height long."""
    corners = [WSE2.region_corner(i, (240, 240)) for i in range(13)]
    assert corners[:4] == [(0, 0, 0), (0, 0, 240), (0, 0, 480), (0, 0, 720)]
    assert corners[4:8] == [(0, 240, 720), (0, 240, 480), (0, 240, 240), (0, 240, 0)]
    assert corners[12] == (1, 0, 0)  # 12 regions a chip: the 13th starts the next chip
    squares = plan(LLAMA, WSE2, "decode", 360, 4096)
    assert squares.boundaries == ((360, squares.regions - 1),)
    stacked = plan(LLAMA, WSE2, "decode", (187, 994), 4096)
    assert stacked.boundaries == ((187, stacked.regions - 1),)  # one above the other
    on_two_chips = plan(MODELS["qwen2-72b"], WSE2, "decode", 660, 4096, chips=None)
    assert sum(count for _, count in on_two_chips.boundaries) == on_two_chips.regions - on_two_chips.chips


def test_autotuning_tries_rectangles_for_decode_and_keeps_the_fastest() -> None:
    regions = candidate_regions(WSE2, "decode")
    assert (360, 360) in regions and (375, 497) in regions and (750, 994) in regions
    assert all(rows == cols for rows, cols in candidate_regions(WSE2, "prefill"))
    best = best_placement(LLAMA, WSE2, "decode", 2176, "shift", "closed")

    def seconds(region: tuple[int, int]) -> float:
        wafer = plan(LLAMA, WSE2, "decode", region, 2176)
        work = phase_work(LLAMA, wafer, 2176)
        check_work(work, WSE2)
        return phase_seconds(LLAMA, wafer, work, 2176, WSE2)

    fitting = []
    for region in regions:
        try:
            fitting.append(seconds(region))
        except UserError:
            continue
    assert seconds(best.region) == min(fitting)


def test_decode_placement_is_chosen_for_the_whole_request_switch_included() -> None:
    """A faster decode region whose layers sit on other chips than prefill's pays the chip link
    to switch; for 128 output tokens that costs more than it saves, so it is not chosen."""
    model = PAPER_MODELS["llama2-13b"]
    chosen = simulate(model, WSE2, 2048, 128, chips=2)
    quick = _simulate_on(
        model,
        WSE2,
        2048,
        128,
        chosen.prefill,
        plan(model, WSE2, "decode", (250, 497), 2176, chips=2),
        "closed",
        1,
    )
    assert quick.tpot_s < chosen.tpot_s and quick.relayout.chip_link_bytes > 0
    assert chosen.total_s < quick.total_s
