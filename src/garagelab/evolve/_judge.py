"""The judge process (trusted); run by `judge.JudgeProcess`, one per pool worker.

Protocol on stdin/stdout, one JSON line each way: first the task's spec (Task.spec), answered
{"ready": true} or a failure; then per candidate {"source", "fingerprints"}, answered with the
judge's result plus the seconds and peak memory of the evaluation. This process loads the
task's judge (and its data) and starts the task's sandbox; it never executes candidate code:
the sandbox's children do, and only their answers (data) reach this process.
"""

from __future__ import annotations

import json
import math
import sys
import time
import traceback

from garagelab.evolve.judge import Invalid, static_refusal
from garagelab.evolve.sandbox import CandidateFailed, Limits, Sandbox, resolve


def judge_one(judge, sandbox: Sandbox, spec: dict, source: str, fingerprints: set[str]) -> dict:
    """The static checks; then start the candidate, let the judge question it, stop it; the
    judge's result."""
    start = time.monotonic()
    rss = 0
    try:
        result = static_refusal(spec, source)
        if result is None:
            with sandbox.start(source, Limits(**spec["limits"])) as candidate:
                try:
                    result = judge(candidate, fingerprints)
                finally:
                    rss = candidate.stop().max_rss_kb
    except CandidateFailed as exc:
        result = {"failure": exc.kind, "message": exc.message}
    except Invalid as exc:
        result = {"failure": "invalid", "message": str(exc)}
    except Exception as exc:  # the judge's own error on this candidate's answer: fails it, not the run
        result = {"failure": "task_error", "message": "".join(traceback.format_exception(exc)[-3:])[-1500:]}
    if not isinstance(result, dict):
        result = {"failure": "task_error", "message": f"the judge returned {type(result).__name__}, not a dict"}
    return {**result, "seconds": time.monotonic() - start, "max_rss_kb": rss}


def plain(value):
    """`value` as JSON can hold it: NumPy scalars as numbers, non-finite numbers as null."""
    if hasattr(value, "item") and not isinstance(value, dict | list | tuple | str):
        value = value.item() if getattr(value, "size", 1) == 1 else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    try:
        judge = resolve(spec["judge"])
        judge = judge(**spec["context"]) if spec["context"] else judge  # a factory: the task's data, once
        preload, view = tuple(spec["preload"]), tuple(spec["view"])
        sandbox = Sandbox(spec["serve"], preload, spec["globals"], spec["environment"], view)
    except Exception as exc:  # the task, not a candidate, is broken
        message = f"cannot start the judge of task {spec.get('name')}: {type(exc).__name__}: {exc}"
        print(json.dumps({"failure": "task_error", "message": message}), flush=True)
        return
    if "failure" in sandbox.ready:
        print(json.dumps(sandbox.ready), flush=True)
        return
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        result = judge_one(judge, sandbox, spec, job["source"], set(job["fingerprints"]))
        print(json.dumps(plain(result)), flush=True)


if __name__ == "__main__":
    main()
