"""The pybullet engine behind the batched Engine interface."""

from __future__ import annotations

import numpy as np
import pybullet
import pytest

from training_ground.envs.controllers import grasp_site_poses
from training_ground.physics import BACKENDS, EngineConfig, make_engine
from training_ground.physics.grasp import GRASP_RADIUS
from training_ground.physics.rotations import quat_to_axis_angle, quat_conjugate, quat_multiply
from training_ground.physics.scene import EpisodeSetup, ObjectParams
from training_ground.scenes.bread import TABLE_HEIGHT, bread_scene

BREAD = ObjectParams("capsule", (0.03, 0.06), 0.1, 0.8)
#: A roll lying on the table, out of both hands' reach at arms_ready.
FAR_POSE = np.array([0.45, -0.30, TABLE_HEIGHT + 0.031, 0.0, 0.0, 0.0, 1.0])


@pytest.fixture
def make():
    """Factory for pybullet engines on the bread scene, all closed at teardown."""
    engines = []

    def factory(robot, num_envs=2, **kwargs):
        engine = make_engine("pybullet", robot, bread_scene(), num_envs=num_envs, **kwargs)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.close()


def reset_all(engine, robot, q=None, pose=FAR_POSE):
    n = engine.num_envs
    q = robot.keyframe("arms_ready") if q is None else q
    engine.reset(None, EpisodeSetup.per_env(np.tile(q, (n, 1)), [[BREAD] for _ in range(n)], np.tile(pose, (n, 1, 1))))


def snapshot(engine):
    q, qd = engine.joint_state()
    return (q, qd, engine.object_poses(), engine.object_velocities(),
            engine.link_poses(["right_palm", "left_palm", "pelvis"]))


def test_reset_and_step_shapes(robot, make):
    engine = make(robot)
    assert "pybullet" in BACKENDS
    reset_all(engine, robot)
    q, qd = engine.joint_state()
    np.testing.assert_allclose(q, np.tile(robot.keyframe("arms_ready"), (2, 1)), atol=1e-9)
    np.testing.assert_array_equal(qd, 0.0)
    np.testing.assert_array_equal(engine.joint_targets, q)
    for _ in range(3):
        engine.step()
    q, qd = engine.joint_state()
    assert q.shape == qd.shape == (2, 43)
    assert np.all(np.isfinite(q)) and np.all(np.isfinite(qd))
    assert engine.object_poses().shape == (2, 1, 7)
    assert engine.object_velocities().shape == (2, 1, 6)
    assert engine.link_poses(["right_palm", "pelvis"]).shape == (2, 2, 7)
    assert engine.grasped_objects().shape == (2, 2)
    np.testing.assert_array_equal(engine.grasped_objects(), -1)
    assert engine.hand_contact_forces().shape == (2, 2, 1)
    assert engine.point_jacobian("right_palm", (0, 0, 0)).shape == (2, 6, 43)
    assert not engine.diverged.any()
    # The fixed base stays on its stand.
    pelvis = engine.link_poses(["pelvis"])[:, 0, :3]
    np.testing.assert_allclose(pelvis, np.tile(bread_scene().robot_position, (2, 1)), atol=1e-6)
    with pytest.raises(KeyError):
        engine.link_poses(["no_such_link"])


def test_pd_holds_posture(robot, make):
    engine = make(robot, num_envs=1)
    reset_all(engine, robot)
    target = robot.keyframe("arms_ready")
    for _ in range(50):  # 1 s at control_dt = 0.02
        engine.step()
    q, qd = engine.joint_state()
    arms = robot.joint_indices("arms")
    assert np.abs(q[0, arms] - target[arms]).max() < 0.1
    assert np.abs(q[0] - target).max() < 0.2
    assert np.abs(qd[0]).max() < 1.0


def test_pd_tracks_a_new_target(robot, make):
    engine = make(robot, num_envs=1)
    reset_all(engine, robot)
    elbow = robot.joint_names.index("right_elbow")
    targets = engine.joint_targets.copy()
    targets[0, elbow] -= 0.4
    engine.set_joint_targets(targets)
    for _ in range(50):
        engine.step()
    q, _ = engine.joint_state()
    assert abs(q[0, elbow] - targets[0, elbow]) < 0.1


def test_partial_reset_leaves_other_env_untouched(robot, make):
    engine = make(robot)
    reset_all(engine, robot)
    rng = np.random.default_rng(0)
    targets = engine.joint_targets + rng.uniform(-0.1, 0.1, engine.joint_targets.shape)
    engine.set_joint_targets(targets)
    for _ in range(5):
        engine.step()
    before = snapshot(engine)
    targets_before = engine.joint_targets.copy()
    q1 = robot.keyframe("standing")
    pose1 = FAR_POSE + np.array([0.02, 0.03, 0, 0, 0, 0, 0])
    engine.reset([1], EpisodeSetup.per_env(q1[None], [[BREAD]], pose1[None, None]))
    after = snapshot(engine)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a[0], b[0])  # bit-for-bit for env 0
    np.testing.assert_array_equal(engine.joint_targets[0], targets_before[0])
    np.testing.assert_allclose(after[0][1], q1, atol=1e-9)
    np.testing.assert_allclose(after[2][1, 0, :3], pose1[:3], atol=1e-6)
    np.testing.assert_array_equal(engine.joint_targets[1], q1)


def test_env_in_batch_matches_env_alone(robot, make):
    """One client per env: env 0 of a batch evolves exactly as a single env does."""
    single, batch = make(robot, num_envs=1), make(robot, num_envs=2)
    reset_all(single, robot)
    reset_all(batch, robot, pose=FAR_POSE)
    batch.reset([1], EpisodeSetup.per_env(robot.keyframe("standing")[None], [[BREAD]], FAR_POSE[None, None]))
    for _ in range(10):
        single.step()
        batch.step()
    np.testing.assert_array_equal(single.joint_state()[0][0], batch.joint_state()[0][0])


def test_deterministic(robot, make):
    results = []
    for _ in range(2):
        engine = make(robot)
        reset_all(engine, robot)
        rng = np.random.default_rng(7)
        for _ in range(20):
            targets = np.tile(robot.keyframe("arms_ready"), (2, 1)) + rng.uniform(-0.2, 0.2, (2, 43))
            engine.set_joint_targets(targets)
            engine.set_grasp_commands(rng.uniform(size=(2, 2)) > 0.5)
            engine.step()
        results.append(snapshot(engine))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_set_joint_targets_validation(robot, make):
    engine = make(robot)
    reset_all(engine, robot)
    good = engine.joint_targets.copy()
    with pytest.raises(ValueError, match="shape"):
        engine.set_joint_targets(np.zeros((2, 42)))
    with pytest.raises(ValueError, match="shape"):
        engine.set_joint_targets(np.zeros(43))
    bad = good.copy()
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        engine.set_joint_targets(bad)
    bad[1, 5] = np.inf
    with pytest.raises(ValueError):
        engine.set_joint_targets(bad)
    np.testing.assert_array_equal(engine.joint_targets, good)  # rejected targets change nothing
    # Targets are clipped to the joint limits.
    engine.set_joint_targets(np.full((2, 43), 100.0))
    np.testing.assert_array_equal(engine.joint_targets, np.tile(robot.joint_upper, (2, 1)))


def test_unknown_backend(robot):
    with pytest.raises(ValueError, match="unknown backend"):
        make_engine("mujoco-not-here", robot, bread_scene())


def test_bad_num_envs(robot):
    with pytest.raises(ValueError):
        make_engine("pybullet", robot, bread_scene(), num_envs=0)


def test_bad_env_ids(robot, make):
    engine = make(robot)
    with pytest.raises(IndexError):
        engine.reset([2], EpisodeSetup.per_env(robot.keyframe("standing")[None], [[BREAD]], FAR_POSE[None, None]))


def test_engine_config_validation():
    assert EngineConfig().substeps == 10
    assert EngineConfig(physics_dt=1 / 1000, control_dt=1 / 100).substeps == 10
    with pytest.raises(ValueError, match="physics_dt"):
        EngineConfig(physics_dt=1 / 150)
    with pytest.raises(ValueError, match="physics_dt"):
        EngineConfig(physics_dt=0.0)
    with pytest.raises(ValueError, match="multiple"):
        EngineConfig(control_dt=0.005)  # 2.5 physics steps
    with pytest.raises(ValueError, match="multiple"):
        EngineConfig(control_dt=0.001)  # shorter than a physics step
    with pytest.raises(ValueError, match="grasp"):
        EngineConfig(grasp="glue")


def test_point_jacobian_matches_finite_differences(robot, make):
    """Linear and angular rows of the grasp-site Jacobian against central differences of the site pose.

    pybullet reports link poses in single precision, so the step is 1e-3 rad: rounding
    (~1e-7 m / 2e-3) and truncation (~1e-6) errors both stay far below the tolerance.
    """
    engine = make(robot, num_envs=1)
    hand = robot.hands["right"]
    h = list(robot.hands).index("right")
    arm = robot.joint_indices(hand.arm_joints)
    q0 = robot.keyframe("arms_ready")
    q0[arm] += np.random.default_rng(3).uniform(-0.2, 0.2, len(arm))
    reset_all(engine, robot, q0)
    jacobian = engine.point_jacobian(hand.palm_link, hand.grasp_site)[0]

    def site_pose(q):
        engine.reset([0], EpisodeSetup.per_env(q[None], [[BREAD]], FAR_POSE[None, None]))
        position, quaternion = grasp_site_poses(engine)
        return position[0, h], quaternion[0, h]

    eps = 1e-3
    linear, angular = np.zeros((3, len(arm))), np.zeros((3, len(arm)))
    for k, j in enumerate(arm):
        plus, minus = q0.copy(), q0.copy()
        plus[j] += eps
        minus[j] -= eps
        (p_plus, r_plus), (p_minus, r_minus) = site_pose(plus), site_pose(minus)
        linear[:, k] = (p_plus - p_minus) / (2 * eps)
        angular[:, k] = quat_to_axis_angle(quat_multiply(r_plus, quat_conjugate(r_minus))) / (2 * eps)
    scale = np.abs(linear).max()
    assert scale > 0.1
    np.testing.assert_allclose(jacobian[:3, arm], linear, rtol=1e-3, atol=1e-3 * scale)
    np.testing.assert_allclose(jacobian[3:, arm], angular, rtol=1e-3, atol=1e-3)
    # On the fixed base, the right-hand site depends on the right arm and the waist only.
    others = np.setdiff1d(np.arange(43), np.concatenate([arm, robot.joint_indices("waist")]))
    np.testing.assert_allclose(jacobian[:, others], 0.0, atol=1e-9)


def test_assisted_grasp_attaches_and_releases(robot, make):
    engine = make(robot)
    reset_all(engine, robot)
    site, _ = grasp_site_poses(engine)
    h = list(robot.hands).index("right")
    in_hand = np.concatenate([site[0, h], [0.0, 0.0, 0.0, 1.0]])
    engine.reset([0], EpisodeSetup.per_env(robot.keyframe("arms_ready")[None], [[BREAD]], in_hand[None, None]))
    # Env 0 holds the roll in its right hand; env 1's roll is far away. Both right hands close.
    closing = np.zeros((2, 2), dtype=bool)
    closing[:, h] = True
    engine.set_grasp_commands(closing)
    engine.step()
    grasped = engine.grasped_objects()
    assert grasped[0, h] == 0
    assert grasped[0, 1 - h] == -1
    np.testing.assert_array_equal(grasped[1], -1)  # nothing within reach in env 1
    for _ in range(25):
        engine.step()
        assert engine.grasped_objects()[0, h] == 0
    site, _ = grasp_site_poses(engine)
    held = engine.object_poses()[0, 0, :3]
    assert np.linalg.norm(held - site[0, h]) < GRASP_RADIUS
    assert held[2] > TABLE_HEIGHT + 0.05  # carried, not lying on the table
    # Opening releases at once; the roll then falls.
    engine.set_grasp_commands(np.zeros((2, 2), dtype=bool))
    engine.step()
    np.testing.assert_array_equal(engine.grasped_objects(), -1)
    for _ in range(25):
        engine.step()
    assert engine.object_poses()[0, 0, 2] < held[2] - 0.02


def test_reset_releases_grasp(robot, make):
    engine = make(robot, num_envs=1)
    reset_all(engine, robot)
    site, _ = grasp_site_poses(engine)
    h = list(robot.hands).index("right")
    in_hand = np.concatenate([site[0, h], [0.0, 0.0, 0.0, 1.0]])
    engine.reset([0], EpisodeSetup.per_env(robot.keyframe("arms_ready")[None], [[BREAD]], in_hand[None, None]))
    engine.set_grasp_commands(np.array([[False, True]]) if h == 1 else np.array([[True, False]]))
    engine.step()
    assert engine.grasped_objects()[0, h] == 0
    reset_all(engine, robot)
    np.testing.assert_array_equal(engine.grasped_objects(), -1)
    assert not engine.grasp_commands.any()


def test_render(robot, make):
    engine = make(robot, num_envs=1)
    reset_all(engine, robot)
    image = engine.render(0, width=64, height=48)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert image.std() > 0


def test_close_twice_disconnects(robot):
    engine = make_engine("pybullet", robot, bread_scene(), num_envs=2)
    ids = [client._client for client in engine.clients]
    for client_id in ids:
        assert pybullet.getConnectionInfo(physicsClientId=client_id)["isConnected"] == 1
    engine.close()
    engine.close()
    assert engine.clients == []
    for client_id in ids:
        assert pybullet.getConnectionInfo(physicsClientId=client_id)["isConnected"] == 0


def test_context_manager_closes(robot):
    with make_engine("pybullet", robot, bread_scene(), num_envs=1) as engine:
        client_id = engine.clients[0]._client
    assert pybullet.getConnectionInfo(physicsClientId=client_id)["isConnected"] == 0
