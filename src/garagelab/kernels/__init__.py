"""kernels: verifier-guided GPU kernel generation (NVIDIA R1 + verifier loop, KernelBench)."""
