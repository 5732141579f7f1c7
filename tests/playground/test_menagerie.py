"""MENAGERIE_ROOT: the Go1 task loads `<root>/unitree_go1/scene.xml` when it is there, and says so;
Spot, H1, G1 and the Panda run on stand-ins written in Menagerie's naming."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import mujoco
import numpy as np
import pytest

from garagelab.cli import main
from garagelab.core.errors import UserError
from garagelab.playground import load, make_task, requirement
from garagelab.playground.robots import PANDA, SPOT
from garagelab.playground.task import MODELS
from garagelab.playground.tasks.panda import PandaPickCube
from garagelab.playground.tasks.spot import SpotJoystick
from tests.playground.test_arm import scripted_grasp


def test_menagerie_root_supplies_the_model(tmp_path, monkeypatch) -> None:
    robot = tmp_path / "unitree_go1"
    robot.mkdir()
    shutil.copy(MODELS / "quadruped" / "go1.xml", robot / "scene.xml")  # same names as Menagerie's Go1
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path))
    task = make_task("Go1JoystickFlatTerrain")
    assert task.model_source == str(robot / "scene.xml")
    assert make_task("Go1JoystickFlatTerrain", {"model": "ours"}).model_source.startswith("garagelab:")


def test_missing_menagerie_is_a_one_line_error(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MENAGERIE_ROOT", raising=False)
    assert make_task("Go1JoystickFlatTerrain").model_source.startswith("garagelab:")
    with pytest.raises(UserError, match="set MENAGERIE_ROOT"):
        make_task("Go1JoystickFlatTerrain", {"model": "menagerie"})
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="is not a directory"):
        make_task("Go1JoystickFlatTerrain")
    with pytest.raises(UserError, match="valid are auto, menagerie, ours"):
        make_task("Go1JoystickFlatTerrain", {"model": "mine"})


# --- Menagerie's Spot, H1, G1 and Panda, on stand-ins written in their naming ----------------


def _write(spec: mujoco.MjSpec, folder: Path, scene: str = "scene.xml") -> None:
    folder.mkdir(parents=True)
    (folder / scene).write_text(spec.to_xml())


def _spot_like(root: Path) -> None:
    """Our Go1 named as Menagerie's Spot is: root body `body`, feet unnamed spheres in fl_lleg..."""
    spec = mujoco.MjSpec.from_file(str(MODELS / "quadruped" / "go1.xml"))
    spec.body("trunk").name = "body"
    for leg, spot in {"FR": "fr", "FL": "fl", "RR": "hr", "RL": "hl"}.items():
        spec.body(f"{leg}_calf").name = f"{spot}_lleg"
        spec.geom(leg).name = ""
    _write(spec, root / "boston_dynamics_spot")


def _humanoid_like(root: Path, folder: str, ankle: str, key: str) -> None:
    """Our biped driven as Menagerie's H1 and G1 are: torque motors (listed right leg first, not
    in joint order), feet unnamed in the ankle bodies, the standing keyframe named `key`."""
    spec = mujoco.MjSpec.from_file(str(MODELS / "biped" / "biped.xml"))
    for side in ("left", "right"):
        spec.body(f"{side}_foot_link").name = f"{side}_{ankle}"
        spec.geom(f"{side}_foot").name = ""
    motors = [(a.name, np.array(a.forcerange)) for a in spec.actuators]
    for actuator in list(spec.actuators):
        spec.delete(actuator)
    for name, torque in motors[5:] + motors[:5]:
        motor = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        motor.set_to_motor()
        motor.ctrlrange, motor.ctrllimited = torque, mujoco.mjtLimited.mjLIMITED_TRUE
    spec.key("home").name = key
    spec.key(key).ctrl = []
    _write(spec, root / folder)


def _panda_like(root: Path) -> None:
    """Our arm named as Menagerie's MJX Panda scene is: joint1..., finger_joint1/2, actuator1... and
    the gripper's actuator8, finger pads, the cube's free joint unnamed, the target `mocap_target`,
    written as `franka_emika_panda/mjx_single_cube.xml`. A fifth arm joint (a wrist roll, held at 0)
    whose actuator comes after the gripper's, so nothing may assume four arm joints or the gripper last."""
    spec = mujoco.MjSpec.from_file(str(MODELS / "arm" / "arm.xml"))
    spec.body("hand").add_joint(name="roll", axis=[0, 0, 1], range=[-2.9, 2.9], damping=2, armature=0.05)
    roll = spec.add_actuator(name="roll", target="roll", trntype=mujoco.mjtTrn.mjTRN_JOINT, ctrlrange=[-2.9, 2.9])
    roll.set_to_position(kp=60, kv=3)
    home = spec.key("home")
    home.qpos, home.ctrl = np.insert(home.qpos, 4, 0.0), np.append(home.ctrl, 0.0)
    arm = ("yaw", "shoulder", "elbow", "wrist", "roll")
    joints = {old: f"joint{i}" for i, old in enumerate(arm, 1)}
    joints.update(left_finger="finger_joint1", right_finger="finger_joint2")
    for old, new in joints.items():
        spec.joint(old).name = new  # references to the joint keep the old name: renamed below
    for actuator in spec.actuators:
        actuator.name = joints[actuator.name].replace("joint", "actuator") if actuator.name in arm else "actuator8"
        actuator.target = joints[actuator.target]
    for equality in spec.equalities:
        equality.name1, equality.name2 = joints[equality.name1], joints[equality.name2]
    for side in ("left", "right"):
        spec.geom(f"{side}_finger").name = f"{side}_finger_pad"
    spec.joint("box").name = ""
    spec.body("target").name = "mocap_target"
    _write(spec, root / "franka_emika_panda", "mjx_single_cube.xml")


@pytest.fixture
def menagerie(tmp_path, monkeypatch) -> Path:
    _spot_like(tmp_path)
    _panda_like(tmp_path)
    _humanoid_like(tmp_path, "unitree_h1", "ankle_link", "home")
    _humanoid_like(tmp_path, "unitree_g1", "ankle_roll_link", "stand")
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path))
    return tmp_path


MENAGERIE_ENVS = [
    "SpotJoystickFlatTerrain",
    "H1JoystickFlatTerrain",
    "G1JoystickFlatTerrain",
    "PandaReach",
    "PandaPickCube",
]


@pytest.mark.parametrize("name", MENAGERIE_ENVS)
def test_menagerie_robots_need_menagerie_root(name, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("MENAGERIE_ROOT", raising=False)
    assert requirement(name).startswith("needs Menagerie")
    with pytest.raises(UserError, match=r"set MENAGERIE_ROOT to a checkout with \w+/(scene|mjx_single_cube)\.xml$"):
        load(name)
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path))  # a checkout without this robot
    with pytest.raises(UserError, match="set MENAGERIE_ROOT"):
        make_task(name)
    with pytest.raises(UserError, match="valid are menagerie"):
        make_task(name, {"model": "ours"})
    assert main(["playground", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"{name} needs Menagerie: set MENAGERIE_ROOT" in "\n".join(out)  # a note under the table


@pytest.mark.parametrize("name", MENAGERIE_ENVS)
def test_menagerie_robots_reset_and_step(name, menagerie) -> None:
    env = load(name, num_envs=2, nthread=1)
    assert requirement(name) == "" and env.task.model_source.startswith(str(menagerie))
    state = env.reset(0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        state = env.step(state, rng.uniform(-1, 1, (2, env.action_size)))
        assert np.isfinite(state.obs).all() and np.isfinite(state.reward).all()


@pytest.mark.parametrize(("name", "feet"), [("SpotJoystickFlatTerrain", 4), ("H1JoystickFlatTerrain", 2)])
def test_servos_hold_the_home_pose_with_every_foot_down(name, feet, menagerie) -> None:
    task = make_task(name)
    model = task.mj_model
    assert len(task.feet) == feet and all(model.geom(int(g)).name == "" for g in task.feet)  # found by body
    data = mujoco.MjData(model)
    data.qpos[:] = task.default_qpos
    data.ctrl[:] = task.default_pose  # actuator i drives joint i: the servo edit reordered the motors
    start = data.qpos[2]
    for _ in range(round(1.0 / model.opt.timestep)):
        mujoco.mj_step(model, data)
    # our biped with its own servos settles 3 cm lower, its knees 0.2 rad bent further (Kp alone
    # against gravity); H1's gains on it must do as well, Spot's on the Go1 far better
    assert abs(data.qpos[2] - start) < 0.05 and data.xmat[task.trunk][8] > 0.99
    assert np.abs(data.qpos[7:] - task.default_pose).max() < (0.05 if feet == 4 else 0.25)
    assert (data.geom_xpos[task.feet, 2] < task.foot_radius + 0.005).all()


def test_motors_become_position_servos_in_joint_order(menagerie) -> None:
    model = make_task("H1JoystickFlatTerrain").mj_model
    np.testing.assert_array_equal(model.actuator_trnid[:, 0], np.arange(1, model.njnt))
    assert (model.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE).all()
    np.testing.assert_allclose(model.actuator_ctrlrange, model.jnt_range[1:])
    knee = model.actuator("left_knee").id
    assert model.actuator_gainprm[knee, 0] == 300 and model.actuator_forcerange[knee, 1] == 300
    assert model.actuator_biasprm[knee, 2] < 0  # damping ratio 1 compiled to a damping gain
    g1 = make_task("G1JoystickFlatTerrain").mj_model
    assert g1.actuator_gainprm[g1.actuator("left_ankle").id, 0] == 20 and g1.actuator_biasprm[0, 2] == -2


def test_missing_keyframe_and_foot_are_one_line_errors(menagerie, monkeypatch) -> None:
    monkeypatch.setattr(SpotJoystick, "robot", dataclasses.replace(SPOT, keyframe="crouch"))
    with pytest.raises(UserError, match="no keyframe 'crouch'; valid: home"):
        make_task("SpotJoystickFlatTerrain")
    monkeypatch.setattr(SpotJoystick, "robot", dataclasses.replace(SPOT, feet=("fl_lleg", "toe")))
    with pytest.raises(UserError, match="foot 'toe' is neither a geom nor a body"):
        make_task("SpotJoystickFlatTerrain")


# --- the Panda's profile: gripper site, cube, gripper actuator --------------------------------


def test_panda_profile_finds_the_arm_the_cube_and_the_gripper(menagerie) -> None:
    task = make_task("PandaPickCube")
    model = task.mj_model
    assert task.model_source == str(menagerie / "franka_emika_panda" / "mjx_single_cube.xml")
    # the arm joints are those of every actuator but actuator8 (the fingers', listed before actuator5)
    assert [model.actuator(i).name for i in range(model.nu)][4:] == ["actuator8", "actuator5"]
    names = [model.joint(model.jnt_qposadr.tolist().index(a)).name for a in task.arm_joints]
    assert names == ["joint1", "joint2", "joint3", "joint4", "joint5"]
    assert task.box_qpos == 7 and model.body(task.box).name == "box" and model.site(task.gripper).name == "gripper"


def test_panda_gripper_action_closes_and_opens_the_fingers(menagerie) -> None:
    env = load("PandaPickCube", nthread=1, auto_reset=False)
    model = env.task.mj_model
    gripper = model.actuator("actuator8").id
    fingers = [model.joint(f"finger_joint{i}").qposadr[0] for i in (1, 2)]
    state = env.reset(0)
    np.testing.assert_allclose(state.obs[0, fingers], 0.04, atol=1e-3)  # home: open (the obs starts with qpos)
    for sign, low, high in ((-1.0, 0.0, 0.005), (1.0, 0.035, 0.041)):
        action = np.zeros((1, env.action_size))
        action[0, gripper] = sign
        for _ in range(25):
            state = env.step(state, action)
        assert ((low <= state.obs[0, fingers]) & (state.obs[0, fingers] <= high)).all(), state.obs[0, fingers]


def test_panda_cube_and_target_enter_the_observation(menagerie) -> None:
    env = load("PandaPickCube", num_envs=4, nthread=1, auto_reset=False)
    task, model = env.task, env.task.mj_model
    state = env.reset(0)
    cube = state.obs[:, task.box_qpos : task.box_qpos + 3]
    at = model.nq + model.nv  # then gripper, cube - gripper, target - cube
    gripper, to_cube, to_target = (state.obs[:, at + 3 * i : at + 3 * i + 3] for i in range(3))
    np.testing.assert_allclose(gripper + to_cube, cube, atol=1e-6)
    np.testing.assert_allclose(cube + to_target, state.info["target"], atol=1e-6)
    shift = np.abs(cube[:, :2] - task.home_qpos[task.box_qpos : task.box_qpos + 2])
    assert shift.max() <= 0.2 and shift.max() > 0.1  # Playground's 0.2 m spread, not our arm's 0.1


def test_panda_scripted_grasp_lifts_the_cube(menagerie) -> None:
    """The stand-in has our arm's geometry, so test_arm's grasp works on it through the Panda's names."""
    ours = {"box_spread": 0.1, "target_spread": 0.1, "target_height": (0.15, 0.3)}
    env, state = scripted_grasp(make_task("PandaPickCube", ours))
    assert env.view.xpos[0, env.task.box][2] > 0.1
    assert state.metrics["reward/box_target"][0] > 0.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"gripper_actuator": "hand"},
            "no actuator 'hand'; valid: actuator1, actuator2, actuator3, actuator4, actuator8, actuator5",
        ),
        ({"gripper_site": "tcp"}, "no site 'tcp'; valid: gripper"),
        ({"box": "hand"}, "the cube body 'hand' needs a free joint"),
        ({"keyframe": "pickup"}, "no keyframe 'pickup'; valid: home"),
    ],
)
def test_panda_profile_names_missing_from_the_model_are_one_line_errors(change, message, menagerie, monkeypatch):
    monkeypatch.setattr(PandaPickCube, "robot", dataclasses.replace(PANDA, **change))
    with pytest.raises(UserError, match=message) as error:
        make_task("PandaPickCube")
    assert "\n" not in str(error.value)
