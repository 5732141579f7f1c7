"""The trusted side of an evaluation: every score, metric and verdict is computed here, from
data the candidate's process handed over, on inputs this side chose.

Per pool worker, one *judge process* (`garagelab.evolve._judge`): it loads the task's judge
(and with it the task's data), starts the task's sandbox (a fork server that never sees the
data), and per candidate calls `judge(candidate, fingerprints) -> result`. The judge talks to
the candidate only through `Candidate.call(request) -> answer` (plain data, wire.py) and
validates every answer (type, shape, dtype, size, finiteness) before using it. Candidate code
never runs in the judge process, in the engine, or in a report.

Results: {"score": float, "metrics": {...}, "fingerprint": str} or {"failure": kind,
"message": str}. A judge raises `Invalid` for an answer that does not hold up; a candidate that
cannot answer raises sandbox.CandidateFailed inside `call`, and its kind becomes the result's.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
from typing import TYPE_CHECKING

import numpy as np

from garagelab.evolve.lint import lint
from garagelab.evolve.sandbox import GRACE_S, SCRUBBED_ENV, ZYGOTE_START_S, Outcome, resolve

if TYPE_CHECKING:
    from garagelab.evolve.task import Task

MAX_MESSAGE = 2000


class Invalid(Exception):
    """The candidate's answer does not hold up (wrong type, shape, dtype, size, non-finite...)."""


def expect_array(value, name: str, shape: tuple[int, ...] | None = None, kinds: str = "fiub") -> np.ndarray:
    """`value` if it is an array of `shape` whose dtype kind is one of `kinds`; else Invalid."""
    if not isinstance(value, np.ndarray):
        raise Invalid(f"{name} is a {type(value).__name__}, not an array")
    if shape is not None and value.shape != shape:
        raise Invalid(f"{name} has shape {value.shape}, expected {shape}")
    if value.dtype.kind not in kinds:
        raise Invalid(f"{name} has dtype {value.dtype}")
    return value


def evaluate(task: Task, source: str, fingerprints: frozenset[str] = frozenset()) -> Outcome:
    """One candidate judged by the judge process of this thread (static checks included)."""
    return _judge_process(task).evaluate(source, fingerprints)


def static_refusal(spec: dict, source: str) -> dict | None:
    """The lint and the task's own static rules (nothing runs), as a failure if they refuse.
    Run in the judge process: resolving what an attribute chain reaches imports the modules
    candidates may use (triton, torch), which the engine's process must not (`import triton`
    after MuJoCo's EGL rendering segfaults)."""
    if spec["check_lint"]:
        problems = lint(source, tuple(spec["preload"]), tuple(spec["forbidden"]))
        if problems:
            kind = "syntax" if problems[0].startswith("syntax") else "lint"
            return {"failure": kind, "message": "; ".join(problems[:5])}
        if spec["checks"]:
            problems = resolve(spec["checks"])(source)
            if problems:
                return {"failure": "static", "message": "; ".join(problems[:5])}
        return None
    try:
        compile(source, "candidate.py", "exec", dont_inherit=True, flags=0x400)  # PyCF_ONLY_AST
    except (SyntaxError, ValueError, RecursionError, MemoryError, SystemError) as exc:
        return {"failure": "syntax", "message": f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE]}
    return None


def outcome_of(result: dict) -> Outcome:
    """A judge's result as an Outcome: a score only if it is a finite number and nothing failed."""
    failure = str(result.get("failure") or "")
    score = result.get("score")
    metrics = result.get("metrics") if isinstance(result.get("metrics"), dict) else {}
    message = str(result.get("message", ""))[:MAX_MESSAGE]
    if not failure and not (isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score)):
        failure, message = "invalid", "the judge gave no finite score"
    return Outcome(
        score=None if failure else float(score),
        metrics=metrics,
        failure=failure,
        message=message,
        seconds=float(result.get("seconds", 0.0)),
        max_rss_kb=int(result.get("max_rss_kb", 0)),
        fingerprint=str(result.get("fingerprint", "") or ""),
    )


class JudgeProcess:
    """The engine's handle on one judge process (one evaluation at a time)."""

    def __init__(self, task: Task, cpus: set[int] | None = None) -> None:
        self.task = task
        env = {**SCRUBBED_ENV, **task.environment, "HOME": os.environ.get("HOME", tempfile.gettempdir())}
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in sys.path if p)
        for name in ("MUJOCO_GL", "GARAGELAB_UNSAFE_NO_ISOLATION", "GARAGELAB_RUNS"):
            if name in os.environ:
                env[name] = os.environ[name]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (the judge's stderr, read if it dies)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "garagelab.evolve._judge"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            cwd=tempfile.gettempdir(),
            start_new_session=True,
        )
        if cpus:  # before the setup line: no thread pool has started yet; the sandbox inherits it
            os.sched_setaffinity(self.process.pid, cpus)
        self.ready = self._exchange(task.spec(), 2 * ZYGOTE_START_S)
        _ALL.add(self)

    def _exchange(self, message: dict, timeout_s: float) -> dict:
        try:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._died("crash")
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            return self._died("timeout" if not ready else "crash")
        return json.loads(line)

    def _died(self, how: str) -> dict:
        self.close()
        self._log.seek(0)
        tail = self._log.read()[-800:].decode(errors="replace").strip()
        if how == "timeout":
            return {"failure": "timeout", "message": "scoring the candidate's answer took too long (the judge was "
                    f"stopped after {self.task.limits.wall_s + self.task.limits.judge_s:g} s)"}  # fmt: skip
        return {"failure": "task_error", "message": f"the judge process died{': ' + tail if tail else ''}"}

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and "ready" in self.ready

    def evaluate(self, source: str, fingerprints: frozenset[str]) -> Outcome:
        if "failure" in self.ready:
            return outcome_of(self.ready)
        limits = self.task.limits
        job = {"source": source, "fingerprints": sorted(fingerprints)}
        return outcome_of(self._exchange(job, limits.wall_s + limits.judge_s + GRACE_S))

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()

    def __del__(self) -> None:
        self.close()


_LOCAL = threading.local()  # one judge process per task per thread (each pool worker has its own)
KEPT_JUDGES = 3  # per thread, the most recently used
_ALL: weakref.WeakSet[JudgeProcess] = weakref.WeakSet()


def pin(cpus: set[int] | None) -> None:
    """Run the judge processes this thread starts from now on (and so their sandboxes and
    candidates) on `cpus` only.

    JAX, XLA and torch size their thread pools by the CPUs a process may use, and their workers
    spin while they wait: two unpinned fly-set evaluations at once on 2 cores used 1.7 CPU
    seconds each for 1.15 s of wall time. A pool with a worker per CPU pins each to its own."""
    _LOCAL.cpus = cpus


def _judge_process(task: Task) -> JudgeProcess:
    """This thread's judge process for `task`, started on first use; the least recently used
    beyond KEPT_JUDGES are stopped (a judge and its sandboxes hold about 0.5 GB: a kernels search
    over the suite's 27 problems, each with a task for its search and one for its re-measuring,
    once held 52 judges and filled the machine's 24 GB)."""
    cache: collections.OrderedDict[str, JudgeProcess] = _LOCAL.__dict__.setdefault("by_key", collections.OrderedDict())
    key = json.dumps(task.spec(), sort_keys=True)
    process = cache.pop(key, None)
    if process is None or not process.alive:
        if process is not None:
            process.close()
        process = JudgeProcess(task, getattr(_LOCAL, "cpus", None))
    cache[key] = process
    while len(cache) > KEPT_JUDGES:
        cache.popitem(last=False)[1].close()
    return process


@atexit.register
def close_all() -> None:
    """Stop every judge process this process started (and with them their sandboxes)."""
    for process in list(_ALL):
        process.close()
