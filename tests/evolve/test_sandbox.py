"""Hostile candidates end as failed evaluations of the right kind; nothing leaks, nothing stays.

Most run twice over: with the lint on (the first wall) and with it off, so the process layer
(rlimits, scrubbed environment, no network, unprivileged user, killed process group / PID
namespace) is tested on its own.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from garagelab.evolve import sandbox
from garagelab.evolve.pool import LocalPool
from garagelab.evolve.sandbox import Limits, evaluate, lint
from garagelab.evolve.tasks.fit_points import FIT_POINTS

LIMITS = Limits(wall_s=3.0, cpu_s=5.0, memory_mb=1024, file_mb=4)
ROOT = os.geteuid() == 0


def run(source: str, check_lint: bool = True, imports: tuple[str, ...] = ("math", "numpy"), limits=LIMITS):
    return evaluate(source, FIT_POINTS.evaluator, limits, imports, check_lint)


def fn(body: str, header: str = "import numpy as np") -> str:
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"{header}\n\ndef f(x):\n{lines}\n"


def test_a_sound_candidate_scores() -> None:
    outcome = run(fn("return np.sin(x) * x + 0.5 * x"))
    assert outcome.ok and outcome.score == pytest.approx(0.0) and outcome.fingerprint


CONNECT = "s = socket.socket()\ns.settimeout(2)\ns.connect(('1.1.1.1', 80))\nreturn x"
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
    ("opens a socket", fn(CONNECT, "import socket"), "lint", "forbidden", ("socket",)),
    ("deep recursion", fn("return f(x)"), "exception", "exception", ()),
    ("raises", fn("raise ValueError('no')"), "exception", "exception", ()),
    ("patches builtins", fn("import builtins\nbuiltins.len = None\nreturn x"), "lint", "ok", ("builtins",)),
    ("escapes via dunders", fn("return ().__class__.__bases__[0].__subclasses__()"), "lint", "exception", ()),
    ("eval", fn("return eval('x')"), "lint", "ok", ()),
    ("wrong output", fn("return 'not an array'"), "exception", "exception", ()),
    ("not finite", fn("return x / 0.0"), "invalid", "invalid", ()),
    ("syntax error", "def f(x) return x\n", "syntax", "syntax", ()),
]


@pytest.mark.parametrize(("name", "source", "kind", "_", "imports"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_candidate_with_lint(name: str, source: str, kind: str, _: str, imports: tuple[str, ...]) -> None:
    outcome = run(source)
    assert outcome.failure == kind, outcome.message
    assert outcome.score is None


@pytest.mark.parametrize(("name", "source", "_", "kind", "imports"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_candidate_without_lint(name: str, source: str, _: str, kind: str, imports: tuple[str, ...]) -> None:
    if not ROOT and kind == "forbidden":
        pytest.skip("the network namespace and the process limit of `nobody` need root")
    outcome = run(source, check_lint=False, imports=("math", "numpy", *imports))
    assert (outcome.failure or "ok") == kind, outcome.message


def test_patched_builtins_do_not_reach_the_next_evaluation() -> None:
    run(fn("import builtins\nbuiltins.len = None\nreturn x"), check_lint=False, imports=("numpy", "builtins"))
    assert run(fn("return 0.5 * x + len([1]) * 0")).ok


def test_environment_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    source = fn("if 'sk-secret' in str(os.environ):\n    raise RuntimeError('leaked')\nreturn x", "import os")
    assert run(source).failure == "lint"
    assert run(source, check_lint=False, imports=("numpy", "os")).ok


@pytest.mark.skipif(not ROOT, reason="dropping to `nobody` needs root")
def test_cannot_write_outside_its_directory(tmp_path: Path) -> None:
    target = tmp_path / "evil.txt"
    source = fn(f"open({str(target)!r}, 'w').write('x')\nreturn x")
    assert run(source).failure == "lint"
    assert run(source, check_lint=False).failure == "forbidden"
    assert not target.exists()


@pytest.mark.skipif(not ROOT, reason="dropping to `nobody` needs root")
def test_without_a_pid_namespace_the_user_and_network_walls_hold(tmp_path: Path) -> None:
    """The GPU setting (the CUDA driver fails in a private PID namespace)."""
    limits = Limits(wall_s=3.0, cpu_s=5.0, memory_mb=1024, pid_namespace=False)
    assert run(fn("return 0.5 * x"), limits=limits).ok
    target = tmp_path / "evil.txt"
    assert run(fn(f"open({str(target)!r}, 'w').write('x')\nreturn x"), False, limits=limits).failure == "forbidden"
    assert run(fn(CONNECT, "import socket"), False, ("socket", "numpy"), limits).failure == "forbidden"


def test_writes_inside_its_own_directory_are_allowed_and_removed() -> None:
    source = fn("open('scratch.txt', 'w').write('x')\nreturn 0.5 * x")
    assert run(source, check_lint=False).ok


@pytest.mark.skipif(not ROOT, reason="PID namespaces need root")
def test_a_process_that_leaves_the_group_is_killed_too(tmp_path: Path) -> None:
    marker = Path("/tmp") / f"garagelab-escape-{os.getpid()}"
    marker.unlink(missing_ok=True)
    source = fn(
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(2)\n"
        f"    open({str(marker)!r}, 'w').write('alive')\n"
        "    os._exit(0)\n"
        "time.sleep(100)",
        "import os, time",
    )
    outcome = run(source, check_lint=False, imports=("os", "time"), limits=Limits(wall_s=1.0))
    assert outcome.failure == "timeout"
    time.sleep(3)
    assert not marker.exists()


def test_no_sandbox_process_outlives_its_evaluation() -> None:
    run(fn("while True:\n    os.fork()", "import os"), check_lint=False, imports=("os", "numpy"))
    run(
        fn("subprocess.Popen(['sleep', '100'])\nreturn x", "import subprocess"),
        check_lint=False,
        imports=("subprocess", "numpy"),
    )
    time.sleep(0.5)
    zygotes = [z for z in sandbox._ALL_ZYGOTES if z.alive]
    assert _runners() == len(zygotes)  # only the fork servers remain
    assert "sleep 100" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_zygotes_stop_with_their_process() -> None:
    code = (
        "from garagelab.evolve.sandbox import evaluate; evaluate('def f(x):\\n    return x', "
        "'garagelab.evolve.tasks.fit_points:evaluate')"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    time.sleep(0.5)
    zygotes = [z for z in sandbox._ALL_ZYGOTES if z.alive]
    assert _runners() == len(zygotes)


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


def _runners() -> int:
    """Sandbox processes that are this test's own or orphans (not another search's on the machine)."""
    listing = subprocess.run(["ps", "-eo", "ppid=,args="], capture_output=True, text=True, check=True).stdout
    parents = [line.split(None, 1)[0] for line in listing.splitlines() if "garagelab.evolve._runner" in line]
    return sum(parent in (str(os.getpid()), "1") for parent in parents)


def test_the_lint_names_what_it_refuses() -> None:
    source = "import os\nfrom subprocess import run\n\ndef f(x):\n    return getattr(x, '__class__')\n"
    problems = lint(source, ("numpy",))
    assert any("import of os" in p for p in problems)
    assert any("subprocess" in p for p in problems)
    assert any("getattr" in p for p in problems)


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        (fn("while True:\n    pass"), "timeout"),
        (fn("a = [0] * (10 ** 10)\nreturn x"), "memory"),
        (fn("os._exit(3)", "import os"), "crash"),
        (fn("subprocess.Popen(['sleep', '100'])\nwhile True:\n    pass", "import subprocess"), "timeout"),
    ],
    ids=["loop", "memory bomb", "exit code", "subprocess left behind"],
)
def test_without_root_the_process_layer_still_holds(source: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a user without root gets (no namespaces, no user switch): limits and the group kill."""
    monkeypatch.setattr(sandbox, "_unprivileged", lambda: None)
    outcome = run(source, check_lint=False, imports=("numpy", "os", "subprocess"))
    assert outcome.failure == kind, outcome.message
    time.sleep(0.3)
    assert "sleep 100" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
