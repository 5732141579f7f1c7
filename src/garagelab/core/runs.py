"""Run directories and the SQLite index of every run.

A run is a directory `runs/<system>/<YYYYmmdd-HHMMSS>-<name>/` holding `config.json`,
`metrics.csv` and artifacts, plus a row in `runs/index.sqlite` (WAL mode, so several
processes can write at once). A live run holds an exclusive `flock` on its `.lock` file; the
kernel drops that lock when the process dies, even by SIGKILL, so a "running" row whose lock
can be taken belongs to a dead process and is marked interrupted the next time anyone reads.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from garagelab.core.errors import UserError

STATUSES = ("running", "done", "failed", "interrupted")
INDEX_NAME = "index.sqlite"
LOCK_NAME = ".lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    system TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    started TEXT NOT NULL,
    ended TEXT,
    pid INTEGER,
    headline TEXT NOT NULL DEFAULT '{}'
)
"""


def default_root() -> Path:
    """Where runs go: `$GARAGELAB_RUNS`, else `./runs`."""
    return Path(os.environ.get("GARAGELAB_RUNS", "runs"))


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunRecord:
    """One row of the index, as read."""

    id: int
    system: str
    name: str
    path: Path
    status: str
    started: str
    ended: str | None
    headline: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.path.name


class RunStore:
    """The run directories under one root and their index."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # -- index ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"runs directory {self.root} is a file, not a directory; give another with --runs-dir")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file of that name, no permission, a read-only file system
            raise UserError(
                f"runs directory {self.root}: cannot use it ({exc.strerror}); give another with --runs-dir"
            ) from None
        path = self.root / INDEX_NAME
        for attempt in range(100):
            try:
                con = sqlite3.connect(path, timeout=60, isolation_level=None)
            except sqlite3.OperationalError as exc:  # a directory that cannot be written to
                raise UserError(f"{path}: cannot open the run index ({exc}); give another --runs-dir") from None
            try:
                con.execute("PRAGMA busy_timeout=60000")
                # WAL is kept in the file: switch once. The switch (and the schema on a new file)
                # can meet another process's lock without waiting on busy_timeout: retry those.
                if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    con.execute("PRAGMA journal_mode=WAL")
                con.execute(_SCHEMA)
                return con
            except sqlite3.OperationalError as exc:
                con.close()
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise self._unreadable(path, exc) from exc
                time.sleep(0.01 * (1 + attempt % 10))
            except sqlite3.DatabaseError as exc:
                con.close()
                raise self._unreadable(path, exc) from exc
        raise UserError(f"{path}: the run index stayed locked by another process; try again")

    @staticmethod
    def _unreadable(path: Path, exc: Exception) -> UserError:
        return UserError(
            f"{path} is not a readable run index ({exc}); move it away and a new, "
            "empty index is created on the next run"
        )

    def _execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        con = self._connect()
        try:
            with con:
                return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def _reconcile(self) -> None:
        """Mark runs whose process is gone (lock free) as interrupted."""
        for run_id, path in self._execute("SELECT id, path FROM runs WHERE status='running'"):
            if _lock_is_free(Path(path)):
                self._execute(
                    "UPDATE runs SET status='interrupted', ended=? WHERE id=? AND status='running'",
                    (_now(), run_id),
                )

    # -- creating and reopening runs -----------------------------------------------------
    def start(self, system: str, name: str, config: Mapping[str, Any]) -> Run:
        """Create a run directory, write its config and index it as running."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{name}" if name else stamp
        parent = self.root / system
        parent.mkdir(parents=True, exist_ok=True)
        path = _make_unique_dir(parent, base)
        lock = _acquire_lock(path)
        (path / "config.json").write_text(json.dumps(dict(config), indent=2, default=str))
        rows = self._execute(
            "INSERT INTO runs (system, name, path, status, started, pid) "
            "VALUES (?, ?, ?, 'running', ?, ?) RETURNING id",
            (system, name, str(path.resolve()), _now(), os.getpid()),
        )
        return Run(self, rows[0][0], path, lock)

    def reopen(self, key: str | int) -> Run:
        """Continue an interrupted or failed run in place (its files are kept)."""
        record = self.get(key)
        if record.status == "running":
            raise UserError(f"run {record.label} is still running (another process holds it)")
        lock = _acquire_lock(record.path)
        self._execute(
            "UPDATE runs SET status='running', ended=NULL, pid=? WHERE id=?",
            (os.getpid(), record.id),
        )
        return Run(self, record.id, record.path, lock)

    # -- reading -------------------------------------------------------------------------
    def list(self, system: str | None = None) -> list[RunRecord]:
        """Every indexed run, oldest first, with dead runs already marked interrupted."""
        self._reconcile()
        sql = "SELECT id, system, name, path, status, started, ended, headline FROM runs"
        params: tuple = ()
        if system:
            sql += " WHERE system=?"
            params = (system,)
        return [_record(row) for row in self._execute(sql + " ORDER BY id", params)]

    def get(self, key: str | int) -> RunRecord:
        """A run by its numeric id, its directory name or its directory's path."""
        if Path(str(key)).is_dir():
            key = Path(str(key)).resolve().name
        for record in self.list():
            if str(record.id) == str(key) or record.label == str(key):
                return record
        raise UserError(f"no run {key!r} in {self.root}; `garagelab runs list` shows the ids")

    def directory(self, key: str) -> Path:
        """A run's directory, given as a path or as its id or directory name."""
        path = Path(key)
        return path if path.is_dir() else self.get(key).path

    def read_config(self, record: RunRecord) -> dict[str, Any]:
        """The run's config.json, or a clear error if it is missing or corrupt."""
        path = record.path / "config.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise UserError(f"{path} is missing; the run directory was altered") from exc
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} is not valid JSON ({exc}); restore the file or delete the run directory") from exc


class Run:
    """A live run: owns its directory lock, appends metrics, records the outcome."""

    def __init__(self, store: RunStore, run_id: int, path: Path, lock: Any) -> None:
        self.store = store
        self.id = run_id
        self.path = path
        self._lock = lock
        self._columns: list[str] = _read_columns(path / "metrics.csv")
        self._headline: dict[str, Any] = {}

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish("done")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("interrupted")
        else:
            self.finish("failed")

    def artifact(self, name: str) -> Path:
        """Path of an artifact file inside the run directory (parent folders created)."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, **metrics: Any) -> None:
        """Append one row to metrics.csv; new columns widen the file."""
        path = self.path / "metrics.csv"
        new = [key for key in metrics if key not in self._columns]
        if new and self._columns:
            with path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            self._columns += new
            with path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, self._columns)
                writer.writeheader()
                writer.writerows(rows)
        elif new:
            self._columns = list(metrics)
            with path.open("w", newline="") as handle:
                csv.DictWriter(handle, self._columns).writeheader()
        with path.open("a", newline="") as handle:
            csv.DictWriter(handle, self._columns).writerow(metrics)

    def rewind(self, column: str, last: float) -> int:
        """Drop the metrics.csv rows whose `column` is above `last`; returns how many went.

        A run resumed from a checkpoint redoes the rows it logged after that checkpoint, which
        would otherwise appear twice.
        """
        rows = list(iter_metrics(self.path))
        kept = [row for row in rows if not float(row.get(column) or "nan") > last]
        if len(kept) < len(rows):
            with (self.path / "metrics.csv").open("w", newline="") as handle:
                writer = csv.DictWriter(handle, self._columns)
                writer.writeheader()
                writer.writerows(kept)
        return len(rows) - len(kept)

    def set_headline(self, **metrics: Any) -> None:
        """Record the few numbers `runs list` shows for this run."""
        self._headline.update(metrics)
        self.store._execute(
            "UPDATE runs SET headline=? WHERE id=?",
            (json.dumps(self._headline, default=str), self.id),
        )

    def finish(self, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        if self._lock is None:
            return
        self.store._execute("UPDATE runs SET status=?, ended=? WHERE id=?", (status, _now(), self.id))
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()
        self._lock = None


def iter_metrics(path: Path) -> Iterator[dict[str, str]]:
    """Rows of a run's metrics.csv (empty if it has none)."""
    csv_path = path / "metrics.csv"
    if csv_path.exists():
        with csv_path.open(newline="") as handle:
            yield from csv.DictReader(handle)


def _record(row: tuple) -> RunRecord:
    run_id, system, name, path, status, started, ended, headline = row
    return RunRecord(run_id, system, name, Path(path), status, started, ended, json.loads(headline))


def _make_unique_dir(parent: Path, base: str) -> Path:
    for attempt in range(1, 1000):
        path = parent / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run directory named {base} in {parent}")


def _acquire_lock(path: Path) -> Any:
    handle = (path / LOCK_NAME).open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise UserError(f"run {path.name} is in use by another process") from exc
    handle.write(f"{os.getpid()} {time.time()}\n")
    handle.flush()
    return handle


def _lock_is_free(path: Path) -> bool:
    lock_path = path / LOCK_NAME
    if not lock_path.exists():
        return True
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def _read_columns(path: Path) -> list[str]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return next(csv.reader(handle), [])
