"""The verifier: is a candidate's `ModelNew` correct, honest, and how fast is it?

Where it runs, for now: in the candidate's sandboxed process (`serve`: the evolve sandbox's
walls hold around it), and the trusted side (`make_judge`) only checks the form of the verdict
it is handed. So a candidate that breaks out of its own Python process's integrity can still
forge its verdict: moving the comparison and the timing to the trusted side is issue #17; every
other task scores on the trusted side. Stages, each a failure kind of its own:

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
4. timing: median of `runs` calls after warm-up for the candidate, for eager PyTorch and (with
   `compile_baseline`) for `torch.compile` of the reference, same inputs, same process, fresh
   values in the same buffers before every timed call and every timed output checked; a time
   below what memory bandwidth allows for the bytes the problem must read and write is a
   `hack` (measured with a copy of the same size). On a GPU: CUDA events around each call
   after the L2 cache is flushed, checked against the host's clock (work the events did not
   see is a `hack`). Triton on a machine with no GPU runs in its interpreter: correct or not
   is a real verdict there, its times are not, so such a candidate is verified but not timed.

The score is the speed-up over eager PyTorch (0 when not timed); `metrics` carry every number the feedback uses.
"""

from __future__ import annotations

import os
import statistics
import time
import types
from pathlib import Path

import torch

from garagelab.evolve.judge import Invalid
from garagelab.kernels.backends.cpp import CompileError
from garagelab.kernels.problems import Problem, load_module, load_problem

DISTRIBUTIONS = ("normal", "uniform", "wide")
ROOFLINE_MARGIN = 0.5  # a candidate may beat a plain copy's bandwidth by 2x (caches), not more


def _fill(tensors: list, seed: int, distribution: str) -> None:
    """New values in the same float buffers (integer inputs are left alone)."""
    generators: dict = {}
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            if t.device not in generators:
                generators[t.device] = torch.Generator(t.device).manual_seed(seed)
            generator, where = generators[t.device], {"dtype": t.dtype, "device": t.device}
            values = torch.randn(t.shape, generator=generator, **where)
            if distribution == "uniform":
                values = torch.rand(t.shape, generator=generator, **where)
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


class Hack(Exception):
    pass


class Clock:
    """Median milliseconds of a call. On the CPU, the host's clock. On a GPU, CUDA events around
    the call, each after a 256 MB write has flushed the L2 cache; the call is launched while the
    flush still runs (as KernelBench and Triton's do_bench do), so the events time the kernels,
    not Python's launch overhead. The host's clock checks them: if the host waits much longer for
    a synchronised call than the events saw, work ran where the events did not look."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.flush = torch.empty(64 << 20, dtype=torch.int32, device=device) if self.cuda else None

    def median_ms(self, call, prepare, check, runs: int, warmup: int = 3) -> float:
        for _ in range(warmup):
            prepare()
            call()
        times = []
        for _ in range(runs):
            prepare()
            if self.cuda:
                begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                self.flush.zero_()
                begin.record()
                out = call()
                end.record()
                torch.cuda.synchronize()
                times.append(begin.elapsed_time(end))
            else:
                start = time.perf_counter()
                out = call()
                times.append((time.perf_counter() - start) * 1e3)
            check(out)
        event_ms = statistics.median(times)
        if self.cuda:
            host_ms = statistics.median(self._host_ms(call, prepare) for _ in range(5))
            if host_ms > 2 * event_ms + 0.1:
                raise Hack(
                    f"CUDA events saw {event_ms:.3g} ms, the host waited {host_ms:.3g} ms (work off their stream)"
                )
        return event_ms

    @staticmethod
    def _host_ms(call, prepare) -> float:
        prepare()
        torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        torch.cuda.synchronize()
        return (time.perf_counter() - start) * 1e3

    def copy_ms(self, elements: int, device: torch.device, runs: int = 10) -> float:
        """Reading and writing `elements` floats once, the memory-bound floor of a kernel."""
        source = torch.randn(max(elements, 1), device=device)
        target = torch.empty_like(source)
        return self.median_ms(lambda: target.copy_(source), lambda: None, lambda _: None, runs)


def _on(values: list, device: torch.device) -> list:
    return [v.to(device) if isinstance(v, torch.Tensor) else v for v in values]


def _models(candidate: types.ModuleType, module: types.ModuleType, device: torch.device) -> tuple:
    """(reference, candidate) models built from the same seed (their parameters agree)."""
    torch.manual_seed(0)
    ref_model = module.Model(*module.get_init_inputs()).to(device)
    torch.manual_seed(0)
    new_model = candidate.ModelNew(*module.get_init_inputs())
    if isinstance(new_model, torch.nn.Module):
        new_model = new_model.to(device)
    return ref_model, new_model


def _interpreted(candidate: types.ModuleType, device: torch.device) -> bool:
    """Whether the candidate's kernels run in Triton's interpreter (Triton with no GPU)."""
    uses_triton = any(type(v).__module__.startswith("triton") for v in vars(candidate).values())
    return uses_triton and device.type == "cpu"


def _compile_failure(exc: BaseException) -> dict | None:
    """A kernel compiler's error (C++ build, Triton compilation), as a `compile` failure."""
    if isinstance(exc, CompileError) or (type(exc).__module__.startswith("triton") and "Compil" in type(exc).__name__):
        return {"failure": "compile", "message": str(exc)[-2000:]}
    return None


VERDICT_KINDS = ("invalid", "wrong", "hack", "compile")


def make_judge(problem: str, **options):
    """The trusted side (for now a check of the verdict's form, see the module docstring): the
    problem is read here and sent to the candidate's process with the options."""
    spec = load_problem(problem)
    request = {"problem": {"name": spec.name, "source": spec.source, "presets": spec.presets}, "options": options}

    def judge(candidate, fingerprints: set[str]) -> dict:
        verdict = candidate.call(request)
        if not isinstance(verdict, dict) or not isinstance(verdict.get("metrics", {}), dict):
            raise Invalid("the verifier's verdict is not a dict with metrics")
        failure = verdict.get("failure")
        if failure is not None:
            if failure not in VERDICT_KINDS:
                raise Invalid(f"the verifier's verdict names an unknown failure {str(failure)[:40]!r}")
            message = str(verdict.get("message", ""))
            return {"failure": failure, "message": message, "metrics": verdict.get("metrics", {})}
        if not isinstance(verdict.get("score"), float | int):
            raise Invalid("the verifier's verdict has no score")
        return {"score": float(verdict["score"]), "metrics": verdict.get("metrics", {})}

    return judge


def serve(candidate: types.ModuleType, request: dict) -> dict:
    """The candidate's side: run the verifier on the candidate module."""
    problem = request["problem"]
    spec = Problem(problem["name"], problem["source"], Path(problem["name"] + ".py"), problem["presets"])
    return make_verifier(spec, **request["options"])(candidate, set())


def make_verifier(
    problem: Problem | str,
    size: str = "cpu",
    seeds: int = 5,
    timing: bool = True,
    runs: int = 20,
    device: str = "cpu",
    compile_baseline: bool = False,
):
    spec = problem if isinstance(problem, Problem) else load_problem(problem)
    sizes = spec.constants(size)
    reference = load_module(spec.source, spec.name, sizes)
    atol, rtol = spec.tolerance(size)
    small = {k: max(1, v // 2) if isinstance(v, int) and v >= 4 else v for k, v in sizes.items()}
    where = torch.device(device)  # nothing touches the GPU here: this runs in the zygote, before the fork

    def verify(candidate: types.ModuleType, fingerprints: set[str]) -> dict:
        # Triton compiles into ~/.triton, its default for ~ fixed when the zygote imported it (as
        # root, before dropping to nobody): the evaluation's own HOME instead, read at compile time
        os.environ["TRITON_HOME"] = os.environ.get("HOME", os.getcwd())
        if not isinstance(getattr(candidate, "ModelNew", None), type):
            return {"failure": "invalid", "message": "the candidate defines no class ModelNew"}
        metrics: dict = {"problem": spec.name, "size": size, "device": device}
        try:
            ref_model, new_model = _models(candidate, reference, where)
            with torch.no_grad():
                wrong = _correctness(ref_model, new_model, reference, where, atol, rtol, seeds, metrics)
                if wrong:
                    return wrong
                _honesty(ref_model, new_model, reference, where, atol, rtol)
                if small != sizes:
                    _second_size(candidate, spec, small, where, atol, rtol)
                if not timing or _interpreted(candidate, where):
                    interpreted = {"interpreted": True} if timing else {}
                    return {"score": 0.0, "metrics": {**metrics, "timed": False, **interpreted}}
                return _timing(ref_model, new_model, reference, where, atol, rtol, runs, compile_baseline, metrics)
        except Hack as exc:
            return {"failure": "hack", "message": str(exc), "metrics": metrics}
        except Exception as exc:
            failure = _compile_failure(exc)
            if failure is None:
                raise
            return failure

    return verify


def _correctness(ref_model, new_model, module, device, atol, rtol, seeds, metrics) -> dict:
    """The `wrong` failure of the first mismatching case (empty if none); the worst relative
    error and the degenerate flag go into `metrics`."""
    inputs = _on(module.get_inputs(), device)
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


def _honesty(ref_model, new_model, module, device, atol, rtol) -> None:
    inputs = _on(module.get_inputs(), device)
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


def _second_size(candidate, spec, small: dict, device, atol, rtol) -> None:
    """The same check at half the sizes: an answer hard-coded for one shape fails here."""
    module = load_module(spec.source, spec.name, small)
    ref_model, new_model = _models(candidate, module, device)
    inputs = _on(module.get_inputs(), device)
    _fill(inputs, 11, "normal")
    wrong = _error(new_model(*_clone(inputs)), ref_model(*_clone(inputs)), atol, rtol)
    if wrong:
        raise Hack(f"wrong at a second size {small} (hard-coded shapes?): {wrong['message']}")


def _timing(ref_model, new_model, module, device, atol, rtol, runs, compile_baseline, metrics) -> dict:
    inputs = _on(module.get_inputs(), device)
    clock = Clock(device)
    counter = [0]

    def prepare():
        counter[0] += 1
        _fill(inputs, 10_000 + counter[0], "normal")

    def check(out):
        if _error(out, ref_model(*_clone(inputs)), atol, rtol):
            raise Hack("a timed call returned a wrong answer")

    candidate_ms = clock.median_ms(lambda: new_model(*inputs), prepare, check, runs)
    eager_ms = clock.median_ms(lambda: ref_model(*inputs), prepare, lambda _: None, runs)
    out = new_model(*inputs)
    moved = sum(t.numel() for t in inputs if isinstance(t, torch.Tensor)) + out.numel()
    floor_ms = clock.copy_ms(moved, device) * ROOFLINE_MARGIN
    metrics.update(candidate_ms=candidate_ms, eager_ms=eager_ms, floor_ms=floor_ms)
    if compile_baseline:  # inductor's code for the reference: the bar a kernel engineer would set
        compiled = torch.compile(ref_model)
        metrics["compile_ms"] = clock.median_ms(lambda: compiled(*inputs), prepare, lambda _: None, runs)
        metrics["speedup_compile"] = metrics["compile_ms"] / candidate_ms
    if candidate_ms < floor_ms:
        return {"failure": "hack", "message": f"{candidate_ms:.3g} ms is faster than moving its data allows "
                f"({floor_ms:.3g} ms)", "metrics": metrics}  # fmt: skip
    metrics["speedup"] = eager_ms / candidate_ms
    return {"score": metrics["speedup"], "metrics": metrics}
