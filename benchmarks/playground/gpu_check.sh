#!/usr/bin/env bash
# The one prepared script for a lent GPU machine (issue #22; docs/playground/README.md, "GPU
# engines"): env steps/s of our MJX engine at 1k-16k envs for CartpoleBalance and the Go1, then
# PPO time-to-reward on both (gpu_train.sh), everything under $out with the device named first.
# MuJoCo Warp has no engine here yet (docs: tried, not shipped), so it is reported as not run.
# Budget: at most 9 minutes (120 + 180 + 240 s), within one 10-minute call; run it as
#   run(command="bash benchmarks/playground/gpu_check.sh", timeout_s=600)
source "$(dirname "$0")/../gpu_setup.sh"
export PYTHONPATH=src:/tmp/site JAX_DEFAULT_MATMUL_PRECISION=highest
{
  nvidia-smi -L
  python3 -c "import jax, mujoco; print('jax', jax.__version__, jax.devices(), 'mujoco', mujoco.__version__)"
  echo "== MJX env steps/s (random actions, jitted scan of the batched step)"
  timeout 120 python3 benchmarks/playground/bench_envs.py --impls ours-mjx \
    --envs CartpoleBalance,Go1JoystickFlatTerrain --num-envs 1024,4096,16384 --steps 200 --out "$out/mjx_envs.json"
  echo "== MJWarp env steps/s: not run (no MJWarp engine in garagelab yet)"
} 2>&1 | tee "$out/playground_gpu_check.txt"
# the training part with shorter limits, so the whole check fits one call
CARTPOLE_TIMEOUT=180 GO1_TIMEOUT=240 bash "$(dirname "$0")/gpu_train.sh"
