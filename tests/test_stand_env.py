"""Stand: the floating robot keeps its balance under pushes; pushes, centre of mass and the expert on both engines."""

import gymnasium
import numpy as np
import pytest

import training_ground  # noqa: F401
from training_ground import robots
from training_ground.robots import humanoid43
from training_ground.agents.policies import make_expert
from training_ground.physics import make_engine
from training_ground.physics.scene import EpisodeSetup
from training_ground.scenes import stand as stand_scene

STAND = "TrainingGround/Stand-v0"


def test_push_schedule_is_drawn_inside_its_ranges_without_overlap():
    ranges = stand_scene.PushRandomization(count=3)
    for seed in range(20):
        pushes = stand_scene.sample_pushes(np.random.default_rng(seed), ranges)
        start, end, force = pushes[:, 0], pushes[:, 1], pushes[:, 2:]
        assert np.all(start >= ranges.start_range[0]) and np.all(end <= ranges.start_range[1])
        assert np.all(np.diff(start) > 0) and np.all(start[1:] >= end[:-1])
        duration = end - start
        assert np.all((duration >= ranges.duration_range[0]) & (duration <= ranges.duration_range[1]))
        magnitude = np.linalg.norm(force, axis=1)
        assert np.all((magnitude >= ranges.magnitude_range[0] - 1e-9) & (magnitude <= ranges.magnitude_range[1] + 1e-9))
        assert np.all(force[:, 2] == 0.0)


def test_push_force_is_on_only_inside_its_window():
    pushes = np.array([[[1.0, 1.2, 100.0, 0.0, 0.0], [2.0, 2.1, 0.0, -50.0, 0.0]]]).repeat(4, axis=0)
    force = stand_scene.push_force(pushes, np.array([0.5, 1.1, 1.2, 2.05]))
    np.testing.assert_array_equal(force, [[0, 0, 0], [100, 0, 0], [0, 0, 0], [0, -50, 0]])


@pytest.fixture(scope="module")
def floor():
    robot = robots.load("humanoid43")
    return robot, stand_scene.stand_scene(robot.standing_base_height)


def _pushed_com_velocity(backend, robot, scene):
    engine = make_engine(backend, robot, scene, 2)
    try:
        engine.reset(None, EpisodeSetup.per_env(np.tile(robot.keyframe("standing"), (2, 1))))
        engine.step()
        force = np.array([[120.0, 0.0, 0.0], [0.0, -120.0, 0.0]])
        engine.apply_force(robot.torso_link, force)
        _, before = engine.center_of_mass()
        for _ in range(5):  # 0.1 s
            engine.step()
        engine.apply_force(robot.torso_link, np.zeros((2, 3)))
        _, after = engine.center_of_mass()
        return after - before
    finally:
        engine.close()


def test_a_push_changes_the_centre_of_mass_velocity_alike_on_both_engines(floor):
    robot, scene = floor
    # Impulse 120 N x 0.1 s on 81 kg: about 0.15 m/s if the feet held nothing back.
    gain = {backend: _pushed_com_velocity(backend, robot, scene) for backend in ("pybullet", "numpy")}
    for delta in gain.values():
        assert 0.08 < delta[0, 0] < 0.16 and abs(delta[0, 1]) < 0.02
        assert -0.16 < delta[1, 1] < -0.08 and abs(delta[1, 0]) < 0.03
    np.testing.assert_allclose(gain["numpy"], gain["pybullet"], atol=0.02)


@pytest.mark.parametrize("backend", ["pybullet", "numpy"])
def test_centre_of_mass_and_base_velocity_agree_between_engines_at_rest(floor, backend):
    robot, scene = floor
    engine = make_engine(backend, robot, scene, 1)
    try:
        engine.reset(None, EpisodeSetup.per_env(robot.keyframe("standing")[None]))
        com, com_vel = engine.center_of_mass()
        # The standing robot's centre of mass sits about 1 m up, just ahead of the ankles.
        assert 0.95 < com[0, 2] < 1.05 and abs(com[0, 0]) < 0.03 and abs(com[0, 1]) < 1e-6
        np.testing.assert_allclose(com_vel, 0.0, atol=1e-9)
        np.testing.assert_allclose(engine.base_velocity(), 0.0, atol=1e-9)
        with pytest.raises(KeyError, match="no_such_link"):
            engine.apply_force("no_such_link", np.zeros((1, 3)))
        with pytest.raises(ValueError, match="shape"):
            engine.apply_force("torso", np.zeros(3))
    finally:
        engine.close()


def _run(env, policy, steps):
    observation, _ = env.reset(seed=0)
    n = env.num_envs
    succeeded, failed, finished = (np.zeros(n, bool) for _ in range(3))
    for _ in range(steps):
        observation, _, terminated, truncated, info = env.step(policy(observation))
        succeeded |= info["is_success"] & ~finished
        failed |= terminated & ~info["is_success"] & ~finished
        finished |= terminated | truncated
        if finished.all():
            break
    return succeeded, failed


def test_the_balance_expert_survives_pushes_that_topple_the_bare_posture_controller():
    env = gymnasium.make_vec(STAND, num_envs=12, vectorization_mode="vector_entry_point", backend="numpy")
    try:
        expert = make_expert(env)
        held = np.tile(expert.act({"com_pos": np.zeros((1, 3)), "com_vel": np.zeros((1, 3))}), (12, 1))
        expert_success, _ = _run(env, expert, env.unwrapped.config.max_steps)
        posture_success, posture_fell = _run(env, lambda _: held, env.unwrapped.config.max_steps)
    finally:
        env.close()
    assert expert_success.sum() >= 11
    assert posture_fell.sum() >= 4, "the default pushes should be hard enough to topple a robot that only holds its posture"


def test_the_balance_expert_stands_on_pybullet_and_falls_are_terminal():
    env = gymnasium.make(STAND, backend="pybullet")
    try:
        expert = make_expert(env)
        observation, _ = env.reset(seed=3)
        for step in range(env.unwrapped.config.max_steps):
            observation, reward, terminated, truncated, info = env.step(expert(observation))
            if terminated or truncated:
                break
        assert terminated and info["is_success"] and step + 1 == env.unwrapped.config.max_steps
        # A shove far beyond the ankle strategy topples the robot: the episode ends as a failure.
        env.reset(seed=3)
        task = env.unwrapped.task
        task.pushes[0] = [[0.0, 0.5, 600.0, 0.0, 0.0]] + [[0.0] * 5] * (len(task.pushes[0]) - 1)
        for _ in range(150):
            observation, reward, terminated, truncated, info = env.step(expert(observation))
            if terminated:
                break
        assert terminated and not info["is_success"] and info["reward_terms"]["alive"] == 0.0
    finally:
        env.close()


def test_dense_reward_is_the_sum_of_its_terms_and_the_default_mode_is_joint_pos():
    env = gymnasium.make(STAND, backend="numpy")
    try:
        assert env.unwrapped.task.action_mode == "joint_pos" and env.action_space.shape == (43,)
        observation, _ = env.reset(seed=1)
        assert set(observation) == {"joint_pos", "joint_vel", "base_height", "base_quat", "base_velocity", "com_pos",
                                    "com_vel", "feet_pos"}
        rng = np.random.default_rng(0)
        for _ in range(5):
            _, reward, _, _, info = env.step(rng.uniform(-0.05, 0.05, 43).astype(np.float32))
            assert reward == pytest.approx(sum(info["reward_terms"].values()))
    finally:
        env.close()
    with gymnasium.make(STAND, backend="numpy", action_mode="ee_delta") as env:
        with pytest.raises(ValueError, match="joint_pos"):
            make_expert(env)


def test_the_default_fall_height_is_a_share_of_the_robots_standing_height_and_a_number_is_absolute():
    from training_ground.envs.stand import FALL_FRACTION, StandTask
    from training_ground.envs import make_config

    assert make_config(StandTask.config_class).fall_height is None
    assert FALL_FRACTION * humanoid43.STANDING_BASE_HEIGHT == pytest.approx(0.75, abs=1e-12)  # as before
    for fall_height, fallen in ((None, False), (0.5, False), (2.0, True)):  # 2 m: above the pelvis, fallen at once
        task = StandTask("numpy", 1, config=make_config(StandTask.config_class, fall_height=fall_height))
        try:
            assert bool(task.evaluate()["failure"][0]) is fallen
        finally:
            task.close()
