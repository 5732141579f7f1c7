"""The zygote (fork server) side of a sandboxed evaluation; run by `sandbox.Zygote`.

Protocol, one JSON line each way on stdin/stdout: first the setup (evaluator, modules to
preload), answered with {"ready": true} or a task_error; then one line per job (source, limits,
working directory, environment), answered with how the child ended: exit status, timed out or
not, peak memory, seconds, and the raw result the child wrote to its pipe. Candidates run only
in forked children (their own session; as root also their own PID and network namespaces and
the unprivileged user `nobody`), never in the zygote.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import linecache
import math
import os
import select
import signal
import sys
import time
import traceback
import types

from garagelab.evolve.sandbox import Limits, die_with_parent, drop_privileges, isolate

# the sandbox said no: not permitted, access denied, no network, no address, process limit
_DENIED = (errno.EPERM, errno.EACCES, errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EAGAIN)


def _write(fd: int, result: dict) -> None:
    data = json.dumps(result, default=str).encode()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _relay(pid: int) -> int:
    """Wait for `pid`; the exit code that tells the parent how it ended (128 + signal)."""
    _, status = os.waitpid(pid, 0)
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _child(job: dict, evaluator, fd: int) -> None:
    """In the forked child: its own files, environment and limits, then the candidate."""
    workdir = job["workdir"]
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(os.path.join(workdir, "stdout.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    err = os.open(os.path.join(workdir, "stderr.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    for source, target in ((null, 0), (out, 1), (err, 2)):  # the zygote's pipes are out of reach
        os.dup2(source, target)
        os.close(source)
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update(job["env"])
    drop_to = tuple(job["drop_to"]) if job.get("drop_to") else None
    if drop_to is not None:
        os.chown(os.path.join(workdir, "stdout.txt"), *drop_to)
        os.chown(os.path.join(workdir, "stderr.txt"), *drop_to)
    if isolate(Limits(**job["limits"]), private_namespaces=drop_to is not None):
        # this process stays outside; its child is the first process of the new PID namespace
        # and only relays; the grandchild runs the candidate. When the first process ends (or
        # is killed with this one), the kernel kills everything the candidate left behind.
        child = os.fork()
        if child:
            os.close(fd)
            os._exit(_relay(child))
        die_with_parent()
        grandchild = os.fork()
        if grandchild:
            os.close(fd)
            os._exit(_relay(grandchild))
    drop_privileges(drop_to)
    _run_candidate(job, evaluator, fd)


def _run_candidate(job: dict, evaluator, fd: int) -> None:
    owner = os.getpid()

    def report(result: dict) -> None:
        if os.getpid() != owner:  # a process the candidate forked: only the original reports
            os._exit(1)
        _write(fd, result)

    program = types.ModuleType("candidate")
    program.__dict__.update(job.get("globals", {}))
    # the source where `inspect` finds it: tracebacks show candidate lines, and @triton.jit reads it
    linecache.cache["candidate.py"] = (len(job["source"]), None, job["source"].splitlines(True), "candidate.py")
    try:
        code = compile(job["source"], "candidate.py", "exec")
        exec(code, program.__dict__)
        result = evaluator(program, set(job.get("fingerprints", ())))
    except MemoryError:
        report({"failure": "memory", "message": "MemoryError: the candidate exceeded its memory limit"})
        return
    except (PermissionError, ConnectionError, ModuleNotFoundError) as exc:
        report({"failure": "forbidden", "message": f"{type(exc).__name__}: {exc}"})
        return
    except OSError as exc:
        kind = {errno.EFBIG: "output_limit"}.get(exc.errno, "forbidden" if exc.errno in _DENIED else "exception")
        report({"failure": kind, "message": f"{type(exc).__name__}: {exc}"})
        return
    except RecursionError as exc:
        report({"failure": "exception", "message": f"RecursionError: {exc}"})
        return
    except BaseException as exc:  # the candidate's own failure, whatever it raised
        kind = getattr(exc, "failure_kind", "")  # a task's own error type may name its kind (kernels: compile)
        if isinstance(kind, str) and kind:
            report({"failure": kind, "message": str(exc)[-2000:]})
            return
        tail = traceback.format_exception(exc)[-3:]
        report({"failure": "exception", "message": "".join(tail)[-800:]})
        return
    if not isinstance(result, dict):
        report({"failure": "task_error", "message": f"the evaluator returned {type(result).__name__}, not a dict"})
        return
    report({key: _jsonable(value) for key, value in result.items()})


def supervise(job: dict, evaluator) -> dict:
    """Fork a child for the job; collect its result, kill its group at the deadline."""
    limits = Limits(**job["limits"])
    read_fd, write_fd = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            _child(job, evaluator, write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks, size, limit = [], 0, limits.result_kb * 1024
    deadline, timed_out, open_ = start + limits.wall_s, False, True
    while True:
        if open_ and select.select([read_fd], [], [], 0.002)[0]:
            chunk = os.read(read_fd, 65536)
            open_ = bool(chunk)
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
        elif not open_:
            time.sleep(0.002)
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            _kill_group(pid)
            _, status, usage = os.wait4(pid, 0)
            timed_out = True
            break
    _kill_group(pid)  # anything the candidate left in its group
    while open_ and select.select([read_fd], [], [], 0.05)[0]:  # what was written just before the end
        chunk = os.read(read_fd, 65536)
        open_ = bool(chunk)
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    os.close(read_fd)
    result = b"".join(chunks).decode(errors="replace") if size <= limit else ""
    return {
        "status": status,
        "timed_out": timed_out,
        "max_rss_kb": int(usage.ru_maxrss),
        "seconds": time.monotonic() - start,
        "result": result,
    }


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _answer(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    setup = json.loads(sys.stdin.readline())
    module_name, function_name = setup["evaluator"].split(":")
    try:
        evaluator = getattr(importlib.import_module(module_name), function_name)
        if setup.get("context"):  # a factory: load the task's data once, here
            evaluator = evaluator(**setup["context"])
        for name in setup.get("preload", ()):  # what candidates may import, loaded while readable
            importlib.import_module(name)
    except Exception as exc:  # the task, not a candidate, is broken
        _answer({"failure": "task_error", "message": f"cannot load evaluator {setup['evaluator']}: {exc}"})
        return
    _answer({"ready": True})
    for line in sys.stdin:
        _answer(supervise({**json.loads(line), "globals": setup.get("globals", {})}, evaluator))


if __name__ == "__main__":
    main()
