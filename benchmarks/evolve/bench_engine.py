"""garagelab evolve against OpenEvolve 0.4.0, measured in the same run on this machine.

1. Engine overhead: evaluations per second with a trivial evaluator and an instant model
   endpoint (`InstantEndpoint`, a stub that answers at once with a new program), so what is timed
   is each engine with its evaluation isolation. Also garagelab with the offline mutation
   proposer, which needs no model at all.
2. The toy task (fit-points) with the same local model for both (SmolLM2-135M served by
   llama-server on 127.0.0.1): best score after the same number of evaluations, and wall time.
3. Concurrent samplers (garagelab alone): a slow endpoint test double (`SlowEndpoint`, every
   answer after a fixed latency, 5 s as a remote model's) and the trivial task; evaluations
   per minute with 1 sampler and with N, against the goal of at least 0.8 x N times the serial
   rate (while the evaluations keep up).

OpenEvolve is installed by this script into its own virtual environment in the cache
(~/.cache/garagelab/bench/openevolve-0.4.0) the first time.

    .venv/bin/python benchmarks/evolve/bench_engine.py            # about 6 minutes on 2 cores
    .venv/bin/python benchmarks/evolve/bench_engine.py --quick
    .venv/bin/python benchmarks/evolve/bench_engine.py --case samplers   # part 3 alone, about 2 min
"""

from __future__ import annotations

import argparse
import http.server
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from trivial_task import TRIVIAL

from garagelab.core.paths import cache_dir
from garagelab.evolve.database import ProgramDB
from garagelab.evolve.engine import EngineConfig
from garagelab.evolve.live import summarize
from garagelab.evolve.search import SearchConfig, execute
from garagelab.evolve.tasks import TASKS
from garagelab.evolve.tasks.fit_points import TEMPLATE, X, Y
from garagelab.llm.server import LocalServer

OPENEVOLVE = "openevolve==0.4.0"
HERE = Path(__file__).resolve().parent
WORKERS = 2
TEMPERATURE = 0.8
MAX_TOKENS = 384


def openevolve_python() -> Path:
    """The interpreter of OpenEvolve's own environment, created on first use."""
    venv = cache_dir() / "bench" / OPENEVOLVE.replace("==", "-")
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        print(f"installing {OPENEVOLVE} into {venv} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", OPENEVOLVE], check=True
        )
        (venv / ".installed").touch()
    return python


class InstantEndpoint(http.server.BaseHTTPRequestHandler):
    """Stub OpenAI-compatible endpoint: answers every chat request at once with the template
    whose constant is new each time (so no answer is a duplicate)."""

    counter = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with InstantEndpoint.lock:
            InstantEndpoint.counter += 1
            constant = 0.5 + InstantEndpoint.counter * 1e-4
        program = marked(TEMPLATE.replace("0.5 * x", f"{constant:.4f} * x"))
        message = {"role": "assistant", "content": f"```python\n{program}```"}
        reply = {
            "model": "instant",
            "choices": [{"message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


class SlowEndpoint(InstantEndpoint):
    """The instant stub, answering each request after `latency_s` (requests overlap: the
    server runs one thread per request, as a hosted endpoint serves many clients)."""

    latency_s = 5.0

    def do_POST(self) -> None:
        time.sleep(SlowEndpoint.latency_s)
        super().do_POST()


def marked(program: str) -> str:
    """OpenEvolve evolves what lies between its EVOLVE-BLOCK markers."""
    head, _, function = program.partition("def f")
    return f"{head}# EVOLVE-BLOCK-START\ndef f{function}# EVOLVE-BLOCK-END\n"


def openevolve_evaluator(folder: Path, trivial: bool) -> Path:
    """The same scores as garagelab's tasks, as an OpenEvolve evaluator file."""
    path = folder / ("trivial_evaluator.py" if trivial else "fit_points_evaluator.py")
    if trivial:
        path.write_text('def evaluate(program_path):\n    return {"combined_score": 0.0}\n')
        return path
    path.write_text(
        "import importlib.util\nimport numpy as np\n\n"
        f"X = np.array({X.tolist()})\nY = np.array({Y.tolist()})\n\n\n"
        "def evaluate(program_path):\n"
        "    spec = importlib.util.spec_from_file_location('candidate', program_path)\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    try:\n"
        "        spec.loader.exec_module(module)\n"
        "        y = np.asarray(module.f(X.copy()), dtype=float)\n"
        "    except Exception as exc:\n"
        "        return {'combined_score': -1e9, 'error': str(exc)}\n"
        "    if y.shape != X.shape or not np.all(np.isfinite(y)):\n"
        "        return {'combined_score': -1e9}\n"
        "    return {'combined_score': -float(np.mean((y - Y) ** 2))}\n"
    )
    return path


def run_openevolve(python: Path, api_base: str, model: str, evaluations: int, trivial: bool, folder: Path) -> dict:
    program = folder / "initial_program.py"
    program.write_text(marked(TEMPLATE))
    args = {
        "api_base": api_base,
        "model": model,
        "iterations": evaluations - 1,
        "workers": WORKERS,
        "temperature": TEMPERATURE,
        "max_tokens": MAX_TOKENS,
        "program": str(program),
        "evaluator": str(openevolve_evaluator(folder, trivial)),
    }
    done = subprocess.run(
        [str(python), str(HERE / "openevolve_side.py"), json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=folder,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"OpenEvolve failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def run_garagelab(
    task: str,
    proposers: tuple[str, ...],
    evaluations: int,
    folder: Path,
    api_base: str = "",
    model: str = "",
    samplers: int = 1,
) -> dict:
    engine = EngineConfig(
        budget=evaluations, islands=2, workers=WORKERS, samplers=samplers, seed=0, max_failed_proposals=50
    )
    config = SearchConfig(
        task=task,
        proposers=proposers,
        engine=engine,
        llm=api_base or "local",
        model=model,
        temperature=TEMPERATURE,
        max_tokens=MAX_TOKENS,
    )
    path = folder / f"{task}-{'-'.join(proposers)}-{time.monotonic_ns()}.sqlite"
    start = time.perf_counter()
    best = execute(config, path, progress=False)
    seconds = time.perf_counter() - start
    db = ProgramDB(path)
    summary = summarize(db)
    db.close()
    return {
        "best": best.score if best else float("nan"),
        "evaluations": summary.evaluated,
        "seconds": seconds,
        "calls": summary.llm["calls"],
    }


def show(name: str, ours: float, theirs: float) -> None:
    ratio = ours / theirs if np.isfinite(theirs) and theirs != 0 else float("nan")
    print(f"{name:44s}{ours:12.4g}{theirs:12.4g}{ratio:9.2f}", flush=True)


def rate(result: dict) -> float:
    return result["evaluations"] / result["seconds"]


def samplers_case(samplers: int, latency_s: float, folder: Path) -> None:
    """Evaluations per minute against a slow endpoint, 1 sampler against `samplers`."""
    SlowEndpoint.latency_s = latency_s
    stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowEndpoint)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{stub.server_address[1]}/v1"
    try:
        serial = run_garagelab("trivial", ("llm",), 7, folder, url, "slow")
        parallel = run_garagelab("trivial", ("llm",), 4 * samplers + 1, folder, url, "slow", samplers)
    finally:
        stub.shutdown()
    one, many = 60 * rate(serial), 60 * rate(parallel)
    print(
        f"slow endpoint ({latency_s:g} s per answer), trivial task, {WORKERS} workers: "
        f"1 sampler {one:.1f} evaluations/min, {samplers} samplers {many:.1f}: {many / one:.2f}x "
        f"(goal >= {0.8 * samplers:.1f}x)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer evaluations (a smoke test)")
    parser.add_argument("--case", choices=("all", "samplers"), default="all", help="everything, or part 3 alone")
    parser.add_argument("--samplers", type=int, default=4, help="samplers for part 3")
    args = parser.parse_args()
    overhead_n, toy_n = (30, 8) if args.quick else (120, 32)
    TASKS[TRIVIAL.name] = TRIVIAL
    with tempfile.TemporaryDirectory() as tmp:
        samplers_case(args.samplers, 1.0 if args.quick else 5.0, Path(tmp))
    if args.case == "samplers":
        return
    python = openevolve_python()
    print(f"{WORKERS} evaluations in parallel; ratio = garagelab / OpenEvolve (scores: minus MSE, nearer 0 is better)")
    print(f"{'':44s}{'garagelab':>12s}{'OpenEvolve':>12s}{'ratio':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), InstantEndpoint)
        threading.Thread(target=stub.serve_forever, daemon=True).start()
        stub_url = f"http://127.0.0.1:{stub.server_address[1]}/v1"
        ours = run_garagelab("trivial", ("llm",), overhead_n, folder, stub_url, "instant")
        offline = run_garagelab("trivial", ("mutation",), overhead_n, folder)
        theirs = run_openevolve(python, stub_url, "instant", overhead_n, True, folder)
        stub.shutdown()
        show(f"evaluations/s, {overhead_n} evals, stub model", rate(ours), rate(theirs))
        show(f"evaluations/s, {overhead_n} evals, offline mutations", rate(offline), float("nan"))
        with LocalServer(slots=WORKERS) as server:  # the same local model for both
            model = server.model.stem
            ours = run_garagelab("fit-points", ("llm",), toy_n, folder, server.base_url, model)
            theirs = run_openevolve(python, server.base_url, model, toy_n, False, folder)
        show(f"fit-points best score after {toy_n} evals (SmolLM2)", ours["best"], theirs["best"])
        show("fit-points wall time s", ours["seconds"], theirs["seconds"])
        show("fit-points evaluations/s", rate(ours), rate(theirs))


if __name__ == "__main__":
    main()
