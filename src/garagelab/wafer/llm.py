"""LLM inference on a simulated wafer: place the model, then price prefill and decode.

Placement (`plan`): a phase runs on regions of R x C cores: squares for prefill (MeshGEMM
needs a square grid), rectangles too for decode. Every weight matrix is 2-D tiled over a
region (dimensions padded to multiples of R and C); as many layers as fit in a core's SRAM
share a region (with the KV cache they need), and the model spans as many regions as it
takes, layer after layer (pipeline parallelism across regions, the paper's answer to 48 KB
per core). Regions are aligned rectangles packed on the usable fabric (two 360x360 on 750
rows, two on 994 columns: four, not the five the area would allow; 2x2 of 375x497 use it
all), in a snake so that consecutive regions are neighbours. A model needing more regions
than one chip holds is refused with the reason, unless `chips` allows several: then the
layers are pipelined across chips, and each chip boundary costs the chip link (its latency
plus the boundary's activations at its bandwidth) instead of a region hop. The paper prices
Qwen2-72B from a subset of layers scaled up; here it runs on as many chips as it needs,
explicitly (`chips=None`, as the tables do).

Decode (batch 1): per layer RMSNorm, fused QKV GEMV, RoPE, attention over the KV cache, O
GEMV, RMSNorm, fused up/gate GEMV, SiLU, down GEMV, residuals; GEMVs alternate their split
axis so no transpose is needed, and every allreduce is a K-tree. The hidden vector is split
along y (the QKV and up GEMVs reduce along y), so q, K and V come out split along x: the KV
cache keeps its width along x and its tokens along y (layout L_y E_x, as prefill holds it),
each score is summed along x within its head and the softmax runs along y. On a rectangle,
more rows shorten attention and the hidden-size reductions, more columns the q/KV and FFN
splits. Prefill (layout B L_y E_x): the same layer with MeshGEMM, and GEMM-T for Q K^T.
Every operation is a mesh program priced by a cost model; identical operations are priced
once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from garagelab.core.errors import UserError
from garagelab.core.progress import ProgressBar
from garagelab.wafer.collectives import allreduce
from garagelab.wafer.cost import COST_MODELS, EMPTY_FORM, ZERO, Cost, Form, compile_form, timestamps
from garagelab.wafer.device import DeviceModel, Region, as_region
from garagelab.wafer.kernels import gemm, gemm_t, gemv
from garagelab.wafer.kvcache import capacity, slots_per_core, tokens_per_core
from garagelab.wafer.models import LLMConfig
from garagelab.wafer.program import Compute, MeshProgram, Placement, Shift, check_plmr, memory_per_core
from garagelab.wafer.relayout import Relayout, relayout

PHASES = ("prefill", "decode")


def region_label(region: Region) -> str:
    return f"{region[0]}x{region[1]}"


# -- operations (each a mesh program, built and compiled once per shape) ----------------------


@dataclass(frozen=True)
class Op:
    """A mesh program, its compiled closed form, and the bytes per core of its buffers that the
    placement already holds (a weight tile, counted in the plan's weights, not its workspace)."""

    program: MeshProgram
    form: Form
    resident_bytes: int = 0

    @property
    def workspace_bytes(self) -> int:
        """SRAM per core the operation needs while it runs, beyond what the placement holds:
        activations, partial sums, double buffers, collective scratch."""
        return memory_per_core(self.program) - self.resident_bytes


def _op(program: MeshProgram, resident: str | None = None) -> Op:
    """`resident`: the buffer holding the placement's weight tile, if any."""
    held = program.hosted * program.buffers[resident].nbytes if resident else 0
    return Op(program, compile_form(program), held)


@lru_cache(maxsize=4096)
def gemv_op(k: int, n: int, region: Region, k_axis: int, batch: int = 1) -> Op:
    """A K-tree GEMV; with batch > 1, B vectors at once (B x the MACs and the reduced words)."""
    program = gemv("ktree", k, n, region, k_axis=k_axis).program
    if batch > 1:
        program = _batched(program, batch)
    return _op(program, resident="W")


def _batched(program: MeshProgram, batch: int) -> MeshProgram:
    """The same steps on `batch` times the data per core (buffers widened, MACs multiplied)."""
    widened = _widened(program, {name: batch for name in program.buffers if name != "W"}, f" x{batch}")
    widened.steps = [replace(s, macs=s.macs * batch) if isinstance(s, Compute) else s for s in program.steps]
    return widened


def _widened(program: MeshProgram, factors: dict[str, int], suffix: str) -> MeshProgram:
    """The same steps with the named buffers `factor` times wider: what they hold, and what shifts of them carry."""
    widened = MeshProgram(program.name + suffix, program.grid, program.placement)
    for name, buffer in program.buffers.items():
        widened.buffer(name, (*buffer.shape[:-1], buffer.shape[-1] * factors.get(name, 1)))
    widened.steps = list(program.steps)
    return widened


@lru_cache(maxsize=4096)
def gemm_op(m: int, k: int, n: int, side: int, transposed: bool = False, heads: int = 1, weights: bool = False) -> Op:
    """MeshGEMM (GEMM-T for Q K^T). With `heads` > 1 the product is block-diagonal by head: the
    MACs are the same, but Q K^T's partial scores (C, P) and S V's score operand (A) hold and
    shift every head's block, so they are `heads` times wider. `weights`: B is a weight matrix
    the placement holds (a projection); attention's K and V operands are working copies."""
    kernel = gemm_t(m, k, n, (side, side)) if transposed else gemm("meshgemm", m, k, n, (side, side))
    resident = "B" if weights else None
    if heads == 1:
        return _op(kernel.program, resident)
    wide = ("C", "P") if transposed else ("A", "A.next")
    return _op(_widened(kernel.program, dict.fromkeys(wide, heads), f" ({heads} heads)"), resident)


@lru_cache(maxsize=4096)
def local_op(elements: int, region: Region, held: int = 0) -> Op:
    """An element-wise pass over `elements` per core (one operation per element), holding
    `held` elements per core while it runs (attention scores; other passes work in place on
    buffers their neighbouring kernels hold)."""
    program = MeshProgram.on("elementwise", region)
    if held:
        program.buffer("x", (held,))
    program.add(Compute("x", (), lambda: None, macs=elements))
    return _op(program)


@lru_cache(maxsize=4096)
def allreduce_op(words: int, region: Region, axis: int, group: int | None = None) -> Op:
    """A K-tree allreduce of `words` elements per core along one axis of a region; with
    `group`, within segments of that many cores (all segments at once, on disjoint links)."""
    rows, cols = region
    group = region[axis] if group is None else group
    program = MeshProgram.on("allreduce", (rows, group) if axis == 1 else (group, cols))
    program.buffer("v", (max(1, words),))
    allreduce(program, "v", axis, method="ktree", k=2)
    return _op(program)


@lru_cache(maxsize=4096)
def region_hop_op(words: int, distance: int) -> Op:
    """Activations crossing from one region to the next, `distance` hops away (the region's
    width or height: see `region_boundaries`)."""
    program = MeshProgram("region hop", (1, 2), (Placement(np.zeros(1, dtype=int)), Placement(np.array([0, distance]))))
    program.buffer("v", (max(1, words),))
    program.add(Shift("v", 1, offsets=np.array([1])))
    return _op(program)


Work = list[tuple[Op, float]]  # operations and how many times each runs


def price(work: Work, device: DeviceModel, cost_model: str = "closed") -> Cost:
    """The cost of a list of operations run one after another."""
    if cost_model == "closed":
        return sum((op.form.evaluate(device).scaled(count) for op, count in work), ZERO)
    if cost_model == "timestamps":
        return sum((timestamps(op.program, device)[0].scaled(count) for op, count in work), ZERO)
    raise UserError(f"unknown cost model {cost_model!r}; choose one of {', '.join(COST_MODELS)}")


def compile_work(work: Work) -> Form:
    """All operations as one closed form (price it for many devices in microseconds)."""
    return sum((op.form.scaled(count) for op, count in work), EMPTY_FORM)


# -- placement ---------------------------------------------------------------------------------


def _tile_bytes(k: int, n: int, parts_k: int, parts_n: int, device: DeviceModel) -> int:
    return math.ceil(k / parts_k) * math.ceil(n / parts_n) * device.bytes_per_element


def layer_weight_bytes(model: LLMConfig, region: Region, device: DeviceModel) -> int:
    """Per-core SRAM for one layer's weights on a region (padded tiles): the hidden size split
    over the rows, q/KV and FFN widths over the columns (the GEMVs' alternating split)."""
    rows, cols = region
    e, f = model.hidden, model.ffn
    return (
        _tile_bytes(e, model.q_dim + 2 * model.kv_dim, rows, cols, device)
        + _tile_bytes(model.q_dim, e, cols, rows, device)
        + _tile_bytes(e, 2 * f, rows, cols, device)
        + _tile_bytes(f, e, cols, rows, device)
        + 2 * math.ceil(e / rows) * device.bytes_per_element
    )


@dataclass(frozen=True)
class WaferPlan:
    """Where a phase runs: region size, layers per region, regions, and what the SRAM holds."""

    phase: str
    region: Region  # (rows, cols) of cores
    layers_per_region: int
    regions: int
    weight_bytes_per_layer: int
    kv_bytes_per_layer: int
    kv_method: str
    # tokens the KV slots left beside the planned context's workspace hold: an upper bound on the
    # context, since the workspace grows with it (`held_context` gives the longest that fits)
    kv_slot_tokens: int
    workspace_bytes: int  # per core, the largest any one kernel needs beyond weights and KV cache
    chips: int = 1  # chips the layers are pipelined across
    batch: int = 1  # requests whose KV cache it holds
    notes: tuple[str, ...] = field(default_factory=tuple)
    # ((hops, count), ...) of the region-to-region boundaries on the fabric (`region_boundaries`)
    boundaries: tuple[tuple[int, int], ...] = ()

    @property
    def cores(self) -> int:
        return self.region[0] * self.region[1] * self.regions

    @property
    def label(self) -> str:
        return region_label(self.region)

    def sram_per_core(self) -> dict[str, int]:
        """Bytes per core: the region's layers' weights, their KV cache, the kernels' workspace."""
        return {
            "weights": self.layers_per_region * self.weight_bytes_per_layer,
            "kv_cache": self.layers_per_region * self.kv_bytes_per_layer,
            "workspace": self.workspace_bytes,
        }


def plan(
    model: LLMConfig,
    device: DeviceModel,
    phase: str,
    region: int | Region,
    context: int,
    kv_method: str = "shift",
    batch: int = 1,
    chips: int | None = 1,
) -> WaferPlan:
    """Place `model` for one phase on regions of `region` cores (rows, cols; a number: a
    square's side), with a KV cache for `batch` requests of `context` tokens, on at most
    `chips` chips (None: as many as it needs)."""
    if phase not in PHASES:
        raise UserError(f"unknown phase {phase!r}; choose one of {', '.join(PHASES)}")
    region = as_region(region)
    rows, cols = region
    label = region_label(region)
    if not (1 <= rows <= device.usable[0] and 1 <= cols <= device.usable[1]):
        raise UserError(f"a {label} region does not fit the {region_label(device.usable)} usable mesh of {device.name}")
    if phase == "prefill" and rows != cols:
        raise UserError(f"prefill runs on square regions (MeshGEMM needs a square grid), not {label}")
    weights = layer_weight_bytes(model, region, device)
    kv = layer_kv_bytes(model, device, phase, region, context, kv_method, batch)
    # the LM head shares the regions: count it as extra layer-equivalents of weights
    head = _tile_bytes(model.hidden, model.vocab, rows, cols, device)
    workspace = workspace_bytes(model, phase, region, context, kv_method, batch)
    room = device.sram_usable - workspace  # for the layers' weights and KV cache
    per_layer = weights + kv
    if per_layer > room:
        raise UserError(
            f"{model.name} {phase} on {label} regions: one layer needs {per_layer + workspace:,} bytes per "
            f"core ({weights:,} weights + {kv:,} KV cache for {context} tokens + {workspace:,} workspace for its "
            f"kernels) but a core has {device.sram_usable:,}; use a larger region or a shorter context"
        )
    # never more layers in a region than the model and its head need (Qwen2-0.5B showed
    # "43 layers each" for 24 layers, and kept SRAM for the 19 missing ones from its KV cache)
    layer_equivalents = model.layers + head / per_layer
    layers_per_region = min(room // per_layer, math.ceil(layer_equivalents))
    regions = math.ceil(layer_equivalents / layers_per_region)
    down, across = device.region_grid(region)
    needed = math.ceil(regions / (down * across))
    if chips is not None and needed > chips:
        raise UserError(
            f"{model.name} {phase} on {label} regions does not fit: it needs {regions} regions "
            f"({layers_per_region} layers each) and a {device.name} holds {down * across} ({down}x{across}); "
            f"allow {needed} chips (--chips {needed}: layers pipelined over the chip link) or try other region sizes"
        )
    free = room - layers_per_region * weights
    slots = slots_per_core(free, model.kv_dim, cols, layers_per_region, device.bytes_per_element) // batch
    notes = [device.note] if device.note else []
    if needed > 1:
        notes.append(f"{phase}: {needed} chips, layers pipelined across them over the chip link")
    return WaferPlan(
        phase=phase,
        region=region,
        layers_per_region=int(layers_per_region),
        regions=regions,
        weight_bytes_per_layer=weights,
        kv_bytes_per_layer=kv,
        kv_method=kv_method,
        kv_slot_tokens=capacity(kv_method, rows, slots),
        workspace_bytes=workspace,
        chips=needed,
        batch=batch,
        notes=tuple(notes),
        boundaries=region_boundaries(region, regions, device),
    )


def layer_kv_bytes(
    model: LLMConfig, device: DeviceModel, phase: str, region: Region, context: int, kv_method: str, batch: int
) -> int:
    """Per-core SRAM for one layer's KV cache of `batch` requests of `context` tokens on the
    busiest core: tokens along y, K and V chunks of each token's width along x (both phases)."""
    rows, cols = region
    kv_row = 2 * math.ceil(model.kv_dim / cols) * device.bytes_per_element  # one token, one layer
    tokens = tokens_per_core(kv_method, rows, context) if phase == "decode" else math.ceil(context / rows)
    return batch * tokens * kv_row


def workspace_bytes(model: LLMConfig, phase: str, region: Region, context: int, kv_method: str, batch: int) -> int:
    """SRAM per core a phase's kernels need beyond the weights and KV cache the placement holds:
    the largest over one layer's kernels and the LM head, since they run one after another.
    A region hop's activations land in the next layer's input buffers, counted there."""
    if phase == "decode":
        layer = decode_layer_work(model, region, context, kv_method, batch)
    else:
        layer = prefill_layer_work(model, region[0], context, batch)
    ops = [op for op, _ in layer] + [gemv_op(model.hidden, model.vocab, region, 0, batch)]
    return max(op.workspace_bytes for op in ops)


def held_context(model: LLMConfig, device: DeviceModel, wafer: WaferPlan) -> int:
    """The longest context `wafer`'s placement holds as it is (same layers per region): weights,
    KV cache and the kernels' workspace at that context together. Its KV slots overstate it,
    because they were counted beside the planned context's workspace and decode's scores over a
    core's cached tokens grow with the context (LLaMA3-8B, 2048 in / 128 out, decode on 360x360:
    11,160 slots, 10,800 tokens held). `max_context` instead replans for each context."""
    phase, region, kv_method, batch = wafer.phase, wafer.region, wafer.kv_method, wafer.batch

    def fits(tokens: int) -> bool:
        workspace = workspace_bytes(model, phase, region, tokens, kv_method, batch)
        kv = layer_kv_bytes(model, device, phase, region, tokens, kv_method, batch)
        return workspace + wafer.layers_per_region * (wafer.weight_bytes_per_layer + kv) <= device.sram_usable

    if not fits(1):
        return 0
    return _last_fitting(fits, 1, wafer.kv_slot_tokens + 1)  # nothing past the slots fits


def max_context(
    model: LLMConfig, device: DeviceModel, region: int | Region, kv_method: str = "shift", chips: int = 1
) -> int:
    """The longest context a decode placement supports on `chips` chips: layers and KV cache
    in SRAM (0 if the model does not fit them at all)."""

    def ok(tokens: int) -> bool:
        try:
            plan(model, device, "decode", region, tokens, kv_method, chips=chips)
        except UserError:
            return False
        return True

    if not ok(1):
        return 0
    lo, hi = 1, 2
    while ok(hi):
        lo, hi = hi, hi * 2
    return _last_fitting(ok, lo, hi)


def _last_fitting(fits: Callable[[int], bool], lo: int, hi: int) -> int:
    """The largest n in [lo, hi) with `fits(n)`, by bisection: `fits(lo)` holds, `fits(hi)` does
    not, and fitting is monotone (a longer context never needs less SRAM)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


# -- decode ----------------------------------------------------------------------------------


def decode_layer_work(
    model: LLMConfig, region: int | Region, context: int, kv_method: str = "shift", batch: int = 1
) -> Work:
    """One decoder layer for one new token of each of `batch` requests with `context` tokens
    in the KV cache (batch > 1 turns each GEMV into a skinny GEMM: B x the work per core).
    The hidden vector is split over the rows, q/K/V and the FFN over the columns, the cached
    tokens over the rows (see the module docstring)."""
    grid = as_region(region)
    rows, cols = grid
    e, b = model.hidden, batch
    tokens = tokens_per_core(kv_method, rows, context)
    chunk_q = math.ceil(model.q_dim / cols)
    heads, group = _head_layout(model, cols)
    held = b * tokens * heads  # every head's scores over the core's tokens, until P V has used them
    norm = [(local_op(b * math.ceil(e / rows), grid), 1), (allreduce_op(b, grid, 0), 1)]
    scores = []  # each head's dot products summed over the cores that share the head along x
    if group > 1:
        scores = [(allreduce_op(b * tokens * heads, grid, 1, None if group == cols else group), 1)]
    return [
        *norm,  # RMSNorm: sum of squares, allreduce, scale
        (gemv_op(e, model.q_dim + 2 * model.kv_dim, grid, 0, b), 1),  # fused QKV
        (local_op(b * math.ceil((model.q_dim + model.kv_dim) / cols), grid), 1),  # RoPE
        (local_op(b * tokens * chunk_q, grid, held), 1),  # scores: K tile (tokens x q chunk) times q ...
        *scores,  # ... summed along x within each head
        (local_op(b * tokens * heads, grid, held), 2),  # softmax per head: local max, then exponentials and sum
        (allreduce_op(b * heads, grid, 0), 2),  # ... global max and sum along y
        (local_op(b * tokens * chunk_q, grid, held), 1),  # P V: probabilities times the V tile ...
        (allreduce_op(b * chunk_q, grid, 0), 1),  # ... summed along y
        (gemv_op(model.q_dim, e, grid, 1, b), 1),  # O projection
        (local_op(b * math.ceil(e / rows), grid), 1),  # residual
        *norm,  # RMSNorm
        (gemv_op(e, 2 * model.ffn, grid, 0, b), 1),  # fused up and gate
        (local_op(b * math.ceil(model.ffn / cols), grid), 1),  # SiLU(gate) * up
        (gemv_op(model.ffn, e, grid, 1, b), 1),  # down
        (local_op(b * math.ceil(e / rows), grid), 1),  # residual
    ]


# a region hop streams the boundary's activations through the cores on the way; none holds
# more than this many 32-bit words of it at once (32 KB of WSE-2's 44 KB usable), so a long
# prompt's hop is priced as chunks, each paying the hop's latency again (an upper bound: the
# fabric pipelines them). Buffering it whole made Qwen2-72B's 4096-token prefill overflow SRAM.
HOP_CHUNK_WORDS = 8192


def region_boundaries(region: Region, regions: int, device: DeviceModel) -> tuple[tuple[int, int], ...]:
    """((hops between corresponding cores, boundaries), ...) over the region-to-region
    boundaries on the fabric (the chips' own boundaries cross the chip link instead). Regions
    are laid out in a snake on each chip (`DeviceModel.region_corner`), so the next region is
    always beside the last: its width away along a row of regions, its height away at the turn."""
    counts: dict[int, int] = {}
    for index in range(1, regions):
        (chip, y0, x0), (next_chip, y1, x1) = (device.region_corner(i, region) for i in (index - 1, index))
        if chip == next_chip:
            distance = abs(y1 - y0) + abs(x1 - x0)
            counts[distance] = counts.get(distance, 0) + 1
    return tuple(sorted(counts.items()))


def _hops(model: LLMConfig, wafer: WaferPlan, tokens: int, device_bytes: int) -> Work:
    """Region to region on the fabric: every boundary but the chips' (see chip_link_seconds)."""
    words = math.ceil(math.ceil(tokens * model.hidden / wafer.region[0]) * device_bytes / 4)
    chunks = math.ceil(words / HOP_CHUNK_WORDS)
    return [(region_hop_op(math.ceil(words / chunks), hops), chunks * count) for hops, count in wafer.boundaries]


def chip_link_seconds(model: LLMConfig, wafer: WaferPlan, tokens: int, device: DeviceModel) -> float:
    """The chip boundaries a pass crosses: each the link's latency plus `tokens` activations."""
    crossing = (
        device.chip_link_latency_s + tokens * model.hidden * device.bytes_per_element / device.chip_link_bytes_per_s
    )
    return (wafer.chips - 1) * crossing


def decode_token_work(
    model: LLMConfig, wafer: WaferPlan, context: int, bytes_per_element: int = 2, batch: int = 1
) -> Work:
    """One output token (per request of the batch): every layer, the LM head, the region hops."""
    layer = decode_layer_work(model, wafer.region, context, wafer.kv_method, batch)
    return (
        [(op, count * model.layers) for op, count in layer]
        + [(gemv_op(model.hidden, model.vocab, wafer.region, 0, batch), 1)]
        + _hops(model, wafer, batch, bytes_per_element)
    )


def phase_work(model: LLMConfig, wafer: WaferPlan, context: int, batch: int = 1) -> Work:
    """One output token of each of `batch` requests (decode) or `batch` prompts of `context`
    tokens (prefill), on `wafer`'s placement."""
    if wafer.phase == "decode":
        return decode_token_work(model, wafer, context, batch=batch)
    return prefill_work(model, wafer, context, batch=batch)


def phase_seconds(
    model: LLMConfig,
    wafer: WaferPlan,
    work: Work,
    context: int,
    device: DeviceModel,
    cost_model: str = "closed",
    batch: int = 1,
) -> float:
    """Seconds of a phase's `work`, the chip links it crosses included (each output token's
    activations in decode, every prompt token's in prefill)."""
    tokens = batch if wafer.phase == "decode" else batch * context
    return device.seconds(price(work, device, cost_model).cycles) + chip_link_seconds(model, wafer, tokens, device)


def _head_layout(model: LLMConfig, cols: int) -> tuple[int, int]:
    """(heads whose scores a core holds, cores along x that share one head) for decode attention.

    The q/K/V columns are split over the `cols` cores of a row: a core's chunk holds whole heads
    (several, when a head is narrower than the chunk) or a slice of one head shared with its
    neighbours. The paper's single head spans the whole (padded) row.
    """
    heads = model.attention_heads
    chunk = math.ceil(model.q_dim / cols)
    if heads == 1:
        return 1, cols
    head_dim = model.q_dim // heads
    if chunk >= head_dim:
        return math.ceil(chunk / head_dim), 1
    return 1, min(cols, math.ceil(head_dim / chunk))


def prefill_layer_work(model: LLMConfig, side: int, length: int, batch: int = 1) -> Work:
    """One decoder layer over `batch` prompts of `length` tokens (MeshGEMM, GEMM-T for Q K^T):
    the projections and the MLP run on all the batch's tokens at once (batch x length rows),
    attention on each prompt's own tokens, one prompt after another. With several heads, every
    head's scores (heads x length x length) are held, normalised and shifted, the MACs unchanged."""
    e, p, f = model.hidden, side, model.ffn
    grid = (p, p)
    h = model.attention_heads
    tokens = batch * length
    rows, own = math.ceil(tokens / p), math.ceil(length / p)
    norm = [(local_op(rows * math.ceil(e / p), grid), 1), (allreduce_op(rows, grid, 1), 1)]
    return [
        *norm,  # RMSNorm
        (gemm_op(tokens, e, model.q_dim + 2 * model.kv_dim, p, weights=True), 1),  # QKV
        (local_op(rows * math.ceil((model.q_dim + model.kv_dim) / p), grid), 1),  # RoPE
        (gemm_op(length, model.q_dim, length, p, transposed=True, heads=h), batch),  # Q K^T, per head
        (local_op(h * own * own, grid), 2 * batch),  # softmax: max, exponentials and sum ...
        (allreduce_op(h * own, grid, 1), 2 * batch),  # ... along each row of each head's scores
        (gemm_op(length, length, model.q_dim, p, heads=h), batch),  # S V, per head
        (gemm_op(tokens, model.q_dim, e, p, weights=True), 1),  # O
        (local_op(rows * math.ceil(e / p), grid), 1),  # residual
        *norm,  # RMSNorm
        (gemm_op(tokens, e, 2 * f, p, weights=True), 1),  # up and gate
        (local_op(rows * math.ceil(f / p), grid), 1),  # SiLU(gate) * up
        (gemm_op(tokens, f, e, p, weights=True), 1),  # down
        (local_op(rows * math.ceil(e / p), grid), 1),  # residual
    ]


def prefill_work(model: LLMConfig, wafer: WaferPlan, length: int, bytes_per_element: int = 2, batch: int = 1) -> Work:
    """`batch` prompts of `length` tokens through every layer, each prompt's last-token logits,
    and the region hops."""
    layer = prefill_layer_work(model, wafer.region[0], length, batch)
    return (
        [(op, count * model.layers) for op, count in layer]
        + [(gemv_op(model.hidden, model.vocab, wafer.region, 0, batch), 1)]  # each prompt's last token
        + _hops(model, wafer, batch * length, bytes_per_element)
    )


# -- the whole request -----------------------------------------------------------------------


@dataclass(frozen=True)
class Simulation:
    """A request of `input_len` tokens in and `output_len` out, on the wafer."""

    model: str
    device: str
    input_len: int
    output_len: int
    prefill: WaferPlan
    decode: WaferPlan
    ttft_s: float
    tpot_s: float
    power_watts: float
    decode_communication_share: float
    cost_model: str
    # the prefill -> decode switch: weights and the prompt's KV cache moved to decode's layout
    relayout: Relayout
    batch: int = 1

    @property
    def relayout_s(self) -> float:
        return self.relayout.seconds

    @property
    def prefill_tpr(self) -> float:
        """Prompt tokens per second over the whole batch."""
        return self.batch * self.input_len / self.ttft_s

    @property
    def decode_tpr(self) -> float:
        return 1.0 / self.tpot_s

    @property
    def total_s(self) -> float:
        """The first token comes out of prefill; the switch comes before the second."""
        return self.ttft_s + self.relayout_s + self.output_len * self.tpot_s

    @property
    def end_to_end_tpr(self) -> float:
        return self.output_len / self.total_s

    @property
    def throughput(self) -> float:
        """Output tokens per second over the whole batch."""
        return self.batch / self.tpot_s

    @property
    def energy_per_token_j(self) -> float:
        return self.power_watts * self.tpot_s / self.batch

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.prefill.notes + self.decode.notes))


DEFAULT_SIDES = tuple(range(120, 751, 60))
MIN_SIDE = 120  # the smallest region side autotuning tries
FABRIC_SPLITS = 4  # decode also tries the usable fabric cut into up to 4 x 4 equal rectangles


def candidate_regions(device: DeviceModel, phase: str) -> tuple[Region, ...]:
    """The regions autotuning tries: squares of DEFAULT_SIDES that fit (prefill's MeshGEMM needs
    a square), and for decode the rectangles that cut the usable fabric into i x j equal parts
    (750x994: 375x497 in 2 x 2 uses every core, where 360x360 squares leave 27% idle)."""
    rows, cols = device.usable
    squares = [(side, side) for side in DEFAULT_SIDES if side <= min(rows, cols)]
    if phase == "prefill":
        return tuple(squares)
    splits = [
        (rows // i, cols // j)
        for i in range(1, FABRIC_SPLITS + 1)
        for j in range(1, FABRIC_SPLITS + 1)
        if min(rows // i, cols // j) >= MIN_SIDE
    ]
    return tuple(dict.fromkeys(squares + splits))


def best_placement(
    model: LLMConfig,
    device: DeviceModel,
    phase: str,
    context: int,
    kv_method: str,
    cost_model: str,
    regions: tuple[Region, ...] | None = None,
    batch: int = 1,
    bar: ProgressBar | None = None,
    chips: int | None = 1,
    objective: Callable[[WaferPlan, float], float] | None = None,
) -> WaferPlan:
    """The placement on the region with the fastest phase among `regions` (default:
    `candidate_regions`) whose layers fit in SRAM and whose every kernel keeps within the PLMR
    limits (offline autotuning); `bar` advances per region. `objective` turns a placement and its phase's
    seconds into what to minimise instead (a request's whole decode with its re-layout, say)."""
    regions = candidate_regions(device, phase) if regions is None else regions
    best, best_time = None, math.inf
    reasons = {}
    for region in regions:
        if bar is not None:
            bar.advance()
        try:
            wafer = plan(model, device, phase, region, context, kv_method, batch, chips)
            work = phase_work(model, wafer, context, batch)
            check_work(work, device)
        except UserError as exc:
            reasons[region] = str(exc)
            continue
        time = phase_seconds(model, wafer, work, context, device, cost_model, batch)
        if objective is not None:
            time = objective(wafer, time)
        if time < best_time:
            best, best_time = wafer, time
    if best is None:
        last = max(reasons, key=lambda r: r[0] * r[1]) if reasons else None
        why = f"; at {region_label(last)}: {reasons[last]}" if last else ""
        tried = f"{region_label(regions[0])} to {region_label(regions[-1])}" if regions else "none"
        raise UserError(f"{model.name} {phase}: no region size from {tried} ({len(regions)} tried) can run it{why}")
    return best


def check_work(work: Work, device: DeviceModel) -> None:
    """Raise PLMRViolation (a UserError) if any kernel needs more routes or SRAM than a core has."""
    for op, _ in work:
        check_plmr(op.program, device.sram_usable, device.route_budget)


def simulate(
    model: LLMConfig,
    device: DeviceModel,
    input_len: int,
    output_len: int,
    prefill_side: int | None = None,
    decode_region: int | Region | None = None,
    kv_method: str = "shift",
    cost_model: str = "closed",
    batch: int = 1,
    chips: int | None = 1,
) -> Simulation:
    """Time to first token, time per output token, and energy, for `batch` requests prefilled
    and decoded together, on at most `chips` chips (None: as many as it takes; a model that
    needs more is refused)."""
    if input_len < 1 or output_len < 1 or batch < 1:
        raise UserError(f"input, output and batch must be at least 1, got {input_len}, {output_len}, {batch}")
    final = input_len + output_len
    # explicit grids are checked before the (slower) autotuning of the others
    prefill_plan = (
        plan(model, device, "prefill", prefill_side, input_len, kv_method, batch, chips) if prefill_side else None
    )
    decode_plan = (
        plan(model, device, "decode", decode_region, final, kv_method, batch, chips) if decode_region else None
    )
    # the timestamp model takes minutes: show grids tried and the final pricing, with an ETA
    steps = 1 + (prefill_plan is None) * len(candidate_regions(device, "prefill"))
    steps += (decode_plan is None) * len(candidate_regions(device, "decode"))
    with ProgressBar(steps, f"{model.name} ({cost_model})", unit="steps", enabled=cost_model != "closed") as bar:
        if prefill_plan is None:
            prefill_plan = best_placement(
                model, device, "prefill", input_len, kv_method, cost_model, batch=batch, bar=bar, chips=chips
            )
        if decode_plan is None:
            # the time after the first token: the switch to decode's placement, then every output
            # token (a placement on other chips than prefill's pays the chip link to switch)
            def after_prefill(wafer: WaferPlan, token_s: float) -> float:
                return relayout(model, prefill_plan, wafer, batch * input_len, device).seconds + output_len * token_s

            decode_plan = best_placement(
                model,
                device,
                "decode",
                final,
                kv_method,
                cost_model,
                batch=batch,
                bar=bar,
                chips=chips,
                objective=after_prefill,
            )
        result = _simulate_on(model, device, input_len, output_len, prefill_plan, decode_plan, cost_model, batch)
        bar.advance()
    return result


def _simulate_on(
    model: LLMConfig,
    device: DeviceModel,
    input_len: int,
    output_len: int,
    prefill_plan: WaferPlan,
    decode_plan: WaferPlan,
    cost_model: str,
    batch: int,
) -> Simulation:
    """Price a request on chosen prefill and decode placements."""
    final = input_len + output_len
    kv_method = decode_plan.kv_method
    held = held_context(model, device, decode_plan)  # not the KV slots, which overstate it
    if held < final:
        raise UserError(
            f"{model.name}: decode on {decode_plan.label} regions with the {kv_method} KV cache "
            f"holds a context of {held} tokens, fewer than the {final} this request needs"
        )
    prefill = prefill_work(model, prefill_plan, input_len, batch=batch)
    last_token = decode_token_work(model, decode_plan, final, batch=batch)
    check_work(prefill + last_token, device)  # every kernel within PLMR limits (explicit sides too)
    # attention grows linearly with the context, so the mean of the first and last token is exact
    first = price(decode_token_work(model, decode_plan, input_len + 1, batch=batch), device, cost_model)
    last = price(last_token, device, cost_model)
    tpot_cycles = (first.cycles + last.cycles) / 2
    # chips pipelined over the chip link: the prompt's activations cross each boundary once,
    # each output token's (one per request of the batch) once per token
    ttft_s = phase_seconds(model, prefill_plan, prefill, input_len, device, cost_model, batch)
    tpot_s = device.seconds(tpot_cycles) + chip_link_seconds(model, decode_plan, batch, device)
    return Simulation(
        model=model.name,
        device=device.name,
        input_len=input_len,
        output_len=output_len,
        prefill=prefill_plan,
        decode=decode_plan,
        ttft_s=ttft_s,
        tpot_s=tpot_s,
        power_watts=device.power_watts * decode_plan.chips,  # every chip draws power while decoding
        decode_communication_share=(first.communication_share + last.communication_share) / 2,
        cost_model=cost_model,
        batch=batch,
        relayout=relayout(model, prefill_plan, decode_plan, batch * input_len, device),
    )
