"""The client against the real local llama.cpp server, plus retries against a flaky endpoint
(a clearly named test double: an HTTP server that fails on purpose)."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest

from garagelab.llm.client import ClientConfig, LLMClient, LLMError, ReplayClient
from garagelab.llm.records import JsonlRecorder, Replay, read_jsonl
from garagelab.llm.server import LocalServer, available


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    if not available():
        pytest.fail("the local model stack is missing: run `python -m garagelab.llm.install` (make test does)")
    with LocalServer(context=1024) as running:
        yield running


def test_chat_with_the_local_model(server: LocalServer) -> None:
    client = LLMClient(server.client_config(max_tokens=24, temperature=0.0))
    call = client.chat([{"role": "user", "content": "Write a Python function that doubles x."}])
    assert call.text.strip()
    assert call.prompt_tokens > 5 and 0 < call.completion_tokens <= 24
    assert call.mode == "chat" and call.request["messages"][0]["role"] == "user"
    assert client.usage.calls == 1 and client.usage.completion_tokens == call.completion_tokens


def test_completion_mode_is_deterministic_at_temperature_zero(server: LocalServer) -> None:
    client = LLMClient(server.client_config(max_tokens=16, temperature=0.0))
    first, second = (client.complete("def add(a, b):\n    return") for _ in range(2))
    assert first.text == second.text and first.text.strip()
    assert first.finish_reason in ("length", "stop")


def test_concurrent_calls_share_the_server(server: LocalServer) -> None:
    client = LLMClient(server.client_config(max_tokens=8, concurrency=2))
    with ThreadPoolExecutor(4) as pool:
        calls = list(pool.map(lambda i: client.complete(f"{i} + {i} ="), range(4)))
    assert len(calls) == 4 and client.usage.calls == 4


def test_calls_are_recorded_and_replayed(server: LocalServer, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    live = LLMClient(server.client_config(max_tokens=12), recorder=JsonlRecorder(path))
    messages = [{"role": "user", "content": "Name a prime number."}]
    original = live.chat(messages)
    records = read_jsonl(path)
    assert [r.text for r in records] == [original.text]
    replayed = ReplayClient(Replay(records)).chat(messages)
    assert replayed.text == original.text and replayed.prompt_tokens == original.prompt_tokens


def test_a_client_error_is_not_retried(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = _count_attempts(monkeypatch)
    client = LLMClient(server.client_config(retries=3, backoff_s=0.0))
    with pytest.raises(LLMError, match="HTTP 400"):
        client.chat("not a list of messages")  # type: ignore[arg-type]
    assert attempts == [1]


def test_an_unreachable_endpoint_is_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = _count_attempts(monkeypatch)
    client = LLMClient(ClientConfig(base_url="http://127.0.0.1:9/v1", retries=2, backoff_s=0.0, timeout_s=2))
    with pytest.raises(LLMError, match=r"127\.0\.0\.1:9/v1/chat/completions.*3 attempt"):
        client.chat([{"role": "user", "content": "hi"}])
    assert attempts == [3]


def test_a_missing_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GARAGELAB_TEST_KEY", raising=False)
    client = LLMClient(ClientConfig(api_key_env="GARAGELAB_TEST_KEY"))
    with pytest.raises(LLMError, match="GARAGELAB_TEST_KEY"):
        client.chat([{"role": "user", "content": "hi"}])


class FlakyEndpoint(http.server.BaseHTTPRequestHandler):
    """Test double: answers 503 twice, then a valid OpenAI-style reply; checks the API key."""

    failures_left = 2
    keys: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        FlakyEndpoint.keys.append(self.headers.get("Authorization", ""))
        if FlakyEndpoint.failures_left > 0:
            FlakyEndpoint.failures_left -= 1
            self.send_response(503)
            self.end_headers()
            return
        _answer(self, {"model": "flaky", "usage": {"prompt_tokens": 3, "completion_tokens": 1}})

    def log_message(self, *args) -> None:
        pass


def _answer(handler: http.server.BaseHTTPRequestHandler, body: dict) -> None:
    """An OpenAI-style reply whose answer is "ok", with `body`'s fields."""
    data = json.dumps({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}], **body}).encode()
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def test_server_errors_are_retried_with_the_key_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARAGELAB_TEST_KEY", "sk-test")
    endpoint = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyEndpoint)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{endpoint.server_address[1]}/v1"
        client = LLMClient(ClientConfig(base_url=url, api_key_env="GARAGELAB_TEST_KEY", retries=3, backoff_s=0.0))
        call = client.chat([{"role": "user", "content": "hi"}])
    finally:
        endpoint.shutdown()
    assert call.text == "ok" and call.completion_tokens == 1
    assert FlakyEndpoint.keys == ["Bearer sk-test"] * 3


def _count_attempts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    attempts = [0]
    real = urllib.request.urlopen

    def counting(*args, **kwargs):
        attempts[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", counting)
    return attempts


def test_a_killed_owner_takes_its_server_with_it(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    if not available():
        pytest.fail("the local model stack is missing: run `python -m garagelab.llm.install` (make test does)")
    script = (
        "import time\nfrom garagelab.llm.server import LocalServer\n"
        "server = LocalServer(context=1024, slots=1).start()\nprint(server._process.pid, flush=True)\ntime.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(owner.stdout.readline())
    os.kill(owner.pid, signal.SIGKILL)  # no cleanup runs: only the parent-death signal can stop the server
    owner.wait()
    for _ in range(300):
        state = subprocess.run(["ps", "-p", str(child), "-o", "stat="], capture_output=True, text=True).stdout
        if state.strip() in ("", "Z"):  # gone (or a zombie waiting for init to reap it)
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the server outlived the process that started it")


class TimedEndpoint(http.server.BaseHTTPRequestHandler):
    """Test double: answers at once and notes when each request arrived."""

    arrivals: ClassVar[list[float]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        TimedEndpoint.arrivals.append(time.monotonic())
        _answer(self, {"model": "timed"})

    def log_message(self, *args) -> None:
        pass


def test_a_rate_limit_spaces_concurrent_calls() -> None:
    endpoint = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TimedEndpoint)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{endpoint.server_address[1]}/v1"
    try:
        client = LLMClient(ClientConfig(base_url=url, concurrency=4, calls_per_minute=600))  # one per 0.1 s
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: client.chat([{"role": "user", "content": "hi"}]), range(6)))
    finally:
        endpoint.shutdown()
    arrivals = sorted(TimedEndpoint.arrivals)
    # four threads, yet the six calls are spread over five intervals of 0.1 s (without the limit:
    # a few ms); the span, not each gap, so that loopback jitter on one request cannot fail it
    assert len(arrivals) == 6 and arrivals[-1] - arrivals[0] >= 0.45


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--port", "70000"], "--port: 70000 is more than 65,535"),  # was printed as served
        (["serve", "--slots", "0"], "--slots: 0 must be at least 1"),  # llama-server's own usage text
        (["chat", "--max-tokens", "0", "hi"], "--max-tokens: 0 must be at least 1"),  # asked for 1 token
    ],
)
def test_llm_options_out_of_range_are_refused_before_a_server_starts(argv: list[str], message: str, capsys) -> None:
    from garagelab.cli import main

    assert main(["llm", *argv]) == 2
    assert message in capsys.readouterr().err
