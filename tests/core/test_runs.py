from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from garagelab.cli import main
from garagelab.core.errors import UserError
from garagelab.core.runs import RunStore, iter_metrics


def test_run_lifecycle_writes_dir_config_metrics_and_index(runs_dir: Path) -> None:
    store = RunStore()
    with store.start("distill", "fit", {"starts": 10}) as run:
        run.log(step=1, loss=2.5)
        run.log(step=2, loss=2.4, lr=0.1)  # a new column widens the file
        run.set_headline(loss=2.4)
        assert store.get(run.id).status == "running"
    (record,) = store.list()
    assert record.status == "done" and record.ended
    assert record.path.parent == runs_dir / "distill"
    assert record.label.endswith("-fit") and len(record.label) == len("20261127-101010-fit")
    assert store.read_config(record) == {"starts": 10}
    rows = list(iter_metrics(record.path))
    assert rows == [
        {"step": "1", "loss": "2.5", "lr": ""},
        {"step": "2", "loss": "2.4", "lr": "0.1"},
    ]
    assert record.headline == {"loss": 2.4}
    assert store.get(record.label) == record


def test_exception_marks_failed_and_ctrl_c_interrupted() -> None:
    store = RunStore()
    with pytest.raises(RuntimeError), store.start("x", "a", {}):
        raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt), store.start("x", "b", {}):
        raise KeyboardInterrupt
    assert [r.status for r in store.list()] == ["failed", "interrupted"]


def _write_runs(root: str, worker: int, count: int) -> None:
    store = RunStore(root)
    for i in range(count):
        with store.start("stress", f"w{worker}-{i}", {"worker": worker, "i": i}) as run:
            run.log(i=i)
            run.set_headline(worker=worker)


def test_two_processes_write_runs_at_once(runs_dir: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_runs, args=(str(runs_dir), w, 15)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    records = RunStore().list()
    assert len(records) == 30
    assert len({r.path for r in records}) == 30
    assert all(r.status == "done" for r in records)
    assert sorted(r.name for r in records) == sorted(f"w{w}-{i}" for w in range(2) for i in range(15))


def test_sigkilled_run_shows_interrupted(runs_dir: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from garagelab.core.runs import RunStore
        run = RunStore(sys.argv[1]).start("slow", "victim", {})
        run.log(step=1)
        print(run.id, flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(runs_dir)], stdout=subprocess.PIPE, text=True)
    run_id = int(proc.stdout.readline())
    store = RunStore()
    assert store.get(run_id).status == "running"  # alive: its lock is held
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    record = store.get(run_id)
    assert record.status == "interrupted" and record.ended
    # an interrupted run can be continued in place
    with store.reopen(run_id) as run:
        run.log(step=2)
    assert store.get(run_id).status == "done"
    assert [row["step"] for row in iter_metrics(record.path)] == ["1", "2"]


def test_corrupt_config_gives_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore()
    with store.start("distill", "broken", {"a": 1}) as run:
        pass
    (run.path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match=r"config.json is not valid JSON"):
        store.read_config(store.get(run.id))
    assert main(["runs", "show", str(run.id)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config.json is not valid JSON" in err


def test_corrupt_index_gives_clear_error(runs_dir: Path) -> None:
    runs_dir.mkdir(parents=True)
    (runs_dir / "index.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError, match="not a readable run index"):
        RunStore().list()


def test_a_runs_directory_that_cannot_be_one_gives_a_clear_error(tmp_path: Path) -> None:
    """A file where the directory should be, or a path under one: each was an internal error."""
    taken = tmp_path / "taken"
    taken.write_text("a file")
    with pytest.raises(UserError, match="is a file, not a directory; give another with --runs-dir"):
        RunStore(taken).list()
    with pytest.raises(UserError, match="cannot use it"):
        RunStore(taken / "runs").list()


def test_runs_list_and_show_cli(capsys: pytest.CaptureFixture[str]) -> None:
    with RunStore().start("distill", "shown", {"k": 3}) as run:
        run.log(step=1, loss=1.5)
        run.set_headline(loss=1.5)
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert "shown" in out and "done" in out and "loss=1.5" in out
    assert main(["runs", "show", run.path.name]) == 0
    out = capsys.readouterr().out
    assert json.dumps({"k": 3}, indent=2) in out and "metrics.csv" in out


def test_rewind_drops_the_rows_after_a_checkpoint(runs_dir: Path) -> None:
    with RunStore(runs_dir).start("playground", "rewound", {}) as run:
        for iteration in range(1, 6):
            run.log(iteration=iteration, loss=1 / iteration)
        assert run.rewind("iteration", 3) == 2
        run.log(iteration=4, loss=0.2)
    assert [row["iteration"] for row in iter_metrics(run.path)] == ["1", "2", "3", "4"]
