"""Collectives as mesh-program steps: shifts, multicast, and allreduce by pipeline, ring, K-tree.

Every builder appends steps to a program and works along one axis of its logical grid, the
same way on every line across that axis. Physical distances come from the program's
placement, so a cyclic shift costs one hop per step on a linear ring except the wrap-around,
and at most two on an interleaved one.
"""

from __future__ import annotations

import math

import numpy as np

from garagelab.core.errors import UserError
from garagelab.wafer.program import Compute, MeshProgram, Multicast, Reduce, Shift

ALLREDUCE_METHODS = ("pipeline", "ring", "ktree")


def cyclic_shift(program: MeshProgram, buffer: str, axis: int, offset: int = 1) -> Shift:
    """Every core receives the tile of the core `offset` further along the logical ring."""
    return Shift(buffer, axis, offsets=np.array([offset]), label=f"shift {buffer}")


def multicast_from(
    program: MeshProgram, buffer: str, axis: int, root: int, target: str = "", relay: bool = False
) -> Multicast:
    """Every core on each line receives the tile of the core at `root` (relayed: see Multicast)."""
    n = program.grid[axis]
    source = np.full((1, n), root)
    return Multicast(buffer, axis, source, target=target, relay=relay, label=f"multicast {buffer} from {root}")


def _groups(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def _chains_to_middle(group: list[int]) -> tuple[int, list[tuple[int, ...]]]:
    """A group's root (its middle) and the two chains that run into it from both ends."""
    middle = (len(group) - 1) // 2
    root = group[middle]
    chains = [tuple(group[: middle + 1])]
    if middle + 1 < len(group):
        chains.append(tuple(reversed(group[middle:])))
    return root, chains


def ktree_phases(n: int, k: int) -> list[tuple[tuple[int, ...], ...]]:
    """The chains of each phase of a K-tree reduce over n cores (groups of about n^(1/k))."""
    if k < 1:
        raise UserError(f"K-tree needs K >= 1, got {k}")
    size = max(2, math.ceil(n ** (1.0 / k) - 1e-9))
    members = list(range(n))
    phases = []
    while len(members) > 1:
        roots, chains = [], []
        for group in _groups(members, size):
            root, group_chains = _chains_to_middle(group)
            roots.append(root)
            chains.extend(group_chains)
        phases.append(tuple(chains))
        members = roots
    return phases


def allreduce(
    program: MeshProgram,
    buffer: str,
    axis: int,
    method: str = "ktree",
    k: int = 2,
    broadcast: bool = True,
) -> int:
    """Sum `buffer` over each line along `axis`; returns the index that holds the sum.

    With `broadcast`, every core ends with the sum (an allreduce), otherwise only the root.
    - pipeline: one chain end to end (n routing stages, 2n hops with the broadcast);
    - ring: reduce-scatter then allgather on the logical ring, 2(n-1) neighbour steps;
    - ktree: K phases of chains into group middles, groups of n^(1/K) cores.
    """
    n = program.grid[axis]
    if n == 1:
        return 0
    if method == "pipeline":
        program.add(Reduce(buffer, axis, (tuple(range(n)),), label=f"pipeline reduce {buffer}"))
        root = n - 1
    elif method == "ktree":
        phases = ktree_phases(n, k)
        for number, chains in enumerate(phases):
            program.add(Reduce(buffer, axis, chains, label=f"{k}-tree phase {number + 1} {buffer}"))
        root = phases[-1][0][-1]
    elif method == "ring":
        _ring_allreduce(program, buffer, axis)  # every core ends with the sum either way
        return 0
    else:
        raise UserError(f"unknown allreduce method {method!r}; choose one of {', '.join(ALLREDUCE_METHODS)}")
    if broadcast:
        program.add(multicast_from(program, buffer, axis, root))
    return root


def _ring_allreduce(program: MeshProgram, buffer: str, axis: int) -> None:
    """Reduce-scatter then allgather around the logical ring, one chunk per step."""
    n = program.grid[axis]
    tile = program.buffers[buffer].shape
    length = tile[-1]
    chunk = math.ceil(length / n)
    send = f"{buffer}.ring"
    program.buffer(send, (*tile[:-1], chunk))
    where = program.coordinate(axis)

    def chunks(values):  # (..., n * chunk) -> (..., n, chunk), zero-padded
        xp = values.__array_namespace__()
        pad = xp.zeros((*values.shape[:-1], n * chunk - length), dtype=values.dtype)
        return xp.concatenate([values, pad], axis=-1).reshape(*values.shape[:-1], n, chunk)

    def one_hot(index, offset, like):  # (rows, cols) core index -> (rows, cols, ..., n, 1) selector
        xp = like.__array_namespace__()
        which = (index - offset) % n
        hot = (xp.arange(n) == which[..., None]).astype(like.dtype)
        return hot.reshape(*which.shape, *([1] * (like.ndim - 4)), n, 1)

    def take(values, index, offset):
        parts = chunks(values)
        return (parts * one_hot(index, offset, parts)).sum(axis=-2)

    def put(values, part, index, offset, add):
        parts = chunks(values)
        hot = one_hot(index, offset, parts)
        merged = parts + hot * part[..., None, :] if add else parts * (1 - hot) + hot * part[..., None, :]
        return merged.reshape(*values.shape[:-1], n * chunk)[..., :length]

    for phase, add in (("reduce-scatter", True), ("allgather", False)):
        for step in range(n - 1):
            # core i sends chunk i - step (reduce-scatter) or i - step + 1 (allgather) to i + 1
            offset = step if add else step - 1
            program.add(
                Compute(send, (buffer, where), lambda v, i, o=offset: take(v, i, o), macs=0, label=f"ring {phase}"),
                Shift(send, axis, offsets=np.array([-1]), label=f"ring {phase} {buffer}"),
                Compute(
                    buffer,
                    (buffer, send, where),
                    lambda v, s, i, o=offset, a=add: put(v, s, i, o + 1, a),
                    macs=chunk if add else 0,
                    label=f"ring {phase} {'add' if add else 'copy'}",
                ),
            )
