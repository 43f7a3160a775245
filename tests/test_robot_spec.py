"""Robots other than humanoid43: spec files, their own groups and budget, registration, and tasks that say what they need.

The robots here are humanoid43's URDF with joints turned fixed, the way published bodies differ
from it: one without hands (31 joints) and one without a neck whose 7-joint hands count the wrist
roll (41 joints in groups of other sizes).
"""

from __future__ import annotations

import dataclasses
import re

import gymnasium
import numpy as np
import pytest

import training_ground.envs  # noqa: F401  (registers the tasks)
from training_ground import robots
from training_ground.robots import RobotContractError, humanoid43
from training_ground.errors import UnknownNameError

SIDES = ("left", "right")


def _urdf_with_fixed(tmp_path, robot, fixed, name="body.urdf"):
    text = robot.urdf_path.read_text()
    for joint in fixed:
        text, count = re.subn(f'<joint name="{joint}" type="revolute">', f'<joint name="{joint}" type="fixed">', text)
        assert count == 1, joint
    path = tmp_path / name
    path.write_text(text)
    return path


def _toml_list(names):
    return "[" + ", ".join(f'"{n}"' for n in names) + "]"


def _handless_spec(tmp_path, robot, **replace) -> str:
    """A 31-joint body: humanoid43 with its fingers fixed, declared in a spec file."""
    _urdf_with_fixed(tmp_path, robot, humanoid43.GROUPS["hands"])
    groups = {g: humanoid43.GROUPS[g] for g in ("legs", "waist", "head", "arms")}
    keys = {
        "name": '"handless"',
        "urdf": '"body.urdf"',
        "budget": "31",
        "base_link": '"pelvis"',
        "torso_link": '"torso"',
        "standing_base_height": "1.021",
        "feet": _toml_list(robot.feet),
        "sole_center": "[" + ", ".join(str(x) for x in robot.sole_center) + "]",
        "contact_links": _toml_list(robot.feet),
    }
    keys.update(replace)
    lines = [f"{key} = {value}" for key, value in keys.items() if value is not None]
    lines.append("[groups]")
    lines += [f"{group} = {_toml_list(names)}" for group, names in groups.items()]
    # humanoid43's gains, the knees by a pattern (the first match wins, so the knees' lines below go unused
    # for them), the rest by name.
    joints = [j for names in groups.values() for j in names]
    lines += ["[kp]", '"*_knee" = 800.0'] + [f"{j} = {humanoid43.KP[j]}" for j in joints if not j.endswith("_knee")]
    lines += ["[kd]"] + [f"{j} = {humanoid43.KD[j]}" for j in joints]
    lines += ["[keyframes.standing]"]
    lines += [f'{joint} = {value}' for joint, value in humanoid43.KEYFRAMES["standing"].items()]
    path = tmp_path / "handless.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_spec_file_declares_its_own_groups_and_budget(robot, tmp_path):
    body = robots.load(_handless_spec(tmp_path, robot))
    assert body.name == "handless" and body.num_joints == 31
    assert list(body.groups) == ["legs", "waist", "head", "arms"]
    assert body.joint_names == tuple(j for g in ("legs", "waist", "head", "arms") for j in humanoid43.GROUPS[g])
    np.testing.assert_array_equal(body.kp, robot.kp[:31])
    np.testing.assert_array_equal(body.kd, robot.kd[:31])
    np.testing.assert_array_equal(body.keyframe("standing"), robot.keyframe("standing")[:31])
    assert body.hands == {} and body.torso_link == "torso"


def test_a_handless_body_stands_on_both_engines_and_a_hand_task_refuses_it_by_name(robot, tmp_path):
    spec = _handless_spec(tmp_path, robot)
    for backend in ("numpy", "pybullet"):
        env = gymnasium.make("TrainingGround/Stand-v0", robot=spec, backend=backend)
        try:
            observation, _ = env.reset(seed=0)
            for _ in range(10):
                observation, _, terminated, truncated, info = env.step(env.action_space.sample() * 0.0)
            assert not terminated and not info["diverged"]
            assert all(np.isfinite(value).all() for value in observation.values())
        finally:
            env.close()
    with pytest.raises(RobotContractError, match=r"BreadPickPlace needs .*'handless' lacks two hands"):
        gymnasium.make("TrainingGround/BreadPickPlace-v0", robot=spec, backend="numpy")


def test_a_body_with_other_groups_declares_its_own_sizes_and_budget(robot, tmp_path):
    # No neck (41 joints); each hand keeps its six finger joints and gains the wrist roll as a hand joint.
    path = _urdf_with_fixed(tmp_path, robot, humanoid43.GROUPS["head"])
    groups = {"legs": humanoid43.GROUPS["legs"], "waist": humanoid43.GROUPS["waist"],
              "arms": tuple(j for j in humanoid43.GROUPS["arms"] if not j.endswith("wrist_roll")),
              "hands": tuple(f"{s}_wrist_roll" for s in SIDES) + humanoid43.GROUPS["hands"]}
    kp = {j: v for j, v in humanoid43.KP.items() if j not in humanoid43.GROUPS["head"]}
    kd = {j: v for j, v in humanoid43.KD.items() if j not in humanoid43.GROUPS["head"]}
    with pytest.raises(RobotContractError, match=r"missing groups \['head'\]"):
        robots.load(str(path), groups=groups, kp=kp, kd=kd)  # a bare URDF is held to humanoid43's contract
    body = robots.describe("no_neck", path, groups, kp=kp, kd=kd, group_sizes=None, budget=41)
    assert {g: len(j) for g, j in body.groups.items()} == {"legs": 12, "waist": 3, "arms": 12, "hands": 14}
    with pytest.raises(RobotContractError, match="expected exactly 43 actuated joints, found 41"):
        robots.describe("no_neck", path, groups, kp=kp, kd=kd, group_sizes=None)


def test_registration_by_spec_and_by_description(robot, tmp_path):
    spec = _handless_spec(tmp_path, robot)
    robots.register("handless_test", spec)
    robots.register("handless_test", spec)  # the same robot again: fine
    assert "handless_test" in robots.registered()
    assert robots.load("handless_test").num_joints == 31
    with pytest.raises(RobotContractError, match="already registered as another robot"):
        robots.register("handless_test", robot)
    with pytest.raises(RobotContractError, match="already registered"):
        robots.register("humanoid43", dataclasses.replace(robot, kp=robot.kp * 2))
    renamed = dataclasses.replace(robot, name="humanoid43_copy")
    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", robot=renamed, backend="numpy")
    try:
        assert env.unwrapped.config.robot == "humanoid43_copy"  # a dataset records the name
        env.reset(seed=0)
        env.step(env.action_space.sample())
    finally:
        env.close()


def test_an_unknown_robot_names_the_ways_to_give_one():
    with pytest.raises(UnknownNameError, match=r"registered robots: .*humanoid43.*spec file.*register"):
        gymnasium.make("TrainingGround/Stand-v0", robot="g1_nonexistent", backend="numpy")


@pytest.mark.parametrize("replace, message", [
    ({"budget": "30"}, "expected exactly 30 actuated joints, found 31"),
    ({"urdf": '"missing.urdf"'}, "urdf 'missing.urdf' is not a file"),
    ({"colour": '"red"'}, r"unknown keys \['colour'\]"),
    ({"urdf": None}, r"lacks \['urdf'\]"),
])
def test_a_bad_spec_is_refused_by_key(robot, tmp_path, replace, message):
    with pytest.raises(RobotContractError, match=message):
        robots.load(_handless_spec(tmp_path, robot, **replace))


def test_a_spec_that_is_not_toml_or_misses_gains_is_refused(robot, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = [unclosed\n")
    with pytest.raises(RobotContractError, match="not valid TOML"):
        robots.load(str(path))
    spec = _handless_spec(tmp_path, robot)
    text = re.sub(r"\nleft_hip_yaw = [0-9.]+\n", "\n", open(spec).read(), count=1)
    open(spec, "w").write(text)
    with pytest.raises(RobotContractError, match=r"\[kp\] gives no gain for \['left_hip_yaw'"):
        robots.load(spec)


def test_a_urdf_without_gains_is_refused_with_what_to_give(robot):
    with pytest.raises(RobotContractError, match="needs kp= gains"):
        robots.load(str(robot.urdf_path), groups=dict(humanoid43.GROUPS), kd=dict(humanoid43.KD))


def test_fingers_whose_open_and_closed_positions_are_equal_are_refused(robot):
    hand = robot.hands["left"]
    frozen = dataclasses.replace(hand, finger_closed=hand.finger_open)
    with pytest.raises(RobotContractError, match=r"finger_open equals finger_closed for \['left_thumb_rotation'"):
        robots.describe("frozen", robot.urdf_path, dict(humanoid43.GROUPS), dict(humanoid43.KP), dict(humanoid43.KD),
                        hands={"left": frozen, "right": robot.hands["right"]})


def test_a_finger_waits_from_its_close_from_fraction_and_bad_fractions_are_refused(robot):
    """Each finger leaves its open target at its ``finger_close_from`` fraction of the grasp command's range and is
    closed at +1; without fractions the fingers move over the whole range, bit for bit as before."""
    hand = robot.hands["left"]
    grasp = np.linspace(-1.0, 1.0, 9)[:, None]
    opened, closed = np.array(hand.finger_open), np.array(hand.finger_closed)
    assert np.array_equal(hand.finger_targets(grasp), opened + (grasp + 1) / 2 * (closed - opened))
    staged = dataclasses.replace(hand, finger_close_from=(0.5, 0.5, 0.0, 0.0, 0.0, 0.0))
    targets = staged.finger_targets(grasp)
    thumb_waits = grasp[:, 0] <= 0.0
    assert np.array_equal(targets[thumb_waits, :2], np.broadcast_to(opened[:2], (thumb_waits.sum(), 2)))
    assert np.allclose(targets[:, 2:], hand.finger_targets(grasp)[:, 2:]) and np.allclose(targets[-1], closed)
    assert np.allclose(targets[6, :2], opened[:2] + 0.5 * (closed[:2] - opened[:2]))  # grasp 0.5: half-way
    for bad in ((0.5,), (1.0, 0, 0, 0, 0, 0), (-0.1, 0, 0, 0, 0, 0)):
        with pytest.raises(RobotContractError, match="finger_close_from"):
            robots.describe("staged", robot.urdf_path, dict(humanoid43.GROUPS), dict(humanoid43.KP),
                            dict(humanoid43.KD), hands={"left": dataclasses.replace(hand, finger_close_from=bad),
                                                         "right": robot.hands["right"]})


def test_a_spec_files_hands_may_give_where_each_finger_starts_closing(robot, tmp_path):
    def spec(close_from):
        lines = [f'urdf = "{robot.urdf_path}"', "[groups]"]
        lines += [f"{group} = {_toml_list(names)}" for group, names in humanoid43.GROUPS.items()]
        lines += ["[kp]"] + [f"{j} = {v}" for j, v in humanoid43.KP.items()]
        lines += ["[kd]"] + [f"{j} = {v}" for j, v in humanoid43.KD.items()]
        for side, hand in robot.hands.items():
            lines += [f"[hands.{side}]", f'palm_link = "{hand.palm_link}"', f"grasp_site = {list(hand.grasp_site)}",
                      f"arm_joints = {_toml_list(hand.arm_joints)}", f"finger_joints = {_toml_list(hand.finger_joints)}",
                      f"finger_open = {list(hand.finger_open)}", f"finger_closed = {list(hand.finger_closed)}"]
            if close_from is not None:
                lines.append(f"finger_close_from = {close_from}")
        path = tmp_path / "hands.toml"
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    assert robots.load(spec(None)).hands["left"].finger_close_from == ()
    assert robots.load(spec([0.5, 0.5, 0, 0, 0, 0])).hands["right"].finger_close_from == (0.5, 0.5, 0, 0, 0, 0)
    with pytest.raises(RobotContractError, match="finger_close_from"):
        robots.load(spec([0.5, 0.5]))


def test_revision_2s_thumb_stays_back_while_the_hand_is_half_closed():
    """The cloth pinch closes the hand just past half-way (the fold expert's grip 0.1): revision 2's thumb, which
    swings 2.3 rad under the palm, must not yet be out of the palm there (the wardrobe expert lost 9 of 30 seeds
    with a thumb that pointed down into the table)."""
    hand = robots.load("humanoid43", revision=2).hands["right"]
    half = hand.finger_targets(np.array([[0.1]]))[0]
    assert half[0] < 0.25 and half[2] > 0.6  # thumb barely turned, the fingers past half
    assert np.allclose(hand.finger_targets(np.array([[1.0]]))[0], hand.finger_closed)


def _reordered(robot, order=("arms", "hands", "legs", "head", "waist")):
    """humanoid43 with its joints listed arms first: children before their parents (the waist)."""
    groups = {g: humanoid43.GROUPS[g] for g in order}
    kp, kd = dict(zip(robot.joint_names, robot.kp.tolist())), dict(zip(robot.joint_names, robot.kd.tolist()))
    return robots.describe("arms_first", robot.urdf_path, groups, kp, kd,
                           keyframes=humanoid43.KEYFRAMES, hands=robot.hands, base_link=robot.base_link,
                           standing_base_height=robot.standing_base_height, contact_links=robot.contact_links,
                           feet=robot.feet, sole_center=robot.sole_center, group_sizes=None, torso_link="torso")


def test_joints_in_any_order_give_the_same_dynamics(robot):
    from training_ground.physics import load_model
    from training_ground.physics import model as numpy_model

    reordered = _reordered(robot)
    assert reordered.joint_names[:14] == humanoid43.GROUPS["arms"]
    perm = robot.joint_indices(list(reordered.joint_names))  # reordered joint k is robot joint perm[k]
    rng = np.random.default_rng(5)
    for fixed_base in (True, False):
        original, other = load_model(robot, fixed_base=fixed_base), load_model(reordered, fixed_base=fixed_base)
        nb = original.base_dofs
        q = np.tile(robot.home_posture, (3, 1)) + rng.uniform(-0.3, 0.3, (3, 43))
        v = rng.normal(size=(3, 43 + nb))
        if not fixed_base:
            q = np.concatenate([np.tile([0.0, 0.1, 1.0, 0.1, 0.0, 0.0, 0.995], (3, 1)), q], axis=1)
        columns = np.concatenate([np.arange(nb), nb + perm])
        q_other = np.concatenate([q[:, :q.shape[1] - 43], q[:, q.shape[1] - 43:][:, perm]], axis=1)
        matrix = numpy_model.mass_matrix(original, q)
        np.testing.assert_allclose(numpy_model.mass_matrix(other, q_other), matrix[:, columns][:, :, columns],
                                   rtol=0, atol=1e-12 * np.abs(matrix).max())
        bias = numpy_model.bias_forces(original, q, v)
        np.testing.assert_allclose(numpy_model.bias_forces(other, q_other, v[:, columns]), bias[:, columns],
                                   rtol=0, atol=1e-12 * np.abs(bias).max())
        # The tree-sparse solve, eliminating the reordered joints leaves first.
        rhs = rng.normal(size=(3, 43 + nb))
        solved = numpy_model.ltdl_solve(original, numpy_model.ltdl_factor(original, matrix), rhs)
        solved_other = numpy_model.ltdl_solve(other, numpy_model.ltdl_factor(other, matrix[:, columns][:, :, columns]),
                                              rhs[:, columns])
        np.testing.assert_allclose(solved_other, solved[:, columns], rtol=1e-9, atol=1e-12)


def test_a_robot_listing_children_before_parents_runs_a_task_like_the_original(robot):
    reordered = _reordered(robot)
    perm = robot.joint_indices(list(reordered.joint_names))
    trajectories = {}
    for body in (robot, reordered):
        env = gymnasium.make("TrainingGround/Stand-v0", robot=body, backend="numpy")
        try:
            env.reset(seed=3)
            joints = []
            for _ in range(15):
                env.step(env.unwrapped.task.controller.to_action(body.keyframe("standing")[None])[0])
                joints.append(env.unwrapped.task.engine.joint_state()[0][0])
            trajectories[body.name] = np.array(joints)
        finally:
            env.close()
    # The same robot, its joints listed in another order: the same motion up to rounding.
    np.testing.assert_allclose(trajectories["arms_first"], trajectories["humanoid43"][:, perm], rtol=0, atol=1e-9)


def test_the_command_line_takes_a_robot_and_the_dataset_records_and_replays_it(robot, tmp_path):
    from training_ground import cli
    from training_ground.data.dataset import dataset_env_args, open_dataset
    from training_ground.data.replay import replay_dataset

    spec = _handless_spec(tmp_path, robot)
    out = tmp_path / "stand.hdf5"
    assert cli.main(["collect", "--task", "stand", "--robot", spec, "--episodes", "2", "--robots", "2",
                     "--set", "max_steps=8", "--out", str(out)]) == 0
    with open_dataset(out) as handle:
        assert dataset_env_args(handle, out)["env_kwargs"]["config"]["robot"] == spec
    result = replay_dataset(out, progress=False)
    assert result.checks and result.reproduced == len(result.checks)


def test_the_balance_expert_finds_the_ankles_of_any_robot(robot, tmp_path):
    from training_ground.agents.balance import ankle_joints

    (pitch, pitch_sign), (roll, roll_sign) = ankle_joints(_reordered(robot))
    names = _reordered(robot).joint_names
    assert [names[i] for i in pitch] == ["left_ankle_pitch", "right_ankle_pitch"]
    assert [names[i] for i in roll] == ["left_ankle_roll", "right_ankle_roll"]
    assert (pitch_sign == 1).all() and (roll_sign == 1).all()


def test_a_spec_without_a_standing_height_stands_at_the_height_its_feet_give(robot, tmp_path):
    from training_ground.physics.contacts import standing_height

    spec = _handless_spec(tmp_path, robot, standing_base_height=None)
    assert robots.load(spec).standing_base_height is None
    # humanoid43's feet: the corner spheres' bottoms at 1.0201 m below the pelvis (its declared 1.021 has 0.9 mm to spare).
    assert standing_height(robot, robot.keyframe("standing")) == pytest.approx(1.0201, abs=1e-4)
    env = gymnasium.make("TrainingGround/Stand-v0", robot=spec, backend="numpy")
    try:
        task = env.unwrapped.task
        assert task.robot.standing_base_height == pytest.approx(standing_height(robot, robot.keyframe("standing")))
        env.reset(seed=0)
        for _ in range(25):
            _, _, terminated, _, info = env.step(task.controller.to_action(task.robot.keyframe("standing")[None])[0])
        assert not terminated and not info["diverged"]
    finally:
        env.close()


def test_where_the_fingers_stand_reads_back_as_the_command_that_sent_them():
    """HandSpec.grasp_reached inverts finger_targets: over the fingers that move over the whole range, and over the
    joints a mask picks (revision 3's thumb apart from its fingers); a staged finger waiting says nothing."""
    for revision in (2, 3):
        hand = robots.load("humanoid43", revision=revision).hands["right"]
        for command in (-1.0, -0.3, 0.2, 0.75, 1.0):
            assert hand.grasp_reached(hand.finger_targets(command)) == pytest.approx(command, abs=1e-12)
    hand = robots.load("humanoid43", revision=3).hands["right"]
    positions = np.concatenate([hand.finger_targets(0.8)[:2], hand.finger_targets(0.2)[2:]])
    thumb = np.array([True, True, False, False, False, False])
    assert hand.grasp_reached(positions, thumb) == pytest.approx(0.8)
    assert hand.grasp_reached(positions, ~thumb) == pytest.approx(0.2)
    # Revision 2's thumb waits for the second half: its position does not move the reading.
    staged = robots.load("humanoid43", revision=2).hands["right"]
    positions = staged.finger_targets(0.4)
    positions[:2] = 0.0
    assert staged.grasp_reached(positions) == pytest.approx(0.4)
