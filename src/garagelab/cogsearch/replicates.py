"""Replicated searches: K independent searches on the same subject split, and the spread of
what they discover on the held-out subjects.

One search is one draw of a random process (its seed picks parents, mutations and model
samples); a program it discovers says little about the method until other seeds find as good
ones. Each replicate's discovered program is the one its report tests (the best by its score
on the search subjects: held-out scores choose nothing), scored per held-out subject; the
baselines are fitted on the same subjects in every replicate, so they are read from the first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from garagelab.cogsearch.report import CONFIDENCE, paired_p, subject_interval
from garagelab.core.errors import UserError


def _report(directory: Path) -> dict:
    path = directory / "report.json"
    if not path.is_file():
        raise UserError(f"{directory}: no report.json; run `garagelab cogsearch report {directory}` first")
    return json.loads(path.read_text())


def replicate_table(directories: list[Path]) -> str:
    """Markdown: each replicate's discovered program on the held-out subjects, their mean and
    spread, and every baseline beside them with how many replicates beat it."""
    reports = [_report(d) for d in directories]
    found = []
    for directory, report in zip(directories, reports, strict=True):
        reference = next(m for m in report["models"] if m["name"] == report["reference"])
        found.append((directory.name, reference, report["evaluations"]))
    scores = np.array([m["heldout"] for _, m, _ in found])
    lines = [
        "| replicate | evaluations | discovered program | parameters | search score | held-out, mean per subject "
        f"| {CONFIDENCE:.0%} interval |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, model, evaluations in found:
        lo, hi = subject_interval(np.array(model["per_subject"]))
        lines.append(
            f"| {name} | {evaluations} | {model['name']} | {model['num_params']} | {model['search_score']:.4f} "
            f"| {model['heldout']:.4f} | {lo:.4f} .. {hi:.4f} |"
        )
    spread = f"{scores.std(ddof=1) / np.sqrt(len(scores)):.4f}" if len(scores) > 1 else "n/a (one replicate)"
    lines += [
        "",
        f"Discovered, over {len(scores)} replicates: held-out {scores.mean():.4f} (standard error {spread}; "
        f"range {scores.min():.4f} .. {scores.max():.4f}).",
        "",
        f"| model | held-out, mean per subject | {CONFIDENCE:.0%} interval (subjects resampled) | replicates whose "
        "discovered program scores higher | of those, paired Wilcoxon p < 0.05 | replicates where it scores lower "
        "with p < 0.05 |",
        "|---|---|---|---|---|---|",
    ]
    for baseline in (m for m in reports[0]["models"] if m["kind"] in ("baseline", "gru", "generator")):
        per = np.array(baseline["per_subject"])
        higher = significant = lower = 0
        for _, model, _ in found:
            ours = np.array(model["per_subject"])
            clear = paired_p(ours, per) < 0.05
            higher += ours.mean() > per.mean()
            significant += ours.mean() > per.mean() and clear
            lower += ours.mean() < per.mean() and clear
        lo, hi = subject_interval(per)
        lines.append(
            f"| {baseline['name']} | {per.mean():.4f} | {lo:.4f} .. {hi:.4f} | {higher} of {len(found)} "
            f"| {significant} | {lower} |"
        )
    return "\n".join(lines)
