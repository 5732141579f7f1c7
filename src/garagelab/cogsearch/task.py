"""The search task: the template, the evaluator bound to a run's data, the prompt's description
of the experiment, and the library of cognitive mechanisms for the offline proposer."""

from __future__ import annotations

from pathlib import Path

from garagelab.cogsearch.data import BehaviourDataset
from garagelab.cogsearch.exported import LIMITS, SERVE
from garagelab.cogsearch.programs import FORBIDDEN, IMPORTS, SEED
from garagelab.evolve.task import Task

# Rewrites of the named variable of a program (see evolve.proposers.Mechanism): HOLE is the
# program's own expression, PARAM a new fitted parameter. Each is a mechanism from the
# literature, phrased on the names of the Q-learning seed; a program the LLM rewrote may lack
# them, and then only the generic operators apply.
MECHANISMS = (
    "logits = HOLE + PARAM * chosen",  # perseveration: repeat the last choice
    "logits = HOLE + PARAM * (2.0 * reward - 1.0) * chosen",  # win-stay, lose-shift
    "logits = HOLE + PARAM * jax.nn.one_hot(0, N_ACTIONS)",  # a side bias
    "q = HOLE + jax.nn.sigmoid(PARAM) * (1.0 - chosen) * (0.5 - HOLE)",  # unchosen values forget
    "q = HOLE + jax.nn.sigmoid(PARAM) * (0.5 - HOLE)",  # every value decays
    "delta = HOLE * jnp.where(HOLE > 0, 1.0, jax.nn.sigmoid(PARAM))",  # losses learnt more slowly
    "delta = HOLE * jnp.where(HOLE > 0, jax.nn.sigmoid(PARAM), 1.0)",  # gains learnt more slowly
    "beta = HOLE * jnp.exp(PARAM)",  # a rescaled inverse temperature
    "jnp.tanh(HOLE)",
    "HOLE * HOLE",
)

# Mostly mechanisms (what cognitive models are made of), pruning for parsimony, few raw operator swaps.
MUTATION_WEIGHTS = (("mechanism", 0.45), ("prune", 0.15), ("crossover", 0.2), ("constant", 0.15), ("operator", 0.05))


def describe(data: BehaviourDataset) -> str:
    """The experiment in words, for the model's prompt (the paper found that describing the task
    and data improves the programs)."""
    return (
        f"A cognitive model of choice behaviour in a {data.n_actions}-armed bandit task ({data.name or 'data set'}: "
        f"{data.n_subjects} subjects, {data.n_scored} choices). On each trial the subject picks one of "
        f"N_ACTIONS={data.n_actions} options and gets a reward of 1 or 0; reward probabilities change over time. "
        "`agent(params, choice, reward, agent_state)` is called with `agent_state=None` at the start of each session "
        "and must return (logits of the first choice, initial state); afterwards it receives the choice just made "
        "and its reward and returns (logits of the next choice, new state). Use jax.numpy only, no randomness, no "
        "Python control flow on traced values (use jnp.where). `params` is a vector of free parameters fitted "
        "per subject by gradient descent: use params[0], params[1], ... and squash them into their ranges "
        "(jax.nn.sigmoid, jax.nn.softplus). The score is the likelihood of held-out choices (higher is better); "
        "prefer simple, interpretable mechanisms."
    )


def build_task(data_path: Path, data: BehaviourDataset, restarts: int = 2, max_steps: int = 1000) -> Task:
    """The cogsearch task bound to the search subjects saved at `data_path` (an .npz)."""
    return Task(
        name="cogsearch",
        description=describe(data),
        template=SEED,
        template_label="Q-learning (the seed)",
        function="agent",
        serve=SERVE,
        judge="garagelab.cogsearch.evaluate:make_judge",
        allowed_imports=IMPORTS,
        limits=LIMITS,
        mechanisms=MECHANISMS,
        forbidden=FORBIDDEN,
        context={"data": str(Path(data_path).resolve()), "restarts": restarts, "max_steps": max_steps},
        module_globals={"N_ACTIONS": data.n_actions},
        parameters="params:num_params",
        environment={"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"},
        mutation_weights=MUTATION_WEIGHTS,
    )
