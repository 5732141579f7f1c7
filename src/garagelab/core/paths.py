"""Where garagelab keeps what it fetches or builds once and reuses across checkouts."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$GARAGELAB_CACHE`, else ~/.cache/garagelab (outside any clone, so builds are reused)."""
    return Path(os.environ.get("GARAGELAB_CACHE", Path.home() / ".cache" / "garagelab"))
