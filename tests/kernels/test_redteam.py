"""Red team for the kernel verifier: every file in tests/kernels/hacks is a hostile candidate
with its expected verdicts in its header (`# expect: wrong|hack`; `honest`: it may pass, with a
speed-up no better than an honest kernel's; `# timed: yes`: it needs the timing stage to show),
run lint on and off, as root and as `nobody` (tests/redteam.py), with the host checked after
each. Forged verdicts, patched comparisons and clocks, fallbacks under any name, caches, late
writes, crashes: none is accepted, none inflates a speed-up, none leaves anything behind or
changes another evaluation."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from garagelab.kernels.candidates import header
from garagelab.kernels.task import IMPORTS, build_task
from tests.redteam import Hostile, campaign_tests

HERE = Path(__file__).resolve().parent
SUITE = HERE.parents[1] / "src" / "garagelab" / "kernels" / "suite"
CONTROL_PATH = SUITE.parent / "candidates" / "relu_cpp.py"
CONTROL = CONTROL_PATH.read_text()
HONEST_BOUND = 3.0  # honest relu/softmax kernels measure 0.8-1.1x here, up to ~2x under a concurrent campaign


def _imports(source: str) -> tuple[str, ...]:
    """Modules the program imports beyond the task's allow-list (preloaded with the lint off)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return tuple(sorted(n for n in names if n not in IMPORTS))


def _hostile(path: Path) -> Hostile:
    kinds = header(path, "expect").split("|")
    bound = HONEST_BOUND if "honest" in kinds else None
    fails = tuple(k for k in kinds if k != "honest")
    return Hostile(path.stem, path.read_text(), fails_as=fails, imports=_imports(path.read_text()), bound=bound)


PROGRAMS = [_hostile(path) for path in sorted((HERE / "hacks").glob("*.py"))]
_BY_NAME = {p.name: HERE / "hacks" / f"{p.name}.py" for p in PROGRAMS}


def make_task(stage, program):
    path = _BY_NAME[program.name] if program is not None else CONTROL_PATH
    timed = program is None or header(path, "timed") == "yes"
    task = build_task(SUITE / f"{header(path, 'problem')}.py", timing=timed, seeds=1, rounds=6)
    return dataclasses.replace(task, limits=dataclasses.replace(task.limits, wall_s=10.0))  # a spinning one: 10 s


results, test_a_hostile_program_fails_or_is_scored_honestly, test_hostile_programs_change_no_other_evaluation = (
    campaign_tests(__name__, PROGRAMS, lambda before, after: 0.3 < before < 3 and 0.3 < after < 3)
)


def test_enough_hostile_candidates() -> None:
    assert len(PROGRAMS) >= 40
