"""The verifier: is a candidate's `ModelNew` correct, honest, and how fast is it? Decided on the
trusted side of evolve's boundary (docs/evolve/README.md): this module runs in the judge
process, which loads the problem and never the candidate. The candidate's sandboxed process
only builds `ModelNew` and runs it on inputs shared with it (serve.py, shared.py).

Stages, each a failure kind of its own:

1. build: `ModelNew(*get_init_inputs())` after the reference's seed, in the candidate's process
   (a C++ `CompileError` is `compile`, with the compiler's first errors);
2. correctness over `seeds` seeds x input distributions (normal, uniform [0, 1), normal x 100):
   fresh inputs generated here, sealed read-only, the reference computed here; allclose at the
   problem's tolerance (the allowed error scaled by the output's size for the wide inputs), with
   the count, largest error and first index of wrong elements, and the relative error (`wrong`).
   A call whose output is not a plain tensor, or not sealed when it answers, is a `hack`; one
   that writes into its inputs crashes (they are mapped read-only);
3. fallback (`fallback`), on every call, timed ones too: `forward` may dispatch only
   allocation, copy, view and layout operations; a PyTorch compute operation (aten::relu,
   aten::mm, ...) is refused, whatever the source calls it, and parameters made in `__init__`
   (nn.Linear, torch.randn) are fine. The record is made in the candidate's process: a
   candidate that tampers with its recorder can hide a fallback, never its speed, which is an
   honest measurement of what it ran;
4. a second size (half the sizes: hard-coded shapes are a `hack`);
5. timing: rounds of one call each of the candidate, eager PyTorch (the reference in a clean
   sandboxed process of its own, not recording what it dispatches; both on one thread and pinned
   to one CPU they cannot widen) and the protocol alone (the floor), in
   alternating order, each on fresh inputs, each clocked here from the request to the sealed
   answer, every timed output checked. The score is the median over rounds of eager / candidate
   time, with a distribution-free 90 % interval; faster than the floor beyond noise is a `hack`; above 10x it is
   re-measured with twice the rounds and flagged. Triton on a machine with no GPU runs in its
   interpreter: correct or not is a real verdict there, its times are not, so such a candidate
   is verified but not timed (score 0).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

from garagelab.evolve.judge import Invalid
from garagelab.evolve.sandbox import Candidate, CandidateFailed, Limits, Sandbox
from garagelab.kernels.problems import Problem, load_module, load_problem, with_constants
from garagelab.kernels.shared import describe, nbytes, output_slot, read_output, sealed_input

DISTRIBUTIONS = ("normal", "uniform", "wide")
SERVE = "garagelab.kernels.serve:serve"
ROUNDS = 15
# a call faster than 0.9x the protocol alone did not do the work (judged on the interval of the
# per-round floor / candidate ratios: a noisy round on a loaded machine is not a hack)
FLOOR_MARGIN = 0.9
SUSPICIOUS = 10.0  # speed-ups above this are re-measured and flagged
# what `forward` may dispatch besides its kernel: allocation, copies, views and layout
ALLOWED_OPS = frozenset(
    """empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like new_zeros ones ones_like
    new_ones full full_like new_full fill_ zero_ copy_ _to_copy to clone contiguous view _unsafe_view reshape
    _reshape_alias as_strided expand expand_as permute transpose t unsqueeze squeeze flatten unflatten select
    slice narrow detach alias lift_fresh lift_fresh_copy resize_ set_ view_as unbind split chunk
    _local_scalar_dense scalar_tensor arange sym_size sym_stride sym_numel is_same_size""".split()  # noqa: SIM905
)


class Hack(Exception):
    pass


def _fill(tensors: list, seed: int, distribution: str) -> None:
    """New values in the float tensors (integer inputs are left alone)."""
    generator = torch.Generator().manual_seed(seed)
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            values = torch.randn(t.shape, generator=generator, dtype=torch.float32)
            if distribution == "uniform":
                values = torch.rand(t.shape, generator=generator, dtype=torch.float32)
            elif distribution == "wide":
                values = values * 100
            t.copy_(values)


def _error(out: torch.Tensor, ref: torch.Tensor, atol: float, rtol: float) -> dict:
    """Why `out` is not `ref` (empty if it is), with where it is wrong."""
    if out.shape != ref.shape or out.dtype != ref.dtype:
        return {"message": f"output {describe(out)}, expected {describe(ref)}"}
    wrong = ~torch.isclose(out, ref, atol=atol, rtol=rtol, equal_nan=False)
    if not wrong.any():
        return {}
    diff = (out.double() - ref.double()).abs()
    first = [int(i) for i in torch.nonzero(wrong)[0]]
    largest = float(diff.nan_to_num(math.inf).max())
    return {
        "message": f"{int(wrong.sum())} of {ref.numel()} elements wrong (max error {largest:.3g}, first at index "
        f"{first}: {float(out[tuple(first)]):.6g} instead of {float(ref[tuple(first)]):.6g})",
        "max_error": largest,
        "wrong_fraction": float(wrong.float().mean()),
        "first_wrong": first,
    }


def _relative(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30))


@dataclass
class Size:
    """The problem at one size, on the trusted side: its module and reference model."""

    key: str
    constants: dict
    module: object
    reference: torch.nn.Module


def _size(spec: Problem, key: str, constants: dict) -> Size:
    module = load_module(spec.source, spec.name, constants)
    torch.manual_seed(0)
    return Size(key, constants, module, module.Model(*module.get_init_inputs()))


class Verification:
    """One candidate through the stages; `run()` is the judge's result."""

    def __init__(self, context: Verifier, candidate: Candidate) -> None:
        self.context = context
        self.candidate = candidate
        self.metrics: dict = {"problem": context.spec.name, "size": context.size, "device": context.device}
        self.ops: set[str] = set()
        self.worst = 0.0

    # -- talking to a process -----------------------------------------------------------------
    def build(self, who: Candidate, size: Size, compile_: bool = False) -> dict:
        request = {"op": "build", "key": size.key, "problem": {"name": self.context.spec.name,
                   "source": self.context.spec.source}, "constants": size.constants, "seed": 0,
                   "device": self.context.device, "compile": compile_}  # fmt: skip
        answer = who.call(request)
        if not isinstance(answer, dict):
            raise Invalid("the build answered something other than a dict")
        return answer

    def call(self, who: Candidate, size: Size, inputs: list, expected: torch.Tensor, **flags) -> tuple:
        """(output, answer, seconds) of one call on `inputs` (output None: the answer says why)."""
        fds, args = [], []
        for value in inputs:
            if isinstance(value, torch.Tensor):
                args.append({"fd": len(fds), **describe(value)})
                fds.append(sealed_input(value))
            else:
                args.append({"value": value})
        out = {"fd": len(fds), **describe(expected)}
        fds.append(output_slot(nbytes(out["dtype"], out["shape"])))
        request = {"op": "call", "key": size.key, "args": args, "output": out, "device": self.context.device, **flags}
        try:
            start = time.perf_counter()
            answer = who.call(request, tuple(fds))
            seconds = time.perf_counter() - start
            if not isinstance(answer, dict):
                raise Invalid("a call answered something other than a dict")
            output = None if {"type", "got"} & set(answer) else read_output(fds[-1], out["dtype"], out["shape"])
        finally:
            for fd in fds:
                os.close(fd)
        return output, answer, seconds

    def checked(self, size: Size, inputs: list, ref: torch.Tensor, scale: float = 1.0):
        """The candidate's output on `inputs`, compared with `ref`; raises the failure."""
        output, answer, seconds = self.call(self.candidate, size, inputs, ref)
        ops = answer.get("ops", [])
        if not isinstance(ops, list) or len(ops) > 10_000 or not all(isinstance(o, str) for o in ops):
            raise Invalid("the dispatched operations are not a list of names")
        if set(ops) - ALLOWED_OPS:
            raise Fallback(sorted(set(ops) - ALLOWED_OPS))
        self.ops |= set(ops)
        if "type" in answer:
            raise Hack(f"the output is a {str(answer['type'])[:60]}, not a plain torch.Tensor")
        if "got" in answer:
            raise Wrong({"message": f"output {str(answer['got'])[:200]}, expected {describe(ref)}"})
        if output is None:
            raise Hack("its output was not sealed when it answered: it could still be changing afterwards")
        atol, rtol = self.context.tolerance
        wrong = _error(output, ref, atol * scale, rtol)
        if wrong:
            raise Wrong(wrong)
        self.worst = max(self.worst, _relative(output, ref))
        return output, seconds

    # -- the stages -----------------------------------------------------------------------------
    def inputs(self, size: Size, seed: int, distribution: str) -> tuple[list, torch.Tensor, float]:
        """Fresh inputs, the reference's output on them, and the tolerance scale."""
        torch.manual_seed(seed)
        inputs = size.module.get_inputs()
        _fill(inputs, seed, distribution)
        with torch.no_grad():
            ref = size.reference(*[t.clone() if isinstance(t, torch.Tensor) else t for t in inputs])
        if not isinstance(ref, torch.Tensor):
            raise Invalid(f"the problem's Model returns a {type(ref).__name__}, not a tensor")
        # inputs 100x wider make outputs up to 10^4x larger (a product): the error allowed scales with them
        scale = max(1.0, float(ref.abs().max())) if distribution == "wide" and ref.numel() else 1.0
        return inputs, ref, scale

    def run(self) -> dict:
        context = self.context
        try:
            built = self.build(self.candidate, context.main)
            for seed in range(context.seeds):
                for distribution in DISTRIBUTIONS:
                    inputs, ref, scale = self.inputs(context.main, 1000 * seed + DISTRIBUTIONS.index(distribution),
                                                     distribution)  # fmt: skip
                    try:
                        self.checked(context.main, inputs, ref, scale)
                    except Wrong as wrong:
                        wrong.details["message"] = f"seed {seed}, {distribution} inputs: {wrong.details['message']}"
                        raise
            self.metrics["relative_error"] = self.worst
            self.metrics["degenerate"] = bool(ref.abs().max() < 10 * context.tolerance[0])
            self.metrics["dispatched"] = sorted(self.ops)
            if context.small is not None:
                self.build(self.candidate, context.small)
                inputs, ref, _ = self.inputs(context.small, 11, "normal")
                try:
                    self.checked(context.small, inputs, ref)
                except Wrong as wrong:
                    raise Hack(f"wrong at a second size {context.small.constants} (hard-coded shapes?): "
                               f"{wrong.details['message']}") from None  # fmt: skip
            if not context.timing or (built.get("triton") and context.device == "cpu"):
                extra = {"interpreted": True} if context.timing else {}
                return {"score": 0.0, "metrics": {**self.metrics, "timed": False, **extra}}
            return self.timed()
        except Wrong as wrong:
            return {"failure": "wrong", "metrics": self.metrics, **wrong.details}
        except Fallback as fallback:
            message = "forward computes with PyTorch: " + ", ".join(f"aten::{op}" for op in fallback.ops[:8])
            message += " (besides its kernel it may only allocate, copy and reshape)"
            return {"failure": "fallback", "message": message, "metrics": self.metrics}
        except Hack as exc:
            return {"failure": "hack", "message": str(exc), "metrics": self.metrics}
        except CandidateFailed as exc:
            if "SIGSEGV" in exc.message:
                exc.message += (
                    " (its inputs, and its output once answered, are read-only: writing into them,"
                    " or out of bounds, crashes)"
                )
            raise

    def timed(self, rounds: int | None = None) -> dict:
        """Eager / candidate time over interleaved rounds, clocked here; see the module docstring."""
        context = self.context
        rounds = rounds or context.rounds
        with context.helpers.start(context.reference_program, context.limits) as baseline:
            self.build(baseline, context.main)
            times: dict[str, list[float]] = {"candidate": [], "eager": [], "floor": []}
            for number in range(rounds):
                inputs, ref, scale = self.inputs(context.main, 10_000 + number, "normal")
                order = ["candidate", "eager", "floor"] if number % 2 == 0 else ["floor", "eager", "candidate"]
                for who in order:
                    if who == "candidate":
                        try:
                            seconds = self.checked(context.main, inputs, ref, scale)[1]
                        except Wrong as wrong:
                            raise Hack(f"a timed call returned a wrong answer: {wrong.details['message']}") from None
                    else:
                        output, _, seconds = self.call(baseline, context.main, inputs, ref, floor=who == "floor",
                                                       record=False)  # fmt: skip
                        if who == "eager" and (output is None or _error(output, ref, context.tolerance[0] * scale,
                                                                         context.tolerance[1])):  # fmt: skip
                            raise Invalid("the eager baseline disagreed with the reference (a random problem?)")
                    times[who].append(seconds)
        compiled = self.compiled_ms(rounds) if context.compile_baseline else None
        return self.speed(times, rounds, compiled)

    def compiled_ms(self, rounds: int) -> float:
        """Median ms of torch.compile of the reference, in a clean process (inductor's code: the
        bar a kernel engineer would set; minutes of compiling on a CPU)."""
        context = self.context
        with context.helpers.start(context.reference_program, context.limits) as compiled:
            self.build(compiled, context.main, compile_=True)
            seconds = []
            for number in range(rounds):
                inputs, ref, _ = self.inputs(context.main, 20_000 + number, "normal")
                seconds.append(self.call(compiled, context.main, inputs, ref, record=False)[2])
        return 1e3 * statistics.median(seconds)

    def speed(self, times: dict, rounds: int, compiled: float | None) -> dict:
        candidate, eager, floor = (np.array(times[k]) * 1e3 for k in ("candidate", "eager", "floor"))
        ratios = eager / candidate
        low, high = _interval(ratios)
        metrics = self.metrics
        metrics.update(
            timed=True,
            rounds=rounds,
            candidate_ms=float(np.median(candidate)),
            eager_ms=float(np.median(eager)),
            floor_ms=float(np.median(floor)),
            speedup=float(np.median(ratios)),
            speedup_interval=[low, high],
        )
        if compiled is not None:
            metrics["compile_ms"] = compiled
            metrics["speedup_compile"] = compiled / metrics["candidate_ms"]
        if _interval(floor / candidate)[0] * FLOOR_MARGIN > 1:  # faster than the floor beyond noise
            message = (
                f"{metrics['candidate_ms']:.3g} ms is faster than the verifier's protocol alone "
                f"({metrics['floor_ms']:.3g} ms): the work was not done"
            )
            return {"failure": "hack", "metrics": metrics, "message": message}
        if metrics["speedup"] > SUSPICIOUS and rounds == self.context.rounds:
            return self.timed(2 * rounds)  # re-measured, then flagged below if it holds
        if metrics["speedup"] > SUSPICIOUS:
            metrics["flagged"] = f"above {SUSPICIOUS:g}x eager PyTorch, re-measured over {rounds} rounds"
        return {"score": metrics["speedup"], "metrics": metrics}


class Fallback(Exception):
    def __init__(self, ops: list[str]) -> None:
        super().__init__(", ".join(ops))
        self.ops = ops


class Wrong(Exception):
    def __init__(self, details: dict) -> None:
        super().__init__(details.get("message", ""))
        self.details = details


def _interval(ratios: np.ndarray, level: float = 0.9) -> tuple[float, float]:
    """A distribution-free interval for the median ratio over rounds: the order statistics
    (k, n+1-k) with P(Binomial(n, 1/2) < k) <= (1 - level) / 2, so it covers the true median at
    least `level` of the time whatever the rounds' distribution (a percentile bootstrap of the
    median covered 88-89 % at a nominal 90 % on 6 to 30 rounds)."""
    ordered = np.sort(ratios)
    n = ordered.size
    tail = (1 - level) / 2
    below = np.cumsum([math.comb(n, i) / 2**n for i in range(n + 1)])  # P(X <= i)
    k = max(1, int(np.searchsorted(below, tail, side="right")))  # the largest k with P(X <= k-1) <= tail
    return float(ordered[k - 1]), float(ordered[n - k])


@dataclass
class Verifier:
    """What stays across candidates in the judge process: the problem at its sizes, the
    reference models, and a sandbox for the clean baseline processes."""

    spec: Problem
    size: str
    device: str
    seeds: int
    timing: bool
    rounds: int
    compile_baseline: bool
    main: Size
    small: Size | None
    tolerance: tuple[float, float]
    helpers: Sandbox
    limits: Limits

    @property
    def reference_program(self) -> str:
        """The problem itself as a candidate, at the main size: what the clean baseline process
        builds and runs (its `forward` may read the sizes, as ALiBi's slopes read HEADS)."""
        return f"{with_constants(self.spec.source, self.spec.name, self.main.constants)}\n\nModelNew = Model\n"


def make_judge(
    problem: str,
    size: str = "cpu",
    seeds: int = 3,
    timing: bool = True,
    rounds: int = ROUNDS,
    device: str = "cpu",
    compile_baseline: bool = False,
):
    """The kernels judge (called once in the judge process): the problem, its references and
    the baseline sandbox; the function it returns verifies one candidate."""
    from garagelab.kernels.task import IMPORTS, LIMITS

    spec = load_problem(problem)
    constants = spec.constants(size)
    small = {k: max(1, v // 2) if isinstance(v, int) and v >= 4 else v for k, v in constants.items()}
    torch.set_num_threads(1)  # the reference's outputs only; its time is measured in a sandbox like the candidate's
    main = _size(spec, "main", constants)
    with torch.no_grad():  # the tolerance follows the output's dtype (float16 and bfloat16: 1e-2)
        dtype = str(main.reference(*main.module.get_inputs()).dtype).removeprefix("torch.")
    verifier = Verifier(
        spec,
        size,
        device,
        seeds,
        timing,
        rounds,
        compile_baseline,
        main,
        _size(spec, "small", small) if small != constants else None,
        spec.tolerance(size, dtype),
        Sandbox(SERVE, IMPORTS),
        LIMITS,
    )

    def judge(candidate: Candidate, fingerprints: set[str]) -> dict:
        return Verification(verifier, candidate).run()

    return judge
