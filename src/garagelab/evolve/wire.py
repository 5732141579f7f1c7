"""What crosses the trust boundary: plain data in frames, never code, never a pickle.

A value is JSON (dicts with string keys, lists, strings, numbers, booleans, null) in which
NumPy arrays stand as `{"__array__": index, "dtype": ..., "shape": [...]}`, their bytes appended
after the JSON. A frame on a stream is 16 bytes (JSON length, total length) then the payload.
`decode` checks everything a hostile writer could get wrong on purpose: the sizes add up, the
dtypes are plain numeric ones, the shapes are whole and match the bytes, the nesting is shallow,
the whole is under a size limit; what it returns holds only those types.
"""

from __future__ import annotations

import json
import math
import os
import select
import socket
import struct
import time

import numpy as np

HEADER = struct.Struct("<QQ")
DTYPES = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"}
)
MAX_DEPTH = 64
MAX_DIMS = 8


class WireError(Exception):
    """A frame or value that does not follow the format (or is over its size limit)."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


def encode(value) -> bytes:
    """A payload: the JSON of `value` with its arrays' bytes after it."""
    buffers: list[bytes] = []

    def plain(item):
        if isinstance(item, np.ndarray | np.generic):
            array = np.asarray(item)
            if array.dtype.name not in DTYPES:
                raise WireError(f"arrays of {array.dtype} cannot cross the boundary")
            buffers.append(array.tobytes(order="C"))
            return {"__array__": len(buffers) - 1, "dtype": array.dtype.name, "shape": list(array.shape)}
        if isinstance(item, dict):
            return {str(k): plain(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [plain(v) for v in item]
        if item is None or isinstance(item, bool | int | float | str):
            return item
        raise WireError(f"a {type(item).__name__} cannot cross the boundary")

    head = json.dumps(plain(value), separators=(",", ":")).encode()
    table = json.dumps([len(b) for b in buffers]).encode()
    head = struct.pack("<Q", len(table)) + table + head
    return HEADER.pack(len(head), len(head) + sum(map(len, buffers))) + head + b"".join(buffers)


def decode(payload: bytes, limit: int) -> object:
    """The value in `payload` (a frame's whole bytes), checked; WireError if anything is off."""
    if len(payload) > limit + HEADER.size:
        raise WireError(f"{len(payload):,} bytes is over the limit of {limit:,}", "output_limit")
    if len(payload) < HEADER.size + 8:
        raise WireError("a frame shorter than its header")
    head_size, total = HEADER.unpack_from(payload)
    if total != len(payload) - HEADER.size or head_size > total:
        raise WireError("a frame whose sizes do not add up")
    (table_size,) = struct.unpack_from("<Q", payload, HEADER.size)
    start = HEADER.size + 8
    if table_size > head_size - 8:
        raise WireError("a frame whose sizes do not add up")
    try:
        sizes = json.loads(payload[start : start + table_size])
        tree = json.loads(payload[start + table_size : HEADER.size + head_size])
    except (ValueError, RecursionError) as exc:
        raise WireError(f"unreadable frame ({type(exc).__name__})") from None
    if not isinstance(sizes, list) or not all(isinstance(s, int) and s >= 0 for s in sizes):
        raise WireError("a frame whose buffer table is not a list of sizes")
    if HEADER.size + head_size + sum(sizes) != len(payload):
        raise WireError("a frame whose buffers do not add up")
    offsets = np.cumsum([HEADER.size + head_size, *sizes]).tolist()
    buffers = [payload[offsets[i] : offsets[i + 1]] for i in range(len(sizes))]
    return _rebuild(tree, buffers, 0)


def _rebuild(item, buffers: list[bytes], depth: int):
    if depth > MAX_DEPTH:
        raise WireError(f"nested more than {MAX_DEPTH} levels")
    if isinstance(item, dict):
        if "__array__" in item:
            return _array(item, buffers)
        return {key: _rebuild(value, buffers, depth + 1) for key, value in item.items()}
    if isinstance(item, list):
        return [_rebuild(value, buffers, depth + 1) for value in item]
    return item


def _array(item: dict, buffers: list[bytes]) -> np.ndarray:
    index, dtype, shape = item.get("__array__"), item.get("dtype"), item.get("shape")
    if set(item) != {"__array__", "dtype", "shape"} or not isinstance(index, int) or not 0 <= index < len(buffers):
        raise WireError("an array entry that names no buffer")
    if dtype not in DTYPES:
        raise WireError(f"an array of dtype {dtype!r}; allowed: {', '.join(sorted(DTYPES))}")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise WireError(f"an array of shape {shape!r}")
    data = buffers[index]
    if math.prod(shape) * np.dtype(dtype).itemsize != len(data):
        raise WireError(f"an array of shape {shape} and dtype {dtype} that has {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype).reshape(tuple(shape)).copy()


# -- frames on a stream socket ----------------------------------------------------------------
MAX_FDS = 64


def send(sock: socket.socket, value, deadline: float, fds: tuple[int, ...] = ()) -> None:
    """Write one frame before `deadline` (time.monotonic()); TimeoutError after it. `fds`
    (open file descriptors, e.g. sealed memory) travel with its first bytes."""
    data = memoryview(encode(value))
    if fds:
        _wait(sock, deadline, write=True)
        data = data[socket.send_fds(sock, [data[: HEADER.size]], list(fds)) :]
    while data:
        _wait(sock, deadline, write=True)
        data = data[sock.send(data) :]


def receive(sock: socket.socket, limit: int, deadline: float) -> object:
    """Read one frame (at most `limit` bytes after its header) before `deadline`; EOFError if the
    other side closed first, WireError if the frame is malformed or too large."""
    return receive_with_fds(sock, limit, deadline)[0]


def receive_with_fds(sock: socket.socket, limit: int, deadline: float) -> tuple[object, list[int]]:
    """A frame and the file descriptors that came with it (the caller owns and closes them)."""
    _wait(sock, deadline, write=False)
    first, fds, _, _ = socket.recv_fds(sock, HEADER.size, MAX_FDS)
    if not first:
        raise EOFError("the other side closed the connection")
    try:
        head = first + _exactly(sock, HEADER.size - len(first), deadline)
        head_size, total = HEADER.unpack(head)
        if total > limit or head_size > total:
            raise WireError(f"a frame of {total:,} bytes is over the limit of {limit:,}", "output_limit")
        return decode(head + _exactly(sock, total, deadline), limit), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _exactly(sock: socket.socket, size: int, deadline: float) -> bytes:
    chunks, got = [], 0
    while got < size:
        _wait(sock, deadline, write=False)
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _wait(sock: socket.socket, deadline: float, write: bool) -> None:
    left = None if deadline == math.inf else max(deadline - time.monotonic(), 0.0)
    ready = select.select([], [sock], [], left)[1] if write else select.select([sock], [], [], left)[0]
    if not ready:
        raise TimeoutError("no answer before the deadline")
