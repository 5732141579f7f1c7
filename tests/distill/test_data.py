from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from garagelab.core.errors import UserError
from garagelab.distill.data import read_runs, write_runs
from garagelab.distill.laws import BUSBRIDGE2025
from garagelab.distill.simulate import simulate_distillation, simulate_supervised


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "runs.csv"
    path.write_text(text)
    return path


def test_round_trip(tmp_path: Path) -> None:
    sup = simulate_supervised(BUSBRIDGE2025)
    dist = simulate_distillation(BUSBRIDGE2025, runs=30)
    table = read_runs(write_runs(tmp_path / "r.csv", sup, dist))
    np.testing.assert_allclose(table.supervised.loss, sup.loss)
    np.testing.assert_allclose(table.distillation.teacher_loss, dist.teacher_loss)
    np.testing.assert_allclose(table.distillation.n_t, dist.n_t)


def test_aliases_extra_columns_and_teacher_from_size(tmp_path: Path) -> None:
    path = write(tmp_path, "N_S,D_S,L_S,N_T,D_T,seed\n1e9,2e10,2.5,7e9,1.4e11,0\n1e9,2e10,2.51,,,1\n")
    table = read_runs(path)
    assert len(table.supervised) == 1 and len(table.distillation) == 1
    assert table.teacher_loss_missing.tolist() == [True]
    filled = table.with_teacher_losses(BUSBRIDGE2025.supervised)
    assert filled.distillation.teacher_loss[0] == pytest.approx(float(BUSBRIDGE2025.supervised_loss(7e9, 1.4e11)))


def test_a_byte_order_mark_and_header_variants_are_read(tmp_path: Path) -> None:
    """Spreadsheets save UTF-8 with a byte-order mark, and people write `n`, ` Loss `, `l_t`."""
    path = tmp_path / "runs.csv"
    path.write_bytes("\ufeffn , D,LOSS, l_t \n1e9,2e10,2.5,\n1e9,2e10,2.4,2.2\n".encode())
    table = read_runs(path)
    assert len(table.supervised) == 1 and table.distillation.teacher_loss.tolist() == [2.2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("N,loss\n1,2\n", r"missing column\(s\) D"),
        ("N,D,loss\n1e9,abc,2.5\n", r"line 2, column D: 'abc' is not a number"),
        ("N,D,loss\n1e9,2e10,2.5\n-1e9,2e10,2.5\n", r"line 3, column N: -1e9 must be a positive"),
        ("N,D,loss\n1e9,0,2.5\n", r"line 2, column D: 0 must be a positive"),
        ("N,D,loss\n1e9,2e10,nan\n", r"line 2, column loss: NaN is not allowed"),
        ("N,D,loss\n1e9,,2.5\n", r"line 2, column D: value missing"),
        ("N,D,loss,N_T,D_T\n1e9,2e10,2.5,7e9,\n", r"line 2, column D_T: a distillation row needs"),
        ("N,D,loss\n", r"no data rows"),
        ("N,n_s,D,loss\n1,2,3,4\n", r"column N is given twice"),
    ],
)
def test_bad_csv_names_row_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        read_runs(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        read_runs(tmp_path / "nope.csv")
    with pytest.raises(UserError, match="a directory, not a file"):
        read_runs(tmp_path)


def test_a_utf16_file_is_refused_with_how_to_save_it(tmp_path: Path) -> None:
    """Excel's "Unicode text" is UTF-16: a clear error naming the fix, not an internal error; a
    binary given by mistake likewise."""
    path = tmp_path / "runs.csv"
    path.write_text("N,D,loss\n1e8,1e9,3.0\n", encoding="utf-16")
    with pytest.raises(UserError, match="UTF-16 text, not UTF-8; save it as UTF-8"):
        read_runs(path)
    path.write_bytes(b"N,D,loss\n\xd0\x00\n")
    with pytest.raises(UserError, match=r"not UTF-8 text \(byte 0xd0 at offset 9\)"):
        read_runs(path)
