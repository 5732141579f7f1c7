"""The GPU baseline: a roofline per GPU plus what tensor parallelism costs.

Each layer is as slow as the larger of streaming its weights (and KV cache) from HBM and doing
its FLOPs, plus a fixed per-layer time (kernel launches, framework). Tensor parallelism over n
GPUs divides both by n**exponent (1 would be perfect; measured SGLang scaling is far from it,
and differs between prefill and decode), and adds two all-reduces of the activations per
layer: over NVLink within a node of 8, over the network between nodes. Efficiencies,
exponents and latencies are fitted to the paper's SGLang rows by `garagelab wafer calibrate`.
"""

from __future__ import annotations

from garagelab.core.errors import UserError
from garagelab.wafer.device import GPUModel
from garagelab.wafer.models import LLMConfig

GPUS_PER_NODE = 8


def _check(gpus: int, model: LLMConfig | None = None) -> None:
    if gpus < 1:
        raise UserError(f"the number of GPUs must be at least 1, got {gpus}")
    refusal = tensor_parallel_refusal(model, gpus) if model else None
    if refusal:
        raise UserError(f"{gpus} GPUs cannot run {model.name}: {refusal}")


def tensor_parallel_refusal(model: LLMConfig, gpus: int) -> str | None:
    """Why tensor parallelism over `gpus` GPUs cannot split `model`, or None when it can.

    SGLang and vLLM give every GPU the same number of attention heads, and refuse a count that
    does not divide them (key/value heads may instead be replicated, when the count is a multiple
    of theirs). That is why the paper has no 16-GPU entry for LLaMA2-13B's 40 heads; pricing one
    anyway, as the roofline would, gives a number no cluster can produce."""
    if model.heads % gpus:
        return f"tensor parallelism splits the {model.heads} attention heads evenly, and {gpus} does not divide them"
    kv = model.kv_heads
    if (kv % gpus) if gpus <= kv else (gpus % kv):
        return (
            f"tensor parallelism splits (or replicates) the {kv} key/value heads evenly, "
            f"and {gpus} neither divides nor is a multiple of them"
        )
    return None


def allreduce_seconds(gpu: GPUModel, gpus: int, nbytes: float) -> float:
    """A ring all-reduce of `nbytes` over `gpus` GPUs (NVLink inside a node, network across)."""
    if gpus == 1:
        return 0.0
    inside = gpus <= GPUS_PER_NODE
    bandwidth = gpu.nvlink_bytes_per_s if inside else gpu.network_bytes_per_s
    latency = gpu.allreduce_latency_s if inside else gpu.network_latency_s
    return latency + 2 * (gpus - 1) / gpus * nbytes / bandwidth


def _roofline(gpu: GPUModel, flops: float, nbytes: float) -> float:
    return max(
        flops / (gpu.peak_flops * gpu.flops_efficiency), nbytes / (gpu.hbm_bytes_per_s * gpu.bandwidth_efficiency)
    )


def memory_shortfall(model: LLMConfig, gpu: GPUModel, gpus: int, context: int, batch: int = 1) -> str | None:
    """Why `gpus` GPUs cannot hold the fp16 weights and KV cache of `batch` requests of
    `context` tokens, or None when they can (activations and the framework's share are not
    counted, so this is the least a run needs)."""
    _check(gpus)
    needed = 2 * model.params() + batch * model.kv_bytes_per_token() * context
    have = gpus * gpu.memory_bytes
    if needed <= have:
        return None
    return f"needs {needed / 1e9:,.0f} GB for fp16 weights and KV cache, {gpus} x {gpu.name} hold {have / 1e9:,.0f} GB"


def cannot_run(model: LLMConfig, gpu: GPUModel, gpus: int, context: int, batch: int = 1) -> str | None:
    """Why `gpus` GPUs cannot serve `batch` requests of `context` tokens (the split or the
    memory), or None: what is refused with its reason rather than priced."""
    return tensor_parallel_refusal(model, gpus) or memory_shortfall(model, gpu, gpus, context, batch)


def decode_seconds(model: LLMConfig, gpu: GPUModel, gpus: int, context: int, batch: int = 1) -> float:
    """Time per output token for `batch` requests of `context` tokens."""
    _check(gpus, model)
    share = gpus**gpu.decode_tp_exponent
    weights = 2 * model.params() / share
    kv = batch * model.kv_bytes_per_token() * context / share
    flops = batch * (2 * model.params() + 4 * model.layers * context * model.q_dim) / share
    comm = 2 * model.layers * allreduce_seconds(gpu, gpus, batch * model.hidden * 2)
    return _roofline(gpu, flops, weights + kv) + model.layers * gpu.layer_overhead_s + comm


def prefill_seconds(model: LLMConfig, gpu: GPUModel, gpus: int, length: int) -> float:
    """Time to first token for a prompt of `length` tokens."""
    _check(gpus, model)
    dense = 2 * (model.params() - model.vocab * model.hidden) * length
    attention = 4 * model.layers * length * length * model.q_dim
    share = gpus**gpu.prefill_tp_exponent
    flops = (dense + attention + 2 * model.vocab * model.hidden) / share
    comm = 2 * model.layers * allreduce_seconds(gpu, gpus, length * model.hidden * 2)
    return _roofline(gpu, flops, 2 * model.params() / share) + model.layers * gpu.layer_overhead_s + comm


def gemv_seconds(size: int, gpu: GPUModel, gpus: int) -> float:
    """[1, size] x [size, size] split over `gpus` GPUs, with an all-reduce of the result."""
    _check(gpus)
    call = gpu.layer_overhead_s + (gpu.distributed_call_s if gpus > 1 else 0.0)
    return (
        _roofline(gpu, 2 * size * size / gpus, 2 * size * size / gpus) + call + allreduce_seconds(gpu, gpus, 2 * size)
    )
