#!/usr/bin/env bash
# One prepared run for a lent GPU machine (see docs/distill/README.md, "Speed"): the full
# 43,200-start fit with JAX on the GPU and, on the same machine, with JAX on its CPUs; then the
# quick sweep of tiny models on the GPU. Uses the machine's own Python (jax, scipy, optax...).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH=src PYTHONUNBUFFERED=1
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
{
  nvidia-smi -L
  python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
  echo "== fit on the GPU"
  python3 benchmarks/distill/bench_fit.py --baseline-starts 200 2>&1 | grep -v " eta "
  echo "== fit with JAX on this machine's CPUs ($(nproc) cores)"
  JAX_PLATFORMS=cpu python3 benchmarks/distill/bench_fit.py --baseline-starts 200 2>&1 | grep -v " eta "
  echo "== quick sweep of tiny models on the GPU"
  start=$(date +%s)
  GARAGELAB_RUNS=/tmp/gpu_runs python3 -m garagelab distill run --preset quick 2>&1 | tail -2
  echo "sweep seconds: $(( $(date +%s) - start ))"
} 2>&1 | tee "$out/gpu_check.txt"
