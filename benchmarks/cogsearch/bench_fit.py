"""cogsearch speed on the fly data (Mohanta 2022, 88 training flies), measured in one run.

1. Candidate evaluations per minute through the real search path: per worker a judge process
   (JAX and the data loaded) and its sandbox (a fork server that never sees the data); per
   candidate a walled-in child traces `agent`, the judge rebuilds the computation and does the
   parameter count, probe, per-fly fits of both folds with the search's restarts and steps,
   held-out score; two workers on this machine's cores. Programs:
   the 5-parameter ground-truth agent of the synthetic experiments (the issue's yardstick) and
   every baseline. Goal: >= 60 per minute.
2. Fitting the Q-learning seed to every fly (both folds) with our vmapped JAX optimiser against
   the usual way, a NumPy loop over trials with SciPy's L-BFGS-B per fly (reference.py): time,
   and the held-out likelihood each reaches.

    .venv/bin/python benchmarks/cogsearch/bench_fit.py [--fly ../shared/data/fly/mohanta2022]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path

import numpy as np

from garagelab.cogsearch.data import load_fly_folder
from garagelab.cogsearch.fit import FitConfig, fit
from garagelab.cogsearch.programs import BASELINES, SEED, load_program
from garagelab.cogsearch.reference import fit_q_learning, q_learning_loglik
from garagelab.cogsearch.search import CogSearchConfig
from garagelab.cogsearch.simulate import AFP
from garagelab.cogsearch.task import build_task
from garagelab.evolve.pool import LocalPool

FLY = Path(__file__).resolve().parents[3] / "shared" / "data" / "fly" / "mohanta2022"


def evaluations_per_minute(data, programs: list[str], workers: int = 2) -> tuple[float, list]:
    with tempfile.TemporaryDirectory() as tmp:
        search = CogSearchConfig(data="")  # the search's own fit settings
        task = build_task(data.save_npz(Path(tmp) / "fly.npz"), data, search.restarts, search.max_steps)
        pool = LocalPool(workers)
        try:
            # start every worker's judge and sandbox (JAX import, data) before the clock
            wait([pool.submit(task, programs[0], frozenset()) for _ in range(workers)])
            start = time.perf_counter()
            outcomes = [f.result() for f in [pool.submit(task, source, frozenset()) for source in programs]]
            seconds = time.perf_counter() - start
        finally:
            pool.shutdown()
    return 60 * len(programs) / seconds, outcomes


def scipy_heldout(data) -> tuple[float, float]:
    """(seconds, normalised held-out likelihood) of the reference fit, same folds."""
    folds = data.folds()
    start = time.perf_counter()
    total, count = 0.0, 0
    for f in range(2):
        params = fit_q_learning(data, folds[f], restarts=2)
        for s in range(data.n_subjects):
            args = (data.choices[s], data.rewards[s], data.new_session[s], folds[1 - f, s])
            total += q_learning_loglik(params[s], *args)
            count += int(folds[1 - f, s].sum())
    return time.perf_counter() - start, math.exp(total / count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fly", default=str(FLY), help="a fly folder (training_/test_ CSVs)")
    parser.add_argument("--repeats", type=int, default=4, help="copies of the program set to evaluate")
    args = parser.parse_args()
    data = load_fly_folder(args.fly, "training")
    print(f"data: {data.name}, {data.n_subjects} flies x {data.n_trials} trials")

    # renamed copies so that each is a distinct program (the evaluator does not cache)
    afp = [AFP.replace("alpha_gain", f"gain{i}") for i in range(args.repeats * 2)]
    print("\n1. sandboxed evaluations of the 5-parameter program")
    for workers in (1, 2):
        rate, outcomes = evaluations_per_minute(data, afp, workers)
        ok = [o for o in outcomes if o.ok]
        print(
            f"   {workers} worker(s): {rate:.1f} per minute (goal 60: {rate / 60:.2f}x); "
            f"{np.mean([o.seconds for o in ok]):.2f} s each, {ok[0].metrics['steps']} optimiser steps, "
            f"score {ok[0].score:.4f}"
        )
    others = list(BASELINES.values()) * args.repeats
    rate_all, outcomes = evaluations_per_minute(data, others)
    print(f"   every baseline in turn: {rate_all:.1f} per minute")

    config = FitConfig(restarts=2, max_steps=1000)
    program = load_program(SEED)
    fit(program, data.select(range(2)), config)  # JAX start-up is not part of a fit
    start = time.perf_counter()
    ours = fit(program, data, config)
    jax_seconds = time.perf_counter() - start
    scipy_seconds, scipy_value = scipy_heldout(data)
    print(
        f"\n2. Q-learning, every fly, both folds, 2 restarts\n"
        f"   {'':22s}{'seconds':>10s}{'held-out likelihood':>22s}\n"
        f"   {'JAX (vmapped, ours)':22s}{jax_seconds:10.2f}{ours.normalized_likelihood:22.4f}\n"
        f"   {'NumPy + SciPy L-BFGS-B':22s}{scipy_seconds:10.2f}{scipy_value:22.4f}\n"
        f"   speed-up {scipy_seconds / jax_seconds:.1f}x"
    )


if __name__ == "__main__":
    main()
