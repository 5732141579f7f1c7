"""Device models: a wafer-scale mesh (PLMR) and GPU rooflines.

A mesh device is described by what the PLMR model of the paper needs: a 2-D grid of cores
with private SRAM, a per-hop latency alpha, a per-routing-stage cost beta, a link bandwidth, a
per-core route budget, and a clock. Some constants are not published; those marked
"calibrated" start at the values fitted by `garagelab wafer calibrate` against the paper's
Tables 3, 4 and 6 (see docs/wafer/README.md) and can be overridden.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from garagelab.core.errors import UserError

Region = tuple[int, int]  # (rows, cols) of cores


def as_region(region: int | Region) -> Region:
    """A region's (rows, cols); a single number is a square's side."""
    if isinstance(region, int | np.integer):
        return int(region), int(region)
    rows, cols = region
    return int(rows), int(cols)


KB = 1024


@dataclass(frozen=True)
class DeviceModel:
    """A mesh of cores with local SRAM, as the PLMR model sees it."""

    name: str
    fabric: tuple[int, int]  # (rows, columns) of processing elements
    usable: tuple[int, int]  # the region programs may use (the rest serves I/O)
    sram_bytes: int  # per core
    sram_reserved: int  # per core, taken by code, stack and the runtime
    clock_hz: float
    macs_per_cycle: float  # fp16 multiply-accumulates per core per cycle (calibrated)
    link_words_per_cycle: float  # 32-bit words per cycle on each link
    alpha: float  # cycles per hop (hardware forwarding)
    beta: float  # cycles per routing stage (software receive, add, forward) (calibrated)
    op_overhead: float  # cycles to start a kernel step on a core (calibrated)
    route_budget: int  # routes (colours) a core's router can hold
    power_watts: float
    bytes_per_element: int = 2  # fp16
    # between chips, when a model is pipelined over several (`plan(..., chips=)`): assumptions,
    # not fits. Bandwidth: a CS-2's 12 x 100 GbE of I/O; latency: none is published, 10 us
    # assumed for a hop through the hosts' network
    chip_link_bytes_per_s: float = 150e9
    chip_link_latency_s: float = 10e-6
    note: str = ""  # said with every result on this device: where its constants come from, if not fitted

    def region_grid(self, region: int | Region) -> tuple[int, int]:
        """How many regions of (rows, cols) cores (a number: a square's side) fit down and across
        the usable mesh, packed as aligned rectangles."""
        rows, cols = as_region(region)
        return self.usable[0] // rows, self.usable[1] // cols

    def region_corner(self, index: int, region: Region) -> tuple[int, int, int]:
        """(chip, corner row, corner column) of the `index`-th region of (rows, cols) cores: each
        chip filled a row of regions at a time, left to right, then right to left (a snake), so
        consecutive regions (a model's consecutive layers) are always neighbours."""
        rows, cols = region
        down, across = self.region_grid(region)
        chip, index = divmod(index, down * across)
        line, step = divmod(index, across)
        column = step if line % 2 == 0 else across - 1 - step
        return chip, line * rows, column * cols

    @property
    def usable_cores(self) -> int:
        return self.usable[0] * self.usable[1]

    @property
    def sram_usable(self) -> int:
        return self.sram_bytes - self.sram_reserved

    @property
    def elements_per_cycle(self) -> float:
        """fp16 elements a link moves per cycle."""
        return self.link_words_per_cycle * 4 / self.bytes_per_element

    def seconds(self, cycles: float) -> float:
        return cycles / self.clock_hz

    def with_overrides(self, **changes: object) -> DeviceModel:
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise UserError(
                f"unknown device parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(asdict(self))}"
            )
        device = replace(self, **changes)  # type: ignore[arg-type]
        for name in ("fabric", "usable"):
            value = getattr(device, name)
            if name in changes and len(value) != 2:
                rows, columns = getattr(self, name)
                raise UserError(f"{device.name}: {name} is (rows, columns), two numbers, got {value}; "
                                f"e.g. {name}={rows},{columns}")  # fmt: skip
        _check_values(device, changes)
        if not 0 <= device.sram_reserved < device.sram_bytes:
            raise UserError(f"{device.name}: sram_reserved must be below sram_bytes ({device.sram_bytes:,})")
        if any(u > f for u, f in zip(device.usable, device.fabric, strict=True)):
            raise UserError(f"{device.name}: usable {device.usable} must fit inside the fabric {device.fabric}")
        return device

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GPUModel:
    """A GPU as a roofline, plus what tensor parallelism over NVLink / InfiniBand costs."""

    name: str
    peak_flops: float  # dense fp16 tensor FLOP/s
    hbm_bytes_per_s: float
    memory_bytes: float
    power_watts: float
    nvlink_bytes_per_s: float  # per GPU, within a node of 8
    network_bytes_per_s: float  # per GPU, between nodes
    # calibrated against the paper's SGLang rows (`garagelab wafer calibrate`):
    flops_efficiency: float = 0.6
    bandwidth_efficiency: float = 0.8
    layer_overhead_s: float = 20e-6  # kernel launches and framework time per layer
    allreduce_latency_s: float = 15e-6  # per all-reduce inside a node
    network_latency_s: float = 40e-6  # per all-reduce across nodes
    decode_tp_exponent: float = 1.0  # n GPUs do decode work n**exponent times faster
    prefill_tp_exponent: float = 1.0  # the same for prefill
    distributed_call_s: float = 0.0  # fixed cost of one stand-alone multi-GPU kernel call

    def with_overrides(self, **changes: object) -> GPUModel:
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise UserError(f"unknown GPU parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(asdict(self))}")
        gpu = replace(self, **changes)  # type: ignore[arg-type]
        _check_values(gpu, changes)
        return gpu


# parameters for which zero is physical (free hops, no launch cost, no reserved SRAM); every
# other number is a size, rate or count that must be positive (alpha=-1 made a faster result,
# clock_hz=0 a ZeroDivisionError)
MAY_BE_ZERO = frozenset(
    {
        "alpha",
        "beta",
        "op_overhead",
        "sram_reserved",
        "layer_overhead_s",
        "allreduce_latency_s",
        "network_latency_s",
        "distributed_call_s",
        "chip_link_latency_s",
    }
)


def _check_values(model: DeviceModel | GPUModel, changes: dict[str, object]) -> None:
    """One-line errors for overridden values that are not finite, or negative (or zero where
    zero means nothing runs)."""
    for name in changes:
        value = getattr(model, name)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            if not math.isfinite(v) or v < 0 or (v == 0 and name not in MAY_BE_ZERO):
                need = "finite and non-negative" if name in MAY_BE_ZERO else "finite and positive"
                raise UserError(f"{model.name}: {name} must be {need}, got {value}")


# Cerebras WSE-2: 757x996 PEs, of which the memcpy infrastructure takes 7 columns and 2 rows;
# 48 KB SRAM per PE; the paper's code converts cycles at 1.1 GHz; one 32-bit wavelet per cycle
# per link and about one cycle per hop; 24 routable colours. Power: 37.5x an A100, the ratio
# that reproduces every energy entry of the paper's Tables 6-8. macs_per_cycle, beta and
# op_overhead: `garagelab wafer calibrate` at 1.1 GHz with alpha fixed at 1 cycle per hop,
# against Tables 3, 4 and 6 and the statements of Fig. 9 and 10.
WSE2 = DeviceModel(
    name="WSE-2",
    fabric=(757, 996),
    usable=(750, 994),
    sram_bytes=48 * KB,
    sram_reserved=4 * KB,
    clock_hz=1.1e9,
    macs_per_cycle=1.09,
    link_words_per_cycle=1.0,
    alpha=1.0,
    beta=6.92,
    op_overhead=403.0,
    route_budget=24,
    power_watts=37.5 * 400.0,
)

# Cerebras WSE-3: 762x1172 PEs (the same memcpy margins), 48 KB SRAM per PE (44 GB over 900,000
# cores). Nothing the paper measured on it is published, so its constants are WSE-2's fitted
# ones except: twice the MAC rate per core and the same power, Cerebras' own claim ("twice the
# performance of WSE-2 at the same power": 900,000 cores against 850,000, so about 2x per core).
# A projection, and every result on it says so.
WSE3 = replace(
    WSE2,
    name="WSE-3",
    fabric=(762, 1172),
    usable=(755, 1170),
    macs_per_cycle=2 * WSE2.macs_per_cycle,
    note=(
        "WSE-3 is a projection: WSE-2's fitted constants with twice its MAC rate per core at the same power "
        "(Cerebras' claim for WSE-3); no WSE-3 measurement calibrates it"
    ),
)

# A100 80 GB SXM; efficiencies, latencies and TP exponents: `garagelab wafer calibrate`
# against the paper's SGLang rows of Tables 3, 4 and 6.
A100 = GPUModel(
    name="A100",
    peak_flops=312e12,
    hbm_bytes_per_s=2.039e12,
    memory_bytes=80e9,
    power_watts=400.0,
    nvlink_bytes_per_s=300e9,
    network_bytes_per_s=25e9,
    flops_efficiency=0.755,
    bandwidth_efficiency=0.882,
    layer_overhead_s=73.6e-6,
    allreduce_latency_s=0.1e-6,
    network_latency_s=47.8e-6,
    decode_tp_exponent=0.873,
    prefill_tp_exponent=0.352,
    distributed_call_s=151e-6,
)
# H100 80 GB SXM: published peaks; no paper rows to fit, so the A100's fitted efficiencies.
H100 = replace(
    A100,
    name="H100",
    peak_flops=989e12,
    hbm_bytes_per_s=3.35e12,
    memory_bytes=80e9,
    power_watts=700.0,
    nvlink_bytes_per_s=450e9,
    network_bytes_per_s=50e9,
)

DEVICES = {d.name: d for d in (WSE2, WSE3)}
GPUS = {g.name: g for g in (A100, H100)}


def get_device(name: str) -> DeviceModel:
    for key, device in DEVICES.items():
        if key.lower() == name.lower():
            return device
    raise UserError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")


def get_gpu(name: str) -> GPUModel:
    for key, gpu in GPUS.items():
        if key.lower() == name.lower():
            return gpu
    raise UserError(f"unknown GPU {name!r}; choose one of {', '.join(GPUS)}")
