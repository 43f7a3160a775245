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
    value (seen: 3e-16; both are the same arithmetic up to round-off). The spectral radius of A
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


# ---------------------------------------------------------------------------------------------- humanoid43
@pytest.fixture(scope="module")
def robot():
    return robots.load("humanoid43", revision=1)  # the finger gains and inertias the numbers below were measured on


def _humanoid_scene(robot, floating: bool) -> Scene:
    if floating:  # standing on the floor, on its own feet
        return Scene("floor", (), (), (0.0, 0.0, robot.standing_base_height + 0.005), fixed_base=False)
    return Scene("air", (), (), (0.0, 0.0, 2.0), fixed_base=True)  # the feet never touch the floor


def _track(robot, floating: bool, drive: str, physics_dt: float, seconds: float = 2.0) -> np.ndarray:
    """q (control steps, nq) of a 2 s tracking run under gravity: on a fixed base every joint follows a
    sinusoid through its range; standing on a floating base the arms swing 0.3 rad about the keyframe."""
    engine = make_engine("numpy", robot, _humanoid_scene(robot, floating), 1,
                         EngineConfig(physics_dt=physics_dt, drive=drive))
    try:
        start = robot.keyframe("standing" if floating else "arms_ready")[None]
        engine.reset(None, EpisodeSetup.per_env(start))
        arms = robot.joint_indices("arms")
        middle, half = (robot.joint_upper + robot.joint_lower) / 2, (robot.joint_upper - robot.joint_lower) / 2
        path = []
        for k in range(int(round(seconds / engine.config.control_dt))):
            t = k * engine.config.control_dt
            if floating:
                target = start.copy()
                target[:, arms] += 0.3 * np.sin(np.pi * t + np.arange(len(arms)))
            else:
                target = start + (middle + 0.5 * half * np.sin(np.pi * t + np.arange(robot.num_joints)) - start) * min(1.0, t / 0.5)
            engine.set_joint_targets(target)
            engine.step()
            path.append(engine.state.q[0].copy())
        assert not engine.diverged.any()
        return np.array(path)
    finally:
        engine.close()


@pytest.mark.parametrize("floating", [False, True], ids=["fixed_base", "standing"])
def test_implicit_drives_converge_to_the_explicit_law_at_a_ten_times_smaller_step(robot, floating):
    """Both laws are first order (semi-implicit Euler; the implicit drive changes each step by
    O(dt^2) terms such as dt^2 kp v), so each run's global error is C dt + O(dt^2) and the two laws
    converge to the same solution. The reference is the explicit law at dt/10 = 0.2 ms, the
    explicit law pybullet is held to step for step (tests/test_numpy_engine.py).

    The tolerance comes from the run itself: halving the implicit step halves its error, so
    R = max |q(dt) - q(dt/2)| estimates half of the implicit run's error at dt (Richardson), 2 R.
    The reference's own error is C_ref dt / 10, at most R while C_ref <= 5 C (measured: the explicit
    law at dt is within 1.6 times the implicit's error). So the joints must lie within 3 R of the
    reference over the whole run (seen: fixed base 9.2e-3 rad with R = 4.2e-3; standing 2.7e-2 rad
    with R = 1.05e-2, the floor's contacts adding their own O(dt)), and within 0.05 rad in absolute
    terms. The largest errors are the fingers', the lightest and fastest drives (sqrt(kp / I) dt up
    to 0.26)."""
    nb = 7 if floating else 0
    reference = _track(robot, floating, "explicit", DT / 10)[:, nb:]
    implicit = _track(robot, floating, "implicit", DT)[:, nb:]
    halved = _track(robot, floating, "implicit", DT / 2)[:, nb:]
    error = np.abs(implicit - reference).max()
    richardson = np.abs(implicit - halved).max()
    assert error < 3 * richardson, f"implicit at dt is {error:.3g} rad from the reference, Richardson R = {richardson:.3g}"
    assert error < 0.05
    # First order: the halved step's error is about half (seen: 0.55 and 0.61 of it).
    assert np.abs(halved - reference).max() < 0.75 * error


# ---------------------------------------------------------------------------------------------- stiff gains
def _scaled(robot, factor: float, joints=None, kd_factor: float | None = None):
    joints = robot.joint_names if joints is None else joints
    index = robot.joint_indices(list(joints))
    kd_factor = factor if kd_factor is None else kd_factor
    return robots.load("humanoid43", revision=robot.revision,
                       kp={robot.joint_names[i]: factor * robot.kp[i] for i in index},
                       kd={robot.joint_names[i]: kd_factor * robot.kd[i] for i in index})


def test_gain_overrides_of_a_registered_robot(robot):
    stiff = _scaled(robot, 10.0)
    assert np.allclose(stiff.kp, 10 * robot.kp) and np.allclose(stiff.kd, 10 * robot.kd)
    one = robots.load("humanoid43", revision=robot.revision, kp={"left_knee": 1234.0})
    assert one.kp[one.joint_indices(["left_knee"])][0] == 1234.0 and np.array_equal(one.kd, robot.kd)
    with pytest.raises(robots.RobotContractError, match="unknown joints"):
        robots.load("humanoid43", kp={"tail": 1.0})
    with pytest.raises(robots.RobotContractError, match="finite and >= 0"):
        robots.load("humanoid43", kd={"left_knee": -1.0})
    with pytest.raises(robots.RobotContractError, match="only kp= and kd="):
        robots.load("humanoid43", groups={})


def test_single_joint_margins_of_humanoid43(robot):
    """physics/drives.py's bound with each joint's smallest inertia at the standing keyframe: humanoid43's
    own gains were chosen inside the explicit law's (0.65, the ankle roll); ten times them are far
    outside it (6.5); the damping-implicit law holds any common multiple of kp and kd (0.2 at ten times)."""
    stiff = _scaled(robot, 10.0)
    assert 0.5 < drive_margins(robot, "explicit", DT).max() < 0.8
    assert drive_margins(stiff, "explicit", DT).max() > 5.0
    assert drive_margins(stiff, "damping_implicit", DT).max() < 0.5
    assert not drive_margins(stiff, "implicit", DT).any()


def test_ten_times_the_gains_hold_standing_for_ten_seconds_on_the_implicit_law(robot):
    """humanoid43 with ten times its kp and kd everywhere (kd dt / I up to 10, kp dt^2 / I up to 5: a
    vendor's stiffness) stands for 10 s at 500 Hz on the implicit law: nothing diverges, no actuator
    saturates, the pelvis stays up and level and the joints within 0.01 rad of the keyframe (seen:
    3.3e-3 rad, 4e-3 rad tilt). (The damping-implicit law holds these too, as its margin says: 3.3e-3 rad;
    the explicit law does not: next test.)"""
    stiff = _scaled(robot, 10.0)
    engine = make_engine("numpy", stiff, _humanoid_scene(robot, True), 1, EngineConfig(drive="implicit"))
    try:
        standing = robot.keyframe("standing")[None]
        engine.reset(None, EpisodeSetup.per_env(standing))
        worst, saturated = 0.0, 0.0
        for _ in range(int(10.0 / engine.config.control_dt)):
            engine.step()
            worst = max(worst, np.abs(engine.joint_state()[0] - standing).max())
            saturated = max(saturated, engine.saturated_fraction.max())
        pelvis = engine.link_poses([robot.base_link])[0, 0]
        tilt = 2 * np.arccos(np.clip(abs(pelvis[6]), 0, 1))
        assert not engine.diverged.any()
        assert pelvis[2] > robot.standing_base_height - 0.02 and tilt < 0.02
        assert worst < 0.01 and saturated == 0.0
    finally:
        engine.close()


def test_ten_times_the_gains_blow_up_the_explicit_law(robot):
    """The same gains on the explicit law (what pybullet runs): the ankles' kd dt / I = 10 > 2 makes
    each step overshoot tenfold; the env is flagged diverged within 0.4 s (seen: control step 14 with
    the per-contact contact matrix, 16 with the composite one: where a blow-up crosses the bounds
    depends on rounding), its actuators at their limits most of the time (seen: 86% of the substeps
    for the worst)."""
    stiff = _scaled(robot, 10.0)
    engine = make_engine("numpy", stiff, _humanoid_scene(robot, True), 1, EngineConfig(drive="explicit"))
    try:
        engine.reset(None, EpisodeSetup.per_env(robot.keyframe("standing")[None]))
        saturated = []
        for _ in range(50):
            engine.step()
            saturated.append(engine.saturated_fraction[0])
            if engine.diverged.any():
                break
        assert engine.diverged.all() and len(saturated) <= 20
        assert np.mean(saturated, axis=0).max() > 0.5
    finally:
        engine.close()


def test_stiff_fingers_chatter_silently_on_the_damping_implicit_law_and_settle_on_the_implicit(robot):
    """Real fingers are stiff position servos: kp 50 N m/rad (100 times humanoid43's) with its small kd
    gives the thumb kp dt^2 / I = 6.7 > 4 + 2 kd dt / I, past the damping-implicit law's bound (margin
    1.5). Closing all fingers to 0.5 rad on a fixed base for 1 s, that law and the explicit one never
    settle: the fingers bang between their torque limits (seen: 96% of the substeps, 0.5 rad from the
    target, 290 rad/s) and the env is never flagged diverged, only info's saturated fraction shows it.
    The implicit law settles (seen: 2e-4 rad, saturated 2% of the time, only while closing)."""
    fingers = _scaled(robot, 100.0, robot.groups["hands"], kd_factor=1.0)
    assert drive_margins(fingers, "damping_implicit", DT).max() > 1.0
    hands = robot.joint_indices("hands")
    results = {}
    for drive in DRIVES:
        engine = make_engine("numpy", fingers, _humanoid_scene(robot, False), 1, EngineConfig(drive=drive))
        try:
            start = robot.keyframe("arms_ready")[None]
            engine.reset(None, EpisodeSetup.per_env(start))
            target = start.copy()
            target[:, hands] = 0.5
            engine.set_joint_targets(target)
            saturated = []
            for _ in range(50):
                engine.step()
                saturated.append(engine.saturated_fraction[0])
            results[drive] = (np.abs(engine.joint_state()[0][:, hands] - 0.5).max(), np.mean(saturated, axis=0).max())
            assert not engine.diverged.any()
        finally:
            engine.close()
    for drive in ("explicit", "damping_implicit"):
        error, saturated = results[drive]
        assert error > 0.1 and saturated > 0.8, (drive, results[drive])
    error, saturated = results["implicit"]
    assert error < 1e-3 and saturated < 0.1, results["implicit"]


def test_pybullet_refuses_gains_its_explicit_law_cannot_integrate(robot):
    """pybullet runs the explicit law in torque mode. Unchecked, ten times humanoid43's gains make it
    chatter at the torque limits (seen: the worst actuator 98% of the substeps) while the robot falls
    (seen: the pelvis at 0.10 m after 2 s), and no divergence bound ever trips. So the engine refuses
    such gains, naming the joints and the way out; drive='implicit' is refused too."""
    from training_ground.physics.pybullet_engine import PybulletEngine

    stiff = _scaled(robot, 10.0)
    scene = _humanoid_scene(robot, True)
    with pytest.raises(InputError, match=r"unstable under the explicit drive law.*ankle_roll.*drive='implicit'"):
        make_engine("pybullet", stiff, scene, 1)
    with pytest.raises(InputError, match="needs backend='numpy'"):
        make_engine("pybullet", robot, scene, 1, EngineConfig(drive="implicit"))
    engine = PybulletEngine(stiff, scene, 1, check_drives=False)
    try:
        engine.reset(None, EpisodeSetup.per_env(robot.keyframe("standing")[None]))
        saturated = []
        for _ in range(100):
            engine.step()
            saturated.append(engine.saturated_fraction[0])
        assert not engine.diverged.any()
        assert engine.link_poses([robot.base_link])[0, 0, 2] < 0.5
        assert np.mean(saturated, axis=0).max() > 0.9
    finally:
        engine.close()


# ---------------------------------------------------------------------------------------------- options and info
def test_the_drive_option_is_checked_and_reaches_the_engine():
    import gymnasium

    import training_ground.envs  # noqa: F401  (registers the ids)
    from training_ground.envs.config import ConfigError, make_config
    from training_ground.envs.bread import BreadPickPlaceConfig

    assert EngineConfig().drive == "damping_implicit"  # the law every stored dataset was recorded with
    with pytest.raises(InputError, match="unknown drive 'stiff'.*'explicit', 'damping_implicit', 'implicit'"):
        EngineConfig(drive="stiff")
    with pytest.raises(ConfigError, match="drive must be one of"):
        make_config(BreadPickPlaceConfig, drive="stiff")
    # A dataset's stored config from before the option has no "drive": it gets today's law.
    stored = {key: value for key, value in dataclasses.asdict(BreadPickPlaceConfig()).items() if key != "drive"}
    assert make_config(BreadPickPlaceConfig, stored).drive == "damping_implicit"
    # ... and a collection into such a file still resumes: the comparison fills the missing field the same way.
    from training_ground.data.dataset import _stored_config

    assert _stored_config("TrainingGround/BreadPickPlace-v0", stored)["drive"] == "damping_implicit"
    assert _stored_config("TrainingGround/BreadPickPlace-v0", {**stored, "gone": 1}) == {**stored, "gone": 1}
    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", backend="numpy", drive="implicit")
    try:
        assert env.unwrapped.task.engine.config.drive == "implicit"
    finally:
        env.close()
    with pytest.raises(InputError, match="needs backend='numpy'"):
        gymnasium.make("TrainingGround/BreadPickPlace-v0", backend="pybullet", config={"drive": "implicit"})


@pytest.mark.parametrize("backend", ["numpy", "pybullet"])
def test_info_reports_an_actuator_pinned_at_its_torque_limit(backend):
    """info["saturated_fraction"]: the worst actuator's share of the episode's physics steps at its torque
    limit. Holding still it is 0; with a 3 kN push down on the right palm the arm is overpowered and
    pinned at its limits (seen: 0.96 numpy, 0.81 pybullet over 20 steps) while the env runs on unflagged.
    A reset starts the count again; the batched env reports it per env. Revision 1: revision 3's stiffer thumb
    is at its limit for a few substeps while the hand closes to the zero command's half-closed pose."""
    import gymnasium

    import training_ground.envs  # noqa: F401

    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", backend=backend, robot_revision=1)
    try:
        zero = np.zeros(env.action_space.shape, np.float32)
        env.reset(seed=0)
        env.unwrapped.task.engine.apply_force("right_palm", np.array([[0.0, 0.0, -3000.0]]))
        for _ in range(20):
            _, _, _, _, info = env.step(zero)
        assert info["saturated_fraction"] > 0.7 and not info["diverged"]
        env.reset(seed=0)  # clears the push and the count
        for _ in range(5):
            _, _, _, _, info = env.step(zero)
        assert info["saturated_fraction"] == 0.0
    finally:
        env.close()
    if backend == "numpy":
        vector = gymnasium.make_vec("TrainingGround/BreadPickPlace-v0", num_envs=2, vectorization_mode="vector_entry_point",
                                    backend="numpy", robot_revision=1)
        try:
            vector.reset(seed=0)
            vector.unwrapped.task.engine.apply_force("right_palm", np.array([[0.0, 0.0, -3000.0], [0.0, 0.0, 0.0]]))
            for _ in range(10):
                _, _, _, _, info = vector.step(np.zeros(vector.action_space.shape, np.float32))
            assert info["saturated_fraction"].shape == (2,) and info["_saturated_fraction"].all()
            assert info["saturated_fraction"][0] > 0.7 and info["saturated_fraction"][1] == 0.0
        finally:
            vector.close()
