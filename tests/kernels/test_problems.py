"""KernelBench-format problems: loading, presets (module, sidecar, shrunk), clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garagelab.core.errors import UserError
from garagelab.kernels.problems import CPU_ELEMENTS, footprint, load_folder, load_module, load_problem, sized_source

MATMUL = """import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A, B)


N = 4096


def get_inputs():
    return [torch.rand(N, N), torch.rand(N, N)]


def get_init_inputs():
    return []
"""


def test_kernelbench_file_is_shrunk_for_cpu(tmp_path: Path) -> None:
    (tmp_path / "1_Square_matmul.py").write_text(MATMUL)
    (problem,) = load_folder(tmp_path)
    sizes = problem.constants("cpu")
    assert sizes == {"N": 512} and footprint(problem, sizes) <= CPU_ELEMENTS < footprint(problem, {})
    module = load_module(problem.source, problem.name, sizes)
    assert module.get_inputs()[0].shape == (512, 512)
    assert problem.constants("full") == {} and problem.tolerance("cpu") == (1e-4, 1e-4)


def test_presets_from_the_module_and_a_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "mm.py"
    path.write_text(MATMUL + '\nPRESETS = {"cpu": {"N": 64}, "gpu": {"N": 2048, "atol": 1e-3}}\n')
    assert load_problem(path).constants("cpu") == {"N": 64}
    assert load_problem(path).tolerance("gpu") == (1e-3, 1e-4)
    path.with_suffix(".json").write_text(json.dumps({"cpu": {"N": 32}}))
    assert load_problem(path).constants("cpu") == {"N": 32}
    path.with_suffix(".json").write_text(json.dumps({"cpu": {"M": 32}}))
    with pytest.raises(UserError, match="sets M, which the problem does not define"):
        load_module(MATMUL, "mm", load_problem(path).constants("cpu"))


def test_not_a_problem(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("print(1)\n")
    with pytest.raises(UserError, match="not a KernelBench problem"):
        load_folder(tmp_path)
    with pytest.raises(UserError, match="no such folder"):
        load_folder(tmp_path / "missing")


SUITE = Path(__file__).resolve().parents[2] / "src" / "garagelab" / "kernels" / "suite"


CHECK_FOLDER = """
import sys
from pathlib import Path
import torch
from garagelab.kernels.problems import CPU_ELEMENTS, footprint, load_folder, load_module
for problem in load_folder(Path(sys.argv[1])):
    module = load_module(problem.source, problem.name, problem.constants("cpu"))
    torch.manual_seed(0)
    output = module.Model(*module.get_init_inputs())(*module.get_inputs())
    atol, _ = problem.tolerance("cpu")
    assert torch.isfinite(output).all(), problem.name
    assert output.abs().max() > 10 * atol, f"{problem.name}: zeros would pass"
    assert footprint(problem, problem.constants("cpu")) <= CPU_ELEMENTS
print(len(load_folder(Path(sys.argv[1]))))
"""


@pytest.mark.parametrize("folder", [SUITE, SUITE / "attention"], ids=["ops", "attention"])
def test_shipped_problems_run_at_cpu_size_and_are_not_degenerate(folder: Path) -> None:
    """In a fresh interpreter: late in a full test session (JAX, sandboxes, a model server and
    many threads in this process) PyTorch's CPU kernels here have crashed it with a segfault."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CHECK_FOLDER, str(folder)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) == (20 if folder == SUITE else 7)


def test_sized_source_writes_a_size_into_the_file() -> None:
    problem = load_problem(SUITE / "05_softmax.py")
    module = load_module(sized_source(problem, "cpu"), "sized")
    assert (module.BATCH, module.DIM) == (32, 1024)
    assert module.get_inputs()[0].shape == (32, 1024)
