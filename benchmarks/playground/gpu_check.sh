#!/usr/bin/env bash
# The one prepared script for a lent GPU machine (issue #22; docs/playground/README.md, "On a
# GPU"): env steps/s of our MJX and Warp engines at 1k-16k envs for CartpoleBalance and the Go1,
# then PPO time-to-reward on both (gpu_train.sh), everything under $out with the device named first.
# Budget: at most 9 minutes (60 + 60 + 180 + 240 s), within one 10-minute call; run it as
#   run(command="bash benchmarks/playground/gpu_check.sh", timeout_s=600, carry=[".whl"])
# The Warp part needs warp-lang on the device, and its wheel (149 MB) is over one call's 64 MiB
# carry. Bring it in parts on a warm machine (ignored files stay there between calls):
#   here: mkdir -p .whlparts && split -b 60M warp_lang-1.19.0-py3-none-manylinux_2_28_x86_64.whl .whlparts/warp.
#   then one call per part (carry [".whlparts/warp.aa"], ...), each `mkdir -p /tmp/parts && cp .whlparts/* /tmp/parts/`,
#   and this script reassembles /tmp/parts/warp.* into the wheel before installing .whl/.
# Without it the Warp rows say "failed: ... No module named 'warp'" and the rest still runs.
if compgen -G "/tmp/parts/warp.*" >/dev/null; then
  mkdir -p "$(dirname "$0")/../../.whl"
  cat /tmp/parts/warp.* >"$(dirname "$0")/../../.whl/warp_lang-1.19.0-py3-none-manylinux_2_28_x86_64.whl"
fi
source "$(dirname "$0")/../gpu_setup.sh"
export PYTHONPATH=src:/tmp/site JAX_DEFAULT_MATMUL_PRECISION=highest
{
  nvidia-smi -L
  python3 -c "import jax, mujoco; print('jax', jax.__version__, jax.devices(), 'mujoco', mujoco.__version__)"
  echo "== MJX env steps/s (random actions, jitted scan of the batched step)"
  timeout 60 python3 benchmarks/playground/bench_envs.py --impls ours-mjx \
    --envs CartpoleBalance,Go1JoystickFlatTerrain --num-envs 1024,4096,16384 --steps 200 --out "$out/mjx_envs.json"
  echo "== MuJoCo Warp env steps/s (random actions, stepped from Python, physics as one CUDA graph)"
  timeout 60 python3 benchmarks/playground/bench_envs.py --impls ours-warp \
    --envs CartpoleBalance,Go1JoystickFlatTerrain --num-envs 1024,4096,16384 --steps 200 --out "$out/warp_envs.json"
} 2>&1 | tee "$out/playground_gpu_check.txt"
# the training part with shorter limits, so the whole check fits one call
CARTPOLE_TIMEOUT=180 GO1_TIMEOUT=240 bash "$(dirname "$0")/gpu_train.sh"
