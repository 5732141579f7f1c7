"""The nvcc + ctypes backend: CUDA kernels build in seconds and errors name their line. Builds
need only the CUDA toolkit; running them (tests/kernels/test_gpu.py) needs a GPU."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from garagelab.kernels.backends import cuda
from garagelab.kernels.backends.cpp import CompileError, build

CANDIDATES = Path(cuda.__file__).resolve().parents[1] / "candidates"
HAS_NVCC = shutil.which("nvcc") is not None or Path("/usr/local/cuda/bin/nvcc").is_file()


def source_of(candidate: Path) -> str:
    return re.search(r'SOURCE = r"""(.*?)"""', candidate.read_text(), re.S).group(1)


@pytest.mark.skipif(not HAS_NVCC, reason="no CUDA toolkit")
@pytest.mark.parametrize("candidate", sorted(CANDIDATES.glob("*_cuda.py")), ids=lambda p: p.stem)
def test_cuda_candidates_build(candidate: Path, tmp_path: Path) -> None:
    library = build(source_of(candidate), cuda.FLAGS, tmp_path, compiler=cuda.nvcc(), suffix=".cu")
    assert library.stat().st_size > 0


@pytest.mark.skipif(not HAS_NVCC, reason="no CUDA toolkit")
def test_nvcc_errors_name_the_line(tmp_path: Path) -> None:
    broken = source_of(CANDIDATES / "relu_cuda.py").replace("fmaxf(x[i], 0.f)", "fmaxf(y[i], 0.f)")
    with pytest.raises(CompileError) as caught:
        build(broken, cuda.FLAGS, tmp_path, compiler=cuda.nvcc(), suffix=".cu")
    line = broken.splitlines().index(next(x for x in broken.splitlines() if "fmaxf(y[i]" in x)) + 1
    assert caught.value.errors[0].startswith(f"{line}:") and '"y"' in caught.value.errors[0]
