"""Our problems in KernelBench's format (single ops 01-15, fused 16-20); attention/ holds the attention suite."""
