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
import contextlib
import ctypes
import json
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

FAILURE_KINDS = (
    "syntax",
    "lint",
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
        "super",
        "type",
    }
)
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


def lint(source: str, allowed_imports: tuple[str, ...]) -> list[str]:
    """Why the candidate may not run (empty if it may)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"syntax error at line {exc.lineno}: {exc.msg}"]
    problems = []

    def allowed(module: str) -> bool:
        return any(module == name or module.startswith(name + ".") for name in allowed_imports)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"line {node.lineno}: import of {a.name}" for a in node.names if not allowed(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level or not allowed(node.module or ""):
                problems.append(f"line {node.lineno}: import from {node.module or '.'}")
        elif isinstance(node, ast.Name) and (node.id in FORBIDDEN_CALLS or _dunder(node.id)):
            problems.append(f"line {node.lineno}: use of {node.id}")
        elif isinstance(node, ast.Attribute) and _dunder(node.attr):
            problems.append(f"line {node.lineno}: attribute {node.attr}")
        elif isinstance(node, ast.Global | ast.Nonlocal):
            problems.append(f"line {node.lineno}: {type(node).__name__.lower()} statement")
    return problems


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def isolate(limits: Limits, private_namespaces: bool) -> bool:
    """Runs first in the child, before the task or the candidate: the resource limits and,
    when root, private network and PID namespaces (no network at all; and when the namespace's
    first process ends, the kernel kills every process left in it, even one that left the
    process group). Returns whether the namespaces were made."""
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
    return libc.unshare(CLONE_NEWNET | CLONE_NEWPID) == 0  # best effort: the lint still forbids sockets


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
) -> Outcome:
    """Run `evaluator` ("module:function") on the candidate `source` in a sandbox."""
    if check_lint:
        problems = lint(source, allowed_imports)
        if problems:
            kind = "syntax" if problems[0].startswith("syntax") else "lint"
            return Outcome(None, failure=kind, message="; ".join(problems[:5]))
    else:
        try:
            ast.parse(source)
        except SyntaxError as exc:
            return Outcome(None, failure="syntax", message=f"line {exc.lineno}: {exc.msg}")
    workdir = Path(tempfile.mkdtemp(prefix="garagelab-eval-"))
    drop_to = _unprivileged()
    if drop_to is not None:
        os.chown(workdir, *drop_to)
    read_end, write_end = os.pipe()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    job = json.dumps(
        {
            "source": source,
            "evaluator": evaluator,
            "result_fd": write_end,
            "fingerprints": sorted(fingerprints),
            "limits": asdict(limits),
            "drop_to": drop_to,
            "preload": list(allowed_imports),
        }
    )
    start = time.monotonic()
    with (workdir / "stdout.txt").open("wb") as out, (workdir / "stderr.txt").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "garagelab.evolve._runner"],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            cwd=workdir,
            env=env,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    os.close(write_end)
    reader = _PipeReader(read_end, limits.result_kb * 1024)
    try:
        process.stdin.write(job.encode())
        process.stdin.close()
    except BrokenPipeError:
        pass
    status, usage, timed_out = _wait(process.pid, start + limits.wall_s)
    seconds = time.monotonic() - start
    raw = reader.result()
    stderr = _tail(workdir / "stderr.txt")
    shutil.rmtree(workdir, ignore_errors=True)
    rss = int(usage.ru_maxrss) if usage is not None else 0
    if timed_out:
        return Outcome(
            None,
            failure="timeout",
            message=f"killed after {limits.wall_s:g} s wall-clock",
            seconds=seconds,
            max_rss_kb=rss,
        )
    result = None
    if raw:
        try:
            result = json.loads(raw)
        except json.JSONDecodeError:
            result = None
    if result is None:
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


def _wait(pid: int, deadline: float):
    """(status, rusage, timed out): waits for the child, killing its whole group at the deadline."""
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            _kill_group(pid)  # anything it left behind in its group
            return status, usage, False
        if time.monotonic() > deadline:
            _kill_group(pid)
            _, status, usage = os.wait4(pid, 0)
            return status, usage, True
        time.sleep(0.005)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class _PipeReader:
    """Drains the result pipe in a thread (a result over the pipe buffer must not block the
    child), keeping at most `limit` bytes."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd = fd
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        try:
            while chunk := os.read(self.fd, 65536):
                if self.size < self.limit:
                    self.chunks.append(chunk)
                self.size += len(chunk)
        finally:
            os.close(self.fd)

    def result(self) -> bytes:
        self.thread.join(timeout=5)
        return b"".join(self.chunks)[: self.limit] if self.size <= self.limit else b""


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""
