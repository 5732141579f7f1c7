"""Kernel backends: compile a candidate's kernel source, load it, call it on tensors."""
