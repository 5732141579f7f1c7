"""Red-team campaigns: hostile programs through the real evaluation path, as root and as an
unprivileged user, with what they aim at staged on the host and checked afterwards.

A campaign module defines `PROGRAMS` (Hostile), `CONTROL` (an honest program) and
`make_task(stage, program)` (the task a program is evaluated by; the control's with None). `campaign(module)` stages
the targets (a secret file readable by the campaign's user, a run store it may write, a
loopback TCP server and an abstract Unix socket, a sentinel process of the same user, an API key
in its environment), then evaluates every program twice (lint on, lint off: so the walls are
tested on their own), and after each looks at the host: marker files in /tmp and /dev/shm, the
secret in any message, the run store changed, a connection received, a survivor process, the
sentinel killed. It also scores a control program before and after: a hostile program must not
change another evaluation. Programs name their targets with {SECRET}, {SECRET_FILE}, {STORE},
{PORT}, {ABSTRACT}, {MARK}, {REPO}, {SHARED}, {DATA}, {SURVIVOR}.

As root, `AsNobody(module)` runs the same campaign in a fresh interpreter as `nobody`, through
a copy of the interpreter it can read (hard links: /root is not traversable by other users).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MARK = "garagelab-redteam"


@dataclass(frozen=True)
class Hostile:
    """A hostile program. It must fail (with one of `fails_as`, if given) or score exactly
    `honest` (what its behaviour is worth, computed independently); never anything else."""

    name: str
    source: str
    honest: float | str | None = None  # "control": what the campaign's control program scored
    fails_as: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()  # preloaded in the sandbox with the lint off
    bound: float | None = None  # a noisy score (a kernel's speed-up) it may get, at most: honest, not inflated


@dataclass
class Stage:
    base: Path
    secret: str = field(default_factory=lambda: "GARAGELAB-SECRET-" + secrets.token_hex(8))

    def __post_init__(self) -> None:
        # a survivor execs `sleep {SURVIVOR}`: found on the host by that argument (one per
        # campaign: two run side by side, and a survivor is alive while its evaluation is)
        self.survivor = f"37.{os.getpid()}"
        self.secret_file = self.base / "secret.txt"
        self.secret_file.write_text(self.secret)
        self.store = self.base / "runs" / "programs.sqlite"
        self.store.parent.mkdir()
        self.store.write_bytes(b"SQLite format 3\0" + b"\0" * 1008)
        os.chmod(self.base, 0o755)
        os.chmod(self.secret_file, 0o644)  # readable by the campaign's user: only the sandbox stands between
        self.store_hash = self._hash()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.setblocking(False)
        self.port = self.server.getsockname()[1]
        self.abstract = f"\0{MARK}-{secrets.token_hex(4)}"
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.abstract)
        self.unix.listen()
        self.unix.setblocking(False)
        self.sentinel = subprocess.Popen(["sleep", "600"])
        os.environ["GARAGELAB_REDTEAM_KEY"] = self.secret
        self.data = self.base / "data.npz"

    def fill(self, source: str) -> str:
        values = {
            "SECRET": self.secret,
            "SECRET_FILE": str(self.secret_file),
            "STORE": str(self.store),
            "PORT": str(self.port),
            "ABSTRACT": repr(self.abstract),
            "MARK": MARK,
            "REPO": str(REPO),
            "SHARED": str(SHARED),
            "DATA": str(self.data),
            "SURVIVOR": self.survivor,
        }
        for key, value in values.items():
            source = source.replace("{" + key + "}", value)
        return source

    def _hash(self) -> str:
        return hashlib.sha256(self.store.read_bytes()).hexdigest()

    def violations(self, message: str) -> list[str]:
        """What on the host shows that a program got out (empty when nothing did)."""
        found = []
        for folder in (Path(tempfile.gettempdir()), Path("/dev/shm")):
            found += [f"left {p}" for p in folder.glob(f"{MARK}*")]
        if self.secret in message:
            found.append("the secret reached a message")
        if self._hash() != self.store_hash:
            found.append("the run store changed")
        for listener in (self.server, self.unix):
            try:
                listener.accept()[0].close()
                found.append(f"a connection reached {listener.getsockname()!r}")
            except BlockingIOError:
                pass
        if self.sentinel.poll() is not None:
            found.append("a process of the same user outside the sandbox was killed")
        survivors = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
        if f"sleep {self.survivor}" in survivors:
            found.append("a process outlived its evaluation")
        return found

    def close(self) -> None:
        os.environ.pop("GARAGELAB_REDTEAM_KEY", None)
        self.sentinel.kill()
        self.sentinel.wait()
        self.server.close()
        self.unix.close()
        for folder in (Path(tempfile.gettempdir()), Path("/dev/shm")):
            for path in folder.glob(f"{MARK}*"):
                path.unlink()


def campaign(module_name: str) -> dict:
    """Every program of the module, lint on and off, with the host checked after each."""
    module = importlib.import_module(module_name)
    base = Path(tempfile.mkdtemp(prefix="garagelab-stage-"))
    stage = Stage(base)
    try:
        control = module.make_task(stage, None).evaluate(stage.fill(module.CONTROL)).score
        # one set of extra modules for every program with the lint off: one judge process per task
        extra = tuple(sorted({name for program in module.PROGRAMS for name in program.imports}))
        results = {}
        for program in module.PROGRAMS:
            task, source = module.make_task(stage, program), stage.fill(program.source)
            for check_lint in (True, False):
                key = f"{program.name} (lint {'on' if check_lint else 'off'})"
                if not check_lint and results[key.replace("lint off", "lint on")]["failure"] not in ("lint", "syntax"):
                    # the lint let it through: with the lint off it is the same evaluation
                    results[key] = results[key.replace("lint off", "lint on")]
                    continue
                imports = task.allowed_imports if check_lint else (*task.allowed_imports, *extra)
                variant = dataclasses.replace(task, check_lint=check_lint, allowed_imports=imports)
                outcome = variant.evaluate(source)
                time.sleep(0.05)  # a survivor would be running by now
                results[key] = {
                    "program": program.name,
                    "score": outcome.score,
                    "failure": outcome.failure,
                    "message": outcome.message[-400:],
                    "violations": stage.violations(outcome.message),
                }
        again = module.make_task(stage, None).evaluate(stage.fill(module.CONTROL)).score
        return {"user": os.geteuid(), "control": [control, again], "results": results}
    finally:
        stage.close()
        shutil.rmtree(base, ignore_errors=True)


def check(result: dict, program: Hostile, control: float | None = None) -> None:
    """Assert the program failed as allowed or scored exactly what its behaviour is worth, and
    that nothing on the host shows it got out."""
    assert not result["violations"], result["violations"]
    if result["score"] is not None and program.bound is not None:
        assert result["score"] <= program.bound, f"scored {result['score']}, more than an honest {program.bound}"
    elif result["score"] is not None:
        honest = control if program.honest == "control" else program.honest
        assert honest is not None, f"a program that must fail scored {result['score']}"
        assert result["score"] == honest, f"scored {result['score']}, its behaviour is worth {honest}"
    else:
        assert result["failure"] != "task_error", result["message"]
        assert not program.fails_as or result["failure"] in (*program.fails_as, "lint"), result


# -- running a campaign as `nobody` --------------------------------------------------------------
def _traversable_by_others(path: Path) -> bool:
    for part in [path, *path.parents]:
        mode = part.stat().st_mode
        if not mode & (stat.S_IXOTH if part != path or part.is_dir() else stat.S_IROTH):
            return False
    return True


def _readable_copy(path: Path, into: Path) -> Path:
    """`path` itself if `nobody` can read it, else a copy of it (hard links where they can be
    made) under `into`, made once per test session."""
    path = path.resolve()
    if _traversable_by_others(path):
        return path
    target = into / hashlib.sha256(str(path).encode()).hexdigest()[:12] / path.name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["cp", "-al", str(path), str(target)], capture_output=True)
        if done.returncode:
            shutil.copytree(path, target, symlinks=True, dirs_exist_ok=True)
    return target


class AsNobody:
    """The campaign of `module_name` in a fresh interpreter running as `nobody`, started at once
    (it runs beside the one in this process: each takes about a core); `result()` waits."""

    def __init__(self, module_name: str) -> None:
        import pwd

        nobody = pwd.getpwnam("nobody")
        self.into = Path(tempfile.gettempdir()) / f"garagelab-nobody-{os.getpid()}-{module_name}"
        self.into.mkdir(exist_ok=True)
        os.chmod(self.into, 0o755)
        python = _readable_copy(Path(sys.base_prefix), self.into)
        packages = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
        path = [_readable_copy(Path(p), self.into) for p in packages]
        path += [_readable_copy(REPO / "src", self.into), _readable_copy(REPO / "tests", self.into).parent]
        home = self.into / "home"
        home.mkdir(exist_ok=True)
        os.chown(home, nobody.pw_uid, nobody.pw_gid)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join(map(str, path)),
            "GARAGELAB_RUNS": str(home / "runs"),
        }
        interpreter = python / "bin" / Path(sys.executable).name
        if not interpreter.exists():
            interpreter = python / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
        who = [f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
        command = ["setpriv", *who, str(interpreter), "-m", "tests.redteam", module_name]
        self.process = subprocess.Popen(command, env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def result(self, timeout_s: float = 900) -> dict:
        try:
            out, err = self.process.communicate(timeout=timeout_s)
        finally:
            shutil.rmtree(self.into, ignore_errors=True)
        if self.process.returncode:
            raise RuntimeError(f"the campaign as nobody failed:\n{err.decode()[-3000:]}")
        return json.loads(out.decode().strip().splitlines()[-1])


USERS = ("root", "nobody")


def campaign_tests(module_name: str, programs: list[Hostile], control_ok):
    """The fixture and the tests of a red-team module: every program, lint on and off, as root
    (this process's user) and, when root, as `nobody`; and the control scored the same before
    and after (`control_ok(before, after)` says whether the two are right)."""
    import pytest

    @pytest.fixture(scope="module")
    def results() -> dict:
        unprivileged = AsNobody(module_name) if os.geteuid() == 0 else None
        found = {"root": campaign(module_name)}
        if unprivileged is not None:
            found["nobody"] = unprivileged.result()
        return found

    def ran_as(results: dict, user: str) -> dict:
        if user not in results:
            pytest.skip("switching to `nobody` needs root; this run is already unprivileged")
        return results[user]

    cases = [(user, p, lint) for user in USERS for p in programs for lint in ("on", "off")]

    @pytest.mark.parametrize(("user", "hostile", "lint"), cases, ids=[f"{u}-{p.name}-lint {lt}" for u, p, lt in cases])
    def test_a_hostile_program_fails_or_is_scored_honestly(results: dict, user: str, hostile: Hostile, lint: str):
        found = ran_as(results, user)
        check(found["results"][f"{hostile.name} (lint {lint})"], hostile, found["control"][0])

    @pytest.mark.parametrize("user", USERS)
    def test_hostile_programs_change_no_other_evaluation(results: dict, user: str) -> None:
        before, after = ran_as(results, user)["control"]
        assert control_ok(before, after), (before, after)

    return results, test_a_hostile_program_fails_or_is_scored_honestly, test_hostile_programs_change_no_other_evaluation


if __name__ == "__main__":
    print(json.dumps(campaign(sys.argv[1])))
