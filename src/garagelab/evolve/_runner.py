"""The child side of a sandboxed evaluation (run by `sandbox.evaluate`, never imported).

Reads its job as JSON from stdin, runs the candidate's source as a fresh module, calls the
task's evaluator on it, and writes the result as JSON to the file descriptor the parent
passed. Everything the candidate does happens in this process, under the parent's limits.
"""

from __future__ import annotations

import errno
import importlib
import json
import math
import os
import sys
import traceback
import types

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


def main() -> None:
    job = json.loads(sys.stdin.read())
    fd = int(job["result_fd"])
    from garagelab.evolve.sandbox import Limits, die_with_parent, drop_privileges, isolate

    drop_to = tuple(job["drop_to"]) if job.get("drop_to") else None
    namespaced = isolate(Limits(**job["limits"]), private_namespaces=drop_to is not None)
    module_name, function_name = job["evaluator"].split(":")
    try:
        evaluator = getattr(importlib.import_module(module_name), function_name)
        for name in job.get("preload", ()):  # what the candidate may import, loaded while readable
            importlib.import_module(name)
    except Exception as exc:  # the task, not the candidate, is broken
        _write(fd, {"failure": "task_error", "message": f"cannot load evaluator {job['evaluator']}: {exc}"})
        return
    if namespaced:
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
        tail = traceback.format_exception(exc)[-3:]
        report({"failure": "exception", "message": "".join(tail)[-800:]})
        return
    if not isinstance(result, dict):
        report({"failure": "task_error", "message": f"the evaluator returned {type(result).__name__}, not a dict"})
        return
    report({key: _jsonable(value) for key, value in result.items()})


if __name__ == "__main__":
    main()
