"""Sealed memory between the verifier and a candidate: what crosses is exact in every dtype,
inputs cannot be changed, an output counts only once sealed, and after that nobody writes it."""

from __future__ import annotations

import mmap
import os

import pytest
import torch

from garagelab.kernels import shared


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "bool"])
def test_inputs_and_outputs_cross_exactly(dtype: str) -> None:
    value = (torch.randn(3, 5) * 10).to(shared.DTYPES[dtype])
    fd, slot = shared.sealed_input(value), shared.output_slot(shared.nbytes(dtype, [3, 5]))
    try:
        seen = shared.Inputs().tensor(fd, dtype, [3, 5])
        assert torch.equal(seen, value)
        shared.write_output(slot, seen)
        assert torch.equal(shared.read_output(slot, dtype, [3, 5]), value)
    finally:
        os.close(fd)
        os.close(slot)


def test_an_input_cannot_be_changed_by_any_route() -> None:
    fd = shared.sealed_input(torch.ones(4))
    try:
        with pytest.raises(PermissionError):
            mmap.mmap(fd, 16, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"\0" * 4, 0)
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def test_an_output_counts_only_sealed_and_stays_as_it_was_sealed() -> None:
    slot = shared.output_slot(16)
    try:
        assert shared.read_output(slot, "float32", [4]) is None  # not sealed: could still change
        writable = mmap.mmap(slot, 16, prot=mmap.PROT_READ | mmap.PROT_WRITE)  # a mapping kept to write later
        with pytest.raises(OSError):
            shared.write_output(slot, torch.ones(4))  # the seal cannot be set while it exists
        writable.close()
        shared.write_output(slot, torch.ones(4))
        with pytest.raises(PermissionError):
            mmap.mmap(slot, 16, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        assert torch.equal(shared.read_output(slot, "float32", [4]), torch.ones(4))
    finally:
        os.close(slot)
