"""Sandboxed evaluation: every candidate in its own process, so nothing it does costs the run.

Two layers:
1. A static lint before anything runs: imports only from the task's allow-list; no `open`,
   `exec`, `eval`, `compile`, `__import__`, `getattr`-family, `globals`, `exit`...; no dunder
   names or attributes (the usual ways out of a restricted namespace).
2. The process: its own session and process group (killed as a whole on the wall-clock
   timeout), rlimits on CPU seconds, address space, file size, open files and processes, a
   scrubbed environment (no API keys: only PATH, HOME and locale), a fresh temporary working
   directory, and, when running as root, a private network namespace (no network at all) and
   the unprivileged `nobody` user (it cannot write outside its directory).

A hang, a crash, a fork bomb or a memory bomb ends as one failed evaluation with its kind:
syntax, lint, timeout, memory, crash, output_limit, forbidden, exception, invalid, duplicate.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import ctypes
import importlib
import json
import os
import pwd
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
FORBIDDEN_CALLS = frozenset(
    {
        "open",
        "exec",
        "eval",
        "compile",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "exit",
        "quit",
        "help",
        "memoryview",
        "classmethod",
        "staticmethod",
        "type",
    }
)
_SCRUBBED_ENV = {  # all a candidate sees of the environment: no keys, one thread per library
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}
ZYGOTE_START_S = 120.0  # importing the evaluator and its modules (JAX is slow on 2 cores)
ZYGOTE_GRACE_S = 30.0  # beyond the wall-clock limit before the zygote itself is given up
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Limits:
    """What one evaluation may use."""

    wall_s: float = 10.0
    cpu_s: float = 20.0
    memory_mb: int = 2048  # address space; 0 disables (JAX reserves large virtual ranges)
    file_mb: int = 16
    processes: int = 256
    open_files: int = 256
    result_kb: int = 1024
    # as root, a private PID namespace besides the network one and `nobody`: off for GPU work,
    # the CUDA driver fails in one (error 304, "operation not supported on this OS")
    pid_namespace: bool = True


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


def lint(source: str, allowed_imports: tuple[str, ...], forbidden: tuple[str, ...] = ()) -> list[str]:
    """Why the candidate may not run (empty if it may). `forbidden`: names and attributes the
    task rules out on top of the usual ones (e.g. `random` where results must be deterministic)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"syntax error at line {exc.lineno}: {exc.msg}"]
    problems = []
    banned = set(forbidden)

    def allowed(module: str) -> bool:
        return any(module == name or module.startswith(name + ".") for name in allowed_imports)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"line {node.lineno}: import of {a.name}" for a in node.names if not allowed(a.name)]
            problems += [f"line {node.lineno}: use of {a.name}" for a in node.names if set(a.name.split(".")) & banned]
        elif isinstance(node, ast.ImportFrom):
            if node.level or not allowed(node.module or ""):
                problems.append(f"line {node.lineno}: import from {node.module or '.'}")
            problems += [f"line {node.lineno}: use of {a.name}" for a in node.names if a.name in banned]
        elif isinstance(node, ast.Name | ast.Attribute) and getattr(node, "id", getattr(node, "attr", "")) in banned:
            problems.append(f"line {node.lineno}: use of {getattr(node, 'id', getattr(node, 'attr', ''))}")
        elif isinstance(node, ast.Name) and (node.id in FORBIDDEN_CALLS or _dunder(node.id)):
            problems.append(f"line {node.lineno}: use of {node.id}")
        elif isinstance(node, ast.Attribute) and _dunder(node.attr):
            problems.append(f"line {node.lineno}: attribute {node.attr}")
        elif isinstance(node, ast.Global | ast.Nonlocal):
            problems.append(f"line {node.lineno}: {type(node).__name__.lower()} statement")
    return problems


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and name != "__init__"  # super().__init__() is fine


def _function(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def isolate(limits: Limits, private_namespaces: bool) -> bool:
    """Runs first in the child, before the task or the candidate: the resource limits and,
    when root, private network and (unless `limits.pid_namespace` is off) PID namespaces (no
    network at all; and when the namespace's first process ends, the kernel kills every process
    left in it, even one that left the process group). Returns whether the namespaces were made."""
    cpu = max(1, int(limits.cpu_s))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if limits.memory_mb:
        size = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files,) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if not private_namespaces:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    flags = CLONE_NEWNET | (CLONE_NEWPID if limits.pid_namespace else 0)
    return libc.unshare(flags) == 0  # best effort: the lint still forbids sockets


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (the sandbox killing the runner's group then
    also ends the PID namespace this process is the first of)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def drop_privileges(drop_to: tuple[int, int] | None) -> None:
    """Become `nobody` (after the task's modules are loaded: the interpreter may live where
    nobody cannot read)."""
    if drop_to is not None:
        os.setgroups([])
        os.setgid(drop_to[1])
        os.setuid(drop_to[0])


def _unprivileged() -> tuple[int, int] | None:
    """(uid, gid) of `nobody` when we are root (and may switch to it), else None."""
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return user.pw_uid, user.pw_gid


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


def _classify_signal(number: int) -> str:
    if number == signal.SIGXCPU:
        return "timeout"
    if number == signal.SIGXFSZ:
        return "output_limit"
    return "crash"


def evaluate(
    source: str,
    evaluator: str,
    limits: Limits = Limits(),
    allowed_imports: tuple[str, ...] = ("math", "numpy"),
    check_lint: bool = True,
    fingerprints: frozenset[str] = frozenset(),
    forbidden: tuple[str, ...] = (),
    context: dict | None = None,
    module_globals: dict | None = None,
    checks: str = "",
    environment: dict | None = None,
) -> Outcome:
    """Run `evaluator` ("module:function") on the candidate `source` in a sandbox. With a
    `context`, the evaluator is a factory: `module.function(**context)` is called once in the
    zygote (data loaded there, before any candidate runs) and returns the evaluating function.
    `module_globals` are defined in the candidate's module before its code runs. `checks`
    ("module:function", source -> list of problems) are the task's own static rules, applied
    after the lint and, like it, before anything runs. `environment` adds variables to the
    scrubbed environment of the zygote and the candidate (kernels: TRITON_INTERPRET=1 with no GPU)."""
    if check_lint:
        problems = lint(source, allowed_imports, forbidden)
        if problems:
            kind = "syntax" if problems[0].startswith("syntax") else "lint"
            return Outcome(None, failure=kind, message="; ".join(problems[:5]))
        if checks and (problems := _function(checks)(source)):
            return Outcome(None, failure="static", message="; ".join(problems[:5]))
    else:
        try:
            ast.parse(source)
        except SyntaxError as exc:
            return Outcome(None, failure="syntax", message=f"line {exc.lineno}: {exc.msg}")
    workdir = Path(tempfile.mkdtemp(prefix="garagelab-eval-"))
    drop_to = _unprivileged()
    if drop_to is not None:
        os.chown(workdir, *drop_to)
    job = {
        "source": source,
        "fingerprints": sorted(fingerprints),
        "limits": asdict(limits),
        "drop_to": drop_to,
        "workdir": str(workdir),
        "env": {**_SCRUBBED_ENV, **(environment or {}), "HOME": str(workdir), "TMPDIR": str(workdir)},
    }
    try:
        setup = {"evaluator": evaluator, "preload": list(allowed_imports), "context": context or {},
                 "globals": module_globals or {}, "environment": environment or {}}  # fmt: skip
        reply = _zygote(setup).run(job, limits.wall_s + ZYGOTE_GRACE_S)
        stderr = _tail(workdir / "stderr.txt")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _outcome(reply, limits, stderr)


def _outcome(reply: dict, limits: Limits, stderr: str) -> Outcome:
    """What the zygote reported, as an Outcome."""
    seconds, rss = float(reply.get("seconds", 0.0)), int(reply.get("max_rss_kb", 0))
    if "failure" in reply:  # the evaluator could not be loaded, or the zygote itself failed
        return Outcome(None, failure=reply["failure"], message=reply["message"], seconds=seconds, max_rss_kb=rss)
    if reply["timed_out"]:
        return Outcome(
            None,
            failure="timeout",
            message=f"killed after {limits.wall_s:g} s wall-clock",
            seconds=seconds,
            max_rss_kb=rss,
        )
    result = None
    if reply.get("result"):
        try:
            result = json.loads(reply["result"])
        except json.JSONDecodeError:
            result = None
    status = int(reply["status"])
    if not isinstance(result, dict):
        number = _signal_of(status)
        if number:
            kind = _classify_signal(number)
            message = f"killed by signal {_signal_name(number)}"
        else:
            code = os.WEXITSTATUS(status)
            kind = "memory" if "MemoryError" in stderr else "crash"
            message = f"exited with code {code} and no result" + (f": {stderr[-300:]}" if stderr else "")
        return Outcome(None, failure=kind, message=message, seconds=seconds, max_rss_kb=rss)
    failure = str(result.pop("failure", "") or "")
    score = result.pop("score", None)
    if not failure and (score is None or not isinstance(score, int | float)):
        failure, result["message"] = "invalid", "the evaluator gave no finite score"
    return Outcome(
        score=float(score) if score is not None and not failure else None,
        metrics=result.pop("metrics", {}) or {},
        failure=failure,
        message=str(result.pop("message", ""))[:1000],
        seconds=seconds,
        max_rss_kb=rss,
        fingerprint=str(result.pop("fingerprint", "") or ""),
    )


class Zygote:
    """A fork server: a process that has imported the evaluator and the modules candidates may
    use once, and forks a fresh child per candidate. An evaluation then costs a fork instead of
    an interpreter start and the imports (numpy alone takes ~0.1 s, JAX over a second). The
    zygote supervises each child (wall clock, whole-group kill, rusage) and reports one JSON
    line per job; candidates never run in it, so nothing they do can reach it."""

    def __init__(self, setup: dict, cpus: set[int] | None = None) -> None:
        env = {**_SCRUBBED_ENV, **setup.get("environment", {})}  # read at import by some libraries (Triton)
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in sys.path if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "garagelab.evolve._runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=tempfile.gettempdir(),
            start_new_session=True,
        )
        if cpus:  # before the setup line: nothing has started a thread pool yet
            os.sched_setaffinity(self.process.pid, cpus)
        self.ready = self._exchange(setup, ZYGOTE_START_S)

    def _exchange(self, message: dict, timeout_s: float) -> dict:
        """Send one JSON line, wait up to `timeout_s` for the one-line answer."""
        try:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return {"failure": "crash", "message": "the evaluation process died"}
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            self.close()
            return {
                "failure": "timeout" if not ready else "crash",
                "message": "the evaluation process stopped answering",
            }
        return json.loads(line)

    def run(self, job: dict, timeout_s: float) -> dict:
        if "failure" in self.ready:
            return self.ready
        return self._exchange(job, timeout_s)

    def __del__(self) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.process.poll() is None:
            _kill_group(self.process.pid)
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()


_ZYGOTES = threading.local()  # one per thread: each pool worker has its own, used one job at a time
_ALL_ZYGOTES: weakref.WeakSet[Zygote] = weakref.WeakSet()  # a zygote stops when its thread ends


def pin_zygotes(cpus: set[int] | None) -> None:
    """Run the zygotes this thread starts from now on, and so its candidates, on `cpus` only.

    JAX, XLA and torch size their thread pools by the CPUs a process may use, and their workers
    spin while they wait: two unpinned fly-set evaluations at once on 2 cores used 1.7 CPU
    seconds each for 1.15 s of wall time, and slowed each other to 1.7 s; pinned to a core
    each they take 1.55 s (+10 % evaluations per minute). A pool with a worker per CPU pins
    each worker to its own."""
    _ZYGOTES.cpus = cpus


def _zygote(setup: dict) -> Zygote:
    cache = _ZYGOTES.__dict__.setdefault("by_key", {})
    key = json.dumps(setup, sort_keys=True)
    zygote = cache.get(key)
    if zygote is None or not zygote.alive:
        if zygote is not None:
            zygote.close()
        zygote = cache[key] = Zygote(setup, getattr(_ZYGOTES, "cpus", None))
        _ALL_ZYGOTES.add(zygote)
    return zygote


@atexit.register
def close_zygotes() -> None:
    """Stop every zygote this process started."""
    for zygote in list(_ALL_ZYGOTES):
        zygote.close()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""
