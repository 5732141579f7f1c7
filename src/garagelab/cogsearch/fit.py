"""Per-subject maximum likelihood for a program, and its held-out score.

The log-likelihood of one subject is a `lax.scan` over its trials; `vmap` runs every (fold,
restart, subject) problem at once, so one compile and one optimiser loop fit them all.
AdaBelief (lr 5e-2, as the paper) in blocks of 100 steps until every problem has converged
(relative change of its loss over the block below 1e-2) or the step limit; the best restart per
(fold, subject) is kept. The score is the normalised likelihood, exp(mean log-likelihood per
choice), of the trials each fit did not see: within-subject two-fold cross-validation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np
import optax

from garagelab.cogsearch.data import BehaviourDataset
from garagelab.cogsearch.programs import MAX_PARAMS, Program

BLOCK = 100
# XLA's CPU fusion emitters compile the scanned likelihood's step in ~1.9 s here; its older
# emitters take ~1.0 s and run the step ~30 % faster (measured on the fly data, jax 0.10.2):
# every candidate pays one compile, so this sets the search's pace.
CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
SPARE = 4  # parameters beyond the declared count, to catch a forgotten `num_params`


@dataclass(frozen=True)
class FitConfig:
    restarts: int = 2
    max_steps: int = 1000
    learning_rate: float = 5e-2
    tolerance: float = 1e-2  # relative change of the loss over a block of 100 steps
    seed: int = 0


@dataclass(frozen=True)
class FitResult:
    """The fit of one program to one data set, scored on held-out trials."""

    normalized_likelihood: float  # exp(held-out log-likelihood per choice), all subjects
    heldout_loglik: np.ndarray  # [subjects] summed over both folds
    heldout_choices: np.ndarray  # [subjects]
    params: np.ndarray  # [folds, subjects, num_params] the best restart of each fit
    steps: int
    converged: float  # fraction of (fold, restart, subject) problems that converged

    @property
    def per_subject(self) -> np.ndarray:
        """Each subject's normalised likelihood (for paired tests across subjects)."""
        return np.exp(self.heldout_loglik / np.maximum(self.heldout_choices, 1))


def log_probabilities_fn(program: Program):
    """(params, choices, rewards, new_session) -> [trials, options]: the log-probability of each
    option before each trial, given the subject's own history (teacher forcing)."""
    agent = program.agent

    def trials(params, choices, rewards, new_session):
        start_logits, start_state = agent(params, 0, 0.0, None)

        def step(carry, inputs):
            logits, state = carry
            choice, reward, new = inputs
            logits, state = _select(new, (start_logits, start_state), (logits, state))
            made = choice >= 0
            safe = jnp.maximum(choice, 0)
            logp = jax.nn.log_softmax(logits)
            next_logits, next_state = agent(params, safe, reward, state)
            # a trial without a choice (padding, violation) changes nothing
            carry = _select(made, (next_logits, next_state), (logits, state))
            return carry, logp

        _, per_trial = jax.lax.scan(step, (start_logits, start_state), (choices, rewards, new_session))
        return per_trial

    return trials


def loglik_fn(program: Program):
    """log p(choices) of one subject: (params, choices, rewards, new_session, mask) -> per-trial."""
    log_probabilities = log_probabilities_fn(program)

    def trials(params, choices, rewards, new_session, mask):
        logp = log_probabilities(params, choices, rewards, new_session)
        chosen = jnp.take_along_axis(logp, jnp.maximum(choices, 0)[:, None], axis=1)[:, 0]
        return jnp.where(mask & (choices >= 0), chosen, 0.0)

    return trials


def _select(flag, a, b):
    return jax.tree.map(lambda x, y: jnp.where(flag, x, y), a, b)


class Likelihood:
    """A program's log-likelihood on a data set for every (fold, restart, subject) problem at
    once. One function is compiled: a step of the optimiser that also returns each problem's
    loss under given trial masks; with the step switched off it scores, probes and checks.

    Everything around that function is NumPy: in the sandbox's fresh child per candidate every
    eager JAX operation (`jnp.asarray`, `.at[].set`, `optimizer.init`, a slice) compiles its own
    small XLA program: ~15 of them took ~0.4 s of a 1.6 s evaluation."""

    def __init__(self, program: Program, data: BehaviourDataset, config: FitConfig = FitConfig()) -> None:
        self.program = program
        self.data = data
        self.config = config
        self.folds = data.folds()  # [2, S, T]
        self.shape = (self.folds.shape[0], config.restarts, data.n_subjects)
        self.n_params = max(program.num_params, 1)
        trials = loglik_fn(program)

        def problem_loss(params, fold_mask, choices, rewards, new_session):
            return -trials(params, choices, rewards, new_session, fold_mask).sum()

        # one vmap over the flattened problems traces and compiles ~15 % faster than three
        # nested ones (fold, restart, subject)
        loss = jax.vmap(problem_loss)

        def per_problem(x):  # [folds, 1, subjects, T] or [subjects, T] -> [problems, T]
            return jnp.broadcast_to(x, (*self.shape, x.shape[-1])).reshape(-1, x.shape[-1])

        def total(params, masks, arrays):
            inputs = [per_problem(x) for x in (masks[:, None], *arrays)]
            values = loss(params.reshape(-1, params.shape[-1]), *inputs).reshape(self.shape)
            return values.sum(), values

        self.optimizer = optimizer = optax.adabelief(config.learning_rate)

        def step(params, state, active, masks, arrays):
            (_, values), grads = jax.value_and_grad(total, has_aux=True)(params, masks, arrays)
            grads = jnp.where(jnp.isfinite(grads), grads, 0.0)
            updates, state = optimizer.update(grads, state, params)
            updates = updates * active[..., None]  # a converged problem stops where it is
            reach = jnp.abs(grads).sum(axis=(0, 1, 2))  # per parameter index: zero where unused
            return optax.apply_updates(params, updates), state, values, reach

        self.step_function = step
        self.arrays = (data.choices, data.rewards, data.new_session)
        self.heldout_folds = np.ascontiguousarray(self.folds[::-1])

    @cached_property
    def _step(self):
        """`step_function` compiled (on first use)."""
        options = CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
        return jax.jit(self.step_function, compiler_options=options)

    def inputs(self, params, heldout: bool = False) -> tuple:
        """The step's arguments at `params` with every problem idle (from the optimiser's start)."""
        idle = np.zeros(self.shape, dtype=np.float32)
        return params, self.start_state(), idle, self.heldout_folds if heldout else self.folds, self.arrays

    def start_state(self):
        """The optimiser's initial state, built in NumPy (optax's initial states are zeros: the
        moments and the step count)."""
        shape = jax.ShapeDtypeStruct((*self.shape, self.n_params), np.float32)
        return jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), jax.eval_shape(self.optimizer.init, shape))

    def losses(self, params, heldout: bool = False) -> np.ndarray:
        """[folds, restarts, subjects] minus the log-likelihood of each fold's trials (or, with
        `heldout`, of the other fold's)."""
        return self._idle(params, heldout)[0]

    def _idle(self, params, heldout: bool = False) -> tuple[np.ndarray, np.ndarray]:
        _, _, values, reach = self._step(*self.inputs(params, heldout))
        return np.asarray(values, dtype=np.float64), np.asarray(reach)

    def probe(self) -> tuple[np.ndarray, np.ndarray]:
        """([folds, subjects] losses, indices of the parameters the losses depend on) at a
        fixed point away from zero (a parameter that only enters multiplied by itself would
        hide at zero). The losses are a behavioural fingerprint."""
        point = np.random.default_rng(12345).normal(0.0, 0.5, self.n_params).astype(np.float32)
        values, reach = self._idle(np.tile(point, (*self.shape, 1)))
        return values[:, 0], np.flatnonzero(reach)

    def fit(self) -> FitResult:
        """Fit every subject on each fold of its trials; score each fit on the other fold."""
        config = self.config
        rng = np.random.default_rng(config.seed)
        params = rng.normal(0.0, 1.0, (*self.shape, self.n_params)).astype(np.float32)
        params[:, 0] = 0.0  # the first restart starts from the middle of every range
        state = self.start_state()
        previous = np.full(self.shape, np.inf)
        steps = 0
        converged = np.zeros(self.shape, dtype=bool)
        while steps < config.max_steps:
            active = (~converged).astype(np.float32)
            for _ in range(BLOCK):
                params, state, values, _ = self._step(params, state, active, self.folds, self.arrays)
            steps += BLOCK
            values = np.asarray(values)
            with np.errstate(invalid="ignore"):
                change = np.abs(values - previous) / np.maximum(np.abs(previous), 1e-9)
            converged |= (np.isfinite(previous) & (change < config.tolerance)) | ~np.isfinite(values)
            previous = values
            if converged.all():
                break
        return self._score(params, steps, float(converged.mean()))

    def _score(self, params, steps: int, converged: float) -> FitResult:
        """The best restart of each fit (by its own fold), scored on the other fold."""
        fitted, heldout = self.losses(params), self.losses(params, heldout=True)  # [F, R, S]
        best = np.where(np.isfinite(fitted), fitted, np.inf).argmin(axis=1)  # [F, S]
        folds, subjects = range(self.shape[0]), np.arange(self.data.n_subjects)
        params = np.asarray(params)
        chosen = np.stack([params[f, best[f], subjects] for f in folds])  # [F, S, P]
        heldout_ll = -np.stack([heldout[f, best[f], subjects] for f in folds]).sum(axis=0)  # [S]
        heldout_n = (self.folds[::-1] & (self.data.choices >= 0)[None]).sum(axis=(0, 2))
        total_n = int(heldout_n.sum())
        value = math.exp(heldout_ll.sum() / total_n) if total_n and np.isfinite(heldout_ll).all() else math.nan
        return FitResult(value, heldout_ll, heldout_n, chosen[..., : self.program.num_params], steps, converged)


def counted(at_width: Callable[[int], Program], declared: int, data: BehaviourDataset, config: FitConfig = FitConfig()):
    """(likelihood, probe losses [folds, subjects], indices of the parameters used) for a
    program whose declared `num_params` may be wrong: a model that edits the function can forget
    it, and JAX indexing past a vector's end clamps silently. `at_width(w)` is the program taking
    a params vector of `w` numbers. It is fitted with a few parameters more than declared; the
    probe's gradient is non-zero exactly at the parameters used, and the rest stay where they
    start. One compile serves the probe, the count and the fit; only a program reaching the last
    spare parameter is compiled again, wider (and one using the whole vector, summed say, with
    its declared count: all there is to go on)."""
    for width in sorted({min(declared + SPARE, MAX_PARAMS), MAX_PARAMS}):
        likelihood = Likelihood(replace(at_width(width), num_params=width), data, config)
        values, used = likelihood.probe()
        if width - 1 not in used:
            return likelihood, values, used
    likelihood = Likelihood(replace(at_width(max(declared, 1)), num_params=declared), data, config)
    return likelihood, likelihood.probe()[0], np.arange(declared)


def fit(program: Program, data: BehaviourDataset, config: FitConfig = FitConfig()) -> FitResult:
    """Fit every subject on each fold of its trials; score each fit on the other fold."""
    return Likelihood(program, data, config).fit()
