"""The zygote (fork server) of a sandbox; run by `sandbox.Sandbox`, never given a task's data.

Control protocol on fd 0, a SOCK_SEQPACKET socket, one JSON message each: the setup (serve
function, modules to preload, the candidate module's globals, the isolation mode and view),
answered {"ready": true} or a task_error; then per job: the job (source, limits, working
directory, environment), answered {"started": pid} with the trusted side's end of a fresh
socket to the child attached (SCM_RIGHTS); later {"status": ...} when the child has ended (or
was stopped: a {"stop": true} message kills it at once).

The child walls itself in before the candidate's first line runs: its own session, rlimits,
namespaces and filesystem (isolation.py), then, as the namespace's first process's child, no
privileges and the system-call filter. It executes the candidate and answers each request on
its socket with serve(module, request), or with its failure. Only the child runs candidate
code; nothing it computes is trusted.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import linecache
import math
import os
import resource
import select
import signal
import socket
import sys
import time
import traceback
import types

from garagelab.evolve import isolation, wire
from garagelab.evolve.isolation import View
from garagelab.evolve.sandbox import MAX_REQUEST, SANDBOX_BROKEN, Limits, resolve

# the sandbox said no: not permitted, access denied, read-only, no network, no address, no process
_DENIED = (
    errno.EPERM,
    errno.EACCES,
    errno.EROFS,
    errno.ENETUNREACH,
    errno.EADDRNOTAVAIL,
    errno.EAFNOSUPPORT,
    errno.EAGAIN,
)
CHANNEL_FD = 3


def _relay(pid: int) -> int:
    """Wait for `pid`; the exit code that tells the parent how it ended (128 + signal)."""
    _, status = os.waitpid(pid, 0)
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _set_limits(limits: Limits, anchor: int) -> None:
    """The rlimits, and the CPUs: chosen by `anchor`, the process that started the sandboxes
    (a judge), so that the processes it times against each other (a candidate and its eager
    baseline, from two sandboxes) share a CPU: a load elsewhere on the machine slows both alike
    (on two CPUs picked apart, a busy one under the baseline inflated a candidate's speed-up),
    while the judges of a pool spread over the CPUs."""
    cpu = max(1, int(limits.cpu_s))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if limits.memory_mb:
        size = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files,) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.cpus:
        inherited = sorted(os.sched_getaffinity(0))
        first = anchor % len(inherited)
        os.sched_setaffinity(0, (inherited * 2)[first : first + min(limits.cpus, len(inherited))])


def _child(job: dict, setup: dict, serve, channel: int) -> None:
    """In the forked child: its own files, environment and limits, the walls, then the candidate."""
    workdir = job["workdir"]
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(os.path.join(workdir, "stdout.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    err = os.open(os.path.join(workdir, "stderr.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    for source, target in ((null, 0), (out, 1), (err, 2), (channel, CHANNEL_FD)):
        os.dup2(source, target)
        os.close(source)
    os.closerange(CHANNEL_FD + 1, 65536)  # the zygote's control socket and anything else it held
    # written once the walls are up, closed before the candidate runs: it cannot fake a broken sandbox
    walled = os.open(os.path.join(workdir, "walled"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.environ.clear()
    os.environ.update(job["env"])
    limits = Limits(**job["limits"])
    _set_limits(limits, setup["anchor"])
    mode = setup["mode"]
    if mode != "none":
        isolation.enter_namespaces(mode, limits.pid_namespace)
        if limits.pid_namespace:
            # this process stays outside; its child is the new PID namespace's first process and
            # only relays; the grandchild runs the candidate. When the first process ends (or
            # is killed with this one), the kernel kills everything the candidate left behind.
            first = os.fork()
            if first:
                os.close(CHANNEL_FD)
                os.close(walled)
                os._exit(_relay(first))
            isolation.die_with_parent()
        if limits.filesystem:
            isolation.build_root(View(tuple(setup["view"]), job["tmp_mb"]), workdir, with_proc=limits.pid_namespace)
        if limits.pid_namespace:
            candidate = os.fork()
            if candidate:
                os.close(CHANNEL_FD)
                os.close(walled)
                os._exit(_relay(candidate))
        os.chdir("/tmp" if limits.filesystem else workdir)
        isolation.drop_privileges(mode)
        isolation.install_filter()
    else:
        os.chdir(workdir)
    os.write(walled, b"1")
    os.close(walled)
    _run_candidate(job["source"], setup.get("globals", {}), serve)


def _failure(exc: BaseException) -> dict:
    """A candidate's exception as a failure report (believed only as a failure)."""
    if isinstance(exc, MemoryError):
        return {"failure": "memory", "message": "MemoryError: the candidate exceeded its memory limit"}
    if isinstance(exc, PermissionError | ConnectionError):
        return {"failure": "forbidden", "message": f"{type(exc).__name__}: {exc}"}
    if isinstance(exc, OSError):
        kind = {errno.EFBIG: "output_limit"}.get(exc.errno, "forbidden" if exc.errno in _DENIED else "exception")
        return {"failure": kind, "message": f"{type(exc).__name__}: {exc}"}
    kind = getattr(exc, "failure_kind", "")  # a task's own error type may name its kind (kernels: compile)
    if isinstance(kind, str) and kind:
        return {"failure": kind, "message": str(exc)[-2000:]}
    return {"failure": "exception", "message": "".join(traceback.format_exception(exc)[-3:])[-800:]}


def _run_candidate(source: str, module_globals: dict, serve) -> None:
    """Execute the candidate, then answer requests until the trusted side hangs up."""
    channel = socket.socket(fileno=CHANNEL_FD)
    program = types.ModuleType("candidate")
    program.__dict__.update(module_globals)
    # the source where `inspect` finds it: tracebacks show candidate lines, and @triton.jit reads it
    linecache.cache["candidate.py"] = (len(source), None, source.splitlines(True), "candidate.py")
    broken = None
    try:
        exec(compile(source, "candidate.py", "exec"), program.__dict__)
    except BaseException as exc:  # the candidate's own failure, whatever it raised
        broken = _failure(exc)
    while True:
        try:
            request, fds = wire.receive_with_fds(channel, MAX_REQUEST, math.inf)
        except (EOFError, OSError, wire.WireError):
            os._exit(0)
        if fds and isinstance(request, dict):
            request["fds"] = fds  # memory the trusted side shares (kernels: sealed inputs, an output)
        answer = broken
        if answer is None:
            try:
                answer = {"answer": serve(program, request)}
            except BaseException as exc:
                answer = _failure(exc)
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        try:
            wire.send(channel, answer, math.inf)
        except wire.WireError as exc:
            wire.send(channel, {"failure": "invalid", "message": f"the answer cannot be sent: {exc}"}, math.inf)


def supervise(control: socket.socket, pid: int, limits: Limits, start: float) -> dict:
    """Wait for the child until it ends, the deadline, or a stop message (after its grace: a
    child that hung up is let finish exiting, so that its status says how it ended); kill its
    group."""
    deadline, timed_out, stop_at = start + limits.wall_s, False, math.inf
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        now = time.monotonic()
        if now >= stop_at:
            break
        if now > deadline:
            timed_out = True
            break
        if select.select([control], [], [], 0.005)[0]:
            message = control.recv(1 << 16)
            if not message:
                break
            request = json.loads(message)
            if request.get("stop"):
                stop_at = min(stop_at, now + float(request.get("grace_s", 0.0)))
    if not done:
        _kill_group(pid)
        _, status, usage = os.wait4(pid, 0)
    _kill_group(pid)  # anything the candidate left in its group
    return {
        "status": status,
        "timed_out": timed_out,
        "max_rss_kb": int(usage.ru_maxrss),
        "seconds": time.monotonic() - start,
    }


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def main() -> None:
    control = socket.socket(fileno=0)
    setup = json.loads(control.recv(1 << 20))
    setup["anchor"] = os.getppid()  # the judge (or engine) that started this sandbox
    try:
        serve = resolve(setup["serve"])
        for name in setup.get("preload", ()):  # what candidates may import, loaded while readable
            importlib.import_module(name)
        warm_up = getattr(sys.modules[serve.__module__], "warm_up", None)
        if callable(warm_up):
            warm_up()
    except Exception as exc:  # the task, not a candidate, is broken
        control.send(json.dumps({"failure": "task_error", "message": f"cannot load {setup['serve']}: {exc}"}).encode())
        return
    control.send(b'{"ready": true}')
    while True:
        message = control.recv(1 << 20)
        if not message:
            return
        job = json.loads(message)
        if "source" not in job:  # a stop for a child that had already ended
            continue
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        start = time.monotonic()
        try:
            pid = os.fork()
        except OSError as exc:
            control.send(json.dumps({"failure": "task_error", "message": f"cannot fork: {exc}"}).encode())
            ours.close()
            theirs.close()
            continue
        if pid == 0:
            try:
                ours.close()
                _child(job, setup, serve, theirs.detach())
            except BaseException:  # the walls could not be built: the sandbox's fault, not the candidate's
                with contextlib.suppress(BaseException):
                    os.write(2, f"sandbox: {traceback.format_exc()[-1500:]}".encode())
            finally:
                os._exit(SANDBOX_BROKEN)
        ours_fd = ours.detach()
        socket.send_fds(control, [json.dumps({"started": pid}).encode()], [ours_fd])
        os.close(ours_fd)
        theirs.close()
        control.send(json.dumps(supervise(control, pid, Limits(**job["limits"]), start)).encode())


if __name__ == "__main__":
    sys.exit(main())
