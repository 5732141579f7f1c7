"""One client for any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp, DeepSeek, OpenAI).

Chat (`/chat/completions`) and completion (`/completions`) modes, a timeout per request,
retries with backoff on connection errors, 429 and 5xx, a limit on calls in flight, token
accounting, and a recorder that keeps every call. The API key is read from the environment
variable the config names, so it never sits in a config file or a run directory.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from typing import Any

from garagelab.core.errors import UserError
from garagelab.llm.records import CallRecord, Recorder, Replay


class LLMError(UserError):
    """The endpoint could not be reached or answered with an error."""


@dataclass(frozen=True)
class ClientConfig:
    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = "local"
    api_key_env: str = ""  # name of the environment variable holding the key, if any
    timeout_s: float = 120.0
    retries: int = 3
    backoff_s: float = 1.0
    concurrency: int = 2  # calls in flight at once
    calls_per_minute: float = 0.0  # starts spaced 60/N s apart (a hosted API's rate limit); 0: none
    max_tokens: int = 256
    temperature: float = 0.8


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class LLMClient:
    """Thread-safe: up to `config.concurrency` calls in flight, the rest wait; with
    `config.calls_per_minute`, call starts are spaced evenly to stay within it."""

    def __init__(self, config: ClientConfig, recorder: Recorder | None = None) -> None:
        self.config = config
        self.recorder = recorder
        self.usage = Usage()
        self._gate = threading.BoundedSemaphore(max(1, config.concurrency))
        self._lock = threading.Lock()
        self._next_start = 0.0  # time.monotonic() before which no call may start

    def _pace(self) -> None:
        """Wait for this call's turn under the rate limit (turns are handed out in order)."""
        if not self.config.calls_per_minute:
            return
        with self._lock:
            turn = max(time.monotonic(), self._next_start)
            self._next_start = turn + 60.0 / self.config.calls_per_minute
        time.sleep(max(0.0, turn - time.monotonic()))

    def chat(self, messages: list[dict[str, str]], **settings: Any) -> CallRecord:
        return self._call("chat", {"messages": messages}, settings)

    def complete(self, prompt: str, **settings: Any) -> CallRecord:
        return self._call("completion", {"prompt": prompt}, settings)

    def _call(self, mode: str, body: dict[str, Any], settings: dict[str, Any]) -> CallRecord:
        request = {
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
            **body,
            **settings,
        }
        path = "/chat/completions" if mode == "chat" else "/completions"
        start = time.perf_counter()
        with self._gate:
            self._pace()
            reply = self._post(path, request)
        latency = time.perf_counter() - start
        try:
            choice = reply["choices"][0]
            text = choice["message"]["content"] if mode == "chat" else choice["text"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"{self.config.base_url}{path}: unexpected reply {str(reply)[:200]!r}") from exc
        usage = reply.get("usage") or {}
        call = CallRecord(
            mode=mode,
            request=request,
            text=text or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=latency,
            model=str(reply.get("model", self.config.model)),
            finish_reason=str(choice.get("finish_reason") or ""),
        )
        with self._lock:
            self.usage.calls += 1
            self.usage.prompt_tokens += call.prompt_tokens
            self.usage.completion_tokens += call.completion_tokens
            self.usage.seconds += latency
        if self.recorder is not None:
            self.recorder.record(call)
        return call

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.config.api_key_env:
            key = os.environ.get(self.config.api_key_env)
            if not key:
                raise LLMError(f"environment variable {self.config.api_key_env} (the API key) is not set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.config.base_url.rstrip("/") + path
        data = json.dumps(payload).encode()
        last = ""
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            try:
                request = urllib.request.Request(url, data=data, headers=self._headers(), method="POST")
                with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read()[:200]!r}"
                if exc.code != 429 and exc.code < 500:
                    break  # a client error will not go away by retrying
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        raise LLMError(
            f"{url}: {last} after {self.config.retries + 1} attempt(s); check that the server is running "
            "(`garagelab llm serve`) and base_url"
        )


class ReplayClient(LLMClient):
    """A test double and a replay tool: answers from a recording instead of an endpoint."""

    def __init__(self, replay: Replay, config: ClientConfig | None = None, recorder: Recorder | None = None) -> None:
        super().__init__(config or ClientConfig(), recorder)
        self.replay = replay

    def _call(self, mode: str, body: dict[str, Any], settings: dict[str, Any]) -> CallRecord:
        call = self.replay.answer(mode, {**body, **settings})
        with self._lock:
            self.usage.calls += 1
        if self.recorder is not None:
            self.recorder.record(replace(call))
        return call
