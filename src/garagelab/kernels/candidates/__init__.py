"""Correct reference kernels for some of our problems (each names its problem in a `# problem:` line)."""
