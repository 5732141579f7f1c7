"""The model client's own cost per call: garagelab's urllib client against httpx, same run.

Issue #23 asked whether the client (written over urllib: a new connection per call, its own
retries and concurrency gate) should move to the ecosystem's (httpx with a kept-alive
connection pool, or the openai SDK built on it) now that several samplers call at once. What
matters is the client's time per call beside a model's answer (0.1 s on a fast hosted model, 5-60 s on
the ones a search uses). An instant stub endpoint (bench_engine's `InstantEndpoint` on HTTP/1.1, so httpx keeps
its connections) answers every request at once, so only the clients and the loopback are timed,
with 1 and 8 threads calling at once.

    .venv/bin/python benchmarks/evolve/bench_client.py [--calls 400]
"""

from __future__ import annotations

import argparse
import http.server
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from bench_engine import InstantEndpoint

from garagelab.llm.client import ClientConfig, LLMClient


class InstantStub(InstantEndpoint):
    """bench_engine's instant endpoint, keeping connections open (HTTP/1.1) so that httpx's pool
    is timed as it would be used."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, a kept-alive connection waits
        # ~40 ms per call on the client's delayed ACK (Nagle), which would be timed as httpx's
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def calls_per_second(call, calls: int, threads: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: call(), range(calls)))
    return calls / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), InstantStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    messages = [{"role": "user", "content": "Write f."}]
    print(f"{args.calls} calls to an instant stub on loopback; calls/s (ms per call)")
    print(f"{'threads':>8s}{'garagelab (urllib)':>22s}{'httpx.Client':>18s}{'ratio':>8s}")
    with httpx.Client(base_url=url, timeout=30.0, limits=httpx.Limits(max_connections=8)) as session:
        for threads in (1, 8):
            ours = LLMClient(ClientConfig(base_url=url, model="stub", concurrency=threads))

            def theirs() -> dict:
                body = {"model": "stub", "messages": messages, "max_tokens": 256, "temperature": 0.8}
                return session.post("/chat/completions", json=body).json()

            rate_ours = calls_per_second(lambda ours=ours: ours.chat(messages), args.calls, threads)
            rate_theirs = calls_per_second(theirs, args.calls, threads)
            print(
                f"{threads:8d}{rate_ours:14.0f} ({1e3 / rate_ours:4.2f}){rate_theirs:10.0f} ({1e3 / rate_theirs:4.2f})"
                f"{rate_ours / rate_theirs:8.2f}",
                flush=True,
            )
    server.shutdown()


if __name__ == "__main__":
    main()
