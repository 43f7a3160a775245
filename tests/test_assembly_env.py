"""TrainingGround/Assembly3C-v0: scene geometry, the seated measure, the scripted expert on both engines,
determinism, rewards. (Gymnasium conformance, bad input and batch-vs-single identity are the registry-wide
contracts in test_registry_contracts.py and test_vector_env.py.)"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import training_ground  # noqa: F401  (registers the ids)
from training_ground import robots
from training_ground.agents.experts import Assembly3CExpert
from training_ground.agents.policies import make_expert
from training_ground.envs.assembly import Assembly3CTask
from training_ground.physics.rotations import quat_multiply
from training_ground.physics.scene import EpisodeSetup
from training_ground.scenes import assembly as scene

ASSEMBLY = "TrainingGround/Assembly3C-v0"


def yaw_quat(angle):
    return np.array([0.0, 0.0, np.sin(angle / 2), np.cos(angle / 2)])


def tilt_quat(angle):
    return np.array([np.sin(angle / 2), 0.0, 0.0, np.cos(angle / 2)])


def seated_chip(socket_index: int, half_height: float, offset=(0.0, 0.0, 0.0), quat=(0.0, 0.0, 0.0, 1.0)):
    socket = scene.socket_pose(socket_index)
    return np.concatenate([socket[:3] + [0.0, 0.0, half_height] + np.asarray(offset), quat])


# ------------------------------------------------------------------ geometry
def test_every_chip_fits_every_socket_and_starts_inside_the_tray():
    boxes = {box.name: box for box in scene.assembly_scene().static_boxes}
    ranges = scene.ChipRandomization()
    for i, (sx, sy) in enumerate(scene.SOCKET_CENTERS):
        # The walls' inner faces bound the opening the task promises.
        front, left = boxes[f"socket_{i}_front"], boxes[f"socket_{i}_left"]
        assert front.position[0] - front.half_extents[0] - sx == pytest.approx(scene.SOCKET_INNER_HALF)
        assert left.position[1] - left.half_extents[1] - sy == pytest.approx(scene.SOCKET_INNER_HALF)
        assert front.position[2] - front.half_extents[2] == pytest.approx(scene.BOARD_TOP)
    rng = np.random.default_rng(0)
    for _ in range(200):
        params, pose = scene.sample_chip(rng, ranges)
        half_side, _, half_height = params.size
        clearance = scene.SOCKET_INNER_HALF - half_side
        assert 0.002 <= clearance <= 0.003
        assert pose[2] == pytest.approx(scene.TRAY_TOP + half_height, abs=1e-3)  # lying on the tray floor
        corners = np.array([[sx, sy] for sx in (-1, 1) for sy in (-1, 1)]) * half_side
        yaw = 2 * np.arctan2(pose[5], pose[6])
        turn = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
        world = pose[:2] + corners @ turn.T
        assert np.all(np.abs(world - scene.TRAY_CENTER) < scene.TRAY_INNER_HALF)
        assert scene.SOCKET_WALL_HEIGHT < 2 * half_height  # a seated chip stands proud of its socket


def test_the_small_part_variant_has_sockets_cut_to_its_part():
    """Assembly3CSmall-v0: a 2 cm part 8-10 mm thick in sockets whose opening leaves it the default's 2-3 mm."""
    env = gymnasium.make("TrainingGround/Assembly3CSmall-v0", backend="numpy")
    try:
        task = env.unwrapped.task
        ranges = task.config.randomization
        assert ranges == scene.SMALL_PART
        boxes = {box.name: box for box in task.scene.static_boxes}
        front, (sx, _) = boxes["socket_0_front"], scene.SOCKET_CENTERS[0]
        assert front.position[0] - front.half_extents[0] - sx == pytest.approx(ranges.socket_inner_half)
        observation, _ = env.reset(seed=0)
        half_side, _, half_height = observation["chip_size"]
        assert 0.0095 <= half_side <= 0.0105 and 0.004 <= half_height <= 0.005
        assert 0.002 <= ranges.socket_inner_half - half_side <= 0.003
    finally:
        env.close()
    # The default task's sockets are as before.
    boxes = {box.name: box for box in scene.assembly_scene().static_boxes}
    assert boxes["socket_0_front"].position[0] - boxes["socket_0_front"].half_extents[0] - sx == pytest.approx(
        scene.SOCKET_INNER_HALF)


@pytest.mark.parametrize("task_id", [ASSEMBLY, "TrainingGround/Assembly3CSmall-v0"])
@pytest.mark.parametrize("backend", ["numpy", "pybullet"])
def test_revision_3_pinches_the_part_and_seats_it_with_no_weld(task_id, backend):
    """grasp="physical" on humanoid43 revision 3: the expert pinches the chip (or the 2 cm part) by two edges,
    carries and turns it, and lets it down into its socket, seeds 0-3 (100 seeds: experts_r3_pinch.json)."""
    from training_ground.benchmarks.expert_success import run_expert_batch

    success, _ = run_expert_batch(task_id, backend, 4, grasp="physical", overrides={"robot_revision": 3})
    assert success.all(), np.flatnonzero(~success)


def test_randomization_refuses_chips_that_do_not_fit():
    with pytest.raises(ValueError, match="half_side_range"):
        scene.ChipRandomization(half_side_range=(0.015, 0.02))
    with pytest.raises(ValueError, match="socket's inner half side 0.012"):
        scene.ChipRandomization(half_side_range=(0.0095, 0.0125), socket_inner_half=0.012)
    with pytest.raises(ValueError, match="walls"):
        scene.ChipRandomization(x_range=(0.30, 0.48))


def test_seated_answers_known_cases():
    socket = scene.socket_pose(1)
    h = 0.0035
    cases = {  # chip pose -> expected within
        "exact": (seated_chip(1, h), True),
        "1.5 mm aside": (seated_chip(1, h, (0.0015, 0.0, 0.0)), True),
        "2.5 mm aside": (seated_chip(1, h, (0.0015, 0.002, 0.0)), False),
        "3 mm high": (seated_chip(1, h, (0.0, 0.0, 0.003)), False),
        "quarter turn": (seated_chip(1, h, quat=yaw_quat(np.pi / 2)), True),
        "half turn and 3 deg": (seated_chip(1, h, quat=yaw_quat(np.pi + np.deg2rad(3))), True),
        "7 deg yaw": (seated_chip(1, h, quat=yaw_quat(np.deg2rad(7))), False),
        "40 deg yaw": (seated_chip(1, h, quat=yaw_quat(np.deg2rad(40))), False),
        "4 deg tilt": (seated_chip(1, h, quat=tilt_quat(np.deg2rad(4))), True),
        "6 deg tilt": (seated_chip(1, h, quat=tilt_quat(np.deg2rad(6))), False),
        "3 deg yaw and 3 deg tilt": (seated_chip(1, h, quat=quat_multiply(yaw_quat(np.deg2rad(3)),
                                                                          tilt_quat(np.deg2rad(3)))), True),
        "other socket": (seated_chip(0, h), False),
    }
    poses = np.array([pose for pose, _ in cases.values()])
    result = scene.seated(poses, socket, np.full(len(poses), h))  # broadcasts over a batch
    assert dict(zip(cases, result["within"].tolist())) == {name: within for name, (_, within) in cases.items()}
    exact = {key: value[0] for key, value in result.items()}
    assert exact["position_error"] == pytest.approx(0.0, abs=1e-12) and exact["angle_error"] == pytest.approx(0.0, abs=1e-7)
    assert result["xy_error"][2] == pytest.approx(0.0025)
    assert result["height_error"][3] == pytest.approx(0.003)
    assert np.rad2deg(result["yaw_error"][6]) == pytest.approx(7.0)
    assert np.rad2deg(result["angle_error"][7]) == pytest.approx(40.0)  # 40 deg is nearer 0 than 90
    assert np.rad2deg(result["tilt"][9]) == pytest.approx(6.0)
    assert np.rad2deg(result["angle_error"][10]) == pytest.approx(np.hypot(3.0, 3.0), rel=1e-3)


@pytest.mark.parametrize("backend", ["numpy", "pybullet"])
def test_a_chip_let_go_above_its_socket_settles_seated(backend):
    """The engines' chip (spheres in numpy, a box in pybullet) drops 1.5 mm, slightly off and turned, and sits."""
    task = Assembly3CTask(backend, 1)
    try:
        task.reset(np.array([0]), [np.random.default_rng(1)])
        half = task.chip_half[0, 2]
        pose = seated_chip(task.target_socket[0], half, (0.001, -0.0008, 0.0015), yaw_quat(np.deg2rad(2)))
        joint_pos, _ = task.engine.joint_state()
        task.engine.reset([0], EpisodeSetup.per_env(joint_pos, [task.episode_params[0]], pose[None, None]))
        hold = np.zeros((1, task.action_space.shape[0]))
        hold[:, 6::7] = -1.0  # hands open
        successes = [bool(task.step(hold)[4]["is_success"][0]) for _ in range(25)]
        seat = task.evaluate()["seat"]
        assert successes[-1] and seat["position_error"][0] < 0.0015 and np.rad2deg(seat["angle_error"][0]) < 3
        # Success waits for the chip to be free for a whole step: a chip let go this step has not landed yet.
        task.held_before[:] = True
        assert not task.step(hold)[4]["is_success"][0]
        assert task.step(hold)[4]["is_success"][0]
    finally:
        task.close()


# ------------------------------------------------------------------ the scripted expert
def run_batch(num_envs: int, seed: int, backend: str = "numpy", max_steps: int | None = None):
    """Every env's first episode with the expert (or its first max_steps): success, whether it ever grasped,
    the final chip poses."""
    env = gymnasium.make_vec(ASSEMBLY, num_envs=num_envs, vectorization_mode="vector_entry_point", backend=backend)
    try:
        expert = make_expert(env)
        observation, _ = env.reset(seed=seed)
        expert.reset()
        done, success, grasped = (np.zeros(num_envs, bool) for _ in range(3))
        final_chip = np.zeros((num_envs, 7))
        for _ in range(max_steps or env.unwrapped.task.config.max_steps):
            observation, _, terminated, truncated, info = env.step(expert.act(observation))
            finished = (terminated | truncated) & ~done
            success |= info["is_success"] & finished
            final_chip[finished] = env.unwrapped.task.engine.object_poses()[finished, 0]
            grasped |= (observation["grasped"][:, 1] > 0) & ~done
            done |= finished
            if done.all():
                break
        final_chip[~done] = env.unwrapped.task.engine.object_poses()[~done, 0]
        return success, grasped, final_chip
    finally:
        env.close()


def test_expert_seats_the_chip_on_the_numpy_engine():
    success, grasped, _ = run_batch(8, seed=200)
    assert success.sum() >= 7, success
    assert grasped[success].all()  # carried there, not pushed


def test_expert_seats_the_chip_on_the_pybullet_engine():
    env = gymnasium.make(ASSEMBLY, backend="pybullet")
    try:
        expert = make_expert(env)
        assert isinstance(expert, Assembly3CExpert)
        task = env.unwrapped.task
        for seed in (300, 301, 302):
            observation, _ = env.reset(seed=seed)
            expert.reset()
            for _ in range(task.config.max_steps):
                observation, _, terminated, truncated, info = env.step(expert(observation))
                if terminated or truncated:
                    break
            assert info["is_success"], seed
            seat = task.evaluate()["seat"]
            assert seat["position_error"][0] < scene.SEAT_POSITION_TOLERANCE
            assert not observation["grasped"].any()
    finally:
        env.close()


def test_expert_turns_the_chip_to_the_socket():
    """The chip starts turned by up to 30 degrees; the expert must cancel that turn, not only move it. A hand
    that pinches (revision 3, the default) turns square to the chip's edges at the pick; revision 1's hand,
    which presses the chip down, turns half at the pick and half while carrying."""
    observation = {"chip_quat": yaw_quat(np.deg2rad(25))[None], "socket_quat": yaw_quat(0.0)[None]}
    expert = Assembly3CExpert(1)
    turn = expert._yaw_to_socket(observation)
    assert np.rad2deg(turn[0]) == pytest.approx(-25.0)
    assert np.rad2deg(expert.grasp_yaw(observation)[0]) == pytest.approx(25.0)
    pressing = Assembly3CExpert(1, robot=robots.load("humanoid43", revision=1), grasp="assisted")
    assert np.rad2deg(pressing.grasp_yaw(observation)[0]) == pytest.approx(12.5)


def test_same_seed_same_expert_rollout():
    # Through the grasp and into the carry: contacts with the tray, the weld, the lift.
    first, second = run_batch(2, seed=40, max_steps=90), run_batch(2, seed=40, max_steps=90)
    assert first[1].all()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ observations and rewards
def test_observation_and_reward_terms(random_actions):
    env = gymnasium.make(ASSEMBLY, backend="numpy")
    try:
        observation, _ = env.reset(seed=3)
        task = env.unwrapped.task
        expected = {"joint_pos": (43,), "joint_vel": (43,), "hand_pos": (6,), "hand_quat": (8,), "chip_pos": (3,),
                    "chip_quat": (4,), "chip_size": (3,), "socket_pos": (3,), "socket_quat": (4,),
                    "chip_to_hands": (6,), "socket_to_hands": (6,), "chip_to_seat": (3,), "grasped": (2,)}
        assert {key: value.shape for key, value in observation.items()} == expected
        base = np.asarray(task.scene.robot_position)
        socket = scene.socket_pose(task.target_socket[0])
        np.testing.assert_allclose(observation["socket_pos"], socket[:3] - base, atol=1e-6)
        np.testing.assert_allclose(observation["chip_size"], task.episode_params[0][0].size, atol=1e-7)
        np.testing.assert_allclose(observation["chip_to_seat"], observation["chip_pos"] - observation["socket_pos"]
                                   - [0, 0, observation["chip_size"][2]], atol=1e-6)
        for action in random_actions(env.action_space, 15, seed=3):
            _, reward, terminated, truncated, info = env.step(action)
            terms = info["reward_terms"]
            assert set(terms) == {"reach", "grasp", "transport", "insert", "seat"}
            assert reward == pytest.approx(sum(terms.values()), rel=1e-9, abs=1e-12)
    finally:
        env.close()


def test_reward_scales_and_sparse_reward():
    envs = [gymnasium.make(ASSEMBLY, backend="numpy", **kwargs)
            for kwargs in ({}, {"reach_scale": 3.0}, {"reward_mode": "sparse"})]
    try:
        action = np.zeros(envs[0].action_space.shape, np.float32)
        results = []
        for env in envs:
            env.reset(seed=5)
            results.append(env.step(action))
        (_, plain, *_, plain_info), (_, _, *_, scaled_info), (_, sparse, *_, sparse_info) = results
        assert scaled_info["reward_terms"]["reach"] == pytest.approx(3.0 * plain_info["reward_terms"]["reach"])
        assert plain > 0 and sparse == float(sparse_info["is_success"]) == 0.0
    finally:
        for env in envs:
            env.close()


def test_evaluate_changes_nothing_and_the_step_carries_whether_the_chip_was_held():
    task = Assembly3CTask("numpy", 2)
    try:
        assert task.held_before.dtype == bool and task.chip_half.shape == (2, 3)
        task.held_before[:] = [True, False]
        first, second = task.evaluate(), task.evaluate()
        assert task.held_before.tolist() == [True, False]
        for key in ("success", "failure", "held"):
            np.testing.assert_array_equal(first[key], second[key])
        task.step(np.zeros((2, task.action_space.shape[0]), dtype=np.float32))
        np.testing.assert_array_equal(task.held_before, (task.engine.grasped_objects() == 0).any(axis=1))
        assert [name for name, _ in task.state_layout().blocks if not name.startswith(("engine.", "task.controller."))] \
            == ["task.elapsed", "task.held_before"]
    finally:
        task.close()
