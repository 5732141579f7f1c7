"""Shared parts of every system: errors, run store, progress, plots, HTML reports, the tour."""
