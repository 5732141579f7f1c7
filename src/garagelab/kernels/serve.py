"""The candidate's side of kernel verification, run in its sandboxed process: it builds
`ModelNew`, runs it on the inputs the verifier shares, writes the output back sealed, and says
which PyTorch operations `forward` dispatched. It decides nothing: verify.py, on the trusted
side, compares, times and judges.

Requests: {"op": "build", "key", "problem": {"name", "source"}, "constants", "seed", "device",
"compile"} and {"op": "call", "key", "args": [{"fd", "dtype", "shape"} | {"value"}], "output":
{"fd", "dtype", "shape"}, "fds": [...], "record"}, answered with the operations `forward` dispatched (the
floor: "floor": true writes an empty output without running anything: the protocol's own cost).
"""

from __future__ import annotations

import contextlib
import types

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from garagelab.kernels.problems import load_module
from garagelab.kernels.shared import DTYPES, Inputs, describe, write_output

_MODELS: dict[str, object] = {}  # this process's models: the main size and the second one


class Dispatched(TorchDispatchMode):
    """Records the ATen operations a call dispatches (what the fallback rule is decided on)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def serve(candidate: types.ModuleType, request: dict) -> dict:
    if request.get("op") == "build":
        return _build(candidate, request)
    return _call(request)


def _build(candidate: types.ModuleType, request: dict) -> dict:
    problem = request["problem"]
    module = load_module(problem["source"], problem["name"], request["constants"])
    device = torch.device(request["device"])
    torch.manual_seed(request["seed"])  # the reference was built after the same seed: same parameters
    model = candidate.ModelNew(*module.get_init_inputs())
    if isinstance(model, torch.nn.Module):
        model = model.to(device)
    if request.get("compile"):
        model = torch.compile(model)
    _MODELS[request["key"]] = model
    uses_triton = any(type(v).__module__.startswith("triton") for v in vars(candidate).values())
    return {"triton": uses_triton}


def _call(request: dict) -> dict:
    fds, out = request["fds"], request["output"]
    if request.get("floor"):
        write_output(fds[out["fd"]], torch.empty(out["shape"], dtype=DTYPES[out["dtype"]]))
        return {}
    model = _MODELS[request["key"]]
    inputs = Inputs()
    device = torch.device(request["device"])
    args = [inputs.tensor(fds[a["fd"]], a["dtype"], a["shape"]).to(device) if "fd" in a else a["value"]
            for a in request["args"]]  # fmt: skip
    # every call of a candidate is recorded, timed ones too, so that a fallback cannot wait until
    # unobserved; the eager baseline's are not ("record": false): recording costs a Python call per
    # operation, which doubled eager attention's time, and the baseline's operations are its job
    recorder = Dispatched() if request.get("record", True) else contextlib.nullcontext()
    with torch.no_grad(), recorder:
        result = model(*args)
        if device.type == "cuda":
            torch.cuda.synchronize()
    answer = {"ops": sorted(recorder.ops)} if isinstance(recorder, Dispatched) else {}
    if type(result) is not torch.Tensor:
        return {**answer, "type": type(result).__name__}
    if describe(result) != {"dtype": out["dtype"], "shape": out["shape"]}:
        return {**answer, "got": describe(result)}
    write_output(fds[out["fd"]], result)
    return answer
