"""Link occupancy: how many streams share each directed link of a line during one step.

A step moves data along one axis, so with dimension-ordered routing its traffic stays inside
each line of the mesh, and a line's links are independent of the others'. A stream is one
routed flow of words: a shifted tile (source to receiver), a multicast tree (one stream per
direction from its root; the router copies each word to every core it passes), or one stage
of a reduction chain. A link carries `link_words_per_cycle` words per cycle in each direction,
shared evenly by the streams crossing it in that direction, so a stream's words arrive no
faster than its most loaded link lets them: `words * load / bandwidth`.

The load counts every stream of the step as if all of them were in flight at once, which a
step of an SPMD program is (every core sends, then receives): with skewed clocks it is an upper
bound. Steps run side by side (`Parallel`) are counted one at a time; the kernels here only
run steps on different axes side by side, which use different links. The cycle-level
simulation in `meshsim` checks the model word by word (experiments/wafer/contention.py).
"""

from __future__ import annotations

import itertools

import numpy as np

from garagelab.wafer.program import MeshProgram, Multicast, Reduce, Shift


def _counts(lo: np.ndarray, hi: np.ndarray, width: int) -> np.ndarray:
    """Streams over each link p (between positions p and p + 1) for streams covering [lo, hi)."""
    diff = np.zeros(width + 1, dtype=np.int64)
    np.add.at(diff, lo, 1)
    np.add.at(diff, hi, -1)
    return np.cumsum(diff)[: max(width - 1, 0)]


class _RangeMax:
    """Maximum of an array over [lo, hi) in O(1) per query (a sparse table)."""

    def __init__(self, values: np.ndarray) -> None:
        self.levels = [np.asarray(values)]
        span = 1
        while 2 * span <= len(values):
            last = self.levels[-1]
            self.levels.append(np.maximum(last[:-span], last[span:]))
            span *= 2

    def query(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """max(values[lo:hi]) for each pair; 0 where the range is empty."""
        length = hi - lo
        nonempty = length > 0
        level = np.floor(np.log2(np.maximum(length, 1))).astype(int)
        out = np.zeros(len(lo), dtype=np.int64)
        for k in np.unique(level[nonempty]):
            pick = nonempty & (level == k)
            table = self.levels[k]
            out[pick] = np.maximum(table[lo[pick]], table[hi[pick] - (1 << k)])
        return out


def _line_loads(width: int, src: np.ndarray, dst: np.ndarray, tree: bool) -> np.ndarray:
    """Max link load on the way from src to dst (physical positions) of every message of one
    line; a message that crosses no link gets 0."""
    right, left = src < dst, src > dst
    if tree:  # one stream per (root, direction), spanning to its farthest receiver
        roots = np.unique(src)
        far_right = np.array([dst[right & (src == r)].max(initial=r) for r in roots])
        far_left = np.array([dst[left & (src == r)].min(initial=r) for r in roots])
        right_counts = _counts(roots, far_right, width)
        left_counts = _counts(far_left, roots, width)
    else:
        right_counts = _counts(src[right], dst[right], width)
        left_counts = _counts(dst[left], src[left], width)
    loads = np.zeros(len(src), dtype=np.int64)
    loads[right] = _RangeMax(right_counts).query(src[right], dst[right])
    loads[left] = _RangeMax(left_counts).query(dst[left], src[left])
    return loads


def receive_loads(step: Shift | Multicast, program: MeshProgram) -> np.ndarray:
    """(lines or 1, n): the most loaded link on the way into each logical core (0 if none)."""
    n = program.grid[step.axis]
    placement = program.placement[step.axis]
    source = np.atleast_2d(step.source_map(n))
    rows, inverse = np.unique(source, axis=0, return_inverse=True)
    receivers = placement.position[np.arange(n)]
    per_row = np.stack(
        [
            _line_loads(placement.physical, placement.position[row], receivers, isinstance(step, Multicast))
            for row in rows
        ]
    )
    return per_row[inverse.reshape(-1)]


def chain_loads(step: Reduce, program: MeshProgram) -> np.ndarray:
    """(chains,): the most loaded link any stage of each reduction chain crosses."""
    placement = program.placement[step.axis]
    pairs = [(a, b) for chain in step.chains for a, b in itertools.pairwise(chain)]
    owner = np.array([k for k, chain in enumerate(step.chains) for _ in range(len(chain) - 1)], dtype=int)
    loads = np.zeros(len(step.chains), dtype=np.int64)
    if not pairs:
        return loads
    src, dst = (placement.position[np.array(side)] for side in zip(*pairs, strict=True))
    stage = _line_loads(placement.physical, src, dst, tree=False)
    np.maximum.at(loads, owner, stage)
    return loads


def step_load(step: Shift | Multicast | Reduce, program: MeshProgram) -> int:
    """The most loaded link of a step (1: no two streams share a link)."""
    loads = chain_loads(step, program) if isinstance(step, Reduce) else receive_loads(step, program)
    return int(loads.max(initial=0))
