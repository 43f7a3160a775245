"""The numpy kinematics and dynamics (physics/model.py) held to pybullet on the same URDF."""

import numpy as np
import pybullet
import pytest

from training_ground import robots
from training_ground.physics import model as numpy_model
from training_ground.physics.rotations import (matrix_to_quat, quat_conjugate, quat_multiply, quat_to_axis_angle,
                                                quat_to_matrix)

BASE = np.array([0.1, -0.2, 1.021])
CONFIGS = 100


@pytest.fixture(scope="module")
def setup():
    robot = robots.load("humanoid43")
    model = numpy_model.load_model(robot, fixed_base=True, base_position=BASE)
    client = pybullet.connect(pybullet.DIRECT)
    pybullet.setGravity(0, 0, -9.81, physicsClientId=client)
    body = pybullet.loadURDF(str(robot.urdf_path), BASE.tolist(), useFixedBase=True,
                             flags=pybullet.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client)
    infos = [pybullet.getJointInfo(body, j, physicsClientId=client) for j in range(pybullet.getNumJoints(body, physicsClientId=client))]
    joints = {info[1].decode(): info[0] for info in infos}
    links = {info[12].decode(): info[0] for info in infos}
    order = np.array([joints[name] for name in robot.joint_names])
    yield robot, model, client, body, links, order
    pybullet.disconnect(client)


def _configs(robot, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(CONFIGS):
        yield rng.uniform(robot.joint_lower, robot.joint_upper), rng.normal(0.0, 1.5, robot.num_joints)


def _set(client, body, robot, order, q, v):
    for j, name_index in enumerate(order):
        pybullet.resetJointState(body, int(name_index), q[j], v[j], physicsClientId=client)
    urdf_q, urdf_v = np.zeros(len(order)), np.zeros(len(order))
    urdf_q[order], urdf_v[order] = q, v
    return urdf_q.tolist(), urdf_v.tolist()


def test_model_parity_with_pybullet(setup):
    robot, model, client, body, links, order = setup
    for name, index in links.items():
        link = model.link_index(name)
        mass, _, diagonal, com = pybullet.getDynamicsInfo(body, index, physicsClientId=client)[:4]
        assert model.mass[link] == pytest.approx(mass, rel=1e-12)
        np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(model.inertia[link])), np.sort(diagonal), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(model.com[link], com, atol=1e-9)
        info = pybullet.getJointInfo(body, index, physicsClientId=client)
        np.testing.assert_allclose(model.axis[link], info[13], atol=1e-12)
        joint = model.joint_of_link[link]
        assert (info[8], info[9]) == pytest.approx((model.joint_lower[joint], model.joint_upper[joint]))


def test_forward_kinematics_matches_pybullet(setup):
    """Link origins agree with getLinkState to 1e-6 m and orientations to 1e-6 rad.

    getLinkState reports world frames through single precision (errors of about 1e-7 m
    even at the world origin), so it cannot check the 1e-9 that double precision gives;
    the Jacobian and mass-matrix tests below, which are built on the same forward
    kinematics, agree with pybullet to about 1e-12.
    """
    robot, model, client, body, links, order = setup
    worst_position = worst_angle = 0.0
    for q, v in _configs(robot):
        _set(client, body, robot, order, q, v)
        poses = numpy_model.forward_kinematics(model, q[None])[0]
        for name, index in links.items():
            state = pybullet.getLinkState(body, index, computeForwardKinematics=True, physicsClientId=client)
            pose = poses[model.link_index(name)]
            worst_position = max(worst_position, np.abs(pose[:3] - state[4]).max())
            relative = quat_multiply(quat_conjugate(pose[3:]), np.array(state[5]))
            worst_angle = max(worst_angle, np.linalg.norm(quat_to_axis_angle(relative)))
    assert worst_position < 1e-6
    assert worst_angle < 1e-6


def test_mass_matrix_bias_forces_and_jacobians_match_pybullet(setup):
    robot, model, client, body, links, order = setup
    point = [0.01, 0.02, -0.05]
    for q, v in _configs(robot, seed=1):
        urdf_q, urdf_v = _set(client, body, robot, order, q, v)
        reference = np.array(pybullet.calculateMassMatrix(body, urdf_q, physicsClientId=client))[np.ix_(order, order)]
        mass = numpy_model.mass_matrix(model, q[None])[0]
        assert np.abs(mass - reference).max() <= 1e-6 * np.abs(reference).max()
        np.testing.assert_allclose(mass, mass.T, atol=1e-12)
        reference = np.array(pybullet.calculateInverseDynamics(body, urdf_q, urdf_v, [0.0] * len(order),
                                                               physicsClientId=client))[order]
        bias = numpy_model.bias_forces(model, q[None], v[None])[0]
        assert np.abs(bias - reference).max() <= 1e-6 * np.abs(reference).max()
        for link in ("right_palm", "left_foot", "head"):
            linear, angular = pybullet.calculateJacobian(body, links[link], point, urdf_q, [0.0] * len(order),
                                                         [0.0] * len(order), physicsClientId=client)
            reference = np.vstack([linear, angular])[:, order]
            np.testing.assert_allclose(numpy_model.jacobian(model, q[None], link, point)[0], reference, atol=1e-9)


def test_batched_calls_equal_one_at_a_time(setup):
    robot, model, *_ = setup
    rng = np.random.default_rng(2)
    q = rng.uniform(robot.joint_lower, robot.joint_upper, (5, robot.num_joints))
    v = rng.normal(size=q.shape)
    batch = numpy_model.bias_forces(model, q, v)
    for i in range(len(q)):
        np.testing.assert_array_equal(batch[i], numpy_model.bias_forces(model, q[i:i + 1], v[i:i + 1])[0])
    assert numpy_model.mass_matrix(model, q).shape == (5, robot.num_joints, robot.num_joints)


def test_unknown_link_is_a_clear_error(setup):
    robot, model, *_ = setup
    with pytest.raises(KeyError, match="no link"):
        numpy_model.jacobian(model, robot.keyframe("standing")[None], "tail")


def _mujoco_model(mujoco, robot):
    """MuJoCo's model of the robot's URDF. MuJoCo strips mesh paths to their file names, so the meshes go in as
    assets under those names."""
    import xml.etree.ElementTree as ET

    from training_ground.physics.meshes import resolve_mesh

    urdf = ET.parse(robot.urdf_path).getroot()
    assets = {}
    for mesh in urdf.iter("mesh"):
        path = resolve_mesh(robot.urdf_path, mesh.get("filename"))
        assets[path.name] = path.read_bytes()
    return mujoco.MjModel.from_xml_string(robot.urdf_path.read_text(), assets)


@pytest.mark.parametrize("robot_name", ["humanoid43", "compact43"])
def test_forward_kinematics_matches_mujoco_to_1e9(robot_name):
    """pybullet's getLinkState rounds through single precision, so double-precision link poses come
    from MuJoCo's kinematics on the same URDF (the ``bench`` extra, installed by CI): every link's
    world position within 1e-9 m and orientation within 1e-9 rad, fixed and floating base. compact43 is
    rooted at its torso, has mesh collisions and a sensor link without <inertial>; MuJoCo merges its fixed
    links into their parents, so the links compared are those MuJoCo keeps (every moving one)."""
    mujoco = pytest.importorskip("mujoco")
    robot = robots.load(robot_name)
    reference = _mujoco_model(mujoco, robot)
    data = mujoco.MjData(reference)
    kept = {reference.body(i).name for i in range(1, reference.nbody)}
    rng = np.random.default_rng(7)
    compared = 0
    for floating in (False, True):
        model = numpy_model.load_model(robot, fixed_base=not floating)
        for _ in range(CONFIGS):
            joints = rng.uniform(robot.joint_lower, robot.joint_upper)
            for name, value in zip(robot.joint_names, joints):
                data.joint(name).qpos[0] = value
            mujoco.mj_kinematics(reference, data)
            base_position, base_quat = rng.normal(size=3), rng.normal(size=4)
            base_quat /= np.linalg.norm(base_quat)
            q = np.concatenate([base_position, base_quat, joints]) if floating else joints
            poses = numpy_model.forward_kinematics(model, q[None])[0]
            base_rotation = quat_to_matrix(base_quat) if floating else np.eye(3)
            offset = base_position if floating else np.zeros(3)
            for name in robot_links(model):
                if name not in kept:
                    continue
                compared += 1
                body = data.body(name)
                expected_position = offset + base_rotation @ body.xpos
                w, x, y, z = body.xquat
                expected_quat = quat_multiply(matrix_to_quat(base_rotation), np.array([x, y, z, w]))
                pose = poses[model.link_index(name)]
                assert np.abs(pose[:3] - expected_position).max() < 1e-9
                relative = quat_multiply(quat_conjugate(pose[3:]), expected_quat)
                assert np.linalg.norm(quat_to_axis_angle(relative)) < 1e-9
    # Every moving link is compared (MuJoCo keeps the body of every joint).
    assert compared >= 2 * CONFIGS * robot.num_joints


def robot_links(model):
    return model.link_names[1:]  # the base is mujoco's world-fixed root, placed by us
