"""The untrusted side of an evaluation: a candidate's own process, and the channel to it.

A candidate never runs in a process that computes, stores or reports a score. `Sandbox` is a
fork server (the *zygote*: a process that imported the task's `serve` function and the modules
candidates may use once, and never loads the task's data); `Sandbox.start(source)` forks a
fresh child that walls itself in (isolation.py: namespaces, a read-only view of the system and
packages, private /tmp and /dev/shm, no network, no privileges, a system-call filter, rlimits),
executes the candidate, and then answers requests: each request is data sent by the trusted
side, each answer is `serve(candidate_module, request)`, data again (wire.py). What the answers
mean, and every score, is decided by the trusted side (judge.py) from that data alone.

An evaluation that goes wrong ends with one kind: syntax, lint, static, timeout, memory, crash,
output_limit, forbidden, exception, invalid, duplicate, task_error. Those the child reports
about itself (`CHILD_KINDS`) are believed only as failures: it can make itself fail, never pass.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path

from garagelab.evolve import isolation, wire

FAILURE_KINDS = (
    "syntax",
    "lint",
    "static",
    "timeout",
    "memory",
    "crash",
    "output_limit",
    "forbidden",
    "exception",
    "invalid",
    "duplicate",
    "task_error",
)
# what a candidate's process may say about its own failure (anything else it says is `exception`)
CHILD_KINDS = ("exception", "forbidden", "memory", "output_limit", "invalid", "compile")
SCRUBBED_ENV = {  # all a candidate sees of the environment: no keys, one thread per library
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}
# imported lazily by legitimate code (a non-ASCII identifier normalises through unicodedata)
BASE_PRELOAD = ("unicodedata", "encodings.idna")
ZYGOTE_START_S = 120.0  # importing `serve` and the candidates' modules (JAX is slow on 2 cores)
GRACE_S = 30.0  # beyond the wall-clock limit before a silent zygote is given up
MAX_SOURCE = 256 * 1024
MAX_REQUEST = 256 << 20
SANDBOX_BROKEN = 70  # the child's exit code when its walls could not be built (EX_SOFTWARE)


@dataclass(frozen=True)
class Limits:
    """What one evaluation may use: the candidate's process (wall_s ... result_kb) and the
    trusted side's scoring of what it handed over (judge_s)."""

    wall_s: float = 10.0
    cpu_s: float = 20.0
    memory_mb: int = 2048  # address space; 0 disables (JAX reserves large virtual ranges)
    file_mb: int = 16  # per file written, and the size of the private /tmp and /dev/shm
    processes: int = 256
    open_files: int = 256
    result_kb: int = 1024  # per answer the candidate sends
    judge_s: float = 60.0
    # a private PID namespace: off for GPU work, the CUDA driver fails in one (error 304,
    # "operation not supported on this OS"); the other walls stay
    pid_namespace: bool = True
    # a filesystem of its own (isolation.build_root); off for GPU work, which needs the host's
    # device files: then root's `nobody` (or a user's own files, without root) is the wall there
    filesystem: bool = True
    # `cpus` of the CPUs the sandbox inherited (0: all of them), the same ones for every sandbox
    # one process starts (_runner._set_limits says why); the system-call filter
    # refuses sched_setaffinity, so a candidate timed against a one-thread baseline cannot take
    # more cores than it was given, whatever thread count it asks its OpenMP for
    cpus: int = 0


@dataclass(frozen=True)
class Outcome:
    """What one evaluation produced."""

    score: float | None
    metrics: dict = field(default_factory=dict)
    failure: str = ""
    message: str = ""
    seconds: float = 0.0
    max_rss_kb: int = 0
    fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return not self.failure and self.score is not None


class CandidateFailed(Exception):
    """The candidate cannot answer: it failed (its own report, or how its process ended), or it
    broke the protocol. `kind` is one of FAILURE_KINDS."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Ending:
    """How a candidate's process ended."""

    status: int
    timed_out: bool
    seconds: float
    max_rss_kb: int
    stderr: str
    walled: bool  # the walls were up before the candidate ran


class Candidate:
    """A running candidate, seen from the trusted side: send it requests, read its answers."""

    def __init__(self, sandbox: Sandbox, channel: socket.socket, limits: Limits, workdir: Path) -> None:
        self._sandbox = sandbox
        self._channel = channel
        self.limits = limits
        self._workdir = workdir
        self._deadline = time.monotonic() + limits.wall_s + 1.0  # the zygote kills it at wall_s
        self.ending: Ending | None = None

    def call(self, request: dict, fds: tuple[int, ...] = ()) -> dict:
        """The candidate's answer to `request` (a decoded value, unchecked beyond the wire
        format: the caller validates what it expects). CandidateFailed when there is none.
        `fds` are shared with the candidate's process (its `serve` finds them in request["fds"])."""
        try:
            wire.send(self._channel, request, self._deadline, fds)
            answer = wire.receive(self._channel, self.limits.result_kb * 1024, self._deadline)
        except wire.WireError as exc:
            self.stop()
            raise CandidateFailed(exc.kind, f"the candidate's answer: {exc}") from None
        except (EOFError, TimeoutError, OSError):
            raise self._ended() from None
        if isinstance(answer, dict) and "failure" in answer and set(answer) <= {"failure", "message"}:
            kind = answer["failure"] if answer["failure"] in CHILD_KINDS else "exception"
            raise CandidateFailed(kind, str(answer.get("message", ""))[:2000])
        if not isinstance(answer, dict) or set(answer) != {"answer"}:
            self.stop()
            raise CandidateFailed("invalid", "the candidate's process sent something other than an answer")
        return answer["answer"]

    def _ended(self) -> CandidateFailed:
        """The failure that explains a candidate that stopped answering."""
        ending = self.stop(grace_s=1.0)
        if ending.timed_out:
            return CandidateFailed("timeout", f"killed after {self.limits.wall_s:g} s wall-clock")
        number = _signal_of(ending.status)
        if number == signal.SIGXCPU:
            return CandidateFailed("timeout", f"killed after {self.limits.cpu_s:g} CPU seconds")
        if number == signal.SIGXFSZ:
            return CandidateFailed("output_limit", "wrote more than its file size limit")
        if number:
            return CandidateFailed("crash", f"killed by signal {_signal_name(number)}")
        code = os.WEXITSTATUS(ending.status) if os.WIFEXITED(ending.status) else -1
        if code == SANDBOX_BROKEN and not ending.walled:
            return CandidateFailed("task_error", f"the sandbox could not be built: {ending.stderr[-600:]}")
        if "MemoryError" in ending.stderr:
            return CandidateFailed("memory", "MemoryError: the candidate exceeded its memory limit")
        tail = f": {ending.stderr[-300:]}" if ending.stderr else ""
        return CandidateFailed("crash", f"exited with code {code} before answering{tail}")

    def stop(self, grace_s: float = 0.0) -> Ending:
        """End the candidate's process (if it still runs after `grace_s`) and say how it ended."""
        if self.ending is None:
            with contextlib.suppress(OSError):
                self._channel.close()
            self.ending = self._sandbox.finish(self._workdir, grace_s)
        return self.ending

    def __enter__(self) -> Candidate:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)


class Sandbox:
    """The fork server for one task's candidates: started once, a child per candidate.

    `serve` ("module:function") answers requests in the child: serve(candidate_module,
    request) -> answer. It is imported in the zygote with `preload` (what candidates may
    import); a module-level `warm_up()` in serve's module, if any, runs there once (tracing
    caches the children inherit). `module_globals` are defined in each candidate's module
    before its code runs. `environment` is added to the scrubbed environment. `view` adds
    read-only paths to the candidate's filesystem."""

    def __init__(
        self,
        serve: str,
        preload: tuple[str, ...] = (),
        module_globals: dict | None = None,
        environment: dict | None = None,
        view: tuple[str, ...] = (),
    ) -> None:
        self.mode = isolation.require()
        self.view = isolation.default_view(view)
        env = {**SCRUBBED_ENV, **(environment or {})}  # read at import by some libraries (Triton)
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in sys.path if p)
        self._environment = environment or {}
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._control = ours
        self.process = subprocess.Popen(
            [sys.executable, "-m", "garagelab.evolve._runner"],
            stdin=theirs,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=tempfile.gettempdir(),
            start_new_session=True,
        )
        theirs.close()  # its CPUs are its parent's: a pinned judge process pins its sandbox
        setup = {
            "serve": serve,
            "preload": [*BASE_PRELOAD, *preload],
            "globals": module_globals or {},
            "mode": self.mode,
            "view": list(self.view.read_only),
        }
        self._lock = threading.Lock()
        self.ready = self._exchange(setup, ZYGOTE_START_S)
        _ALL.add(self)

    def _send(self, message: dict, fds: tuple[int, ...] = ()) -> None:
        data = json.dumps(message).encode()
        socket.send_fds(self._control, [data], list(fds)) if fds else self._control.send(data)

    def _receive(self, timeout_s: float) -> tuple[dict, list[int]]:
        self._control.settimeout(timeout_s)
        data, fds, _, _ = socket.recv_fds(self._control, 1 << 16, 1)
        if not data:
            raise EOFError("the zygote closed its socket")
        return json.loads(data), fds

    def _exchange(self, message: dict, timeout_s: float) -> dict:
        try:
            self._send(message)
            return self._receive(timeout_s)[0]
        except (OSError, EOFError, ValueError):
            self.close()
            return {"failure": "task_error", "message": "the sandbox's fork server stopped answering"}

    def start(self, source: str, limits: Limits) -> Candidate:
        """A fresh child for `source`, walled in and ready for requests. CandidateFailed when
        the sandbox itself cannot start one (`task_error`)."""
        if "failure" in self.ready:
            raise CandidateFailed(self.ready["failure"], self.ready["message"])
        if len(source) > MAX_SOURCE:
            raise CandidateFailed("invalid", f"the program is {len(source):,} characters; at most {MAX_SOURCE:,}")
        self._lock.acquire()  # one candidate at a time per zygote; released by finish()
        workdir = Path(tempfile.mkdtemp(prefix="garagelab-eval-"))
        home = "/tmp" if limits.filesystem and self.mode != "none" else str(workdir)
        if home == str(workdir) and self.mode == "root":  # the candidate, as nobody, writes there
            nobody = pwd.getpwnam("nobody")
            os.chown(workdir, nobody.pw_uid, nobody.pw_gid)
        job = {
            "source": source,
            "limits": asdict(limits),
            "workdir": str(workdir),
            "env": {**SCRUBBED_ENV, **self._environment, "HOME": home, "TMPDIR": home},
            "tmp_mb": limits.file_mb,
        }
        try:
            self._send(job)
            reply, fds = self._receive(ZYGOTE_START_S)
        except (OSError, EOFError, ValueError) as exc:
            self.close()
            self._lock.release()
            shutil.rmtree(workdir, ignore_errors=True)
            raise CandidateFailed("task_error", f"the sandbox could not start the candidate ({exc})") from None
        if not fds:
            self._lock.release()
            shutil.rmtree(workdir, ignore_errors=True)
            raise CandidateFailed("task_error", str(reply.get("message", "the sandbox could not start the candidate")))
        return Candidate(self, socket.socket(fileno=fds[0]), limits, workdir)

    def finish(self, workdir: Path, grace_s: float = 0.0) -> Ending:
        """Kill the current child (after `grace_s`; a no-op if it has ended) and collect how it ended."""
        try:
            self._send({"stop": True, "grace_s": grace_s})
            while True:
                reply, _ = self._receive(GRACE_S + 600.0)
                if "status" in reply:
                    break
        except (OSError, EOFError, ValueError):
            self.close()
            reply = {"status": 9, "timed_out": False, "seconds": 0.0, "max_rss_kb": 0}
        finally:
            self._lock.release()
        walled = (workdir / "walled").is_file() and (workdir / "walled").read_bytes() == b"1"
        status, timed_out, seconds, rss = reply["status"], reply["timed_out"], reply["seconds"], reply["max_rss_kb"]
        return Ending(status, timed_out, seconds, rss, _tail(workdir), walled)

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(OSError):
            self._control.close()

    def __del__(self) -> None:
        self.close()


_ALL: weakref.WeakSet[Sandbox] = weakref.WeakSet()


def resolve(spec: str):
    """The object a "module:name" spec names (a task's serve, judge or checks)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@atexit.register
def close_all() -> None:
    """Stop every fork server this process started."""
    for sandbox in list(_ALL):
        sandbox.close()


def _signal_of(status: int) -> int:
    """The signal that ended the candidate: directly, or relayed by the namespace's first
    process as exit code 128 + signal."""
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status)
    code = os.WEXITSTATUS(status)
    return code - 128 if 128 < code < 128 + 65 else 0


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _tail(workdir: Path, size: int = 2000) -> str:
    path = workdir / "stderr.txt"
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""
