"""Where the wafer experiment scripts write their tables and figures."""

from pathlib import Path

RESULTS = Path(__file__).parent / "results"
