"""A trained policy as an ONNX model, for the robot's computer (sim-to-real).

The graph is the deterministic policy exactly as training ran it: observation normalisation
(running mean and standard deviation, clipped to +-10), the actor MLP (tanh hidden layers), and
the action clipped to the actuator range [-1, 1]. Written with `onnx.helper` from the learner's
arrays, no framework conversion in between; `parity` runs it in onnxruntime against JAX.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from garagelab.core.errors import UserError
from garagelab.playground import ppo
from garagelab.playground.train import policy_fn

OPSET = 17


def to_onnx(learner: ppo.Learner, path: Path | str) -> Path:
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise UserError("export needs onnx (pip install 'garagelab[playground]')") from None
    mean, inv_std = (np.asarray(a, np.float32) for a in learner.obs_norm.arrays())
    layers = learner.params["actor"]
    obs_size, action_size = int(np.asarray(layers[0]["w"]).shape[0]), int(np.asarray(layers[-1]["w"]).shape[1])
    weights = [numpy_helper.from_array(mean, "obs_mean"), numpy_helper.from_array(inv_std, "obs_inv_std")]
    for name, value in (("obs_low", -10.0), ("obs_high", 10.0), ("act_low", -1.0), ("act_high", 1.0)):
        weights.append(numpy_helper.from_array(np.array(value, np.float32), name))
    nodes = [
        helper.make_node("Sub", ["obs", "obs_mean"], ["centred"]),
        helper.make_node("Mul", ["centred", "obs_inv_std"], ["scaled"]),
        helper.make_node("Clip", ["scaled", "obs_low", "obs_high"], ["h0"]),
    ]
    for index, layer in enumerate(layers):
        weights.append(numpy_helper.from_array(np.asarray(layer["w"], np.float32), f"w{index}"))
        weights.append(numpy_helper.from_array(np.asarray(layer["b"], np.float32), f"b{index}"))
        nodes.append(helper.make_node("MatMul", [f"h{index}", f"w{index}"], [f"m{index}"]))
        last = index == len(layers) - 1
        nodes.append(helper.make_node("Add", [f"m{index}", f"b{index}"], ["mean" if last else f"a{index}"]))
        if not last:
            nodes.append(helper.make_node("Tanh", [f"a{index}"], [f"h{index + 1}"]))
    nodes.append(helper.make_node("Clip", ["mean", "act_low", "act_high"], ["action"]))
    graph = helper.make_graph(
        nodes,
        "garagelab_policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", obs_size])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", action_size])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="garagelab")
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def parity(learner: ppo.Learner, path: Path | str, observations: np.ndarray) -> float:
    """The largest difference between onnxruntime's actions and JAX's on `observations`."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError("the parity check needs onnxruntime (pip install 'garagelab[playground]')") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours = policy_fn(learner)(observations)
    theirs = session.run(["action"], {"obs": np.asarray(observations, np.float32)})[0]
    return float(np.abs(ours - theirs).max())
