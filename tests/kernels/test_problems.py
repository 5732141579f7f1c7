"""KernelBench-format problems: loading, presets (module, sidecar, shrunk), clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garagelab.core.errors import UserError
from garagelab.kernels.problems import (
    CPU_ELEMENTS,
    footprint,
    load_folder,
    load_module,
    load_problem,
    scan_folder,
    sized_source,
)

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


def test_a_folder_skips_a_broken_problem_with_its_reason(tmp_path: Path, capsys) -> None:
    from garagelab.cli import main

    (tmp_path / "1_mm.py").write_text(MATMUL)
    (tmp_path / "2_notes.py").write_text("print(1)\n")
    (tmp_path / "3_broken.py").write_text(MATMUL.replace("torch.rand(N, N), torch.rand(N, N)", "undefined(N)"))
    problems, skipped = scan_folder(tmp_path)
    assert [p.name for p in problems] == ["1_mm", "3_broken"] and skipped[0][0].name == "2_notes.py"
    assert main(["kernels", "problems", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "N=512" in out and "skipped: cannot shrink" in out and "NameError" in out and "not a KernelBench" in out


DERIVED = """import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_features, out_features, bias_shape):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.bias = nn.Parameter(torch.randn(bias_shape))

    def forward(self, x):
        return self.linear(x) + self.bias


batch_size = 128
in_features = 4096
out_features = (
    4096
)
bias_shape = (out_features,)


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features, bias_shape]
"""


def test_derived_constants_follow_the_sizes(tmp_path: Path) -> None:
    """KernelBench's level 2 derives shapes from sizes (`bias_shape = (out_features,)`): the
    sizes are written into the source before it runs, so the derived ones follow."""
    path = tmp_path / "76_Gemm_Add.py"
    path.write_text(DERIVED)
    problem = load_problem(path)
    sizes = problem.constants("cpu")
    module = load_module(problem.source, problem.name, sizes)
    model = module.Model(*module.get_init_inputs())
    assert module.bias_shape == (module.out_features,) and model(*module.get_inputs()).shape[1] == module.out_features
    assert footprint(problem, sizes) <= CPU_ELEMENTS


CONV = """import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, channels, embed_dim):
        super().__init__()
        self.conv = nn.Conv2d(channels, embed_dim, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


batch_size = 16; channels = 3
height = width = 256
depth, embed_dim = 8, 64
num_channels = channels


def get_inputs():
    return [torch.randn(batch_size, num_channels, height, width)]


def get_init_inputs():
    return [num_channels, embed_dim]
"""


def test_sizes_assigned_together_are_shrunk_one_by_one(tmp_path: Path) -> None:
    """KernelBench's level 2 writes `height = width = 128` and `depth, height, width = 16, 32, 32`
    (60 of its 100 problems), and a size derived from another (`num_channels = channels`) must
    follow it, not be halved apart from it."""
    path = tmp_path / "conv.py"
    path.write_text(CONV)
    problem = load_problem(path)
    sizes = problem.constants("cpu")
    assert {"height", "width"} <= set(sizes) and "num_channels" not in sizes
    module = load_module(problem.source, problem.name, sizes)
    assert (module.height, module.width, module.depth) == (sizes["height"], sizes["width"], sizes.get("depth", 8))
    assert module.num_channels == module.channels and module.batch_size == sizes.get("batch_size", 16)
    assert module.Model(*module.get_init_inputs())(*module.get_inputs()).shape[1] == module.embed_dim
    rewritten = load_module(problem.source, problem.name, {"width": 7, "channels": 2})
    assert (rewritten.height, rewritten.width, rewritten.channels, rewritten.batch_size) == (256, 7, 2, 16)
    path.write_text(CONV.replace("depth, embed_dim = 8, 64", "depth, embed_dim = SIZES").replace(
        "num_channels = channels", "SIZES = (8, 64)\nnum_channels = channels"))  # fmt: skip
    with pytest.raises(UserError, match="give the sizes one assignment each"):
        load_module(path.read_text(), "conv", {"embed_dim": 32})


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
