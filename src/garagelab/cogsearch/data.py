"""Choice data: subjects x trials of choices and rewards, and the loaders for its formats.

A `BehaviourDataset` holds equal-length rows (shorter subjects are padded): `choices` (int,
-1 where there is no choice: padding, violations), `rewards` (float), `new_session` (True on a
session's first trial: the agent starts afresh there), and `scored` (True where the choice
counts in the likelihood: free choices, not forced or violation trials, not padding).

Formats:
- fly (FlYMazeRL, Mohanta 2022 / Rajagopalan 2022): two headerless CSVs, one row per fly and
  one column per trial, choices and rewards as 0/1 floats, `nan` padding;
- rat (Miller et al. JSON): a list of dicts with `sides` (l/r/v), `trial_types` (f/l/r),
  `rewards` (0/1), `new_sess` (0/1);
- long CSV (with a header): subject, session, trial, choice, reward[, forced].
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from garagelab.core.errors import UserError
from garagelab.core.textfiles import read_user_text


@dataclass(frozen=True)
class BehaviourDataset:
    choices: np.ndarray  # [subjects, trials] int, -1: no choice
    rewards: np.ndarray  # [subjects, trials] float
    new_session: np.ndarray  # [subjects, trials] bool
    scored: np.ndarray  # [subjects, trials] bool
    subjects: tuple[str, ...]
    n_actions: int = 2
    name: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        shapes = {a.shape for a in (self.choices, self.rewards, self.new_session, self.scored)}
        if len(shapes) != 1 or len(self.choices.shape) != 2 or self.choices.shape[0] != len(self.subjects):
            raise ValueError(f"inconsistent dataset arrays: {shapes}, {len(self.subjects)} subjects")

    @property
    def n_subjects(self) -> int:
        return self.choices.shape[0]

    @property
    def n_trials(self) -> int:
        return self.choices.shape[1]

    @property
    def n_scored(self) -> int:
        return int(self.scored.sum())

    def select(self, indices: np.ndarray | list[int]) -> BehaviourDataset:
        """The given subjects only."""
        idx = np.asarray(indices, dtype=int)
        return BehaviourDataset(
            self.choices[idx],
            self.rewards[idx],
            self.new_session[idx],
            self.scored[idx],
            tuple(self.subjects[i] for i in idx),
            self.n_actions,
            self.name,
            self.metadata,
        )

    def split_subjects(self, test_fraction: float, seed: int = 0) -> tuple[BehaviourDataset, BehaviourDataset]:
        """(search subjects, held-out subjects): the held-out ones are never shown to a search."""
        if not 0 < test_fraction < 1:
            raise UserError(f"the held-out fraction must be between 0 and 1, not {test_fraction}")
        order = np.random.default_rng(seed).permutation(self.n_subjects)
        n_test = max(1, round(test_fraction * self.n_subjects))
        if n_test >= self.n_subjects:
            raise UserError(f"{self.n_subjects} subjects are too few to hold {n_test} out")
        return self.select(np.sort(order[n_test:])), self.select(np.sort(order[:n_test]))

    def folds(self) -> np.ndarray:
        """[2, subjects, trials] bool: the two halves of each subject's scored trials for
        within-subject cross-validation: alternate sessions when a subject has several, else the
        first and second half of its trials (fit on one, score on the other, and back)."""
        folds = np.zeros((2, *self.choices.shape), dtype=bool)
        for s in range(self.n_subjects):
            session = np.cumsum(self.new_session[s]) - 1
            if session.max() >= 1:
                first = session % 2 == 0
            else:
                valid = np.flatnonzero(self.scored[s])
                cut = valid[len(valid) // 2] if len(valid) else 0
                first = np.arange(self.n_trials) < cut
            folds[0, s] = self.scored[s] & first
            folds[1, s] = self.scored[s] & ~first
        return folds

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "choices": self.choices,
            "rewards": self.rewards,
            "new_session": self.new_session,
            "scored": self.scored,
            "subjects": np.array(self.subjects),
            "n_actions": np.array(self.n_actions),
        }

    def save_npz(self, path: Path | str) -> Path:
        # the data set's name travels with it (the report titled every run "search_data")
        np.savez_compressed(path, **self.to_arrays(), name=np.array(self.name))
        return Path(path)

    def summary(self) -> dict:
        chosen = self.choices[self.scored]
        return {
            "dataset": self.name,
            "subjects": self.n_subjects,
            "trials per subject": self.n_trials,
            "scored choices": self.n_scored,
            "sessions": int(self.new_session.sum()),
            "actions": self.n_actions,
            "reward rate": round(float(self.rewards[self.scored].mean()), 4) if self.n_scored else math.nan,
            "choice 0 rate": round(float((chosen == 0).mean()), 4) if len(chosen) else math.nan,
        }


def load_npz(path: Path | str) -> BehaviourDataset:
    """A data set written by `save_npz`; any other .npz is refused with what it lacks."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return BehaviourDataset(
                data["choices"],
                data["rewards"],
                data["new_session"],
                data["scored"],
                tuple(str(s) for s in data["subjects"]),
                int(data["n_actions"]),
                str(data["name"]) if "name" in data.files else Path(path).stem,
            )
    except (OSError, ValueError, KeyError) as exc:  # not an archive, pickled objects, a missing array
        raise UserError(f"{path}: not a data set saved by garagelab cogsearch ({exc})") from None


# -- fly ---------------------------------------------------------------------------------------


def _read_matrix(path: Path) -> list[list[float]]:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    rows = []
    for number, row in enumerate(csv.reader(io.StringIO(read_user_text(path), newline="")), start=1):
        values = []
        for column, text in enumerate(row, start=1):
            if not text.strip():
                continue
            try:
                values.append(float(text))
            except ValueError:
                raise UserError(f"{path} row {number} column {column}: {text[:20]!r} is not a number") from None
        rows.append(values)
    if not rows:
        raise UserError(f"{path}: the file is empty")
    return rows


def load_fly(choice_csv: Path | str, reward_csv: Path | str, name: str = "", prefix: str = "") -> BehaviourDataset:
    """Two headerless CSVs (FlYMazeRL): one row per fly, one column per trial, 0/1 or nan.
    Subjects are `<prefix>fly<row>` (a folder's training and test files each count from 0)."""
    choice_path, reward_path = Path(choice_csv), Path(reward_csv)
    choice_rows, reward_rows = _read_matrix(choice_path), _read_matrix(reward_path)
    if len(choice_rows) != len(reward_rows):
        raise UserError(f"{choice_path} has {len(choice_rows)} rows but {reward_path} has {len(reward_rows)}")
    width = max(len(r) for r in choice_rows)
    choices = np.full((len(choice_rows), width), -1, dtype=np.int32)
    rewards = np.zeros((len(choice_rows), width), dtype=np.float32)
    for i, (crow, rrow) in enumerate(zip(choice_rows, reward_rows, strict=True)):
        if len(crow) != len(rrow):
            raise UserError(f"row {i + 1}: {len(crow)} choices in {choice_path.name} but {len(rrow)} rewards")
        for t, (c, r) in enumerate(zip(crow, rrow, strict=True)):
            if math.isnan(c):
                continue
            if c not in (0.0, 1.0) or r not in (0.0, 1.0):
                bad, path = (c, choice_path) if c not in (0.0, 1.0) else (r, reward_path)
                raise UserError(f"{path} row {i + 1} column {t + 1}: {bad} is not 0 or 1")
            choices[i, t], rewards[i, t] = int(c), r
    new_session = np.zeros_like(choices, dtype=bool)
    new_session[:, 0] = True
    subjects = tuple(f"{prefix}fly{i}" for i in range(len(choice_rows)))
    return BehaviourDataset(choices, rewards, new_session, choices >= 0, subjects, 2, name or choice_path.parent.name)


def load_fly_folder(folder: Path | str, split: str = "training") -> BehaviourDataset:
    """`<folder>/<split>_choice_set.csv` and `<split>_reward_set.csv` (split: training or test)."""
    folder = Path(folder)
    return load_fly(
        folder / f"{split}_choice_set.csv", folder / f"{split}_reward_set.csv", f"{folder.name}-{split}", f"{split}/"
    )


# -- rat ---------------------------------------------------------------------------------------


def load_rat_json(path: Path | str) -> BehaviourDataset:
    """Miller et al.'s JSON: a list of rats, each with sides, trial_types, rewards, new_sess."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        rats = json.loads(read_user_text(path))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(rats, list) or not rats:
        raise UserError(f"{path}: expected a non-empty list of rats")
    width = 0
    parsed = []
    for index, rat in enumerate(rats):
        where = f"{path} rat {index}"
        if not isinstance(rat, dict):
            raise UserError(f"{where}: expected an object with sides, trial_types, rewards and new_sess")
        missing = [k for k in ("sides", "trial_types", "rewards", "new_sess") if k not in rat]
        if missing:
            raise UserError(f"{where}: missing {', '.join(missing)}")
        sides, types, rewards, new = (list(rat[k]) for k in ("sides", "trial_types", "rewards", "new_sess"))
        if not len(sides) == len(types) == len(rewards) == len(new):
            raise UserError(f"{where}: sides, trial_types, rewards and new_sess differ in length")
        for trial, (side, kind) in enumerate(zip(sides, types, strict=True)):
            if side not in ("l", "r", "v") or kind not in ("f", "l", "r"):
                raise UserError(f"{where} trial {trial}: side {side!r} / trial type {kind!r} not understood")
        try:
            rewards = np.asarray(rewards, dtype=np.float32)
        except (TypeError, ValueError):
            raise UserError(f"{where}: rewards must be numbers") from None
        if not np.isfinite(rewards).all():
            raise UserError(f"{where} trial {int(np.argmin(np.isfinite(rewards)))}: the reward is not finite")
        parsed.append((sides, types, rewards, new))
        width = max(width, len(sides))
    choices = np.full((len(parsed), width), -1, dtype=np.int32)
    reward = np.zeros((len(parsed), width), dtype=np.float32)
    new_session = np.zeros((len(parsed), width), dtype=bool)
    scored = np.zeros((len(parsed), width), dtype=bool)
    for i, (sides, types, rewards, new) in enumerate(parsed):
        n = len(sides)
        choices[i, :n] = [{"l": 0, "r": 1, "v": -1}[s] for s in sides]
        reward[i, :n] = rewards
        new_session[i, :n] = np.asarray(new, dtype=bool)
        new_session[i, 0] = True
        scored[i, :n] = (np.asarray(types) == "f") & (choices[i, :n] >= 0)
    subjects = tuple(str(r.get("name", f"rat{i}")) for i, r in enumerate(rats))
    return BehaviourDataset(choices, reward, new_session, scored, subjects, 2, path.stem)


# -- long CSV ----------------------------------------------------------------------------------

LONG_COLUMNS = ("subject", "session", "trial", "choice", "reward")


def load_long_csv(path: Path | str) -> BehaviourDataset:
    """A CSV with a header: subject, session, trial, choice, reward and optionally forced (0/1).
    Choices are 0..k-1 (empty or -1: no choice). Rows are ordered by (subject, session, trial)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    reader = csv.DictReader(io.StringIO(read_user_text(path), newline=""))
    # names in any case, with spaces around them ("Subject , Trial" from a spreadsheet)
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    twice = sorted({name for name in header if header.count(name) > 1 and name in (*LONG_COLUMNS, "forced")})
    if twice:
        raise UserError(f"{path}: column {twice[0]} is given twice (names are read in any case); keep one")
    missing = [c for c in LONG_COLUMNS if c not in header]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header) or 'none'}; "
            f"need {', '.join(LONG_COLUMNS)})"
        )
    reader.fieldnames = header
    records: dict[str, list[tuple]] = {}
    for number, row in enumerate(reader, start=2):
        short = [c for c in LONG_COLUMNS if row[c] is None]  # the reader fills a short row's tail with None
        if short:
            raise UserError(f"{path} row {number}: no value for {', '.join(short)} (fewer fields than the header)")
        try:
            session, trial = int(row["session"]), int(row["trial"])
            choice = float(row["choice"]) if row["choice"].strip() not in ("", "nan") else -1.0
            reward = float(row["reward"] or 0.0)
            forced = bool(int(float(row.get("forced") or 0)))
        except (ValueError, OverflowError) as exc:  # OverflowError: int(inf)
            raise UserError(f"{path} row {number}: {exc}") from None
        if not choice.is_integer():  # 0.5 or inf would otherwise be truncated or crash
            raise UserError(f"{path} row {number} column choice: {row['choice']!r} is not an option number 0..k-1")
        if not math.isfinite(reward):
            raise UserError(f"{path} row {number} column reward: {row['reward']!r} is not finite")
        if choice < -1:
            raise UserError(f"{path} row {number} column choice: {choice} is negative")
        records.setdefault(row["subject"], []).append((session, trial, int(choice), reward, forced))
    if not records:
        raise UserError(f"{path}: no rows")
    chosen = sorted({r[2] for rows in records.values() for r in rows if r[2] >= 0})
    n_actions = max(2, 1 + chosen[-1]) if chosen else 2
    never = sorted(set(range(n_actions)) - set(chosen))
    if chosen and chosen[-1] >= 2 and never:
        # {0, 5} would silently become a 6-option task with four options nobody ever chose
        raise UserError(
            f"{path} column choice: options {', '.join(map(str, never))} never occur among choices "
            f"{', '.join(map(str, chosen))}; number the options 0..k-1"
        )
    width = max(len(rows) for rows in records.values())
    shape = (len(records), width)
    choices, rewards = np.full(shape, -1, dtype=np.int32), np.zeros(shape, dtype=np.float32)
    new_session, scored = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    for i, rows in enumerate(records.values()):
        rows.sort(key=lambda r: (r[0], r[1]))
        sessions = [r[0] for r in rows]
        n = len(rows)
        choices[i, :n] = [r[2] for r in rows]
        rewards[i, :n] = [r[3] for r in rows]
        new_session[i, :n] = [t == 0 or sessions[t] != sessions[t - 1] for t in range(n)]
        scored[i, :n] = [r[2] >= 0 and not r[4] for r in rows]
    return BehaviourDataset(choices, rewards, new_session, scored, tuple(records), n_actions, path.stem)


def save_long_csv(dataset: BehaviourDataset, path: Path | str) -> Path:
    """The long format; trailing trials without a choice (padding) are left out."""
    path = Path(path)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*LONG_COLUMNS, "forced"])
        for s, subject in enumerate(dataset.subjects):
            made = np.flatnonzero(dataset.choices[s] >= 0)
            session, trial = -1, 0
            for t in range(made[-1] + 1 if len(made) else 0):
                if dataset.new_session[s, t]:
                    session, trial = session + 1, 0
                choice = int(dataset.choices[s, t])
                forced = int(choice >= 0 and not dataset.scored[s, t])
                writer.writerow([subject, session, trial, choice, float(dataset.rewards[s, t]), forced])
                trial += 1
    return path


# -- any source --------------------------------------------------------------------------------

MAX_SYNTHETIC_SUBJECTS = 100_000
SOURCES = (
    "a fly folder (training_/test_ CSVs), a rat .json, a long .csv, an .npz, or synthetic:GENERATOR; "
    "several joined with + are merged"
)


def merge(datasets: list[BehaviourDataset], labels: list[str], name: str) -> BehaviourDataset:
    """One data set of the subjects of several (the paper's fly set pools two studies): rows
    padded to the longest (padding is never scored), subjects named `<label>/<subject>`."""
    actions = {d.n_actions for d in datasets}
    if len(actions) > 1:
        raise UserError(f"cannot merge {', '.join(labels)}: their numbers of options differ ({sorted(actions)})")
    width = max(d.n_trials for d in datasets)

    def padded(array: np.ndarray, fill: float | bool) -> np.ndarray:
        return np.pad(array, ((0, 0), (0, width - array.shape[1])), constant_values=fill)

    return BehaviourDataset(
        np.concatenate([padded(d.choices, -1) for d in datasets]),
        np.concatenate([padded(d.rewards, 0.0) for d in datasets]),
        np.concatenate([padded(d.new_session, False) for d in datasets]),
        np.concatenate([padded(d.scored, False) for d in datasets]),
        tuple(f"{label}/{s}" for d, label in zip(datasets, labels, strict=True) for s in d.subjects),
        actions.pop(),
        name,
        {"sources": {label: d.n_subjects for d, label in zip(datasets, labels, strict=True)}},
    )


def load_source(spec: str, heldout_fraction: float = 1 / 3, seed: int = 0) -> tuple[BehaviourDataset, BehaviourDataset]:
    """(search subjects, held-out subjects) from a data source. A fly folder brings its own
    split (training / test files); any other source is split at random by subject. Sources
    joined with `+` are merged, each split its own way, search with search and held-out with
    held-out, so no subject is on both sides."""
    if "+" in spec and not Path(spec).exists():
        parts = [part for part in spec.split("+") if part]
        splits = [load_source(part, heldout_fraction, seed) for part in parts]
        labels = [Path(part).name or part for part in parts]
        if len(set(labels)) < len(labels):
            raise UserError(f"--data {spec}: a source is listed twice")
        joined = "+".join(labels)
        return (
            merge([search for search, _ in splits], labels, f"{joined}-search"),
            merge([heldout for _, heldout in splits], labels, f"{joined}-heldout"),
        )
    if spec.startswith("synthetic:"):
        from garagelab.cogsearch.simulate import GENERATORS, generate

        generator, _, count = spec.removeprefix("synthetic:").partition(":")
        if generator not in GENERATORS:
            raise UserError(f"--data {spec}: unknown generator {generator!r}; choose {', '.join(GENERATORS)}")
        if count and not count.isdigit():
            raise UserError(f"--data {spec}: the subject count {count!r} is not a whole number")
        if int(count or 0) > MAX_SYNTHETIC_SUBJECTS:  # 1e9 asked numpy for 37 GiB
            raise UserError(f"--data {spec}: at most {MAX_SYNTHETIC_SUBJECTS:,} simulated subjects")
        dataset = generate(generator, subjects=int(count or 40), seed=seed)
        return dataset.split_subjects(heldout_fraction, seed)
    path = Path(spec)
    if path.is_dir():
        if (path / "training_choice_set.csv").is_file():
            return load_fly_folder(path, "training"), load_fly_folder(path, "test")
        raise UserError(f"{path}: a folder must hold training_choice_set.csv and training_reward_set.csv (fly format)")
    loaders = {".json": load_rat_json, ".csv": load_long_csv, ".npz": load_npz}
    if path.suffix not in loaders:
        raise UserError(f"--data {spec}: give {SOURCES}")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    return loaders[path.suffix](path).split_subjects(heldout_fraction, seed)
