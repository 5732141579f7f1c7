"""The sandbox's mechanics: every outcome kind, the lint by exact module and by reach, the
candidate's filesystem, the system-call filter, no process outliving its evaluation, pinning.

Hostile programs written to escape or to forge a score are in test_redteam.py (run as root and
as an unprivileged user); here each case checks one mechanism, most of them twice over: with
the lint on (the first wall) and off, so the process walls are tested on their own.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from garagelab.evolve import isolation, judge
from garagelab.evolve.lint import lint
from garagelab.evolve.pool import LocalPool
from garagelab.evolve.sandbox import CandidateFailed, Limits, Sandbox
from garagelab.evolve.tasks.fit_points import FIT_POINTS

LIMITS = Limits(wall_s=3.0, cpu_s=5.0, memory_mb=1024, file_mb=4, judge_s=10.0)


def run(source: str, check_lint: bool = True, imports: tuple[str, ...] = ("math", "numpy"), limits=LIMITS):
    task = dataclasses.replace(FIT_POINTS, check_lint=check_lint, allowed_imports=imports, limits=limits)
    return task.evaluate(source)


def fn(body: str, header: str = "import numpy as np") -> str:
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"{header}\n\ndef f(x):\n{lines}\n"


def test_a_sound_candidate_scores() -> None:
    outcome = run(fn("return np.sin(x) * x + 0.5 * x"))
    assert outcome.ok and outcome.score == pytest.approx(0.0) and outcome.fingerprint


# (name, source, kind with the lint on, kind with the lint off, extra allowed imports)
HOSTILE = [
    ("infinite loop", fn("while True:\n    pass"), "timeout", "timeout", ()),
    ("sleeps forever", fn("time.sleep(1000)", "import time"), "lint", "timeout", ("time",)),
    ("memory bomb", fn("a = [0] * (10 ** 10)\nreturn x"), "memory", "memory", ()),
    ("numpy memory bomb", fn("a = np.ones((10 ** 6, 10 ** 5))\nreturn x"), "memory", "memory", ()),
    ("fork bomb", fn("while True:\n    os.fork()", "import os"), "lint", "forbidden", ("os",)),
    (
        "spawns a subprocess",
        fn("subprocess.run(['sleep', '100'])\nreturn x", "import subprocess"),
        "lint",
        "timeout",
        ("subprocess",),
    ),
    ("exit code", fn("os._exit(3)", "import os"), "lint", "crash", ("os",)),
    ("raises SystemExit", fn("raise SystemExit(0)"), "exception", "exception", ()),
    ("segfault", fn("ctypes.string_at(0)", "import ctypes"), "lint", "crash", ("ctypes",)),
    ("huge output", fn("print('x' * 10 ** 8)\nreturn x"), "output_limit", "output_limit", ()),
    ("huge answer", fn("return np.zeros(10 ** 7)"), "output_limit", "output_limit", ()),
    (
        "opens a socket",
        fn("socket.socket().connect(('1.1.1.1', 80))", "import socket"),
        "lint",
        "forbidden",
        ("socket",),
    ),
    ("deep recursion", fn("return f(x)"), "exception", "exception", ()),
    ("raises", fn("raise ValueError('no')"), "exception", "exception", ()),
    # our own answering code runs after the candidate in its process: it breaks there, nowhere else
    ("patches builtins", fn("import builtins\nbuiltins.len = None\nreturn x"), "lint", "crash", ("builtins",)),
    ("escapes via dunders", fn("return ().__class__.__bases__[0].__subclasses__()"), "lint", "exception", ()),
    ("eval", fn("return eval('x')"), "lint", "ok", ()),
    ("wrong output", fn("return 'not an array'"), "exception", "exception", ()),
    ("wrong shape", fn("return x[:3]"), "invalid", "invalid", ()),
    ("not finite", fn("return x / 0.0"), "invalid", "invalid", ()),
    ("syntax error", "def f(x) return x\n", "syntax", "syntax", ()),
    ("null byte", "def f(x):\n    return x\0\n", "syntax", "syntax", ()),
    ("absurd nesting", "def f(x):\n    return " + "(" * 300 + "x" + ")" * 300 + "\n", "syntax", "syntax", ()),
]


@pytest.mark.parametrize(("name", "source", "kind", "_", "imports"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_candidate_with_lint(name: str, source: str, kind: str, _: str, imports: tuple[str, ...]) -> None:
    outcome = run(source)
    assert outcome.failure == kind, outcome.message
    assert outcome.score is None


@pytest.mark.parametrize(("name", "source", "_", "kind", "imports"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_candidate_without_lint(name: str, source: str, _: str, kind: str, imports: tuple[str, ...]) -> None:
    outcome = run(source, check_lint=False, imports=("math", "numpy", *imports))
    assert (outcome.failure or "ok") == kind, outcome.message


def test_patched_builtins_do_not_reach_the_next_evaluation() -> None:
    run(fn("import builtins\nbuiltins.len = None\nreturn x"), check_lint=False, imports=("numpy", "builtins"))
    assert run(fn("return 0.5 * x + len([1]) * 0")).ok


def test_the_candidate_sees_a_filesystem_of_its_own() -> None:
    """Only the system, the interpreter, the packages and garagelab's source: no home, no
    repository beyond the package, no host /tmp; its writes go to a private /tmp."""
    listing = "raise RuntimeError(sorted(os.listdir('/')), os.path.exists(os.path.expanduser('~/.bashrc')))"
    outcome = run(fn(listing, "import os"), check_lint=False, imports=("numpy", "os"))
    top, home = eval(outcome.message.strip().rsplit("RuntimeError: ", 1)[1])
    assert set(top) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr", *_roots()}
    assert not home
    assert run(fn("open('/tmp/scratch', 'w').write('x')\nreturn 0.5 * x"), check_lint=False).ok


def _roots() -> set[str]:
    """Top-level folders of the paths the view binds (where Python and the packages live)."""
    return {path.split("/")[1] for path in isolation.default_view().read_only}


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ("libc.ptrace(16, 1, 0, 0)", "EPERM"),  # PTRACE_ATTACH to the namespace's first process
        ("libc.unshare(0x40000000)", "EPERM"),
        ("libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)", "EPERM"),
        ("libc.socket(2, 1, 0)", "EAFNOSUPPORT"),  # AF_INET
        ("libc.syscall(435, 0, 0)", "ENOSYS"),  # clone3: its namespace flags are out of the filter's reach
        ("libc.sched_setaffinity(0, 128, (ctypes.c_ulong * 16)(3))", "EPERM"),  # leaving the CPUs it was pinned to
    ],
)
def test_the_system_call_filter_refuses(call: str, error: str) -> None:
    body = f"libc = ctypes.CDLL(None, use_errno=True)\nresult = {call}\nraise RuntimeError(result, ctypes.get_errno())"
    outcome = run(fn(body, "import ctypes, errno"), check_lint=False, imports=("numpy", "ctypes", "errno"))
    result, number = eval(outcome.message.strip().rsplit("RuntimeError: ", 1)[1])
    assert result == -1 and number == getattr(__import__("errno"), error)


def test_environment_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    source = fn("if 'sk-secret' in str(os.environ):\n    raise RuntimeError('leaked')\nreturn x", "import os")
    assert run(source).failure == "lint"
    assert run(source, check_lint=False, imports=("numpy", "os")).ok


def test_without_a_pid_namespace_or_filesystem_the_other_walls_hold() -> None:
    """The GPU setting (the CUDA driver fails in a private PID namespace and needs the host's /dev)."""
    limits = dataclasses.replace(LIMITS, pid_namespace=False, filesystem=False)
    assert run(fn("return 0.5 * x"), limits=limits).ok
    connect = fn("socket.socket().connect(('1.1.1.1', 80))", "import socket")
    assert run(connect, False, ("socket", "numpy"), limits).failure == "forbidden"


def test_no_sandbox_process_outlives_its_evaluation() -> None:
    run(fn("while True:\n    os.fork()", "import os"), check_lint=False, imports=("os", "numpy"))
    run(
        fn("subprocess.Popen(['sleep', '100'])\nreturn x", "import subprocess"),
        check_lint=False,
        imports=("subprocess", "numpy"),
    )
    time.sleep(0.5)
    assert "sleep 100" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert _orphans() == 0


def test_judges_and_their_sandboxes_stop_with_their_process() -> None:
    code = (
        "from garagelab.evolve.tasks.fit_points import FIT_POINTS; "
        "assert FIT_POINTS.evaluate('def f(x):\\n    return x').ok"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    time.sleep(0.5)
    assert _orphans() == 0


def test_a_thread_keeps_only_its_recent_judges() -> None:
    """One judge process per task, the least recently used stopped beyond KEPT_JUDGES (a search
    over many problems once held a judge for each and filled the machine's memory)."""
    tasks = [dataclasses.replace(FIT_POINTS, name=f"fit-{number}") for number in range(judge.KEPT_JUDGES + 2)]
    for task in tasks:
        assert task.evaluate(fn("return 0.5 * x")).ok
    # only this test's tasks: a judge of another test's pool thread (fit-points) may still be stopping
    names = {task.name for task in tasks}
    alive = [p for p in list(judge._ALL) if p.task.name in names and p.process.poll() is None]
    assert sorted(p.task.name for p in alive) == sorted(t.name for t in tasks[-judge.KEPT_JUDGES :])


def _orphans() -> int:
    """Judge or sandbox processes whose parent is gone (adopted by init)."""
    listing = subprocess.run(["ps", "-eo", "ppid=,args="], capture_output=True, text=True, check=True).stdout
    ours = ("garagelab.evolve._runner", "garagelab.evolve._judge")
    return sum(line.split(None, 1)[0] == "1" for line in listing.splitlines() if any(o in line for o in ours))


@pytest.mark.parametrize("per_cpu", [True, False])
def test_a_pool_with_a_worker_per_cpu_gives_each_its_own(per_cpu: bool) -> None:
    """A candidate reports the CPUs it may run on (in its failure message)."""
    cpus = os.sched_getaffinity(0)
    workers = len(cpus) if per_cpu else max(1, len(cpus) - 1)
    task = dataclasses.replace(FIT_POINTS, check_lint=False, allowed_imports=("os", "numpy"))
    pool = LocalPool(workers)
    try:
        source = fn("raise RuntimeError(sorted(os.sched_getaffinity(0)))", "import os")
        outcomes = [f.result() for f in [pool.submit(task, source, frozenset()) for _ in range(4 * workers)]]
    finally:
        pool.shutdown()
    reported = {o.message.strip().rsplit(": ", 1)[-1] for o in outcomes}
    if per_cpu and len(cpus) > 1:
        assert reported <= {str([cpu]) for cpu in cpus} and len(reported) > 1
    else:
        assert reported == {str(sorted(cpus))}


def test_a_sandbox_pinned_to_one_cpu_stays_on_it() -> None:
    """Limits.cpus: a candidate timed against a one-thread baseline cannot widen its CPUs."""
    cpus = os.sched_getaffinity(0)
    source = fn("os.sched_setaffinity(0, range(os.cpu_count()))", "import os")
    widened = run(source, check_lint=False, imports=("os", "numpy"), limits=dataclasses.replace(LIMITS, cpus=1))
    assert widened.failure == "forbidden"
    source = fn("raise RuntimeError(sorted(os.sched_getaffinity(0)))", "import os")
    limits = dataclasses.replace(LIMITS, cpus=1)
    reported = {run(source, False, ("os", "numpy"), limits).message.strip().rsplit(": ", 1)[-1] for _ in range(3)}
    assert len(reported) == 1 and reported <= {str([cpu]) for cpu in cpus}  # one judge's sandboxes share their CPU


def test_the_lint_names_what_it_refuses() -> None:
    source = "import os\nfrom subprocess import run\n\ndef f(x):\n    return getattr(x, '__class__')\n"
    problems = lint(source, ("numpy",))
    assert any("import of os" in p for p in problems)
    assert any("subprocess" in p for p in problems)
    assert any("getattr" in p for p in problems)


@pytest.mark.parametrize(
    ("source", "allowed", "refused"),
    [
        ("import jax\njax.version.os.system('x')", ("jax",), "module os"),
        ("from jax import version\nversion.os.getcwd()", ("jax",), "module os"),
        ("from jax.version import os", ("jax",), "import from jax.version"),
        ("import jax\njax._src.api", ("jax",), "private name _src"),
        ("import numpy as np\nnp.ctypeslib.ctypes", ("numpy",), "numpy.ctypeslib"),
        ("from numpy import ctypeslib", ("numpy",), "numpy.ctypeslib"),
        ("import jax.numpy as jnp\nimport jax.version", ("jax.numpy",), "import of jax.version"),
        ("import jax.numpy\njax.version", ("jax.numpy",), "module jax.version"),
    ],
)
def test_the_lint_allows_by_exact_module_and_by_reach(source: str, allowed: tuple[str, ...], refused: str) -> None:
    assert any(refused in p for p in lint(source, allowed)), lint(source, allowed)


def test_the_lint_lets_ordinary_code_through() -> None:
    source = "import jax\nfrom jax import nn\n\ndef f(x):\n    return jax.nn.softplus(x) + nn.relu(x)\n"
    assert lint(source, ("jax", "jax.numpy")) == []
    assert lint("import math\n\ndef f(x):\n    return math.pi * x\n", ("math",)) == []


def test_a_non_ascii_identifier_is_not_misfiled() -> None:
    """Python normalises such names through unicodedata, loaded lazily: not a forbidden import."""
    assert run(fn("λ = 0.5\nreturn λ * x")).ok


def test_without_isolation_untrusted_code_is_refused_unless_the_user_opts_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from garagelab.core.errors import UserError

    monkeypatch.setattr(isolation, "mode", lambda: "none")
    monkeypatch.delenv(isolation.UNSAFE_ENV, raising=False)
    with pytest.raises(UserError, match="--unsafe-no-isolation"):
        isolation.require()
    monkeypatch.setenv(isolation.UNSAFE_ENV, "1")
    assert isolation.require() == "none"


@pytest.mark.parametrize(
    ("source", "kind"),
    [(fn("while True:\n    pass"), "timeout"), (fn("a = [0] * (10 ** 10)\nreturn x"), "memory"), (fn("return x"), "")],
)
def test_an_opted_out_sandbox_still_has_its_limits(source: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a user who opts out gets: rlimits, the process group kill, the scrubbed environment."""
    monkeypatch.setattr(isolation, "mode", lambda: "none")
    monkeypatch.setenv(isolation.UNSAFE_ENV, "1")
    sandbox = Sandbox(FIT_POINTS.serve, ("numpy",))
    try:
        assert sandbox.mode == "none"
        with sandbox.start(source, LIMITS) as candidate:
            try:
                answer = candidate.call({"x": np.arange(3.0)})
            except CandidateFailed as exc:
                assert exc.kind == kind, exc.message
            else:
                assert not kind and answer.tolist() == [0.0, 1.0, 2.0]
    finally:
        sandbox.close()
