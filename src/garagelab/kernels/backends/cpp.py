"""C++/OpenMP kernels compiled with plain g++ and loaded with ctypes.

`torch.utils.cpp_extension.load_inline` takes about 100 s per build on 2 cores (it compiles
torch/extension.h and pybind11); `g++ -O3 -fopenmp -shared` of a plain `extern "C"` file takes
under a second, and its errors are short lines a model can act on. A candidate declares
functions over raw pointers and integers:

    extern "C" void relu(const float* x, float* out, int64_t n) { ... }

and calls them with tensors (passed as their data pointers; contiguous float32 required),
Python ints (int64_t) and floats (float): `lib = load(SOURCE); lib.relu(x, out, x.numel())`.
Builds are cached by the hash of source and flags.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import subprocess
from pathlib import Path

from garagelab.core.paths import cache_dir

FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++17")
# g++: `file.cpp:12:5: error: ...`; nvcc: `file.cu(12): error: ...`
_ERROR = re.compile(r"^[^:(\n]*(?::(\d+):(\d+)|\((\d+)\)): (?:fatal )?error: (.*)$", re.M)


class CompileError(Exception):
    """A build that failed, with the compiler's first errors as `line:column: message`
    (in the sandbox, the evaluation's failure kind is `compile`, wherever the build ran)."""

    failure_kind = "compile"

    def __init__(self, errors: list[str], log: str) -> None:
        super().__init__("\n".join(errors[:5]) or log[-800:])
        self.errors = errors
        self.log = log


def build(
    source: str,
    flags: tuple[str, ...] = FLAGS,
    directory: Path | None = None,
    compiler: str = "g++",
    suffix: str = ".cpp",
) -> Path:
    """The shared library for `source` (compiled once per source, compiler and flags)."""
    key = hashlib.sha256((source + "\0" + compiler + " " + " ".join(flags)).encode()).hexdigest()[:20]
    directory = directory or cache_dir() / "kernels" / suffix.lstrip(".")
    directory.mkdir(parents=True, exist_ok=True)
    library = directory / f"{key}.so"
    if library.is_file():
        return library
    source_path = directory / f"{key}{suffix}"
    source_path.write_text(source)
    partial = directory / f"{key}.so.part"
    result = subprocess.run(
        [compiler, *flags, str(source_path), "-o", str(partial)], capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        errors = [f"{m.group(1) or m.group(3)}:{m.group(2) or 0}: {m.group(4)}" for m in _ERROR.finditer(result.stderr)]
        raise CompileError(errors, result.stderr)
    partial.rename(library)  # atomic: a concurrent build never loads half a file
    return library


try:
    from torch import Tensor, float32
except ImportError:  # pragma: no cover - the kernels extra brings torch
    Tensor, float32 = (), None


def _argument(value, device: str):
    """One call argument as ctypes takes it (checked: a wrong tensor is an error, not a crash).
    On the hot path of every timed call: a C++ kernel of a few microseconds pays for this too."""
    if isinstance(value, Tensor):
        if value.dtype != float32 or not value.is_contiguous() or value.device.type != device:
            raise TypeError(f"these kernels take contiguous float32 tensors on {device}")
        return ctypes.c_void_p(value.data_ptr())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"C++ kernels take tensors, ints and floats, not {type(value).__name__}")
    return ctypes.c_int64(value) if isinstance(value, int) else ctypes.c_float(value)


class Library:
    """A loaded build; attribute access gives its `extern "C"` functions taking tensors (on
    `device`: the CUDA backend's functions take GPU tensors and launch their kernels)."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        self._dll = ctypes.CDLL(str(path))
        self._device = device

    def __getattr__(self, name: str):
        function = getattr(self._dll, name)
        function.restype = None
        device = self._device

        def call(*args):
            return function(*[_argument(a, device) for a in args])

        call.__name__ = name
        setattr(self, name, call)  # found directly from now on, without this method
        return call


def load(source: str) -> Library:
    return Library(build(source))
