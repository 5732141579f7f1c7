"""A training run's learning curve as a PNG: episode return against steps, from its metrics.csv.

    python experiments/playground/plot_curve.py RUN_DIR/metrics.csv --out curve.png --title "..." \
        [--steps-label "policy steps"] [--target 800]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="")
    parser.add_argument("--steps-label", default="env steps")
    parser.add_argument("--target", type=float, help="a goal line")
    args = parser.parse_args()
    rows = [r for r in csv.DictReader(args.metrics.open()) if r["episode_return"] not in ("", "nan")]
    steps = [int(r["steps"]) / 1e3 for r in rows]
    returns = [float(r["episode_return"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6.6, 3.4))
    ax.plot(steps, returns, marker=".", lw=1)
    if args.target is not None:
        ax.axhline(args.target, color="grey", ls="--", lw=0.8)
    ax.set(xlabel=f"{args.steps_label} (thousands)", ylabel="training episode return (stochastic)", title=args.title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out} ({len(rows)} points)")


if __name__ == "__main__":
    main()
