"""`cogsearch analyze RUN`: does the discovered program behave like the subjects, where did it
come from, and can its fitted parameters be trusted?

Three analyses of the reference program (the best by its score on the search subjects, as the
report chooses), on the held-out subjects:

- **Behavioural signatures**: win-stay / lose-shift and a logistic regression of each choice on
  the last few choices and rewarded choices (Lau & Glimcher 2005), for the data and for each
  model's predictions on the same histories (teacher forcing: every trial is predicted from the
  subject's own past, with parameters fitted on the other half of its trials), so data and
  models are compared on identical inputs without simulating the task.
- **Lineage**: the chain of first parents from the template to the program, with each step's
  proposer, score gain and the lines it changed.
- **Parameter recovery**: the program simulated on drifting bandits with each subject's fitted
  parameters, refitted, and the recovered parameters correlated with the ones that made the
  data (a parameter that does not come back is not interpretable).

Untrusted code never runs here: the program is fitted, predicted and simulated through the
computation its sandbox traced (`exported.py`).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

from garagelab.cogsearch.data import BehaviourDataset, load_npz
from garagelab.cogsearch.fit import FitConfig, Likelihood, log_probabilities_fn
from garagelab.core.errors import UserError
from garagelab.core.progress import ProgressBar

LAGS = 5  # trials back in the history regression
# the baselines shown beside the data and the discovered program: the paper's fly references and
# the general one (FQ, DFQ; forgetting Q-learning with perseveration)
SIGNATURE_MODELS = ("fly-fq", "fly-dfq", "forgetting-perseveration")


@dataclass(frozen=True)
class LineageStep:
    program: int
    proposer: str
    score: float | None
    gain: float | None  # over its parent
    changed: str  # the lines that differ from the parent (a unified diff, trimmed)


def lineage(db, program_id: int) -> list[LineageStep]:
    """The program's ancestors by first parent, template first."""
    chain, seen = [], set()
    program = db.program(program_id)
    while program is not None and program.id not in seen:
        seen.add(program.id)
        chain.append(program)
        program = db.program(program.parents[0]) if program.parents else None
    chain.reverse()
    steps = []
    for parent, child in zip([None, *chain[:-1]], chain, strict=True):
        gain = None
        if parent is not None and parent.score is not None and child.score is not None:
            gain = child.score - parent.score
        diff = ""
        if parent is not None:
            lines = difflib.unified_diff(parent.source.splitlines(), child.source.splitlines(), lineterm="", n=0)
            diff = "\n".join(line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---"))
        steps.append(LineageStep(child.id, child.proposer, child.score, gain, diff))
    return steps


def predicted_probabilities(likelihood: Likelihood, params: np.ndarray) -> np.ndarray:
    """[subjects, trials, options]: each trial predicted from the subject's own history with the
    parameters fitted on the other fold of its trials (params: [folds, subjects, P])."""
    data = likelihood.data
    width = likelihood.program.num_params
    full = np.zeros((*params.shape[:2], width), np.float32)
    full[..., : params.shape[-1]] = params
    per_subject = jax.vmap(log_probabilities_fn(likelihood.program))
    arrays = (jnp.asarray(data.choices), jnp.asarray(data.rewards), jnp.asarray(data.new_session))
    by_fold = [np.exp(np.asarray(per_subject(jnp.asarray(full[f]), *arrays))) for f in range(full.shape[0])]
    folds = data.folds()  # a trial in fold 0 is predicted by the fit to fold 1, and back
    return np.where(folds[0][..., None], by_fold[1], by_fold[0])


def _history(data: BehaviourDataset) -> tuple[np.ndarray, np.ndarray]:
    """(rows: trials with a full history, [n, 2 * LAGS] regressors): signed past choices (+1 for
    option 1, -1 for option 0) and signed past rewarded choices, within a session."""
    signed = np.where(data.choices == 1, 1.0, np.where(data.choices == 0, -1.0, 0.0))
    rewarded = signed * (data.rewards > 0)
    session = np.cumsum(data.new_session, axis=1)
    rows, features = [], []
    for s, t in zip(*np.nonzero(data.scored), strict=True):
        if t < LAGS or session[s, t - LAGS] != session[s, t] or (data.choices[s, t - LAGS : t] < 0).any():
            continue
        rows.append((s, t))
        features.append(np.concatenate([signed[s, t - LAGS : t][::-1], rewarded[s, t - LAGS : t][::-1]]))
    return np.array(rows, dtype=int).reshape(-1, 2), np.array(features).reshape(-1, 2 * LAGS)


def _logistic_weights(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Weights (bias first) of a logistic regression on soft targets in [0, 1] (data: 0/1;
    a model: its predicted probability), with a small ridge so separable data stays finite."""
    x = np.hstack([np.ones((len(features), 1)), features])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        p = 1 / (1 + np.exp(-z))
        value = np.sum(np.logaddexp(0, z) - target * z) + 0.5e-3 * w @ w
        return value, x.T @ (p - target) + 1e-3 * w

    return minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x


def signatures(data: BehaviourDataset, probabilities: np.ndarray | None = None) -> dict:
    """Win-stay, lose-stay and history weights of the data (`probabilities` None) or of a
    model's predictions on the data's histories. Two-option data only for the regression."""
    previous, current = data.choices[:, :-1], data.choices[:, 1:]
    same_session = ~data.new_session[:, 1:]
    valid = (previous >= 0) & (current >= 0) & same_session & data.scored[:, 1:]
    won = data.rewards[:, :-1] > 0
    if probabilities is None:
        stay = (current == previous).astype(float)
    else:
        stay = np.take_along_axis(probabilities[:, 1:], np.maximum(previous, 0)[..., None], axis=2)[..., 0]
    result = {
        "P(stay | win)": float(stay[valid & won].mean()),
        "P(stay | loss)": float(stay[valid & ~won].mean()),
    }
    if data.n_actions == 2:
        rows, features = _history(data)
        s, t = rows[:, 0], rows[:, 1]
        target = (data.choices[s, t] == 1).astype(float) if probabilities is None else probabilities[s, t, 1]
        weights = _logistic_weights(features, target)
        result["choice weights"] = weights[1 : 1 + LAGS].round(4).tolist()
        result["reward weights"] = weights[1 + LAGS :].round(4).tolist()
    return result


def recovery(
    likelihood: Likelihood, params: np.ndarray, used: np.ndarray, config: FitConfig, seed: int = 0
) -> dict[str, float]:
    """Pearson r between the parameters that simulated each subject and those refitted to the
    simulation, per used parameter (params: [subjects, P], from the fit)."""
    from garagelab.cogsearch.simulate import Bandit, simulate

    program = likelihood.program
    width = program.num_params
    truth = np.zeros((params.shape[0], width), np.float32)
    truth[:, : params.shape[1]] = params
    data = likelihood.data
    trials = max(int(data.scored.sum(axis=1).max()), 20)
    simulated = simulate(program, truth, sessions=2, trials=trials // 2, bandit=Bandit(data.n_actions), seed=seed)
    refit = Likelihood(program, simulated, config).fit()
    recovered = refit.params.mean(axis=0)  # the two folds' fits, averaged
    result = {}
    for index in used:
        a, b = truth[:, index], recovered[:, index]
        result[f"param {index}"] = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    return result


def analyze(directory: Path, progress: bool = True) -> Path:
    """Write analysis.html and analysis.json in a cogsearch run directory."""
    from garagelab.cogsearch.exported import new_sandbox
    from garagelab.cogsearch.programs import BASELINES
    from garagelab.cogsearch.report import REPORT_FIT, best_programs, fit_program
    from garagelab.cogsearch.search import HELDOUT_DATA
    from garagelab.core.report import Report
    from garagelab.evolve.database import ProgramDB
    from garagelab.evolve.search import DB_NAME

    directory = Path(directory)
    for name in (HELDOUT_DATA, DB_NAME):
        if not (directory / name).is_file():
            raise UserError(f"{directory / name} is missing: is {directory} a cogsearch run that has started?")
    heldout = load_npz(directory / HELDOUT_DATA)
    db = ProgramDB(directory / DB_NAME)
    try:
        found = best_programs(db, 1)  # by search score: held-out data chooses nothing
        if not found:
            raise UserError(f"{directory}: no program has been scored yet; run or resume the search first")
        reference = found[0]
        steps = lineage(db, reference.id)
    finally:
        db.close()
    models = {f"discovered (program {reference.id})": (reference.source, True)}
    models |= {name: (BASELINES[name], False) for name in SIGNATURE_MODELS}
    rows = [{"source": "data"} | signatures(heldout)]
    recovered: dict[str, float] = {}
    sandbox = new_sandbox(heldout.n_actions)
    try:
        with ProgressBar(len(models) + 1, "cogsearch analyze", unit="fits", enabled=progress) as bar:
            for name, (source, untrusted) in models.items():
                fitted = fit_program(name, source, heldout, REPORT_FIT, sandbox if untrusted else None)
                likelihood, result, used = fitted
                rows.append({"source": name} | signatures(heldout, predicted_probabilities(likelihood, result.params)))
                bar.advance()
                if untrusted:
                    recovered = recovery(likelihood, result.params[0], used, REPORT_FIT)
                    bar.advance()
    finally:
        sandbox.close()
    report = Report(directory, f"cogsearch analysis: {heldout.name}")
    report.section("Behavioural signatures (held-out subjects)")
    report.text(
        f"{heldout.n_subjects} held-out subjects. Models predict every trial from the subject's own history with "
        "parameters fitted on the other half of its trials. Choice and reward weights: a logistic regression of "
        f"choosing option 1 on the last {LAGS} choices (+1/-1) and rewarded choices, lag 1 first."
    )
    report.table([_flat(row) for row in rows])
    report.figure(_signature_figure(rows), "cogsearch-signatures", "History weights: data against each model.")
    report.section(f"Lineage of program {reference.id}")
    report.table([{"program": s.program, "proposer": s.proposer, "score": s.score, "gain": s.gain} for s in steps])
    report.figure(_lineage_figure(steps), "cogsearch-lineage", "Search score along the chain of first parents.")
    for step in steps[1:]:
        if step.changed:
            report.heading(f"program {step.program} ({step.proposer}, gain {step.gain:+.4g})" if step.gain is not None
                           else f"program {step.program} ({step.proposer})")  # fmt: skip
            report.code(step.changed)
    report.section("Parameter recovery")
    report.text(
        "The discovered program simulated on drifting bandits with each held-out subject's fitted parameters, then "
        "refitted: Pearson r between the parameters that made the data and those recovered (r near 1: identifiable)."
    )
    report.table([{"parameter": k, "r": v} for k, v in recovered.items()])
    page = report.write("analysis.html")
    payload = {"reference": reference.id, "signatures": rows, "lineage": [s.__dict__ for s in steps],
               "recovery": recovered}  # fmt: skip
    (directory / "analysis.json").write_text(json.dumps(payload, indent=2))
    return page


def _flat(row: dict) -> dict:
    return {k: (", ".join(f"{x:+.2f}" for x in v) if isinstance(v, list) else v) for k, v in row.items()}


def _signature_figure(rows: list[dict]):
    from garagelab.core.plots import figure

    fig, axes = figure(ncols=2, width=4, height=3.2)
    for row in rows:
        if "choice weights" not in row:
            continue
        style = {"color": "black", "linewidth": 2} if row["source"] == "data" else {"linestyle": "--"}
        lags = np.arange(1, LAGS + 1)
        axes[0].plot(lags, row["choice weights"], marker="o", label=row["source"], **style)
        axes[1].plot(lags, row["reward weights"], marker="o", label=row["source"], **style)
    for ax, title in zip(axes, ("past choices", "past rewarded choices"), strict=True):
        ax.set_xlabel("trials back")
        ax.set_title(title)
        ax.axhline(0, color="grey", linewidth=0.5)
    axes[0].set_ylabel("regression weight")
    axes[1].legend(fontsize=7)
    return fig


def _lineage_figure(steps: list[LineageStep]):
    from garagelab.core.plots import figure

    fig, (ax,) = figure(width=6, height=3)
    scores = [s.score if s.score is not None else np.nan for s in steps]
    ax.plot(range(len(steps)), scores, marker="o")
    for i, step in enumerate(steps):
        ax.annotate(step.proposer, (i, scores[i]), fontsize=6, rotation=30)
    ax.set_xlabel("generation (first parents, template first)")
    ax.set_ylabel("search score")
    return fig
