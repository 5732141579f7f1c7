"""Run a mesh program with JAX `shard_map`, one host device per logical core: an independent
check of the numpy executor (uniform ring shifts become `ppermute`; other moves and chained
reductions gather along the axis and pick what each core receives).

JAX must see enough devices, which is fixed when JAX starts:
XLA_FLAGS=--xla_force_host_platform_device_count=N. `python -m garagelab.wafer.jax_backend`
sets it itself and compares a kernel against numpy:

    python -m garagelab.wafer.jax_backend meshgemm --grid 4x4 --shape 30x20x25
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from garagelab.core.cliargs import non_negative_int
from garagelab.core.errors import UserError
from garagelab.wafer.program import Compute, MeshProgram, Multicast, Parallel, Reduce, Shift, Step, reduce_matrix

AXES = ("y", "x")


def execute_jax(program: MeshProgram, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The final state of `program`, computed on a (rows, cols) mesh of JAX devices."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, PartitionSpec

    rows, cols = program.grid
    if len(jax.devices()) < rows * cols:
        raise UserError(
            f"the JAX check of a {rows}x{cols} program needs {rows * cols} devices but JAX sees "
            f"{len(jax.devices())}; start Python with XLA_FLAGS=--xla_force_host_platform_device_count={rows * cols}"
        )
    mesh = Mesh(np.array(jax.devices()[: rows * cols]).reshape(rows, cols), AXES)
    state = {**program.constants, **state}
    names = sorted(state)
    spec = PartitionSpec(*AXES)

    def body(*tiles):
        local = dict(zip(names, tiles, strict=True))
        for step in program.steps:
            local.update(_apply(step, local, program, jax, jnp))
        return tuple(local[name] for name in names)

    run = jax.jit(
        jax.shard_map(body, mesh=mesh, in_specs=(spec,) * len(names), out_specs=(spec,) * len(names), check_vma=False)
    )
    results = run(*(jnp.asarray(state[name]) for name in names))
    return {name: np.asarray(value) for name, value in zip(names, results, strict=True)}


def _apply(step: Step, local: dict, program: MeshProgram, jax, jnp) -> dict:
    if isinstance(step, Compute):
        value = step.fn(*(local[name] for name in step.inputs))
        return {step.out: local[step.out] + value if step.accumulate else value}
    if isinstance(step, Parallel):
        writes = {}
        for sub in step.steps:
            writes.update(_apply(sub, local, program, jax, jnp))
        return writes
    if not isinstance(step, Shift | Multicast | Reduce):
        return {}
    axis_name, other_name = AXES[step.axis], AXES[1 - step.axis]
    n = program.grid[step.axis]
    tile = local[step.buffer]
    if isinstance(step, Shift) and step.offsets is not None and np.asarray(step.offsets).size == 1:
        offset = int(np.asarray(step.offsets).reshape(-1)[0]) % n
        pairs = [((i + offset) % n, i) for i in range(n)]
        return {step.buffer: jax.lax.ppermute(tile, axis_name, pairs)}
    gathered = jax.lax.all_gather(tile, axis_name, axis=step.axis, tiled=True)  # whole line, this core's slot
    position = jax.lax.axis_index(axis_name)
    if isinstance(step, Reduce):
        matrix = jnp.asarray(reduce_matrix(n, step.chains), tile.dtype)
        line = jnp.moveaxis(gathered, step.axis, 0)  # (n, 1, ...)
        summed = jnp.tensordot(matrix[position], line, axes=(0, 0))
        is_root = matrix[position, position] > 0
        return {step.buffer: jnp.where(is_root, jnp.expand_dims(summed, step.axis), tile)}
    source = np.broadcast_to(step.source_map(n), (program.grid[1 - step.axis], n))
    pick = jnp.asarray(source)[jax.lax.axis_index(other_name), position]
    value = jax.lax.dynamic_slice_in_dim(gathered, pick, 1, axis=step.axis)
    target = (step.target or step.buffer) if isinstance(step, Multicast) else step.buffer
    return {target: value}


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Check a kernel's JAX shard_map run against numpy.")
    parser.add_argument("kernel", help="allgather, summa, cannon, meshgemm, gemm-t, or gemv-pipeline/-ring/-ktree")
    parser.add_argument("--grid", default="4x4", help="rows x cols of cores (at most 16x16)")
    parser.add_argument("--shape", default="30x20x25", help="M x K x N (GEMV: K x N)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    args = parser.parse_args(argv)
    rows, cols = (int(v) for v in args.grid.lower().split("x"))
    from garagelab.wafer.kernels import gemm, gemm_t, gemv

    dims = [int(v) for v in args.shape.lower().split("x")]
    rng = np.random.default_rng(args.seed)
    if args.kernel.startswith("gemv-"):
        kernel = gemv(args.kernel.removeprefix("gemv-"), dims[0], dims[1], (rows, cols))
        operands = (rng.normal(size=dims[0]).astype(np.float32), rng.normal(size=dims[:2]).astype(np.float32))
        expected = operands[0] @ operands[1]
    elif args.kernel == "gemm-t":
        kernel = gemm_t(dims[0], dims[1], dims[2], (rows, cols))
        operands = (
            rng.normal(size=(dims[0], dims[1])).astype(np.float32),
            rng.normal(size=(dims[2], dims[1])).astype(np.float32),
        )
        expected = operands[0] @ operands[1].T
    else:
        kernel = gemm(args.kernel, dims[0], dims[1], dims[2], (rows, cols))
        operands = (
            rng.normal(size=(dims[0], dims[1])).astype(np.float32),
            rng.normal(size=(dims[1], dims[2])).astype(np.float32),
        )
        expected = operands[0] @ operands[1]
    devices = kernel.program.grid[0] * kernel.program.grid[1]
    if devices > 256:
        raise UserError(f"the JAX check runs on at most 256 host devices; this program needs {devices}")
    # JAX reads these when it starts, which is below (no JAX import before this point)
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={devices}")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    result = kernel.gather(execute_jax(kernel.program, kernel.scatter(*operands)))
    error = float(np.abs(result - expected).max() / np.abs(expected).max())
    print(f"{args.kernel} on {rows}x{cols}: max relative error {error:.2e}")
    return 0 if error < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
