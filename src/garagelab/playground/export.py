"""A trained policy as an ONNX model, for the robot's computer (sim-to-real).

The graph is the deterministic policy exactly as training ran it: observation normalisation
(running mean and standard deviation, clipped to +-10), the actor MLP (tanh hidden layers), and
the action clipped to the actuator range [-1, 1]. A pixel policy takes uint8 frames (float
depth) of the run's shape, scales them and runs the CNN encoder (Conv/Relu) before the MLP.
Written with `onnx.helper` from the learner's arrays, no framework conversion in between;
`parity` runs it in onnxruntime against JAX.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from garagelab.core.errors import UserError
from garagelab.playground import ppo
from garagelab.playground.sac import is_sac
from garagelab.playground.train import policy_fn

OPSET = 17


def to_onnx(learner: ppo.Learner, path: Path | str, pixels: dict | None = None) -> Path:
    """Write the deterministic policy; `pixels` (the run's pixel spec) for a policy that reads frames."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise UserError("export needs onnx (pip install 'garagelab[playground]')") from None
    layers = learner.params["actor"]
    action_size = int(np.asarray(layers[-1]["w"]).shape[1])
    weights, nodes = [], []
    for name, value in (("obs_low", -10.0), ("obs_high", 10.0), ("act_low", -1.0), ("act_high", 1.0)):
        weights.append(numpy_helper.from_array(np.array(value, np.float32), name))
    if "encoder" in learner.params:
        obs_input, encoder_weights, encoder_nodes = _encoder_graph(learner.params["encoder"], pixels or {})
        weights += encoder_weights
        nodes += encoder_nodes
    else:
        obs_size = int(np.asarray(layers[0]["w"]).shape[0])
        obs_input = helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", obs_size])
        mean, inv_std = (np.asarray(a, np.float32) for a in learner.obs_norm.arrays())
        weights += [numpy_helper.from_array(mean, "obs_mean"), numpy_helper.from_array(inv_std, "obs_inv_std")]
        nodes += [
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
    if is_sac(learner.params):  # a squashed Gaussian acts with tanh of its mean
        nodes.append(helper.make_node("Tanh", ["mean"], ["action"]))
    else:
        nodes.append(helper.make_node("Clip", ["mean", "act_low", "act_high"], ["action"]))
    graph = helper.make_graph(
        nodes,
        "garagelab_policy",
        [obs_input],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", action_size])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="garagelab")
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def _encoder_graph(encoder: list[dict], pixels: dict) -> tuple:
    """The CNN encoder as ONNX nodes from `obs` (N, H, W, C frames; uint8, or float depth) to `h0`.

    ONNX convolutions are NCHW: the frames are transposed in, and the last feature map back to
    NHWC before flattening, so the features line up with the actor's first weights as in JAX.
    """
    from onnx import TensorProto, helper, numpy_helper

    from garagelab.playground.networks import CONV_KERNELS
    from garagelab.playground.pixels import PixelSpec

    spec = PixelSpec(**pixels)
    depth = spec.mode == "depth"
    dtype = TensorProto.FLOAT if depth else TensorProto.UINT8
    obs_input = helper.make_tensor_value_info("obs", dtype, ["batch", *spec.shape])
    weights = [numpy_helper.from_array(np.array(1.0 if depth else 1 / 255, np.float32), "pixel_scale")]
    nodes = [
        helper.make_node("Cast", ["obs"], ["frames"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["frames", "pixel_scale"], ["scaled_frames"]),
        helper.make_node("Transpose", ["scaled_frames"], ["c0"], perm=[0, 3, 1, 2]),
    ]
    for index, (layer, (kernel, stride)) in enumerate(zip(encoder, CONV_KERNELS, strict=False)):
        oihw = np.transpose(np.asarray(layer["w"], np.float32), (3, 2, 0, 1))  # from HWIO
        weights += [numpy_helper.from_array(oihw, f"conv_w{index}"), numpy_helper.from_array(
            np.asarray(layer["b"], np.float32), f"conv_b{index}")]  # fmt: skip
        nodes += [
            helper.make_node(
                "Conv",
                [f"c{index}", f"conv_w{index}", f"conv_b{index}"],
                [f"z{index}"],
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
            ),
            helper.make_node("Relu", [f"z{index}"], [f"c{index + 1}"]),
        ]
    nodes += [
        helper.make_node("Transpose", [f"c{len(encoder)}"], ["features_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Flatten", ["features_nhwc"], ["h0"], axis=1),
    ]
    return obs_input, weights, nodes


def parity(learner: ppo.Learner, path: Path | str, observations: np.ndarray) -> float:
    """The largest difference between onnxruntime's actions and JAX's on `observations`."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError("the parity check needs onnxruntime (pip install 'garagelab[playground]')") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours = policy_fn(learner)(observations)
    observations = np.asarray(observations)
    if observations.dtype != np.uint8:
        observations = observations.astype(np.float32)
    theirs = session.run(["action"], {"obs": observations})[0]
    return float(np.abs(ours - theirs).max())
