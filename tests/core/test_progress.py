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
