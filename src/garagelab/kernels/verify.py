"""The verifier: is a candidate's `ModelNew` correct, honest, and how fast is it?

Run in the evolve sandbox (a forked process per candidate, static checks before it runs):
`make_verifier(problem=..., size=...)` loads the problem and PyTorch once in the zygote, and
the function it returns judges one candidate module. Stages, each a failure kind of its own:

1. build: `ModelNew(*get_init_inputs())` with the reference's seed (a C++ `CompileError` is
   `compile`, with the compiler's first errors);
2. correctness over `seeds` seeds x input distributions (normal, uniform [0, 1), normal x 100):
   allclose at the problem's tolerance, plus the relative error ||out - ref|| / ||ref||; the
   candidate runs first, on clones (`wrong`);
3. honesty (`hack`): the inputs are unchanged after the candidate ran; the output is a plain
   tensor that shares no memory with an input; new values written into the same input buffers
   give the new right answer (caches keyed by identity, pointer or a sample of values, and work
   skipped on repeated calls); one perturbed input element changes the output where it changes
   the reference's; the answer is also right at a second, smaller size (hard-coded shapes);
4. timing: median of `runs` calls after warm-up for the candidate and for eager PyTorch on the
   same inputs, in the same process, fresh values in the same buffers before every timed call
   and every timed output checked; a time below what memory bandwidth allows for the bytes the
   problem must read and write is a `hack` (measured with a copy of the same size).

The score is the speed-up over eager PyTorch (0 when not timed); `metrics` carry every number the feedback uses.
"""

from __future__ import annotations

import statistics
import time
import types

import torch

from garagelab.kernels.backends.cpp import CompileError
from garagelab.kernels.problems import load_module, load_problem

DISTRIBUTIONS = ("normal", "uniform", "wide")
ROOFLINE_MARGIN = 0.5  # a candidate may beat a plain copy's bandwidth by 2x (caches), not more


def _fill(tensors: list, seed: int, distribution: str) -> None:
    """New values in the same float buffers (integer inputs are left alone)."""
    generator = torch.Generator().manual_seed(seed)
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            values = torch.randn(t.shape, generator=generator, dtype=t.dtype)
            if distribution == "uniform":
                values = torch.rand(t.shape, generator=generator, dtype=t.dtype)
            elif distribution == "wide":
                values = values * 100
            t.copy_(values)


def _clone(values: list) -> list:
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


def _error(out, ref, atol: float, rtol: float) -> dict:
    """Why `out` is not `ref` (empty if it is), with where it is wrong."""
    if not isinstance(out, torch.Tensor):
        return {"message": f"returned {type(out).__name__}, not a tensor"}
    if out.shape != ref.shape:
        return {"message": f"output shape {tuple(out.shape)}, expected {tuple(ref.shape)}"}
    if out.dtype != ref.dtype:
        return {"message": f"output dtype {out.dtype}, expected {ref.dtype}"}
    wrong = ~torch.isclose(out, ref, atol=atol, rtol=rtol, equal_nan=False)
    if not wrong.any():
        return {}
    diff = (out - ref).abs()
    first = [int(i) for i in torch.nonzero(wrong)[0]]
    return {
        "message": f"{int(wrong.sum())} of {ref.numel()} elements wrong (max error {float(diff.max()):.3g}, "
        f"first at index {first}: {float(out[tuple(first)]):.6g} instead of {float(ref[tuple(first)]):.6g})",
        "max_error": float(diff.max()),
        "wrong_fraction": float(wrong.float().mean()),
        "first_wrong": first,
    }


def _relative(out, ref) -> float:
    return float((out - ref).norm() / ref.norm().clamp_min(1e-30))


def _median_ms(call, prepare, check, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        prepare()
        call()
    times = []
    for _ in range(runs):
        prepare()
        start = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - start)
        check(out)
    return statistics.median(times) * 1e3


def _copy_ms(elements: int, runs: int = 10) -> float:
    """Reading and writing `elements` floats once, the memory-bound floor of a kernel."""
    source, target = torch.randn(max(elements, 1)), torch.empty(max(elements, 1))
    return _median_ms(lambda: target.copy_(source), lambda: None, lambda _: None, runs)


class Hack(Exception):
    pass


def _models(candidate: types.ModuleType, module: types.ModuleType) -> tuple:
    """(reference, candidate) models built from the same seed (their parameters agree)."""
    torch.manual_seed(0)
    ref_model = module.Model(*module.get_init_inputs())
    torch.manual_seed(0)
    new_model = candidate.ModelNew(*module.get_init_inputs())
    return ref_model, new_model


def make_verifier(problem: str, size: str = "cpu", seeds: int = 5, timing: bool = True, runs: int = 20):
    spec = load_problem(problem)
    sizes = spec.constants(size)
    reference = load_module(spec.source, spec.name, sizes)
    atol, rtol = spec.tolerance(size)
    small = {k: max(1, v // 2) if isinstance(v, int) and v >= 4 else v for k, v in sizes.items()}

    def verify(candidate: types.ModuleType, fingerprints: set[str]) -> dict:
        if not isinstance(getattr(candidate, "ModelNew", None), type):
            return {"failure": "invalid", "message": "the candidate defines no class ModelNew"}
        try:
            ref_model, new_model = _models(candidate, reference)
        except CompileError as exc:  # a build in __init__ (one at import is reported by the sandbox)
            return {"failure": "compile", "message": str(exc)}
        metrics: dict = {"problem": spec.name, "size": size}
        with torch.no_grad():
            try:
                wrong = _correctness(ref_model, new_model, reference, atol, rtol, seeds, metrics)
                if wrong:
                    return wrong
                _honesty(ref_model, new_model, reference, atol, rtol)
                if small != sizes:
                    _second_size(candidate, spec, small, atol, rtol)
            except Hack as exc:
                return {"failure": "hack", "message": str(exc), "metrics": metrics}
            if not timing:
                return {"score": 0.0, "metrics": {**metrics, "timed": False}}
            return _timing(ref_model, new_model, reference, atol, rtol, runs, metrics)

    return verify


def _correctness(ref_model, new_model, module, atol, rtol, seeds, metrics) -> dict:
    """The `wrong` failure of the first mismatching case (empty if none); the worst relative
    error and the degenerate flag go into `metrics`."""
    inputs = module.get_inputs()
    worst_relative = 0.0
    for seed in range(seeds):
        for distribution in DISTRIBUTIONS:
            _fill(inputs, 1000 * seed + DISTRIBUTIONS.index(distribution), distribution)
            pristine = _clone(inputs)
            out = new_model(*_clone(inputs))  # the candidate first, on clones
            ref = ref_model(*pristine)
            # inputs 100x wider make outputs up to 10^4x larger (a product): the error allowed scales with them
            scale = (
                max(1.0, float(ref.abs().max())) if distribution == "wide" and isinstance(ref, torch.Tensor) else 1.0
            )
            wrong = _error(out, ref, atol * scale, rtol)
            if wrong:
                wrong["message"] = f"seed {seed}, {distribution} inputs: {wrong['message']}"
                return {"failure": "wrong", **wrong}
            worst_relative = max(worst_relative, _relative(out, ref))
    metrics["relative_error"] = worst_relative
    metrics["degenerate"] = bool(ref.abs().max() < 10 * atol)  # zeros would pass: the problem's sizes are weak
    return {}


def _honesty(ref_model, new_model, module, atol, rtol) -> None:
    inputs = module.get_inputs()
    _fill(inputs, 7, "normal")
    before = _clone(inputs)
    out = new_model(*inputs)
    if any(isinstance(a, torch.Tensor) and not torch.equal(a, b) for a, b in zip(inputs, before, strict=True)):
        raise Hack("the candidate changed its inputs")
    if type(out) is not torch.Tensor:
        raise Hack(f"the output is a {type(out).__name__}, not a plain torch.Tensor")
    if any(isinstance(a, torch.Tensor) and out.untyped_storage().data_ptr() == a.untyped_storage().data_ptr()
           for a in inputs):  # fmt: skip
        raise Hack("the output shares memory with an input")
    for attempt in range(2):  # the same buffers, new values: a cached or skipped result shows
        _fill(inputs, 100 + attempt, "normal")
        again = new_model(*inputs)
        if _error(again, ref_model(*_clone(inputs)), atol, rtol):
            raise Hack("new values in the same input buffers gave a stale answer (a cache, or skipped work)")
    floats = [t for t in inputs if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() > 2]
    if floats:
        target = floats[0].view(-1)
        index = target.numel() // 2 + 1
        base_ref, base_out = ref_model(*_clone(inputs)), new_model(*_clone(inputs))
        target[index] += 10.0 * (1.0 + abs(float(target[index])))  # large enough to move any output it feeds
        moved_ref, moved_out = ref_model(*_clone(inputs)), new_model(*_clone(inputs))
        changed = ~torch.isclose(moved_ref, base_ref, atol=atol, rtol=rtol)
        if changed.any() and torch.isclose(moved_out, base_out, atol=atol, rtol=rtol)[changed].all():
            raise Hack("changing one input element did not change the output where it should")


def _second_size(candidate, spec, small: dict, atol, rtol) -> None:
    """The same check at half the sizes: an answer hard-coded for one shape fails here."""
    module = load_module(spec.source, spec.name, small)
    ref_model, new_model = _models(candidate, module)
    inputs = module.get_inputs()
    _fill(inputs, 11, "normal")
    wrong = _error(new_model(*_clone(inputs)), ref_model(*_clone(inputs)), atol, rtol)
    if wrong:
        raise Hack(f"wrong at a second size {small} (hard-coded shapes?): {wrong['message']}")


def _timing(ref_model, new_model, module, atol, rtol, runs, metrics) -> dict:
    inputs = module.get_inputs()
    counter = [0]

    def prepare():
        counter[0] += 1
        _fill(inputs, 10_000 + counter[0], "normal")

    def check(out):
        if counter[0] % 5 == 0 and _error(out, ref_model(*_clone(inputs)), atol, rtol):
            raise Hack("a timed call returned a wrong answer")

    try:
        candidate_ms = _median_ms(lambda: new_model(*inputs), prepare, check, runs)
    except Hack as exc:
        return {"failure": "hack", "message": str(exc), "metrics": metrics}
    eager_ms = _median_ms(lambda: ref_model(*inputs), prepare, lambda _: None, runs)
    out = new_model(*inputs)
    moved = sum(t.numel() for t in inputs if isinstance(t, torch.Tensor)) + out.numel()
    floor_ms = _copy_ms(moved) * ROOFLINE_MARGIN
    metrics.update(candidate_ms=candidate_ms, eager_ms=eager_ms, floor_ms=floor_ms)
    if candidate_ms < floor_ms:
        return {"failure": "hack", "message": f"{candidate_ms:.3g} ms is faster than moving its data allows "
                f"({floor_ms:.3g} ms)", "metrics": metrics}  # fmt: skip
    metrics["speedup"] = eager_ms / candidate_ms
    return {"score": metrics["speedup"], "metrics": metrics}
