"""Finished stages of a `distill fit` run, kept in its directory so that a killed run resumes.

A fit with a 1,000-resample bootstrap and profile intervals runs for minutes to tens of
minutes. Each stage (a law's fit, its bootstrap, the simulated data sets' free fits, each
profiled coefficient's threshold and its scan) is written as JSON under its key as soon as it
finishes, and `distill fit --resume RUN` runs the run's command again in its directory, reading
each finished stage back instead of computing it. Every stage draws from its own seeded random
stream, so a resumed run ends with the numbers an uninterrupted one would have printed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Stages:
    """Stage results by key, as JSON files in `folder` (None: nothing kept, each stage computed)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self.reused: list[str] = []  # the keys read back, in order

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        """The stage's result (JSON-able): read back if it finished before, else computed and
        written atomically (a kill while writing leaves the stage undone, not half written)."""
        if self.folder is None:
            return compute()
        path = self.folder / f"{key}.json"
        if path.exists():
            self.reused.append(key)
            return json.loads(path.read_text())
        value = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(value))
        os.replace(partial, path)
        return value


NOT_KEPT = Stages()
