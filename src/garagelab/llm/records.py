"""Every model call as a record, so runs can be audited and replayed."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from garagelab.core.errors import UserError
from garagelab.core.textfiles import read_user_text


@dataclass(frozen=True)
class CallRecord:
    """One request and what came back."""

    mode: str  # "chat" or "completion"
    request: dict[str, Any]  # the payload sent (messages or prompt, sampling settings)
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    model: str
    finish_reason: str = ""
    time: float = field(default_factory=time.time)

    @property
    def key(self) -> str:
        """What identifies the question: mode and messages or prompt (not sampling settings)."""
        return request_key(self.mode, self.request)


def request_key(mode: str, request: dict[str, Any]) -> str:
    body = request.get("messages") if mode == "chat" else request.get("prompt")
    return hashlib.sha256(json.dumps([mode, body], sort_keys=True).encode()).hexdigest()[:32]


class Recorder(Protocol):
    def record(self, call: CallRecord) -> None: ...


class JsonlRecorder:
    """Appends each call to a JSON-lines file (thread-safe)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, call: CallRecord) -> None:
        line = json.dumps(asdict(call))
        with self._lock, self.path.open("a") as handle:
            handle.write(line + "\n")


def read_jsonl(path: Path | str) -> list[CallRecord]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such recording; record calls with a JsonlRecorder or an evolve run first")
    records = []
    for number, line in enumerate(read_user_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if data.pop("kind", "llm_call") == "llm_call":  # `evolve export` mixes in programs
                records.append(CallRecord(**data))
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise UserError(f"{path} line {number}: not a call record ({exc})") from exc
    return records


class Replay:
    """Serves recorded answers: the next unused answer to the same question if there is one,
    otherwise the next unused answer in recording order (a replayed search asks different
    questions once its database diverges)."""

    def __init__(self, records: list[CallRecord]) -> None:
        if not records:
            raise UserError("nothing to replay: the recording is empty")
        self._by_key: dict[str, list[int]] = {}
        for index, call in enumerate(records):
            self._by_key.setdefault(call.key, []).append(index)
        self._records = records
        self._used: set[int] = set()
        self._next = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._records) - len(self._used)

    def answer(self, mode: str, request: dict[str, Any]) -> CallRecord:
        with self._lock:
            for index in self._by_key.get(request_key(mode, request), []):
                if index not in self._used:
                    self._used.add(index)
                    return self._records[index]
            while self._next < len(self._records) and self._next in self._used:
                self._next += 1
            if self._next >= len(self._records):
                raise UserError(f"the recording has no answers left ({len(self._records)} used)")
            self._used.add(self._next)
            return self._records[self._next]
