"""Why pixel learners step from Python: the same CNN gradient steps in a `lax.scan` against one
jitted call per step (docs/playground/README.md, Learning from pixels).

`ppo.make_update` and SAC's pixel path call a jitted step per minibatch from Python because
XLA's CPU convolutions ran many times slower inside a scan. This times exactly that: the pixel
actor (PPO's encoder and MLP) on 64x64x3 uint8 frames, a squared-error loss, Adam, `--steps`
minibatches of `--batch`, best of 3 after a warm-up, both ways in the same run.

    python benchmarks/playground/bench_cnn_scan.py [--steps 32] [--batch 256]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from garagelab.playground import networks as nets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    shape, channels = (64, 64, 3), (16, 32, 32)
    key = jax.random.PRNGKey(0)
    params = {
        "encoder": nets.init_encoder(key, shape, channels),
        "actor": nets.init_mlp(key, (nets.conv_output_size(shape, channels), 64, 64, 1)),
    }
    tx = optax.adam(3e-4)
    rng = np.random.default_rng(0)
    frames = jnp.asarray(rng.integers(0, 255, (args.steps, args.batch, *shape)), jnp.uint8)
    targets = jnp.asarray(rng.normal(size=(args.steps, args.batch, 1)), jnp.float32)

    def loss(p, x, y):
        return ((nets.mlp(p["actor"], nets.encode(p["encoder"], x)) - y) ** 2).mean()

    def step(carry, batch):
        p, state = carry
        grads = jax.grad(loss)(p, *batch)
        updates, state = tx.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), None

    one = jax.jit(step)
    scanned = jax.jit(lambda carry, xs: jax.lax.scan(step, carry, xs)[0])

    def from_python(carry):
        for i in range(args.steps):
            carry, _ = one(carry, (frames[i], targets[i]))
        return carry

    def in_scan(carry):
        return scanned(carry, (frames, targets))

    times = {}
    for name, run in (("one jitted call per step", from_python), ("lax.scan over the steps", in_scan)):
        carry = (params, tx.init(params))
        jax.block_until_ready(run(carry))  # compile
        best = np.inf
        for _ in range(3):
            begin = time.perf_counter()
            jax.block_until_ready(run(carry))
            best = min(best, time.perf_counter() - begin)
        times[name] = best
        print(f"{name:28s} {1e3 * best / args.steps:8.1f} ms per step ({args.steps} steps of batch {args.batch})")
    ratio = times["lax.scan over the steps"] / times["one jitted call per step"]
    print(f"scan / per-step calls: {ratio:.1f}x")


if __name__ == "__main__":
    main()
