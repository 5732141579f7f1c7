"""What crosses the boundary: values round-trip exactly; every malformed frame a hostile writer
could send is refused with WireError, never decoded into something else or crashing the reader."""

from __future__ import annotations

import json
import math
import socket
import struct
import time

import numpy as np
import pytest

from garagelab.evolve import wire


def test_values_round_trip_exactly() -> None:
    value = {
        "a": [1, 2.5, None, True, "text"],
        "scalar": np.float32(0.25),
        "zero_d": np.asarray(3, dtype=np.int64),
        "matrix": np.arange(12, dtype=np.float64).reshape(3, 4),
        "empty": np.zeros((0, 5), dtype=np.uint8),
        "nested": {"deep": [np.array([True, False])]},
    }
    back = wire.decode(wire.encode(value), 1 << 20)
    assert back["a"] == value["a"]
    assert back["scalar"].dtype == np.float32 and back["scalar"].shape == () and back["scalar"] == 0.25
    assert back["zero_d"].shape == () and back["zero_d"] == 3
    assert np.array_equal(back["matrix"], value["matrix"]) and back["matrix"].flags.writeable
    assert back["empty"].shape == (0, 5)
    assert back["nested"]["deep"][0].tolist() == [True, False]


@pytest.mark.parametrize("value", [np.array([1 + 2j]), np.array(["a"]), np.array([object()]), {1, 2}, b"bytes"])
def test_what_cannot_cross_is_refused_at_the_sender(value) -> None:
    with pytest.raises(wire.WireError):
        wire.encode({"x": value})


def _frame(table: bytes, tree: bytes, buffers: bytes = b"", head_size: int | None = None, total: int | None = None):
    head = struct.pack("<Q", len(table)) + table + tree
    head_size = len(head) if head_size is None else head_size
    total = len(head) + len(buffers) if total is None else total
    return struct.pack("<QQ", head_size, total) + head + buffers


def _array(dtype: str, shape: list, index: int = 0) -> bytes:
    return json.dumps({"__array__": index, "dtype": dtype, "shape": shape}).encode()


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (b"", "shorter"),
        (_frame(b"[]", b"{}", total=10**12), "add up"),
        (_frame(b"[]", b"{}", head_size=10**6), "add up"),
        (_frame(b"[8]", b"{}"), "buffers"),
        (_frame(b"[-1]", b"{}"), "sizes"),
        (_frame(b"nope", b"{}"), "unreadable"),
        (_frame(b"[]", b"{" * 10_000), "unreadable"),
        (_frame(b"[]", b"[" * 100 + b"]" * 100), "nested"),
        (_frame(b"[8]", _array("object", [1]), b"\0" * 8), "dtype"),
        (_frame(b"[8]", _array("float64", [2]), b"\0" * 8), "bytes"),
        (_frame(b"[8]", _array("float64", [-1]), b"\0" * 8), "shape"),
        (_frame(b"[8]", _array("float64", [1] * 9), b"\0" * 8), "shape"),
        (_frame(b"[8]", _array("float64", [10**30]), b"\0" * 8), "bytes"),
        (_frame(b"[8]", _array("float64", [1], index=3), b"\0" * 8), "buffer"),
        (_frame(b"[]", b'{"__array__": 0, "dtype": "float64", "shape": [1], "extra": 1}'), "buffer"),
    ],
)
def test_malformed_frames_are_refused(frame: bytes, why: str) -> None:
    with pytest.raises(wire.WireError, match=why):
        wire.decode(frame, 1 << 20)


def test_a_frame_over_the_limit_is_an_output_limit_before_it_is_read() -> None:
    ours, theirs = socket.socketpair()
    theirs.sendall(struct.pack("<QQ", 10, 1 << 40))
    with pytest.raises(wire.WireError) as error:
        wire.receive(ours, 1 << 20, time.monotonic() + 1)
    assert error.value.kind == "output_limit"


def test_a_silent_peer_times_out_and_a_closed_one_is_eof() -> None:
    ours, theirs = socket.socketpair()
    with pytest.raises(TimeoutError):
        wire.receive(ours, 1 << 20, time.monotonic() + 0.05)
    theirs.sendall(wire.encode({"x": 1})[:10])
    theirs.close()
    with pytest.raises(EOFError):
        wire.receive(ours, 1 << 20, math.inf)
