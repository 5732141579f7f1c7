"""A llama.cpp server on 127.0.0.1, started and stopped by garagelab."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from garagelab.core.errors import UserError
from garagelab.llm.client import ClientConfig
from garagelab.llm.install import DEFAULT_MODEL, llm_dir, model_path, server_path


def _die_with_parent() -> None:
    """In the server's child process, before exec: a SIGTERM when the process that started it
    dies (Linux's parent-death signal). A search or test killed with SIGTERM or SIGKILL runs no
    cleanup, and its server went on loading a core for as long as the machine stayed up."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not Linux: the server is stopped by `stop` only
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """`with LocalServer() as server: LLMClient(server.client_config())...`"""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        context: int = 4096,
        slots: int = 2,
        threads: int | None = None,
        port: int | None = None,
        startup_timeout_s: float = 120.0,
    ) -> None:
        self.binary = server_path()
        self.model = model_path(model)
        if not self.binary.exists():
            raise UserError(f"llama-server not found at {self.binary}; run `garagelab llm install` (make test does)")
        if not self.model.exists():
            raise UserError(f"model not found at {self.model}; run `garagelab llm install --model {model}`")
        self.context = context  # tokens per request (prompt and answer), for each of `slots` at once
        self.slots = slots
        # one core left to everything else: with a thread per core, llama.cpp's threads wait on
        # each other whenever any other process runs. On 2 cores beside a niced busy loop, a
        # 200-token answer of SmolLM2-135M took 1.4-1.6 s with 1 thread and had not come after 60 s
        # with 2; on an idle machine 2 threads took 1.3 s. A search's own evaluations are such processes.
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)
        self.port = port or _free_port()
        self.startup_timeout_s = startup_timeout_s
        self.log = llm_dir() / "logs" / f"server-{self.port}.log"
        self._process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def client_config(self, **changes) -> ClientConfig:
        return ClientConfig(base_url=self.base_url, model=self.model.stem, **changes)

    def start(self) -> LocalServer:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.binary),
            "-m",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "-c",
            str(self.context * self.slots),  # one KV pool shared by the slots: size it for all of them
            "-np",
            str(self.slots),
            "-t",
            str(self.threads),
            "--no-webui",
        ]
        with self.log.open("w") as handle:
            self._process = subprocess.Popen(
                command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent
            )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = "\n".join(self.log.read_text().splitlines()[-5:])
                raise UserError(f"llama-server exited with code {self._process.returncode}; see {self.log}:\n{tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.stop()
        raise UserError(f"llama-server did not become healthy within {self.startup_timeout_s:.0f} s; see {self.log}")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def available() -> bool:
    """Whether the local stack is installed (the server binary and the default model)."""
    return server_path().exists() and Path(model_path(DEFAULT_MODEL)).exists()
