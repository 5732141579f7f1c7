"""The Go1 posture tasks (Getup, Handstand, Footstand): contacts, starts, rewards, endings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from garagelab.playground import load, make_task
from garagelab.playground.cpu_engine import CpuEngine


def _engine_at(name: str, qpos: np.ndarray) -> tuple[CpuEngine, object]:
    """A one-env CPU engine whose state is `qpos` at rest (kinematics computed)."""
    task = make_task(name)
    engine = CpuEngine(task, 1)
    state = engine.reset(0)
    engine.batch.qpos[...] = qpos
    engine.batch.qvel[...] = 0.0
    engine.batch.forward()
    return engine, state.replace(data=engine._save())


def _pitched(task, angle: float, height: float) -> np.ndarray:
    """Home joints, the trunk pitched by `angle` about y (positive: nose down) at `height`."""
    qpos = task.default_qpos.copy()
    qpos[2] = height
    qpos[3:7] = [math.cos(angle / 2), 0.0, math.sin(angle / 2), 0.0]
    return qpos


def test_collision_capsules_touch_the_floor_only_when_a_link_is_on_it() -> None:
    task = make_task("Go1Handstand")
    links = task.geoms(
        [f"{leg}_{part}_collision" for leg in ("FR", "FL", "RR", "RL") for part in ("hip", "thigh", "calf")]
    )
    engine, _ = _engine_at("Go1Handstand", task.default_qpos)
    ops = type("Ops", (), {"xp": np})()
    assert not task.touching(ops, engine.view, links).any()  # standing at home: feet only
    assert task.touching(ops, engine.view, task.lifted_feet).all()
    lying = task.default_qpos.copy()
    lying[2] = 0.05  # the trunk's capsule (radius 5.5 cm) on the floor
    engine, _ = _engine_at("Go1Handstand", lying)
    assert task.touching(ops, engine.view, task.geoms(["trunk_collision"])).all()
    collides = (task.mj_model.geom_contype > 0) & (task.mj_model.geom_conaffinity == 0)
    assert collides.sum() == 1 + 4 * 3 + 4  # trunk, every hip, thigh and calf, and the feet


def test_getup_starts_are_settled_falls_and_home_stands() -> None:
    task = make_task("Go1Getup", {"start_bank": 256})
    starts = task.starts
    nq = task.mj_model.nq
    assert starts.shape == (256, nq + task.mj_model.nv) and np.isfinite(starts).all()
    assert (starts[:, 2] < 0.4).all()  # every dropped robot has come down from 0.5 m
    up = 1 - 2 * (starts[:, 4] ** 2 + starts[:, 5] ** 2)  # the trunk's z axis, world z
    assert 0.2 < (up < 0.5).mean() < 0.8  # about the drop probability (0.6) lands tumbled
    env = load("Go1Getup", num_envs=64, config_overrides={"start_bank": 256})
    state = env.reset(3)
    heights = np.asarray(state.data)[:, 1 + 2]  # integration rows: time, then qpos
    assert len(np.unique(heights.round(6))) > 20  # resets draw different starts


def test_getup_rewards_standing_still_at_home_and_nothing_for_lying() -> None:
    task = make_task("Go1Getup")
    engine, state = _engine_at("Go1Getup", task.default_qpos)
    state = state.replace(info={**state.info, "joints": task.default_pose[None].copy()})
    for _ in range(50):  # hold home: targets = joints + 0.5 action = home
        state = engine.step(state, np.clip(2 * (task.default_pose - state.info["joints"]), -1, 1))
    standing = {k: float(v[0]) for k, v in state.metrics.items()}
    assert standing["reward/orientation"] > 0.98 and standing["reward/posture"] > 0.9
    assert standing["reward/torso_height"] == pytest.approx(math.exp(task.config.target_height) - 1, rel=1e-6)
    state = engine.step(state, np.zeros((1, 12)))  # zero action once upright at height: full stand-still
    assert float(state.metrics["reward/stand_still"][0]) == pytest.approx(1.0)
    engine, state = _engine_at("Go1Getup", _pitched(task, math.pi, 0.12))  # on its back
    state = state.replace(info={**state.info, "joints": task.default_pose[None].copy()})
    state = engine.step(state, np.zeros((1, 12)))
    assert float(state.metrics["reward/orientation"][0]) < 1e-3
    assert float(state.metrics["reward/posture"][0]) == 0.0 and float(state.metrics["reward/stand_still"][0]) == 0.0


@pytest.mark.parametrize(("name", "pitch"), [("Go1Handstand", math.pi / 2), ("Go1Footstand", -math.pi / 2)])
def test_stands_reward_the_vertical_trunk_and_end_on_a_knee(name: str, pitch: float) -> None:
    task = make_task(name)
    engine, state = _engine_at(name, _pitched(task, pitch, 0.6))  # vertical, in the air
    state = engine.step(state, np.zeros((1, 12)))
    assert float(state.metrics["reward/orientation"][0]) > 0.95 and float(state.done[0]) == 0.0
    engine, state = _engine_at(name, _pitched(task, -pitch, 0.6))  # vertical the wrong way up
    state = engine.step(state, np.zeros((1, 12)))
    assert float(state.metrics["reward/orientation"][0]) < 0.05
    kneeling = task.default_qpos.copy()
    kneeling[2] = 0.06  # trunk low: the standing legs' thighs and calves lie on the floor
    engine, state = _engine_at(name, kneeling)
    state = engine.step(state, np.zeros((1, 12)))
    assert float(state.done[0]) == 1.0


def test_handstand_targets_accumulate_within_the_actuator_range() -> None:
    task = make_task("Go1Handstand")
    env = load("Go1Handstand", num_envs=2)
    state = env.reset(0)
    for _ in range(20):
        state = env.step(state, np.ones((2, 12)))
    targets = np.asarray(state.info["targets"])
    low, high = task.mj_model.actuator_ctrlrange.T
    assert np.all(targets <= high + 1e-12) and np.all(targets >= low - 1e-12)
    assert np.isclose(targets, high).any()  # pushed to the top of a range, not beyond
