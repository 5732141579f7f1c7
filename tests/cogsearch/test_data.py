"""Loaders on the real fly data and on files the tests write; one-line errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from garagelab.cogsearch.data import (
    load_fly,
    load_fly_folder,
    load_long_csv,
    load_npz,
    load_rat_json,
    load_source,
    save_long_csv,
)
from garagelab.cogsearch.simulate import generate
from garagelab.core.errors import UserError
from tests.conftest import SHARED

FLY = SHARED / "data" / "fly" / "mohanta2022"


@pytest.mark.skipif(not FLY.is_dir(), reason="needs ../shared/data/fly")
def test_fly_folder_brings_its_own_split() -> None:
    search, heldout = load_source(str(FLY))
    assert (search.n_subjects, heldout.n_subjects) == (88, 44)
    assert search.n_trials == 160 and search.n_scored == 88 * 160
    assert set(np.unique(search.choices)) == {0, 1}
    assert search.new_session[:, 0].all() and search.new_session.sum() == 88


def test_fly_padding_and_errors(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("0,1,1,nan\n1,0,,\n")
    (tmp_path / "r.csv").write_text("1,0,1,nan\n0,0,,\n")
    data = load_fly(tmp_path / "c.csv", tmp_path / "r.csv")
    assert data.choices.tolist() == [[0, 1, 1, -1], [1, 0, -1, -1]]
    assert data.scored.sum() == 5
    (tmp_path / "c.csv").write_text("0,1,2\n")
    (tmp_path / "r.csv").write_text("1,0,1\n")
    with pytest.raises(UserError, match=r"c.csv row 1 column 3: 2.0 is not 0 or 1"):
        load_fly(tmp_path / "c.csv", tmp_path / "r.csv")
    (tmp_path / "c.csv").write_text("0,x\n")
    with pytest.raises(UserError, match=r"row 1 column 2: 'x' is not a number"):
        load_fly(tmp_path / "c.csv", tmp_path / "r.csv")
    with pytest.raises(UserError, match="no such file"):
        load_fly_folder(tmp_path)


def test_rat_json_marks_forced_and_violation_trials(tmp_path: Path) -> None:
    rats = [
        {"sides": "llrv", "trial_types": "flff", "rewards": [1, 0, 1, 0], "new_sess": [1, 0, 1, 0]},
        {"sides": "rr", "trial_types": "ff", "rewards": [0, 1], "new_sess": [1, 0]},
    ]
    path = tmp_path / "rats.json"
    path.write_text(json.dumps(rats))
    data = load_rat_json(path)
    assert data.choices.tolist() == [[0, 0, 1, -1], [1, 1, -1, -1]]
    assert data.scored.tolist() == [[True, False, True, False], [True, True, False, False]]
    assert data.new_session[0].tolist() == [True, False, True, False]
    rats[1]["sides"] = "rx"
    path.write_text(json.dumps(rats))
    with pytest.raises(UserError, match=r"rats.json rat 1 trial 1: side 'x'"):
        load_rat_json(path)
    path.write_text("[{")
    with pytest.raises(UserError, match="not valid JSON"):
        load_rat_json(path)
    for text, message in [
        ("[1, 2]", r"rat 0: expected an object with sides"),  # was an internal error
        ('[{"sides": "lr", "trial_types": "ff", "rewards": [1, "x"], "new_sess": [1, 0]}]', "rewards must be numbers"),
        ('[{"sides": "lr", "trial_types": "ff", "rewards": [1, 1e999], "new_sess": [1, 0]}]', "trial 1: the reward"),
    ]:
        path.write_text(text)
        with pytest.raises(UserError, match=message):
            load_rat_json(path)


def test_a_synthetic_set_too_large_to_hold_is_refused() -> None:
    with pytest.raises(UserError, match="at most 100,000 simulated subjects"):  # 1e9 was a MemoryError
        load_source("synthetic:afp:1000000000", 1 / 3, 0)


def test_an_npz_not_written_here_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(UserError, match=r"other.npz: not a data set saved by garagelab cogsearch \('choices"):
        load_npz(path)
    path.write_text("not an archive")
    with pytest.raises(UserError, match="not a data set saved by garagelab cogsearch"):
        load_npz(path)


def test_long_csv_round_trip_and_errors(tmp_path: Path) -> None:
    data = generate("q-learning", subjects=3, sessions=2, trials=20, seed=3)
    path = save_long_csv(data, tmp_path / "long.csv")
    back = load_long_csv(path)
    assert back.subjects == data.subjects
    np.testing.assert_array_equal(back.choices, data.choices)
    np.testing.assert_array_equal(back.new_session, data.new_session)
    np.testing.assert_allclose(back.rewards, data.rewards)
    bad = tmp_path / "bad.csv"
    bad.write_text("subject,session,trial,choice,reward\na,0,0,1,1\na,0,1,one,0\n")
    with pytest.raises(UserError, match=r"bad.csv row 3"):
        load_long_csv(bad)
    bad.write_text("subject,session,trial,choice,reward\na,0,0,0,1\na,0,1,5,0\n")
    with pytest.raises(UserError, match=r"options 1, 2, 3, 4 never occur among choices 0, 5"):
        load_long_csv(bad)
    bad.write_text("subject,session,trial,choice,reward\na,0,0,0,1\na,0,1,0,0\n")
    assert load_long_csv(bad).n_actions == 2  # a two-armed task where one arm was never taken


def test_long_csv_header_from_a_spreadsheet(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" leads with a byte-order mark, and people capitalise and pad names: read
    as the same columns."""
    data = generate("q-learning", subjects=2, sessions=1, trials=10, seed=1)
    plain = save_long_csv(data, tmp_path / "long.csv").read_text().splitlines()
    styled = tmp_path / "styled.csv"
    header = ", ".join(name.title() for name in plain[0].split(","))
    styled.write_bytes(("\ufeff" + "\n".join([header, *plain[1:]]) + "\n").encode("utf-8"))
    np.testing.assert_array_equal(load_long_csv(styled).choices, data.choices)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("subject,session,choice\n", r"missing column\(s\) trial, reward \(found: subject, session, choice"),
        ("Subject,Session,Choice\n", r"missing column\(s\) trial, reward \(found: subject, session, choice"),
        ("subject,Subject,session,trial,choice,reward\na,a,0,0,1,1\n", "column subject is given twice"),
    ],
)
def test_long_csv_header_errors(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(UserError, match=message):
        load_long_csv(bad)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("a,0,0,0.5,1", r"row 2 column choice: '0.5' is not an option number"),  # was truncated to 0
        ("a,0,0,inf,1", r"row 2 column choice: 'inf' is not an option number"),  # was an internal error
        ("a,0,0", r"row 2: no value for choice, reward \(fewer fields than the header\)"),  # likewise
        ("a,0,0,1,1,inf", r"row 2: cannot convert float infinity"),  # forced = inf
    ],
)
def test_long_csv_refuses_what_is_not_a_choice(tmp_path: Path, rows: str, message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"subject,session,trial,choice,reward,forced\n{rows}\n")
    with pytest.raises(UserError, match=message):
        load_long_csv(bad)


def test_long_csv_encodings(tmp_path: Path) -> None:
    """Excel's CSV UTF-8 starts with a byte-order mark, which must not hide the first column;
    its "Unicode text" is UTF-16, which is refused with how to save it instead."""
    path = tmp_path / "excel.csv"
    text = "subject,session,trial,choice,reward\na,0,0,1,1\na,0,1,0,0\n"
    path.write_text(text, encoding="utf-8-sig")
    assert load_long_csv(path).subjects == ("a",)
    path.write_text(text, encoding="utf-16")
    with pytest.raises(UserError, match="UTF-16 text, not UTF-8; save it as UTF-8"):
        load_long_csv(path)


def test_npz_keeps_the_data_sets_name(tmp_path: Path) -> None:
    """The report was titled "search_data" (the file name) for every run."""
    data = generate("q-learning", subjects=2, sessions=1, trials=10, seed=0)
    search, _ = data.split_subjects(1 / 2)
    back = load_npz(search.save_npz(tmp_path / "search_data.npz"))
    assert back.name == search.name != "search_data"


def test_split_and_folds() -> None:
    data = generate("q-learning", subjects=9, sessions=2, trials=30, seed=1)
    search, heldout = data.split_subjects(1 / 3)
    assert search.n_subjects == 6 and heldout.n_subjects == 3
    assert not set(search.subjects) & set(heldout.subjects)
    folds = data.folds()
    assert not (folds[0] & folds[1]).any() and ((folds[0] | folds[1]) == data.scored).all()
    assert folds[0, :, :30].all() and not folds[0, :, 30:].any()  # alternate sessions
    with pytest.raises(UserError, match="unknown generator"):
        load_source("synthetic:nothing")
    with pytest.raises(UserError, match="give a fly folder"):
        load_source("data.xlsx")


def test_two_fly_studies_merge_each_with_its_own_subject_split() -> None:
    from garagelab.cogsearch.data import load_source

    fly = FLY.parent
    if not fly.is_dir():
        pytest.skip("needs ../shared/data/fly")
    search, heldout = load_source(f"{fly / 'mohanta2022'}+{fly / 'rajagopalan2022'}")
    assert search.metadata["sources"] == {"mohanta2022": 88, "rajagopalan2022": 18}
    assert heldout.metadata["sources"] == {"mohanta2022": 44, "rajagopalan2022": 3}
    assert not set(search.subjects) & set(heldout.subjects)  # no fly on both sides
    assert search.n_trials == 200 and search.name == "mohanta2022+rajagopalan2022-search"
    mohanta = search.select([0])
    assert mohanta.scored[0, :160].all() and not mohanta.scored[0, 160:].any()  # padding is never scored
    alone, _ = load_source(str(fly / "mohanta2022"))
    np.testing.assert_array_equal(search.choices[:88, :160], alone.choices)
    with pytest.raises(UserError, match="listed twice"):
        load_source(f"{fly / 'mohanta2022'}+{fly / 'mohanta2022'}")
    with pytest.raises(UserError, match=r"no such file|must hold"):
        load_source(f"{fly / 'mohanta2022'}+{fly / 'nowhere.csv'}")
