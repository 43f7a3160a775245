"""The PD drive laws of the numpy engine (EngineConfig.drive) held to references.

pybullet cannot run a drive implicit in stiffness in torque mode, so the implicit law is held to
(a) the explicit law at a ten times smaller step, (b) the closed-form discrete solution of one
joint, (c) MuJoCo's ``implicitfast`` integrator on a small chain; then stiff gains on humanoid43,
and the saturation that ``info["saturated_fraction"]`` reports.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from training_ground import robots
from training_ground.errors import InputError
from training_ground.physics import DRIVES, EngineConfig, make_engine
from training_ground.physics import numpy_engine
from training_ground.physics.drives import drive_margins
from training_ground.physics.model import load_model
from training_ground.physics.scene import EpisodeSetup, Scene
from training_ground.robots import RobotDescription

DT = 1.0 / 500.0


# ---------------------------------------------------------------------------------------------- small chains
def _chain(tmp_path, links, name="chain"):
    """A fixed-base chain from (joint offset xyz, axis, mass, com, diagonal inertia) per link: the URDF,
    the same model in MJCF, and a RobotDescription that load_model reads (no 43-DoF contract here)."""
    urdf = ['<robot name="chain"><link name="base"><inertial><mass value="1"/>'
            '<inertia ixx="1" ixy="0" ixz="0" iyy="1" iyz="0" izz="1"/></inertial></link>']
    mjcf_open, mjcf_close = [], []
    parent = "base"
    for k, (offset, axis, mass, com, inertia) in enumerate(links):
        xyz, ax, c = (" ".join(f"{v:.17g}" for v in values) for values in (offset, axis, com))
        urdf.append(f'<link name="link{k}"><inertial><origin xyz="{c}"/><mass value="{mass!r}"/>'
                    f'<inertia ixx="{inertia[0]!r}" ixy="0" ixz="0" iyy="{inertia[1]!r}" iyz="0" izz="{inertia[2]!r}"/>'
                    f'</inertial></link>')
        urdf.append(f'<joint name="joint{k}" type="revolute"><parent link="{parent}"/><child link="link{k}"/>'
                    f'<origin xyz="{xyz}"/><axis xyz="{ax}"/><limit lower="-1e30" upper="1e30" effort="1e9" velocity="1e9"/></joint>')
        mjcf_open.append(f'<body name="link{k}" pos="{xyz}"><joint name="joint{k}" type="hinge" axis="{ax}"/>'
                         f'<inertial pos="{c}" mass="{mass!r}" diaginertia="{" ".join(repr(float(i)) for i in inertia)}"/>')
        mjcf_close.append("</body>")
        parent = f"link{k}"
    urdf.append("</robot>")
    path = tmp_path / f"{name}.urdf"
    path.write_text("\n".join(urdf))
    n = len(links)
    robot = RobotDescription(
        name=name, urdf_path=path, joint_names=tuple(f"joint{k}" for k in range(n)), groups={},
        joint_lower=np.full(n, -1e30), joint_upper=np.full(n, 1e30), velocity_limit=np.full(n, 1e9),
        torque_limit=np.full(n, 1e9), kp=np.zeros(n), kd=np.zeros(n), keyframes={"home": np.zeros(n)},
        home_keyframe="home")
    return robot, "".join(mjcf_open) + "".join(reversed(mjcf_close))


def _params(kp, kd, limit=np.inf):
    kp, kd = np.atleast_1d(np.asarray(kp, float)), np.atleast_1d(np.asarray(kd, float))
    zeros = np.zeros_like(kp)
    return numpy_engine.ActuatorParams(kp, kd, np.full_like(kp, limit), zeros, zeros)


def _recurrence(drive: str, s: float, c: float) -> np.ndarray:
    """The 2x2 map of (x, e) = (dt v, q - q*) for one step of one joint (physics/drives.py)."""
    if drive == "explicit":
        return np.array([[1.0 - c, -s], [1.0 - c, 1.0 - s]])
    d = 1.0 + c + (s if drive == "implicit" else 0.0)
    return np.array([[1.0 / d, -s / d], [1.0 / d, 1.0 - s / d]])


@pytest.mark.parametrize("drive", DRIVES)
def test_one_joint_follows_the_closed_form_discrete_solution(tmp_path, drive):
    """One revolute joint, its centre of mass on the axis (no gravity torque, no bias forces), inertia I:
    under each law, semi-implicit Euler is the linear map (x, e) -> A (x, e) with s = kp dt^2 / I = 10,
    c = kd dt / I = 1, a stiff drive as a vendor's published gains make it. (x_k, e_k) = A^k (x_0, e_0)
    in closed form, and the engine's trajectory agrees with it to 1e-12 relative to its largest
    value (seen: about 1e-15; both are the same arithmetic up to round-off). The spectral radius of A
    says which laws are stable: the implicit law's is below one for every s, c > 0 and it settles
    (radius 0.29); the explicit (c < 2 but s + 2c = 12 > 4) and the damping-implicit (s = 10 > 4 + 2c)
    laws grow (radius 9 and 3.4), as physics/drives.py's margins say."""
    inertia = 0.03
    robot, _ = _chain(tmp_path, [((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), 1.5, (0.0, 0.0, 0.0), (0.01, 0.02, inertia))])
    s, c = 10.0, 1.0
    kp, kd = s * inertia / DT**2, c * inertia / DT
    model = load_model(robot, fixed_base=True)
    params = _params(kp, kd)
    target = np.array([[0.2]])
    state = numpy_engine.init(model, np.array([[0.3]]), np.array([[-1.0]]))
    A = _recurrence(drive, s, c)
    start = np.array([DT * -1.0, 0.3 - 0.2])
    radius = np.abs(np.linalg.eigvals(A)).max()
    steps = 20  # the explicit law grows ninefold a step
    engine_path, closed_form = [], []
    for k in range(1, steps + 1):
        state = numpy_engine.step(model, params, state, target, DT, divergence_speed=1e30, drive=drive)
        engine_path.append([DT * state.v[0, 0], state.q[0, 0] - 0.2])
        closed_form.append(np.linalg.matrix_power(A, k) @ start)
    engine_path, closed_form = np.array(engine_path), np.array(closed_form)
    error = np.abs(engine_path - closed_form).max() / np.abs(closed_form).max()
    assert error < 1e-12, f"{drive}: {error:.2e} from the closed form"
    margin = drive_margins(dataclasses.replace(robot, kp=np.array([kp]), kd=np.array([kd])), drive, DT)[0]
    if drive == "implicit":
        assert radius < 1.0 and margin == 0.0
        assert abs(engine_path[-1, 1]) < 1e-3 * abs(start[1])
    else:
        assert radius > 1.0 and margin > 1.0
        assert abs(engine_path[-1, 1]) > 1e3 * abs(start[1])



# A three-link arm with its axes crossed (y, x, y) and offset centres of mass: gravity, Coriolis
# and inertial coupling all act.
ARM = [((0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 2.0, (0.05, 0.0, -0.15), (0.02, 0.025, 0.01)),
       ((0.1, 0.0, -0.3), (1.0, 0.0, 0.0), 1.0, (0.0, 0.04, -0.12), (0.01, 0.012, 0.004)),
       ((0.0, 0.05, -0.25), (0.0, 1.0, 0.0), 0.4, (0.03, 0.0, -0.08), (0.002, 0.003, 0.001))]


@pytest.mark.parametrize("drive", ["implicit", "damping_implicit"])
def test_a_chain_matches_mujoco_implicitfast_step_for_step(tmp_path, drive):
    """MuJoCo's ``implicitfast`` integrator takes the derivative of the actuator forces in the
    velocity into the step, (M - dt dF/dv) a = F, then v' = v + dt a, q' = q + dt v': the
    damping-implicit law for a position actuator with gain kp and damping kv. The implicit law is
    that same map with kv = kd + dt kp (physics/numpy_engine.py derives it), so with that kv both
    engines compute one discrete map, and on a three-link arm under gravity tracking moving
    targets for 2 s at 500 Hz they differ only by round-off: positions and dt times velocities
    within 1e-11 rad (seen: 2e-16 implicit, 7e-16 damping-implicit; the two sides evaluate the
    mass matrix, bias forces and solve in different orders, which costs a few ulps a step, and the
    damped tracking loop does not amplify them)."""
    mujoco = pytest.importorskip("mujoco")
    robot, bodies = _chain(tmp_path, ARM)
    kp, kd = np.array([400.0, 150.0, 40.0]), np.array([4.0, 1.5, 0.2])
    kv = kd + DT * kp if drive == "implicit" else kd
    actuators = "".join(f'<general joint="joint{k}" gainprm="{kp[k]:.17g}" biastype="affine" '
                        f'biasprm="0 {-kp[k]:.17g} {-kv[k]:.17g}"/>' for k in range(3))
    xml = (f'<mujoco><option timestep="{DT:.17g}" integrator="implicitfast" gravity="0 0 -9.81">'
           f'<flag contact="disable"/></option><worldbody>{bodies}</worldbody>'
           f'<actuator>{actuators}</actuator></mujoco>')
    mj_model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(mj_model)
    model = load_model(robot, fixed_base=True)
    params = _params(kp, kd)
    start = np.array([0.3, -0.2, 0.5])
    data.qpos[:] = start
    state = numpy_engine.init(model, start[None])
    worst = 0.0
    for k in range(1000):
        target = start + 0.4 * np.sin(2.0 * np.pi * k * DT + np.arange(3))
        data.ctrl[:] = target
        mujoco.mj_step(mj_model, data)
        state = numpy_engine.step(model, params, state, target[None], DT, drive=drive)
        worst = max(worst, np.abs(state.q[0] - data.qpos).max(), DT * np.abs(state.v[0] - data.qvel).max())
    assert worst < 1e-11, f"{drive}: {worst:.2e} rad from MuJoCo"
    assert np.abs(data.qpos - start).max() > 0.1  # the arm did move
