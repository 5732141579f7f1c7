#!/usr/bin/env bash
# One prepared run for a lent GPU machine (docs/kernels/README.md, "On a GPU"): the GPU tests of
# the verifier, then our verifier next to KernelBench's evaluation on the stored Triton
# candidates. Uses the machine's own Python (torch, triton); KernelBench's eval comes from a
# checkout's src/ in $KERNELBENCH (default .kernelbench/src) and its pydantic from .whl/ if present.
source "$(dirname "$0")/../gpu_setup.sh"
export PYTHONPATH=src:/tmp/site:${KERNELBENCH:-$PWD/.kernelbench/src}
chmod a+rw /dev/nvidia* 2>/dev/null  # sandboxed candidates run as nobody
{
  nvidia-smi -L
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
  echo "== GPU tests of the verifier"
  python3 -m pytest -q -p no:cacheprovider tests/kernels/test_gpu.py 2>&1 | tail -25
  echo "== our verifier vs KernelBench's eval_kernel_against_ref"
  python3 benchmarks/kernels/gpu_vs_kernelbench.py --out "$out/kernelbench.json"
} 2>&1 | tee "$out/kernels_gpu_check.txt"
