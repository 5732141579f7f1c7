from __future__ import annotations

import io

from garagelab.core.progress import ProgressBar, track


def test_log_mode_prints_rate_and_eta() -> None:
    stream = io.StringIO()  # not a tty: periodic plain lines
    with ProgressBar(4, "fit", unit="starts", interval=0.0, stream=stream) as bar:
        for _ in range(4):
            bar.advance(postfix="loss 1.0")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("fit: 1/4 (25%)") and "starts/s" in lines[0] and "eta " in lines[0]
    assert lines[-1].startswith("fit: 4/4 (100%)") and "loss 1.0" in lines[-1]


def test_track_yields_everything() -> None:
    assert list(track(range(5), "count")) == [0, 1, 2, 3, 4]


def test_the_rate_leaves_out_the_first_update_and_earlier_work(monkeypatch) -> None:
    from garagelab.core import progress

    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    with ProgressBar(10_000_000, "ppo", unit="steps", interval=0.0, stream=stream, start=6_000_000) as bar:
        clock[0] = 300.0  # a first iteration that compiled for five minutes
        bar.advance(1000)
        assert bar.rate == 0 and bar.eta_seconds() is None
        clock[0] = 301.0
        bar.advance(1000, postfix="return 900.0")
        assert bar.rate == 1000 and bar.eta_seconds() == (10_000_000 - 6_002_000) / 1000
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("ppo: 6,001,000/10,000,000 (60%)") and "eta ?" in lines[0]
    assert "1k steps/s" in lines[1] and "return 900.0" in lines[1]
