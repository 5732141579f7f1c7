"""Seed kernels with tunable knobs (`# tune:`) for the offline proposer, named after their
problems: `seeds/<problem>.py` for the suite's (with the C++ they share, `_cpp.py`, written in at
its markers), and the attention variants composed from one fused template (`seeds/attention/`)."""

from __future__ import annotations

from pathlib import Path

from garagelab.kernels.seeds._cpp import MARKERS

HERE = Path(__file__).resolve().parent
SUITE = HERE.parent / "suite"


def seed_for(problem: Path) -> str | None:
    """The seed kernel's source for one of our problems (None: not ours, or we have none for it;
    a file elsewhere with the same name is another problem)."""
    folder = problem.resolve().parent
    if folder not in (SUITE, SUITE / "attention"):
        return None
    if folder.name == "attention":
        from garagelab.kernels.seeds.attention import attention_seed

        return attention_seed(problem.stem)
    path = HERE / problem.name
    if not path.is_file():
        return None
    return with_shared_cpp(path.read_text())


def with_shared_cpp(source: str) -> str:
    """A seed's source with the C++ the seeds share (`_cpp.py`) written in at its markers
    (`@VEC@`, ...); a kernel without markers is returned as it is."""
    for marker, text in MARKERS.items():
        source = source.replace(marker, text)
    return source
