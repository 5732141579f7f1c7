"""Selection, as FunSearch does it: islands of programs, clusters by score signature, and
temperature-scheduled sampling; the weakest islands are periodically reset from the best.

Within an island, programs with the same (rounded) score form a cluster. Sampling picks a
cluster with probability softmax(normalised score / T), with T decaying over each period (more
exploration early), then a program in it favouring shorter ones (parsimony). Optionally a
MAP-Elites grid (program size x a metric) keeps the best program per cell, and parents are
then drawn from the elites instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Member:
    program_id: int
    score: float
    size: int
    source: str


def signature(score: float) -> float:
    """Scores equal to 6 significant digits share a cluster."""
    return float(f"{score:.6g}")


def _softmax(values: np.ndarray, temperature: float) -> np.ndarray:
    logits = values / max(temperature, 1e-9)
    logits = logits - logits.max()
    weights = np.exp(logits)
    return weights / weights.sum()


@dataclass
class Island:
    clusters: dict[float, list[Member]] = field(default_factory=dict)
    best: Member | None = None

    def __len__(self) -> int:
        return sum(len(c) for c in self.clusters.values())

    def add(self, member: Member) -> bool:
        """Add a program; True when it beats the island's best."""
        self.clusters.setdefault(signature(member.score), []).append(member)
        if self.best is None or member.score > self.best.score:
            self.best = member
            return True
        return False

    def sample(self, count: int, temperature: float, rng: np.random.Generator) -> list[Member]:
        keys = np.array(sorted(self.clusters))
        if not len(keys):
            return []
        spread = keys.max() - keys.min()
        normalised = (keys - keys.min()) / spread if spread > 0 else np.zeros_like(keys)
        chosen = []
        for key in rng.choice(keys, size=min(count, len(keys)), replace=False, p=_softmax(normalised, temperature)):
            members = self.clusters[float(key)]
            sizes = np.array([m.size for m in members], dtype=float)
            spread = sizes.max() - sizes.min()
            shortness = -(sizes - sizes.min()) / spread if spread > 0 else np.zeros_like(sizes)
            chosen.append(members[int(rng.choice(len(members), p=_softmax(shortness, 1.0)))])
        return sorted(chosen, key=lambda m: m.score)  # ascending: the prompt shows the best last


@dataclass
class Islands:
    count: int
    temperature: float = 0.1
    period: int = 100
    islands: list[Island] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.islands:
            self.islands = [Island() for _ in range(self.count)]

    def add(self, island: int, member: Member) -> bool:
        return self.islands[island].add(member)

    def temperature_at(self, evaluated: int) -> float:
        """Decays linearly from `temperature` to near 0 over each period, then restarts."""
        return self.temperature * (1.0 - (evaluated % self.period) / self.period) + 1e-3

    def best(self) -> Member | None:
        candidates = [i.best for i in self.islands if i.best is not None]
        return max(candidates, key=lambda m: m.score) if candidates else None

    def reset_weakest(self, rng: np.random.Generator) -> list[int]:
        """Empty the worse half of the islands and seed each with a better island's best."""
        ranked = sorted(
            range(self.count), key=lambda i: self.islands[i].best.score if self.islands[i].best else -math.inf
        )
        weak, strong = ranked[: self.count // 2], ranked[self.count // 2 :]
        for index in weak:
            donor = self.islands[int(rng.choice(strong))].best
            self.islands[index] = Island()
            if donor is not None:
                self.islands[index].add(donor)
        return weak


@dataclass
class MapElites:
    """The best program per cell of (size bucket, metric bucket)."""

    metric: str
    size_edges: tuple[float, ...] = (20, 40, 80, 160, 320)
    metric_edges: tuple[float, ...] = ()
    cells: dict[tuple[int, int], Member] = field(default_factory=dict)

    def cell(self, member: Member, metrics: dict) -> tuple[int, int]:
        size_bin = int(np.searchsorted(self.size_edges, member.size))
        value = metrics.get(self.metric, 0.0) if metrics else 0.0
        return size_bin, int(np.searchsorted(self.metric_edges, value)) if self.metric_edges else 0

    def add(self, member: Member, metrics: dict) -> bool:
        key = self.cell(member, metrics)
        if key not in self.cells or member.score > self.cells[key].score:
            self.cells[key] = member
            return True
        return False

    def sample(self, count: int, rng: np.random.Generator) -> list[Member]:
        elites = list(self.cells.values())
        if not elites:
            return []
        picks = rng.choice(len(elites), size=min(count, len(elites)), replace=False)
        return sorted((elites[int(i)] for i in picks), key=lambda m: m.score)
