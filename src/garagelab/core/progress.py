"""The one progress display every long loop uses: rate and ETA, in a terminal or a log.

In a terminal it is a rich progress bar. When stderr is not a terminal (CI logs, `nohup`),
a live bar would print nothing until the end, so a plain line with count, rate and ETA is
written every `interval` seconds instead.

The rate counts from the first update on, as rich's does: the first unit often carries a
compilation (JAX) or a warm-up, and an ETA priced from it reads hours for a run of minutes.
A loop that continues earlier work passes `start` (the units already done), so the rate is
this process's alone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

T = TypeVar("T")


class _RateColumn(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{_format_rate(speed)} {self.unit}/s" if speed else f"? {self.unit}/s")


def _format_rate(rate: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{suffix}"
    return f"{rate:.3g}"


def _format_count(count: float) -> str:
    """Whole counts in full with separators (5,996,544 steps, not 5.99654e+06); others to 4 digits."""
    return f"{round(count):,}" if float(count).is_integer() else f"{count:.4g}"


def _format_seconds(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class ProgressBar:
    """A counter with a known total that shows rate and ETA; use as a context manager."""

    def __init__(
        self,
        total: float,
        description: str,
        unit: str = "it",
        interval: float = 10.0,
        stream=None,
        enabled: bool = True,
        start: float = 0.0,
    ) -> None:
        self.total = total
        self.description = description
        self.unit = unit
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done = float(start)
        self.postfix = ""
        self._start = time.monotonic()
        self._origin: tuple[float, float] | None = None  # (time, done) at the first update
        self._last_line = self._start
        self._rich: Progress | None = None
        self._task = None
        if enabled and self.stream.isatty():
            self._rich = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                _RateColumn(unit),
                TextColumn("elapsed"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[postfix]}"),
                console=Console(file=self.stream),
            )

    def __enter__(self) -> ProgressBar:
        self._start = time.monotonic()
        self._last_line = self._start
        if self._rich is not None:
            self._rich.start()
            self._task = self._rich.add_task(self.description, total=self.total, completed=self.done, postfix="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._rich is not None:
            self._rich.stop()
        elif self.enabled:
            self._write_line(final=True)

    def advance(self, amount: float = 1, postfix: str | None = None) -> None:
        """Count `amount` more units done; `postfix` is a short status such as a loss."""
        self.done += amount
        now = time.monotonic()
        if self._origin is None:
            self._origin = (now, self.done)
        if postfix is not None:
            self.postfix = postfix
        if self._rich is not None:
            self._rich.update(self._task, advance=amount, postfix=self.postfix)
            return
        if self.enabled and now - self._last_line >= self.interval:
            self._last_line = now
            self._write_line()

    def update_to(self, done: float, postfix: str | None = None) -> None:
        """Set the count done (for loops that know their total progress, not increments)."""
        self.advance(done - self.done, postfix)

    @property
    def rate(self) -> float:
        """Units per second since the first update (0 until a second one)."""
        if self._origin is None:
            return 0.0
        since, done = self._origin
        elapsed = time.monotonic() - since
        return (self.done - done) / elapsed if elapsed > 0 and self.done > done else 0.0

    def eta_seconds(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None

    def _write_line(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self._start
        percent = 100.0 * self.done / self.total if self.total else 100.0
        eta = self.eta_seconds()
        parts = [
            f"{self.description}: {_format_count(self.done)}/{_format_count(self.total)} ({percent:.0f}%)",
            f"{_format_rate(self.rate)} {self.unit}/s",
            f"elapsed {_format_seconds(elapsed)}",
        ]
        if not final:
            parts.append(f"eta {_format_seconds(eta)}" if eta is not None else "eta ?")
        if self.postfix:
            parts.append(self.postfix)
        print(", ".join(parts), file=self.stream, flush=True)


def track(
    iterable: Iterable[T],
    description: str,
    total: float | None = None,
    unit: str = "it",
) -> Iterator[T]:
    """Iterate with a progress display (total taken from `len` when not given)."""
    if total is None:
        total = len(iterable)  # type: ignore[arg-type]
    with ProgressBar(total, description, unit=unit) as bar:
        for item in iterable:
            yield item
            bar.advance()
