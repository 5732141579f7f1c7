#!/usr/bin/env bash
# One prepared run for a lent GPU machine (docs/playground/README.md, "Training on a GPU"):
# PPO with the rollout on the device (ppo_mjx) on CartpoleBalance and the Go1 joystick, wall
# time, env steps/s and learning curves; Playground + brax PPO on the same GPU where the
# machine's Python can import them (PLAYGROUND_PYTHON, e.g. after installing their wheels).
# Uses the machine's Python (jax with CUDA); our other dependencies come from .whl/ if present.
source "$(dirname "$0")/../gpu_setup.sh"
export PYTHONPATH=src:/tmp/site JAX_DEFAULT_MATMUL_PRECISION=highest
others=(--skip-playground)
if [ -n "${PLAYGROUND_PYTHON:-}" ]; then others=(--playground-python "$PLAYGROUND_PYTHON" --playground-envs 0); fi
{
  nvidia-smi -L
  python3 -c "import jax, mujoco; print('jax', jax.__version__, jax.devices(), 'mujoco', mujoco.__version__)"
  echo "== CartpoleBalance, 2048 envs on MJX, 5M steps"
  timeout "${CARTPOLE_TIMEOUT:-240}" python3 benchmarks/playground/bench_train.py --engine mjx --num-envs 2048 --steps 5000000 \
    --eval-every 1000000 --png "$out/cartpole_gpu.png" "${others[@]}"
  echo "== Go1 joystick (forward commands), 4096 envs on MJX, 40M steps"
  timeout "${GO1_TIMEOUT:-300}" python3 benchmarks/playground/bench_train.py --engine mjx --env Go1JoystickForward \
    --playground-env Go1JoystickFlatTerrain --num-envs 4096 --steps 40000000 --eval-every 5000000 --target 20 \
    --png "$out/go1_gpu.png" "${others[@]}"
} 2>&1 | tee "$out/playground_gpu_train.txt"
