"""Where evaluations run: a local pool (default) or a Ray cluster, both behind `submit`."""

from __future__ import annotations

import itertools
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from garagelab.core.errors import UserError
from garagelab.evolve import judge
from garagelab.evolve.sandbox import Outcome
from garagelab.evolve.task import Task


class Pool(Protocol):
    workers: int

    def submit(self, task: Task, source: str, fingerprints: frozenset[str]) -> Future[Outcome]: ...

    def shutdown(self) -> None: ...


class LocalPool:
    """`workers` sandboxed evaluations at once (threads that each wait on a subprocess). With at
    least a worker per CPU, each worker's evaluations run on a CPU of their own (see
    `judge.pin`); with fewer, an evaluation may use the spare CPUs."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        cpus = sorted(os.sched_getaffinity(0))
        slots = itertools.count()

        def pin() -> None:  # runs once in each worker thread
            judge.pin({cpus[next(slots) % len(cpus)]} if workers >= len(cpus) else None)

        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evaluate", initializer=pin)

    def submit(self, task: Task, source: str, fingerprints: frozenset[str]) -> Future[Outcome]:
        return self._executor.submit(task.evaluate, source, fingerprints)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class RayPool:
    """The same evaluation (judge process, sandbox, walls) as Ray tasks: on a cluster (`address`)
    or a local Ray; `gpus` per task asks Ray for a GPU worker (kernels on CUDA)."""

    def __init__(self, workers: int = 2, address: str | None = None, gpus: float = 0) -> None:
        try:
            import ray
        except ImportError as exc:
            raise UserError("the Ray pool needs Ray: pip install 'garagelab[ray]'") from exc
        self.workers = workers
        self._ray = ray
        if not ray.is_initialized():
            if address:
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
        self._remote = ray.remote(num_cpus=1, num_gpus=gpus)(judge.evaluate)

    def submit(self, task: Task, source: str, fingerprints: frozenset[str]) -> Future[Outcome]:
        reference = self._remote.remote(task, source, fingerprints)
        return reference.future()

    def shutdown(self) -> None:
        self._ray.shutdown()
