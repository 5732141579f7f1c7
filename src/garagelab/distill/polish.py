"""The float64 polish of a fit: scipy's trust-region least squares with its Huber loss.

Every search (the main fit's end points, every bootstrap resample) ends here. The paper's
objective is a Huber loss with delta 1e-4 on residuals of a few 1e-3: almost every residual is
in the linear part, so the objective is nearly an L1 loss, whose kinks stop a quasi-Newton
method (L-BFGS-B, the first polish) well short of the minimum: on simulated distillation data
it ended up to 1.5% of the objective above what this polish reaches from the same point (fits
with d1 held: up to 3%), more than a 90% interval allows. A Gauss-Newton method on the
residuals themselves (`least_squares(loss="huber", f_scale=delta)`, whose cost is exactly the
summed Huber loss, with trust-region reflective steps inside the bounds and Jacobian scaling
for the badly scaled coefficients) does not have that problem.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import numpy as np
from scipy.optimize import least_squares

from garagelab.distill.evaluate import numpy_evaluator
from garagelab.distill.objective import DISTILLATION, SUPERVISED, LawSpec, Loss

# polishing fewer points than this runs in this process (a worker process takes ~1 s to start)
PARALLEL_FROM = 16
TOLERANCE = 1e-12  # ftol, xtol and gtol: the objective is ~1e-4 and intervals need ~1e-3 of it
MAX_EVALUATIONS = 1000  # a cap of 3000 changed objectives by under 6e-4 of their value, at twice the time
# the largest residual (and the one of a non-finite prediction): large, so a step there is
# rejected, and small enough that scipy's (r / delta)^2 stays finite
NON_FINITE_RESIDUAL = 1e3


def residuals(spec: LawSpec, theta: np.ndarray, columns: tuple[np.ndarray, ...], loss: Loss) -> np.ndarray:
    """Prediction minus observation, on the scale the fit scores (log or raw losses), of the law
    as it is reported (natural units): a point whose A, B or E overflows float64 (log B' past
    709 along the B'-beta' ridge) has no law to report, so its residuals are not finite."""
    with np.errstate(all="ignore"):
        predicted = spec.log_predictions(theta, columns)
        r = predicted - columns[-1] if loss.residuals == "log" else np.exp(predicted) - np.exp(columns[-1])
    return np.clip(np.where(np.isfinite(r), r, NON_FINITE_RESIDUAL), -NON_FINITE_RESIDUAL, NON_FINITE_RESIDUAL)


def residuals_and_jacobian(
    spec: LawSpec, theta: np.ndarray, columns: tuple[np.ndarray, ...], loss: Loss
) -> tuple[np.ndarray, np.ndarray]:
    """`residuals` (M,) and their analytic derivatives by theta (M, P): scipy's default, finite
    differences, costs one residual evaluation per coefficient for every Jacobian, which made
    the polish 1.8x slower. The Jacobian is zero where a residual is clipped (flat there)."""
    r = residuals(spec, theta, columns, loss)
    predicted, jacobian = spec.jacobian(theta, columns)
    if loss.residuals == "raw":
        with np.errstate(all="ignore"):
            jacobian = jacobian * np.exp(predicted)[:, None]
    flat = (np.abs(r) >= NON_FINITE_RESIDUAL) | ~np.isfinite(jacobian).all(axis=1)
    return r, np.where(flat[:, None], 0.0, jacobian)


def polish(
    spec: LawSpec,
    columns: tuple[np.ndarray, ...],
    theta: np.ndarray,
    box: tuple[np.ndarray, np.ndarray],
    loss: Loss,
    weights: np.ndarray | None = None,
    finite_differences: bool = False,
) -> tuple[np.ndarray, float]:
    """Minimise the summed Huber loss from `theta` over the free coefficients (those with
    lower < upper in `box`; the rest stay at their pinned value); integer `weights` count each
    run that many times (a bootstrap resample). Returns the point and its objective.
    `finite_differences` uses scipy's default Jacobian instead of the analytic one: the anchor
    `benchmarks/distill/bench_fit.py` times it against."""
    if weights is not None:
        runs = np.repeat(np.arange(len(columns[0])), np.asarray(weights, dtype=int))
        columns = tuple(column[runs] for column in columns)
    theta = np.array(theta, dtype=float)
    free = np.flatnonzero(box[0] < box[1])
    lower, upper = box[0][free], box[1][free]

    def point(z: np.ndarray) -> np.ndarray:
        full = theta.copy()
        full[free] = z
        return full

    last: dict[bytes, np.ndarray] = {}  # scipy asks for the Jacobian at the point it just evaluated

    def fun(z: np.ndarray) -> np.ndarray:
        r, jacobian = residuals_and_jacobian(spec, point(z), columns, loss)
        last.clear()
        last[z.tobytes()] = jacobian[:, free]
        return r

    def jac(z: np.ndarray) -> np.ndarray:
        key = z.tobytes()
        if key not in last:
            fun(z)
        return last[key]

    start = np.clip(theta[free], lower, upper)
    result = least_squares(
        fun,
        start,
        jac="2-point" if finite_differences else jac,
        bounds=(lower, upper),
        loss="huber",
        f_scale=loss.delta,
        method="trf",
        x_scale="jac",
        ftol=TOLERANCE,
        xtol=TOLERANCE,
        gtol=TOLERANCE,
        max_nfev=MAX_EVALUATIONS,
    )
    theta[free] = result.x
    # reported by the search's own objective (scipy's cost is the same sum; a non-finite point stays non-finite)
    f, _ = numpy_evaluator(spec, columns, loss=loss)(theta[None, :], np.zeros(1, dtype=int))
    return theta, float(f[0])


def first_distinct(points: np.ndarray) -> np.ndarray:
    """Indices, in order, of the first of each group of points equal to 3 decimals: which of a
    search's end points (best first) are worth polishing separately."""
    _, first = np.unique(np.round(points, 3), axis=0, return_index=True)
    return np.sort(first)


# one polish: (spec, columns, theta, box, loss, weights or None)
Task = tuple[LawSpec, tuple[np.ndarray, ...], np.ndarray, tuple[np.ndarray, np.ndarray], Loss, np.ndarray | None]
# a law spec holds lambdas, which do not pickle: workers get its name
_SPECS = {spec.name: spec for spec in (SUPERVISED, DISTILLATION)}


def polish_many(tasks: list[Task], on_done: Callable[[], None] = lambda: None) -> Iterator[tuple[np.ndarray, float]]:
    """`polish` of every task, results in order, across the machine's cores.

    Workers are fresh interpreters (`python -m garagelab.distill.polish`) fed pickled tasks on
    stdin: a fork would copy this process's JAX threads, and multiprocessing's spawn re-imports
    the caller's main script, which breaks any script without a `__main__` guard.
    """
    workers = min(os.cpu_count() or 1, len(tasks))
    if len(tasks) < PARALLEL_FROM or workers < 2:
        for task in tasks:
            yield polish(*task)
            on_done()
        return
    done: queue.Queue[tuple[int, tuple[np.ndarray, float] | BaseException]] = queue.Queue()
    shares = [list(range(w, len(tasks), workers)) for w in range(workers)]
    processes = [
        subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for _ in shares
    ]
    readers = [
        threading.Thread(target=_feed_and_read, args=(process, share, tasks, done), daemon=True)
        for process, share in zip(processes, shares, strict=True)
    ]
    for reader in readers:
        reader.start()
    results: dict[int, tuple[np.ndarray, float]] = {}
    try:
        for next_index in range(len(tasks)):
            while next_index not in results:
                index, result = done.get()
                if isinstance(result, BaseException):
                    raise result
                results[index] = result
                on_done()
            yield results.pop(next_index)
    finally:
        for process in processes:
            process.kill()
            process.wait()


def _feed_and_read(process: subprocess.Popen, share: list[int], tasks: list[Task], done: queue.Queue) -> None:
    """Send one worker its tasks, then pass each result on as it arrives."""
    try:
        assert process.stdin is not None and process.stdout is not None
        pickle.dump([(tasks[i][0].name, *tasks[i][1:]) for i in share], process.stdin)
        process.stdin.close()
        for index in share:
            done.put((index, pickle.load(process.stdout)))
    except BaseException as exc:  # a worker that died: the caller raises it
        done.put((-1, RuntimeError(f"a polish worker failed ({exc!r}); exit code {process.poll()}")))


def _serve() -> None:
    """Worker: polish every task read from stdin, writing each result as soon as it is done."""
    tasks = pickle.load(sys.stdin.buffer)
    for name, *rest in tasks:
        pickle.dump(polish(_SPECS[name], *rest), sys.stdout.buffer)
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    _serve()
