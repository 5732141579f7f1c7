"""The program database: SQLite (WAL) with one writer, the engine's loop.

Every program is written when it is proposed and its evaluation when it ends, so a run killed
at any moment loses nothing evaluated: on resume, programs without an evaluation are simply
evaluated again. Model calls are stored beside them (they double as a replay corpus).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from garagelab.core.errors import UserError
from garagelab.evolve.sandbox import Outcome
from garagelab.llm.records import CallRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, name TEXT, task TEXT, config TEXT, created REAL
);
CREATE TABLE IF NOT EXISTS programs (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, parents TEXT NOT NULL, island INTEGER NOT NULL,
    proposer TEXT NOT NULL, ast_hash TEXT NOT NULL, size INTEGER NOT NULL, created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS programs_hash ON programs(ast_hash);
CREATE TABLE IF NOT EXISTS evaluations (
    program_id INTEGER PRIMARY KEY REFERENCES programs(id), score REAL, metrics TEXT, failure TEXT,
    message TEXT, seconds REAL, max_rss_kb INTEGER, fingerprint TEXT, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS llm_calls (
    id INTEGER PRIMARY KEY, program_id INTEGER, mode TEXT, request TEXT, text TEXT, prompt_tokens INTEGER,
    completion_tokens INTEGER, latency_s REAL, model TEXT, finish_reason TEXT, time REAL
);
"""


@dataclass(frozen=True)
class Program:
    id: int
    source: str
    parents: tuple[int, ...]
    island: int
    proposer: str
    ast_hash: str
    size: int
    score: float | None = None
    failure: str | None = None  # None: not evaluated yet
    metrics: dict | None = None

    @property
    def evaluated(self) -> bool:
        return self.failure is not None


class ProgramDB:
    """One search's programs, evaluations and model calls."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path} is not a readable program database ({exc})") from exc

    def close(self) -> None:
        self._db.close()

    # -- writing -----------------------------------------------------------------------------
    def start_run(self, name: str, task: str, config: dict) -> None:
        if not self._db.execute("SELECT 1 FROM runs").fetchone():
            self._db.execute(
                "INSERT INTO runs (name, task, config, created) VALUES (?, ?, ?, ?)",
                (name, task, json.dumps(config), time.time()),
            )

    def add_program(
        self, source: str, parents: tuple[int, ...], island: int, proposer: str, ast_hash: str, size: int
    ) -> int:
        cursor = self._db.execute(
            "INSERT INTO programs (source, parents, island, proposer, ast_hash, size, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (source, json.dumps(list(parents)), island, proposer, ast_hash, size, time.time()),
        )
        return int(cursor.lastrowid)

    def add_evaluation(self, program_id: int, outcome: Outcome) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO evaluations (program_id, score, metrics, failure, message, seconds, max_rss_kb, "
            "fingerprint, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                program_id,
                outcome.score,
                json.dumps(outcome.metrics),
                outcome.failure,
                outcome.message,
                outcome.seconds,
                outcome.max_rss_kb,
                outcome.fingerprint,
                time.time(),
            ),
        )

    def add_call(self, call: CallRecord, program_id: int | None = None) -> None:
        self._db.execute(
            "INSERT INTO llm_calls (program_id, mode, request, text, prompt_tokens, completion_tokens, latency_s, "
            "model, finish_reason, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                program_id,
                call.mode,
                json.dumps(call.request),
                call.text,
                call.prompt_tokens,
                call.completion_tokens,
                call.latency_s,
                call.model,
                call.finish_reason,
                call.time,
            ),
        )

    # -- reading -----------------------------------------------------------------------------
    def config(self) -> dict:
        row = self._db.execute("SELECT name, task, config FROM runs").fetchone()
        if row is None:
            raise UserError(f"{self.path} holds no run")
        return {"name": row[0], "task": row[1], "config": json.loads(row[2])}

    def programs(self) -> list[Program]:
        rows = self._db.execute(
            "SELECT p.id, p.source, p.parents, p.island, p.proposer, p.ast_hash, p.size, e.score, e.failure, "
            "e.metrics FROM programs p LEFT JOIN evaluations e ON e.program_id = p.id ORDER BY p.id"
        ).fetchall()
        return [
            Program(
                r[0],
                r[1],
                tuple(json.loads(r[2])),
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                r[8],
                json.loads(r[9]) if r[9] else None,
            )
            for r in rows
        ]

    def outcomes(self) -> dict[int, Outcome]:
        """Every evaluation as the sandbox reported it, by program id (a stopped loop resumes from them)."""
        rows = self._db.execute(
            "SELECT program_id, score, metrics, failure, message, seconds, max_rss_kb, fingerprint FROM evaluations"
        ).fetchall()
        return {r[0]: Outcome(r[1], json.loads(r[2]) if r[2] else {}, r[3], r[4], r[5], r[6], r[7]) for r in rows}

    def program(self, program_id: int) -> Program:
        for program in self.programs():
            if program.id == program_id:
                return program
        raise UserError(f"no program {program_id} in {self.path}")

    def hashes(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT ast_hash FROM programs")}

    def fingerprints(self) -> set[str]:
        rows = self._db.execute("SELECT fingerprint FROM evaluations WHERE fingerprint != '' AND failure = ''")
        return {row[0] for row in rows}

    def evaluated_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])

    def history(self) -> list[tuple[int, float | None, str, str]]:
        """(program id, score, failure, proposer) in evaluation order."""
        return [
            (r[0], r[1], r[2], r[3])
            for r in self._db.execute(
                "SELECT e.program_id, e.score, e.failure, p.proposer FROM evaluations e JOIN programs p "
                "ON p.id = e.program_id ORDER BY e.created, e.program_id"
            )
        ]

    def calls(self) -> list[CallRecord]:
        rows = self._db.execute(
            "SELECT mode, request, text, prompt_tokens, completion_tokens, latency_s, model, finish_reason, time "
            "FROM llm_calls ORDER BY id"
        ).fetchall()
        return [CallRecord(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]

    def call_totals(self) -> tuple[int, int, int, float, int]:
        """(calls, prompt tokens, completion tokens, mean latency in s, answers cut at the token
        limit) over every stored model call, summed here rather than by loading the calls."""
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
            "COALESCE(AVG(latency_s), 0.0), COALESCE(SUM(finish_reason = 'length'), 0) FROM llm_calls"
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2]), float(row[3]), int(row[4])

    def calls_by_model(self) -> list[tuple[str, int, int, int, float]]:
        """(model asked, calls, prompt tokens, completion tokens, mean latency in s) per model."""
        rows = self._db.execute(
            "SELECT COALESCE(json_extract(request, '$.model'), model), COUNT(*), SUM(prompt_tokens), "
            "SUM(completion_tokens), AVG(latency_s) FROM llm_calls GROUP BY 1 ORDER BY 1"
        )
        return [(str(r[0]), int(r[1]), int(r[2]), int(r[3]), float(r[4])) for r in rows]

    def failure_counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT failure, COUNT(*) FROM evaluations GROUP BY failure")
        return {(row[0] or "ok"): row[1] for row in rows}


def program_dict(program: Program) -> dict:
    return asdict(program)
