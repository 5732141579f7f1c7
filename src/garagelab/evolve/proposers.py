"""Proposers: where new programs come from. One interface, three kinds, and a bandit.

- `MutationProposer`: offline AST edits (constants, operators, subtree crossover, splicing in a
  mechanism from the task's library, pruning), with a size cap: the engine improves programs
  with no model at all.
- `LLMProposer`: FunSearch's best-shot prompt (the island's sampled programs, worse to better,
  as versions _v0, _v1, ...) asking for the next version, as a whole function or as
  SEARCH/REPLACE edits; chat mode for instruction-tuned models, completion mode for base ones.
- `ReplayProposer`: the LLM proposer answered from a recording (deterministic reruns, CI).
- `Bandit`: UCB1 over proposers, rewarded when a proposal beats its island's best.
"""

from __future__ import annotations

import ast
import copy
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from garagelab.core.errors import UserError
from garagelab.evolve.code import (
    CodeError,
    apply_diff,
    extract_function,
    find_function,
    parse,
    program_size,
    replace_function,
)
from garagelab.evolve.islands import Member
from garagelab.evolve.task import Task
from garagelab.llm.client import LLMClient, ReplayClient
from garagelab.llm.records import CallRecord, Replay


@dataclass(frozen=True)
class Proposal:
    source: str
    parents: tuple[int, ...]
    proposer: str
    call: CallRecord | None = None


class Proposer(Protocol):
    name: str

    def propose(self, parents: list[Member], rng: np.random.Generator) -> Proposal: ...


# -- offline mutations -------------------------------------------------------------------------

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)
_COMPARES = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _expressions(node: ast.AST) -> list[ast.expr]:
    """Expression nodes that may be replaced: not assignment targets, not the functions called
    (replacing `np.sin` in `np.sin(x)` by a number only makes a program that cannot run)."""
    callees = {id(n) for call in ast.walk(node) if isinstance(call, ast.Call) for n in ast.walk(call.func)}
    return [
        child
        for child in ast.walk(node)
        if isinstance(child, ast.expr)
        and id(child) not in callees
        and not isinstance(getattr(child, "ctx", None), ast.Store)
    ]


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list):
                for index, item in enumerate(value):
                    if item is old:
                        value[index] = new
                        return


class MutationProposer:
    """Random AST edits of the best sampled parent (or a crossover of two)."""

    name = "mutation"

    def __init__(self, task: Task, max_size: int = 400) -> None:
        self.task = task
        self.max_size = max_size
        self.mechanisms = [Mechanism.parse(m) for m in task.mechanisms]

    def propose(self, parents: list[Member], rng: np.random.Generator) -> Proposal:
        base = parents[-1]
        operators = ["constant", "operator", "mechanism", "prune"] + (["crossover"] if len(parents) > 1 else [])
        weights = dict(self.task.mutation_weights)
        chances = np.array([weights.get(op, 1.0 if not weights else 0.0) for op in operators])
        for _ in range(20):
            tree = parse(base.source)
            function = find_function(tree, self.task.function)
            operator = str(rng.choice(operators, p=chances / chances.sum()))
            if not getattr(self, f"_{operator}")(function, parents, rng):
                continue
            if operator == "mechanism" and not self._number_parameters(tree):
                continue
            source = ast.unparse(ast.fix_missing_locations(tree))
            if source != base.source and program_size(source) <= self.max_size:
                return Proposal(source, tuple(p.program_id for p in parents), self.name)
        raise CodeError("no applicable mutation")

    def _constant(self, function: ast.FunctionDef, parents, rng) -> bool:
        indices = {id(n) for sub in ast.walk(function) if isinstance(sub, ast.Subscript) for n in ast.walk(sub.slice)}
        constants = [
            n
            for n in ast.walk(function)
            if isinstance(n, ast.Constant) and type(n.value) in (int, float) and id(n) not in indices
        ]
        if not constants:
            return False
        node = constants[int(rng.integers(len(constants)))]
        value = float(node.value)
        if rng.random() < 0.2 or value == 0:
            node.value = float(np.round(value + rng.normal(0, 0.5), 4))
        else:
            node.value = float(np.round(value * math.exp(rng.normal(0, 0.3)), 4))
        return True

    def _operator(self, function: ast.FunctionDef, parents, rng) -> bool:
        nodes = [n for n in ast.walk(function) if isinstance(n, ast.BinOp | ast.Compare)]
        if not nodes:
            return False
        node = nodes[int(rng.integers(len(nodes)))]
        if isinstance(node, ast.BinOp):
            node.op = _BINOPS[int(rng.integers(len(_BINOPS)))]()
        else:
            node.ops = [_COMPARES[int(rng.integers(len(_COMPARES)))]() for _ in node.ops]
        return True

    def _mechanism(self, function: ast.FunctionDef, parents, rng) -> bool:
        if not self.mechanisms:
            return False
        mechanism = self.mechanisms[int(rng.integers(len(self.mechanisms)))]
        if mechanism.target:  # rewrite the value of the function's last assignment to the name
            assigned = [n for n in ast.walk(function) if isinstance(n, ast.Assign) and _assigns(n, mechanism.target)]
            if not assigned or not mechanism.fits(function, assigned[-1]):
                return False
            assigned[-1].value = mechanism.fill(assigned[-1].value)
            return True
        targets = _returned(function)
        if not targets:
            return False
        target = targets[int(rng.integers(len(targets)))]
        if mechanism.hole:  # the mechanism says how it wraps the target
            _replace(function, target, mechanism.fill(target))
        elif rng.random() < 0.7:  # add a weighted term: target + w * mechanism
            weight = ast.Constant(float(np.round(rng.normal(0, 0.5), 3)))
            edited = ast.BinOp(copy.deepcopy(target), ast.Add(), ast.BinOp(weight, ast.Mult(), mechanism.fill(target)))
            _replace(function, target, edited)
        else:  # modulate: target * mechanism
            _replace(function, target, ast.BinOp(copy.deepcopy(target), ast.Mult(), mechanism.fill(target)))
        return True

    def _number_parameters(self, tree: ast.Module) -> bool:
        """Give each new `PARAM` the next free index of the task's parameter vector and count it
        in the module's count (`Task.parameters` = "vector:count"); False if the task has none."""
        params = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == PARAM]
        if not params:
            return True
        if not self.task.parameters:
            return False
        vector, count_name = self.task.parameters.split(":")
        counts = [
            n
            for n in tree.body
            if isinstance(n, ast.Assign)
            and _assigns(n, count_name)
            and isinstance(n.value, ast.Constant)
            and isinstance(n.value.value, int)
        ]
        if not counts:
            return False
        for node in params:
            index = counts[-1].value.value
            counts[-1].value.value = index + 1
            _replace(tree, node, ast.Subscript(ast.Name(vector, ast.Load()), ast.Constant(index), ast.Load()))
        return True

    def _prune(self, function: ast.FunctionDef, parents, rng) -> bool:
        """Parsimony: replace an operation by one of its operands."""
        nodes = [n for n in ast.walk(function) if isinstance(n, ast.BinOp)]
        if not nodes:
            return False
        node = nodes[int(rng.integers(len(nodes)))]
        _replace(function, node, node.left if rng.random() < 0.5 else node.right)
        return True

    def _crossover(self, function: ast.FunctionDef, parents, rng) -> bool:
        donor = find_function(parse(parents[int(rng.integers(len(parents) - 1))].source), self.task.function)
        ours, theirs = _returned(function), _returned(donor)
        if not ours or not theirs:
            return False
        _replace(function, ours[int(rng.integers(len(ours)))], copy.deepcopy(theirs[int(rng.integers(len(theirs)))]))
        return True


HOLE, PARAM = "HOLE", "PARAM"


@dataclass(frozen=True)
class Mechanism:
    """An entry of a task's mechanism library: an expression, optionally `name = expression`.

    In the expression, `HOLE` stands for the expression being rewritten and `PARAM` for a fresh
    fitted parameter. With a name, the rewrite applies to the value of the function's last
    assignment to that name (`logits = HOLE + PARAM * chosen` adds perseveration to whatever
    the program computed as logits); without one, to a returned sub-expression.
    """

    target: str
    expression: ast.expr

    @classmethod
    def parse(cls, text: str) -> Mechanism:
        statement = ast.parse(text).body[0]
        if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
            return cls(statement.targets[0].id, statement.value)
        return cls("", ast.parse(text, mode="eval").body)

    @property
    def hole(self) -> bool:
        return any(isinstance(n, ast.Name) and n.id == HOLE for n in ast.walk(self.expression))

    def fill(self, old: ast.expr) -> ast.expr:
        new = copy.deepcopy(self.expression)
        holes = [n for n in ast.walk(new) if isinstance(n, ast.Name) and n.id == HOLE]
        if new in holes:
            return copy.deepcopy(old)
        for hole in holes:
            _replace(new, hole, copy.deepcopy(old))
        return new

    def fits(self, function: ast.FunctionDef, at: ast.stmt) -> bool:
        """Whether every local name the mechanism reads is an argument or assigned before `at`."""
        arguments = {a.arg for a in function.args.args}
        stores = [n for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
        known = arguments | {n.id for n in stores if n.lineno < at.lineno}
        local = arguments | {n.id for n in stores}
        read = {n.id for n in ast.walk(self.expression) if isinstance(n, ast.Name)} - {HOLE, PARAM}
        return read & local <= known


def _assigns(statement: ast.Assign, name: str) -> bool:
    return any(isinstance(t, ast.Name) and t.id == name for t in statement.targets)


def _returned(function: ast.FunctionDef) -> list[ast.expr]:
    """Sub-expressions of the function's return values (where edits change the output); a
    returned tuple is a bundle of outputs, not a value, so only its items count."""
    out = []
    for node in ast.walk(function):
        if isinstance(node, ast.Return) and node.value is not None:
            out.extend(e for e in _expressions(node.value) if not isinstance(e, ast.Tuple))
    return out


# -- language models ---------------------------------------------------------------------------

SYSTEM = (
    "You improve Python functions for a program search. Reply with exactly one ```python code block "
    "that contains only the improved function, keeping its name and arguments."
)


@dataclass
class LLMProposer:
    client: LLMClient
    task: Task
    mode: str = "whole"  # or "diff": SEARCH/REPLACE edits of the best program
    chat: bool = True  # False: completion mode (FunSearch's function-header continuation)
    name: str = "llm"
    settings: dict = field(default_factory=dict)

    def _versions(self, parents: list[Member]) -> str:
        blocks = []
        for index, parent in enumerate(parents):
            function = find_function(parse(parent.source), self.task.function)
            function.name = f"{self.task.function}_v{index}"
            blocks.append(f"# score {parent.score:.6g}\n{ast.unparse(function)}")
        return "\n\n".join(blocks)

    def request(self, parents: list[Member]) -> tuple[str, dict]:
        """(mode, request body): what the model is asked."""
        fn, k = self.task.function, len(parents)
        if not self.chat:
            header = f'"""{self.task.description}"""\nimport numpy as np\n\n{self._versions(parents)}\n\n'
            return "completion", {"prompt": header + f"def {fn}_v{k}("}
        if self.mode == "diff":
            question = (
                f"{self.task.description}\n\nThe current best program (score {parents[-1].score:.6g}):\n"
                f"```python\n{parents[-1].source}\n```\nPropose an improvement as one or more blocks:\n"
                "<<<<<<< SEARCH\n(exact lines of the program)\n=======\n(replacement)\n>>>>>>> REPLACE"
            )
        else:
            question = (
                f"{self.task.description}\n\nVersions of `{fn}` from worse to better (higher score is better):\n\n"
                f"```python\n{self._versions(parents)}\n```\n\nWrite `{fn}_v{k}`, better than all of them."
            )
        return "chat", {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]}

    def propose(self, parents: list[Member], rng: np.random.Generator) -> Proposal:
        mode, body = self.request(parents)
        if mode == "chat":
            call = self.client.chat(body["messages"], **self.settings)
        else:
            call = self.client.complete(body["prompt"], **self.settings)
        fn, k = self.task.function, len(parents)
        base = parents[-1].source
        try:
            if self.mode == "diff" and self.chat:
                if call.finish_reason == "length":  # the edits after the cut are lost: not the program meant
                    raise CodeError("the edit blocks were cut off")
                source = apply_diff(base, call.text)
            else:
                text = f"def {fn}_v{k}(" + call.text if mode == "completion" else call.text
                # the version asked for, then the bare name, later versions, and last the parents' copies
                later = tuple(f"{fn}_v{i}" for i in range(k + 1, k + 4))
                accept = (f"{fn}_v{k}", fn, *later, *(f"{fn}_v{i}" for i in reversed(range(k))))
                cut = call.finish_reason == "length"
                source = replace_function(base, extract_function(text, fn, accept, complete_only=cut), fn)
        except CodeError as exc:
            if call.finish_reason == "length":
                limit = self.settings.get("max_tokens", "the client's max_tokens")
                message = f"truncated: the answer hit the token limit ({limit}) before a complete function"
                raise ProposalError(message, call) from exc
            raise ProposalError(str(exc), call) from exc
        return Proposal(source, tuple(p.program_id for p in parents), self.name, call)


class ProposalError(CodeError):
    """A model answer that yields no program; the call is kept for the record."""

    def __init__(self, message: str, call: CallRecord | None = None) -> None:
        super().__init__(message)
        self.call = call


def replay_proposer(records: list[CallRecord], task: Task, **options) -> LLMProposer:
    """An LLM proposer that answers from a recording (the same prompts get the same answers)."""
    return LLMProposer(ReplayClient(Replay(records)), task, name="replay", **options)


class Bandit:
    """UCB1 over proposers: pulls the arm with the best value plus an exploration bonus.

    A pull's reward is 1 when its program beat its island's best. With `cost` "proposal" an
    arm's value is its rewards per pull (UCB1 as published); with "second" or "money" it is its
    rewards per second (model call plus evaluation) or per unit of money spent on it, divided by
    the best arm's, so a slow or dear model must improve more often to be chosen as often.
    """

    COSTS = ("proposal", "second", "money")

    def __init__(self, arms: list[str], exploration: float = 1.0, cost: str = "proposal") -> None:
        if cost not in self.COSTS:
            raise UserError(f"bandit cost {cost!r}: choose one of {', '.join(self.COSTS)}")
        self.arms = arms
        self.exploration = exploration
        self.cost = cost
        self.pulls = dict.fromkeys(arms, 0)
        self.rewards = dict.fromkeys(arms, 0.0)
        self.spent = dict.fromkeys(arms, 0.0)  # in the cost's unit

    def choose(self) -> str:
        for arm in self.arms:
            if self.pulls[arm] == 0:
                return arm
        total = sum(self.pulls.values())
        values = self.values()
        return max(
            self.arms,
            key=lambda a: values[a] + self.exploration * math.sqrt(2 * math.log(total) / self.pulls[a]),
        )

    def update(self, arm: str, reward: float, cost: float = 1.0) -> None:
        self.pulls[arm] += 1
        self.rewards[arm] += reward
        self.spent[arm] += cost

    def retire(self, arm: str) -> None:
        """Stop choosing `arm` (a proposer with nothing left to propose); its record stays."""
        self.arms = [a for a in self.arms if a != arm]

    def values(self) -> dict[str, float]:
        """Each arm's value in [0, 1]: rewards per pull, or its yield over the best arm's."""
        if self.cost == "proposal":
            return self.yields()
        per_cost = {a: self.rewards[a] / max(self.spent[a], 1e-12) for a in self.arms}
        best = max(per_cost.values())
        return {a: v / best if best > 0 else 0.0 for a, v in per_cost.items()}

    def yields(self) -> dict[str, float]:
        return {arm: (self.rewards[arm] / self.pulls[arm] if self.pulls[arm] else 0.0) for arm in self.arms}
