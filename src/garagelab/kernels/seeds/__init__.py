"""Seed kernels with tunable knobs (`# tune:`) for the offline proposer, named after their problems."""
