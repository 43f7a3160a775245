"""The numpy engine held to the pybullet reference and to the laws of mechanics."""

import dataclasses

import numpy as np
import pybullet
import pytest

from training_ground import robots
from training_ground.physics import EngineConfig, make_engine
from training_ground.physics import model as numpy_model
from training_ground.physics import numpy_engine
from training_ground.physics.scene import EpisodeSetup, Scene

AIR = Scene("air", (), (), (0.0, 0.0, 2.0), fixed_base=True)  # high enough that the feet never touch the floor


@pytest.fixture(scope="module")
def robot():
    return robots.load("humanoid43")


def _track(robot, implicit: bool, seconds: float = 2.0):
    """Both engines follow the same smooth joint trajectory under gravity; returns (worst, final) joint gap."""
    drive = "damping_implicit" if implicit else "explicit"
    engines = {backend: make_engine(backend, robot, AIR, 1, EngineConfig(drive=drive)) for backend in ("numpy", "pybullet")}
    try:
        start = robot.keyframe("arms_ready")[None]
        for engine in engines.values():
            engine.reset(None, EpisodeSetup.per_env(start))
        middle = (robot.joint_upper + robot.joint_lower) / 2
        half = (robot.joint_upper - robot.joint_lower) / 2
        worst = 0.0
        steps = int(round(seconds / engines["numpy"].config.control_dt))
        for k in range(steps):
            t = k * engines["numpy"].config.control_dt
            target = middle + 0.5 * half * np.sin(np.pi * t + np.arange(robot.num_joints))
            target = start + (target - start) * min(1.0, t / 0.5)
            for engine in engines.values():
                engine.set_joint_targets(target)
                engine.step()
            gap = np.abs(engines["numpy"].joint_state()[0] - engines["pybullet"].joint_state()[0]).max()
            worst = max(worst, gap)
        return worst, gap
    finally:
        for engine in engines.values():
            engine.close()


def test_pd_tracking_matches_pybullet_step_for_step_with_explicit_damping(robot):
    """With the damping evaluated explicitly, as pybullet does, both engines integrate the same
    equations with the same semi-implicit Euler step, so after 2 s of PD tracking under gravity
    the joint angles agree to 1e-5 rad (seen: 4e-8). The early worst gap (seen: 3e-3 rad) comes
    from the two ways of holding the fingers at their joint limit in the first step."""
    worst, final = _track(robot, implicit=False)
    assert final < 1e-5
    assert worst < 1e-2


def test_pd_tracking_with_implicit_damping_stays_close_to_pybullet(robot):
    """The engine's default treats actuator damping implicitly (stable for any kd), which changes
    each step by O(kd dt^2 / I) relative to pybullet's explicit law. Over 2 s of tracking that
    stays below 0.02 rad anywhere (seen: 7e-3 worst, 2e-3 at the end)."""
    worst, final = _track(robot, implicit=True)
    assert worst < 0.02
    assert final < 0.01


def _free_model(robot, floating: bool):
    model = numpy_model.load_model(robot, fixed_base=not floating, gravity=(0.0, 0.0, 0.0))
    unlimited = np.full(robot.num_joints, np.inf)
    model = dataclasses.replace(model, joint_lower=-unlimited, joint_upper=unlimited)
    zeros = np.zeros(robot.num_joints)
    params = numpy_engine.ActuatorParams(zeros, zeros, unlimited, zeros, zeros)
    return model, params


def _random_state(robot, model, rng, n=4, speed=0.5):
    q = rng.uniform(robot.joint_lower, robot.joint_upper, (n, robot.num_joints))
    if model.floating:
        quat = rng.normal(size=(n, 4))
        q = np.concatenate([rng.normal(size=(n, 3)), quat / np.linalg.norm(quat, axis=1, keepdims=True), q], 1)
    return numpy_engine.init(model, q, rng.normal(0.0, speed, (n, model.nv)))


def _energy_and_momentum(model, state):
    kin = numpy_model.kinematics(model, state.q)
    energy = 0.5 * np.einsum("ni,nij,nj->n", state.v, numpy_model.mass_matrix(model, state.q, kin), state.v)
    links = np.arange(model.num_links)
    coms = numpy_model.link_coms(kin)
    velocity = np.einsum("nlij,nj->nli", numpy_model.point_jacobians(model, kin, links, coms), state.v)
    linear = np.einsum("l,nli->ni", model.mass, velocity[..., :3])
    rotation = np.moveaxis(kin.rotation, (0, 1), (-2, -1)).transpose(1, 0, 2, 3)
    inertia = rotation @ model.inertia @ np.swapaxes(rotation, -1, -2)
    world_com = coms + kin.base_position.T[:, None]
    angular = (np.cross(world_com, model.mass[None, :, None] * velocity[..., :3])
               + np.einsum("nlij,nlj->nli", inertia, velocity[..., 3:])).sum(axis=1)
    return energy, linear, angular


def _drift(robot, floating, dt, steps):
    model, params = _free_model(robot, floating)
    state = _random_state(robot, model, np.random.default_rng(0))
    energy0, linear0, angular0 = _energy_and_momentum(model, state)
    for _ in range(steps):
        state = numpy_engine.step(model, params, state, np.zeros((len(state.q), robot.num_joints)), dt)
    energy1, linear1, angular1 = _energy_and_momentum(model, state)
    assert not state.diverged.any()
    return (np.abs(energy1 / energy0 - 1).max(), np.abs(linear1 - linear0).max() / np.abs(linear0).max(),
            np.abs(angular1 - angular0).max() / np.abs(angular0).max())


@pytest.mark.parametrize("floating", [False, True])
def test_kinetic_energy_drifts_less_than_one_percent_over_1000_steps(robot, floating):
    energy_drift, _, _ = _drift(robot, floating, 1 / 500, 1000)
    assert energy_drift < 0.01


def test_floating_robot_in_zero_gravity_conserves_momentum(robot):
    """No external force or moment acts, so linear and angular momentum are constant. Semi-implicit
    Euler keeps them up to its O(dt) global error: below 1% over 1,000 steps of 2 ms with joints
    spinning at 0.5 rad/s (seen: 0.4% and 0.5%), and halving dt roughly halves the drift, which is
    what a discretisation error does and a missing force term would not."""
    _, linear, angular = _drift(robot, True, 1 / 500, 1000)
    assert linear < 0.01 and angular < 0.01
    _, linear_fine, angular_fine = _drift(robot, True, 1 / 1000, 2000)
    assert linear_fine < 0.65 * linear and angular_fine < 0.65 * angular


def test_floating_base_matches_pybullet_kinematics_mass_and_gravity(robot):
    """Floating base against pybullet: link poses, kinetic energy from pybullet's own link
    velocities (which checks the whole 49x49 mass matrix as a quadratic form and the Jacobians),
    and the gravity-only inverse dynamics (calculateInverseDynamics with flags=1)."""
    model = numpy_model.load_model(robot, fixed_base=False)
    client = pybullet.connect(pybullet.DIRECT)
    try:
        pybullet.setGravity(0, 0, -9.81, physicsClientId=client)
        body = pybullet.loadURDF(str(robot.urdf_path), [0, 0, 1], useFixedBase=False,
                                 flags=pybullet.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client)
        infos = [pybullet.getJointInfo(body, j, physicsClientId=client)
                 for j in range(pybullet.getNumJoints(body, physicsClientId=client))]
        joints = {info[1].decode(): info[0] for info in infos}
        links = {info[12].decode(): info[0] for info in infos}
        order = np.array([joints[name] for name in robot.joint_names])
        rng = np.random.default_rng(3)
        for _ in range(20):
            position = rng.normal(0.0, 2.0, 3)
            quat = rng.normal(size=4)
            quat /= np.linalg.norm(quat)
            joint_pos = rng.uniform(robot.joint_lower, robot.joint_upper)
            v = rng.normal(size=model.nv)
            pybullet.resetBasePositionAndOrientation(body, position, quat, physicsClientId=client)
            pybullet.resetBaseVelocity(body, v[:3], v[3:6], physicsClientId=client)
            for j, index in enumerate(order):
                pybullet.resetJointState(body, int(index), joint_pos[j], v[6 + j], physicsClientId=client)
            q = np.concatenate([position, quat, joint_pos])[None]
            poses = numpy_model.forward_kinematics(model, q)[0]
            energy = 0.0
            for name, index in links.items():
                state = pybullet.getLinkState(body, index, computeLinkVelocity=1, computeForwardKinematics=1,
                                              physicsClientId=client)
                assert np.abs(poses[model.link_index(name), :3] - state[4]).max() < 1e-5
                mass, _, diagonal = pybullet.getDynamicsInfo(body, index, physicsClientId=client)[:3]
                rotation = np.array(pybullet.getMatrixFromQuaternion(state[1])).reshape(3, 3)
                omega = np.array(state[7])
                energy += 0.5 * mass * np.dot(state[6], state[6]) + 0.5 * omega @ rotation @ np.diag(diagonal) @ rotation.T @ omega
            mass, _, diagonal = pybullet.getDynamicsInfo(body, -1, physicsClientId=client)[:3]
            rotation = np.array(pybullet.getMatrixFromQuaternion(quat)).reshape(3, 3)
            energy += 0.5 * mass * v[:3] @ v[:3] + 0.5 * v[3:6] @ rotation @ np.diag(diagonal) @ rotation.T @ v[3:6]
            ours = 0.5 * v @ numpy_model.mass_matrix(model, q)[0] @ v
            assert ours == pytest.approx(energy, rel=1e-9)
            urdf_q = np.zeros(robot.num_joints)
            urdf_q[order] = joint_pos
            reference = np.array(pybullet.calculateInverseDynamics(
                body, list(position) + list(quat) + urdf_q.tolist(), [0.0] * model.nv, [0.0] * model.nv, flags=1,
                physicsClientId=client))
            bias = numpy_model.bias_forces(model, q, np.zeros((1, model.nv)))[0]
            np.testing.assert_allclose(bias[:6], reference[:6], atol=1e-6 * np.abs(reference).max())
            np.testing.assert_allclose(bias[6:], reference[7:][order], atol=1e-6 * np.abs(reference).max())
    finally:
        pybullet.disconnect(client)


def test_partial_reset_and_determinism(robot):
    a, b = (make_engine("numpy", robot, AIR, 3) for _ in range(2))
    start = np.tile(robot.keyframe("arms_ready"), (3, 1))
    targets = start + 0.1
    for engine in (a, b):
        engine.reset(None, EpisodeSetup.per_env(start))
        engine.set_joint_targets(targets)
        for _ in range(5):
            engine.step()
    np.testing.assert_array_equal(a.joint_state()[0], b.joint_state()[0])
    before = a.joint_state()
    a.reset([1], EpisodeSetup.per_env(robot.keyframe("standing")[None]))
    after = a.joint_state()
    for i in (0, 2):
        np.testing.assert_array_equal(after[0][i], before[0][i])
        np.testing.assert_array_equal(after[1][i], before[1][i])
    np.testing.assert_array_equal(after[0][1], robot.keyframe("standing"))


def test_a_diverging_environment_is_flagged_and_never_returns_nan(robot):
    floating = Scene("space", (), (), (0.0, 0.0, 2.0), fixed_base=False)
    engine = make_engine("numpy", robot, floating, 2)
    engine.reset(None, EpisodeSetup.per_env(np.tile(robot.keyframe("arms_ready"), (2, 1))))
    engine.state.v[1, :3] = 1e4  # the base flung far beyond the divergence speed; no joint limit stops it
    engine.step()
    q, v = engine.joint_state()
    assert engine.diverged.tolist() == [False, True]
    assert np.isfinite(q).all() and np.isfinite(v).all() and np.isfinite(engine.state.q).all()
    with pytest.raises(ValueError, match="NaN"):
        engine.reset([0], EpisodeSetup.per_env(np.full((1, robot.num_joints), np.nan)))
    engine.reset([1], EpisodeSetup.per_env(robot.keyframe("arms_ready")[None]))
    assert not engine.diverged.any()


def test_numpy_engine_renders_through_a_pybullet_viewer(robot):
    engine = make_engine("numpy", robot, AIR, 2)
    try:
        engine.reset(None, EpisodeSetup.per_env(np.tile(robot.keyframe("arms_ready"), (2, 1))))
        image = engine.render(1, 64, 48)
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8 and image.std() > 0
    finally:
        engine.close()


def test_ltdl_solve_equals_dense_solve(robot):
    for floating in (False, True):
        model = numpy_model.load_model(robot, fixed_base=not floating)
        state = _random_state(robot, model, np.random.default_rng(5), n=3)
        matrix = numpy_model.mass_matrix(model, state.q)
        rhs = np.random.default_rng(6).normal(size=(3, model.nv))
        x = numpy_model.ltdl_solve(model, numpy_model.ltdl_factor(model, matrix), rhs)
        np.testing.assert_allclose(np.einsum("nij,nj->ni", matrix, x), rhs, atol=1e-8)
