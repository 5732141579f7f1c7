"""Distillation scaling laws (Busbridge et al. 2025): fit, predict, plan compute."""
