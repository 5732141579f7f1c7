"""Tensors shared between the trusted verifier and a candidate's process: sealed memory.

Each input is a memfd the verifier fills and then seals against any change (writes, resizing,
new seals) before the candidate's process sees it: it maps it read-only (a kernel that writes
into its inputs crashes with SIGSEGV, as KernelBench forbids changing them). Each
output is a memfd of the expected size, sealed against resizing; the candidate's side writes
the result into it, unmaps it and seals it against writing *before* it answers. The verifier
refuses an output that is not sealed, so what it reads is final: a thread or a child of the
candidate cannot finish the work after the answer (the seal cannot be set while any writable
mapping exists, and none can be made after it). Nothing is copied through a socket, so the
verifier's clock around a call measures the kernel and a few system calls, the same for the
candidate and the baseline.
"""

from __future__ import annotations

import fcntl
import math
import mmap
import os
import warnings

import torch

SEALED = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
DTYPES = {
    name: getattr(torch, name)
    for name in ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
}


def nbytes(dtype: str, shape: list[int]) -> int:
    return math.prod(shape) * torch.empty((), dtype=DTYPES[dtype]).element_size()


def describe(tensor: torch.Tensor) -> dict:
    return {"dtype": str(tensor.dtype).removeprefix("torch."), "shape": list(tensor.shape)}


# -- the trusted side -------------------------------------------------------------------------
def sealed_input(tensor: torch.Tensor) -> int:
    """A memfd holding `tensor`'s bytes, sealed for good (the caller closes it)."""
    data = tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
    fd = os.memfd_create("garagelab-input", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALED)
    return fd


def output_slot(size: int) -> int:
    """A memfd of `size` bytes the candidate's side must fill and seal (the caller closes it)."""
    fd = os.memfd_create("garagelab-output", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    if size:
        os.posix_fallocate(fd, 0, size)  # the pages exist before the clock starts
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
    return fd


def read_output(fd: int, dtype: str, shape: list[int]) -> torch.Tensor | None:
    """The output in `fd`, or None if it was not sealed against writing (still changeable)."""
    if not fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE:
        return None
    size = nbytes(dtype, shape)
    if not size:
        return torch.empty(shape, dtype=DTYPES[dtype])
    with mmap.mmap(fd, size, prot=mmap.PROT_READ) as memory:
        data = bytearray(memory)
    return torch.frombuffer(data, dtype=DTYPES[dtype]).reshape(shape)


# -- the candidate's side ----------------------------------------------------------------------
class Inputs:
    """The sealed inputs mapped read-only, as tensors (kept mapped while they are in use)."""

    def __init__(self) -> None:
        self._maps: list[mmap.mmap] = []

    def tensor(self, fd: int, dtype: str, shape: list[int]) -> torch.Tensor:
        size = nbytes(dtype, shape)
        if not size:
            return torch.empty(shape, dtype=DTYPES[dtype])
        memory = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE, prot=mmap.PROT_READ)
        self._maps.append(memory)
        with warnings.catch_warnings():  # "not writable": that is the point
            warnings.simplefilter("ignore", UserWarning)
            return torch.frombuffer(memory, dtype=DTYPES[dtype]).reshape(shape)


def write_output(fd: int, result: torch.Tensor) -> None:
    """Copy `result` into the output memfd, unmap it and seal it against writing."""
    size = result.numel() * result.element_size()
    if size:
        memory = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        target = torch.frombuffer(memory, dtype=result.dtype).reshape(result.shape)
        target.copy_(result.detach().cpu())
        del target
        memory.close()
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE)
