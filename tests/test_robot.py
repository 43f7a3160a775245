"""The humanoid43 robot contract: joints, groups, URDF, mass, inertia, limits, gains; broken URDFs refused."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import gymnasium
import numpy as np
import pybullet
import pytest

from training_ground import robots
from training_ground.robots import GROUP_SIZES, RobotContractError, humanoid43, humanoid43_urdf

PHYSICS_DT = 1.0 / 500.0
PRIMITIVES = {"box", "sphere", "cylinder", "capsule"}


@pytest.fixture(scope="module")
def urdf_root(robot):
    return ET.parse(robot.urdf_path).getroot()


@pytest.fixture(scope="module")
def fixed_base_client(robot):
    """A DIRECT client with the robot on a fixed base at its zero-posture pelvis height (1.03 m)."""
    client = pybullet.connect(pybullet.DIRECT)
    try:
        body = pybullet.loadURDF(str(robot.urdf_path), [0, 0, 1.03], useFixedBase=True,
                                 flags=pybullet.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client)
        yield client, body
    finally:
        pybullet.disconnect(client)


# --------------------------------------------------------------------------- joints and groups
def test_43_joints_in_five_groups(robot):
    assert robot.num_joints == 43 == robots.NUM_ACTUATED
    assert {g: len(j) for g, j in robot.groups.items()} == {"legs": 12, "waist": 3, "head": 2, "arms": 14, "hands": 12}
    assert GROUP_SIZES == {"legs": 12, "waist": 3, "head": 2, "arms": 14, "hands": 12}
    grouped = [name for names in robot.groups.values() for name in names]
    assert sorted(grouped) == sorted(robot.joint_names)
    assert len(set(grouped)) == len(grouped) == 43
    # Joint order is the groups' order.
    assert tuple(grouped) == robot.joint_names


def test_joint_names(robot):
    names = set(robot.joint_names)
    for side in ("left", "right"):
        for joint in ("hip_yaw", "hip_roll", "hip_pitch", "knee", "ankle_pitch", "ankle_roll"):
            assert f"{side}_{joint}" in robot.groups["legs"]
        for joint in ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist_yaw", "wrist_pitch",
                      "wrist_roll"):
            assert f"{side}_{joint}" in robot.groups["arms"]
        for joint in ("thumb_rotation", "thumb_flexion", "index", "middle", "ring", "little"):
            assert f"{side}_{joint}" in robot.groups["hands"]
    assert set(robot.groups["waist"]) == {"waist_yaw", "waist_roll", "waist_pitch"}
    assert set(robot.groups["head"]) == {"neck_yaw", "neck_pitch"}
    for name in ("left_hip_yaw", "right_wrist_roll", "left_thumb_rotation"):
        assert name in names
    assert robot.joint_indices(["right_wrist_roll"]).tolist() == [robot.joint_names.index("right_wrist_roll")]
    with pytest.raises(KeyError):
        robot.joint_indices(["no_such_joint"])


def test_array_shapes(robot):
    for array in (robot.joint_lower, robot.joint_upper, robot.velocity_limit, robot.torque_limit, robot.kp, robot.kd):
        assert array.shape == (43,)
        assert np.all(np.isfinite(array))
    assert np.all(robot.joint_lower < robot.joint_upper)
    assert np.all(robot.kp > 0) and np.all(robot.kd > 0)
    assert np.all(robot.torque_limit > 0) and np.all(robot.velocity_limit > 0)


def test_hands(robot):
    assert list(robot.hands) == ["left", "right"]
    for side, hand in robot.hands.items():
        assert len(hand.arm_joints) == 7 and set(hand.arm_joints) <= set(robot.groups["arms"])
        assert len(hand.finger_joints) == 6 and set(hand.finger_joints) <= set(robot.groups["hands"])
        assert all(j.startswith(side + "_") for j in hand.arm_joints + hand.finger_joints)
        idx = robot.joint_indices(hand.finger_joints)
        for values in (hand.finger_open, hand.finger_closed):
            assert np.all(np.asarray(values) >= robot.joint_lower[idx])
            assert np.all(np.asarray(values) <= robot.joint_upper[idx])


def test_unknown_robot_name():
    with pytest.raises(KeyError, match="unknown robot"):
        robots.load("not_a_robot")


# --------------------------------------------------------------------------- the URDF
def test_checked_in_urdf_matches_generator(robot):
    assert robot.urdf_path.read_text() == humanoid43_urdf.build_urdf()
    assert humanoid43_urdf.URDF_PATH.read_text() == humanoid43_urdf.build_urdf(1)  # humanoid43.urdf is revision 1
    for revision, path in humanoid43_urdf.URDF_PATHS.items():
        assert path.read_text() == humanoid43_urdf.build_urdf(revision), revision
        assert robots.load("humanoid43", revision=revision).urdf_path.name == path.name


def test_each_revision_is_kept_and_a_name_alone_loads_the_default():
    """Revision 1 is the URDF every dataset before revision 2 ran (humanoid43.urdf, unchanged since e743e11);
    the revisions differ in the hands only (revision 2 the thumb, revision 3 the thumb and the fingers' reach), with
    the same joints. The default is 3, the pinch hand, since the experts hold by friction with it (README)."""
    first = robots.load("humanoid43", revision=1)
    default = robots.load("humanoid43").revision
    assert default == robots.default_revision("humanoid43") == humanoid43.DEFAULT_REVISION == 3
    assert humanoid43.REVISIONS == (1, 2, 3) and first.revision == 1
    hand_joints = set(first.groups["hands"])
    for revision, changed in ((2, {j for j in hand_joints if "thumb" in j}), (3, hand_joints)):
        later = robots.load("humanoid43", revision=revision)
        assert later.revision == revision
        assert later.joint_names == first.joint_names and later.groups == first.groups
        assert later.hands["right"].finger_closed != first.hands["right"].finger_closed
        limits = np.flatnonzero(later.joint_upper != first.joint_upper)
        assert {later.joint_names[i] for i in limits} <= changed
    with pytest.raises(KeyError, match="revisions \\[1, 2, 3\\], not 4"):
        robots.load("humanoid43", revision=4)
    with pytest.raises(KeyError, match="revision 1 only"):
        robots.load("compact43", revision=2)


def test_urdf_actuated_joints_match_description(robot, urdf_root):
    actuated = {j.get("name"): j for j in urdf_root.findall("joint") if j.get("type") != "fixed"}
    assert set(actuated) == set(robot.joint_names)
    assert all(j.get("type") == "revolute" for j in actuated.values())
    for i, name in enumerate(robot.joint_names):
        limit = actuated[name].find("limit")
        assert float(limit.get("lower")) == pytest.approx(robot.joint_lower[i])
        assert float(limit.get("upper")) == pytest.approx(robot.joint_upper[i])
        assert float(limit.get("effort")) == pytest.approx(robot.torque_limit[i])


def test_total_mass(urdf_root):
    """A full-size humanoid of about 80 kg (humanoid43.py's docstring and DESIGN)."""
    masses = [float(link.find("inertial/mass").get("value")) for link in urdf_root.findall("link")]
    assert all(m > 0 for m in masses)
    assert 75.0 <= sum(masses) <= 85.0


def test_height(robot, fixed_base_client):
    client, body = fixed_base_client  # zero posture: the URDF's default joint positions
    links = range(-1, pybullet.getNumJoints(body, physicsClientId=client))
    tops = [pybullet.getAABB(body, link, physicsClientId=client)[1][2] for link in links]
    bottoms = [pybullet.getAABB(body, link, physicsClientId=client)[0][2] for link in links]
    assert 1.75 <= max(tops) <= 1.95
    # Pelvis at 1.03 m puts the soles on the floor.
    assert min(bottoms) == pytest.approx(0.0, abs=0.02)


def _inertia_matrix(element) -> np.ndarray:
    a = {k: float(element.get(k)) for k in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")}
    return np.array([[a["ixx"], a["ixy"], a["ixz"]], [a["ixy"], a["iyy"], a["iyz"]], [a["ixz"], a["iyz"], a["izz"]]])


def test_inertia_physical(urdf_root):
    for link in urdf_root.findall("link"):
        inertia = _inertia_matrix(link.find("inertial/inertia"))
        eig = np.sort(np.linalg.eigvalsh(inertia))
        assert eig[0] > 0, f"{link.get('name')}: inertia not positive definite ({eig})"
        assert eig[0] + eig[1] >= eig[2] * (1 - 1e-6), f"{link.get('name')}: triangle inequality fails ({eig})"


def test_inertia_matches_shapes_and_rotors(urdf_root):
    links, _ = humanoid43_urdf.robot_tree()
    by_name = {link.get("name"): link for link in urdf_root.findall("link")}
    assert set(by_name) == {link.name for link in links}
    rotors = 0
    for link in links:
        expected = np.array(humanoid43_urdf.link_inertia(link))
        written = _inertia_matrix(by_name[link.name].find("inertial/inertia"))
        # The URDF writes 6 significant digits.
        np.testing.assert_allclose(written, expected, rtol=1e-5, atol=1e-9, err_msg=link.name)
        assert float(by_name[link.name].find("inertial/mass").get("value")) == pytest.approx(link.mass, rel=1e-6)
        # The rotor inertia is added isotropically on top of the solid shape's own inertia.
        shape_only = np.array(humanoid43_urdf._inertia_tensor(link.shape, link.mass))
        np.testing.assert_allclose(expected - shape_only, link.rotor_inertia * np.eye(3), atol=1e-12)
        rotors += link.rotor_inertia > 0
    assert rotors > 0


def test_only_primitive_collision_geometry(urdf_root):
    for link in urdf_root.findall("link"):
        for kind in ("collision", "visual"):
            for element in link.findall(kind):
                shapes = [child.tag for child in element.find("geometry")]
                assert len(shapes) == 1 and shapes[0] in PRIMITIVES, (link.get("name"), shapes)
    assert urdf_root.find(".//mesh") is None


def test_torque_limits(robot):
    legs = [i for i, n in enumerate(robot.joint_names) if n.endswith(("hip_yaw", "hip_roll", "hip_pitch", "knee"))]
    assert len(legs) == 8
    assert 300.0 <= robot.torque_limit[legs].max() <= 450.0
    fingers = robot.joint_indices("hands")
    assert robot.torque_limit[fingers].max() <= 5.0


@pytest.mark.parametrize("name", ["standing", "arms_ready"])
def test_keyframes_within_limits(robot, name):
    q = robot.keyframe(name)
    assert q.shape == (43,)
    assert np.all(q >= robot.joint_lower) and np.all(q <= robot.joint_upper)
    # The raw declared values are already inside the limits (not just clipped into them).
    declared = humanoid43.KEYFRAMES[name]
    for joint, value in declared.items():
        i = robot.joint_names.index(joint)
        assert robot.joint_lower[i] <= value <= robot.joint_upper[i], joint
    # keyframe() returns a copy.
    q[:] = 99.0
    assert np.all(robot.keyframe(name) != 99.0)
    with pytest.raises(KeyError):
        robot.keyframe("no_such_keyframe")


def test_gains_stable_for_explicit_pd(robot, fixed_base_client):
    """The PD gains are integrable by the explicit actuator law at physics_dt = 1/500 s.

    The engines evaluate tau = kp (q* - q) - kd qd once per physics step and hold it over the
    step (explicit in the gains). Linearised, the arm obeys M qdd = -Kp q - Kd qd. For the
    damping alone, explicit Euler on qd' = -M^-1 Kd qd is stable only if
    lambda_max(M^-1 Kd) * dt < 2; for the stiffness, the undamped oscillator of frequency
    omega = sqrt(lambda_max(M^-1 Kp)) needs omega * dt < 2 for a symplectic step. A light
    link between co-located joints (too little inertia for its gains) breaks this and the
    simulation blows up, so the bound is checked at 100 random configurations, with M from
    pybullet's own mass matrix of the URDF (fixed base, inertia read from the file).
    """
    client, body = fixed_base_client
    count = pybullet.getNumJoints(body, physicsClientId=client)
    infos = [pybullet.getJointInfo(body, j, physicsClientId=client) for j in range(count)]
    movable = [j for j, info in enumerate(infos) if info[2] != pybullet.JOINT_FIXED]
    index = {infos[j][1].decode(): movable.index(j) for j in movable}
    order = np.array([index[name] for name in robot.joint_names])
    kp, kd = np.diag(robot.kp), np.diag(robot.kd)
    rng = np.random.default_rng(1234)
    worst_damping = worst_stiffness = 0.0
    for _ in range(100):
        q = rng.uniform(robot.joint_lower, robot.joint_upper)
        q_movable = np.zeros(len(movable))
        q_movable[order] = q
        mass = np.array(pybullet.calculateMassMatrix(body, q_movable.tolist(), physicsClientId=client))
        mass = mass[np.ix_(order, order)]
        assert np.allclose(mass, mass.T, atol=1e-9)
        damping = np.linalg.eigvals(np.linalg.solve(mass, kd)).real.max() * PHYSICS_DT
        stiffness = np.sqrt(np.linalg.eigvals(np.linalg.solve(mass, kp)).real.max()) * PHYSICS_DT
        worst_damping, worst_stiffness = max(worst_damping, damping), max(worst_stiffness, stiffness)
        assert damping < 2.0, f"kd too stiff for dt at q={q.round(3).tolist()}: {damping:.3f}"
        assert stiffness < 2.0, f"kp too stiff for dt at q={q.round(3).tolist()}: {stiffness:.3f}"


# --------------------------------------------------------------------------- broken URDFs
def _load_modified(tmp_path, text: str, groups=None, **kwargs):
    path = tmp_path / "modified.urdf"
    path.write_text(text)
    return robots.load(str(path), groups=groups or dict(humanoid43.GROUPS), kp=dict(humanoid43.KP),
                       kd=dict(humanoid43.KD), **kwargs)


def test_valid_copy_loads(tmp_path):
    robot = robots.load("humanoid43", revision=1)  # the revision whose gains humanoid43.KP and KD hold
    copy = _load_modified(tmp_path, robot.urdf_path.read_text())
    assert copy.name == "modified"  # the file's stem
    assert copy.joint_names == robot.joint_names
    np.testing.assert_array_equal(copy.joint_lower, robot.joint_lower)
    np.testing.assert_array_equal(copy.kp, robot.kp)


def test_revolute_turned_fixed_is_refused(robot, tmp_path):
    text = robot.urdf_path.read_text()
    old = '<joint name="right_elbow" type="revolute">'
    assert old in text
    with pytest.raises(RobotContractError) as error:
        _load_modified(tmp_path, text.replace(old, '<joint name="right_elbow" type="fixed">'))
    message = str(error.value)
    assert "right_elbow" in message
    assert "42" in message


def test_extra_revolute_joint_is_refused(robot, tmp_path):
    extra = """
  <link name="extra_link">
    <inertial><origin xyz="0 0 0" rpy="0 0 0"/><mass value="0.1"/>
      <inertia ixx="1e-4" ixy="0" ixz="0" iyy="1e-4" iyz="0" izz="1e-4"/></inertial>
  </link>
  <joint name="extra_tail_joint" type="revolute">
    <parent link="pelvis"/><child link="extra_link"/>
    <origin xyz="-0.1 0 0" rpy="0 0 0"/><axis xyz="0 1 0"/>
    <limit lower="-1" upper="1" effort="10" velocity="5"/>
  </joint>
</robot>"""
    text = robot.urdf_path.read_text().replace("</robot>", extra)
    with pytest.raises(RobotContractError) as error:
        _load_modified(tmp_path, text)
    assert "extra_tail_joint" in str(error.value)
    assert "44" in str(error.value)


def test_continuous_joint_is_refused(robot, tmp_path):
    text = robot.urdf_path.read_text().replace('<joint name="neck_yaw" type="revolute">',
                                                '<joint name="neck_yaw" type="continuous">')
    with pytest.raises(RobotContractError, match="neck_yaw"):
        _load_modified(tmp_path, text)


def test_group_missing_a_joint_is_refused(robot, tmp_path):
    groups = dict(humanoid43.GROUPS)
    groups["hands"] = tuple(j for j in groups["hands"] if j != "left_ring")
    with pytest.raises(RobotContractError) as error:
        _load_modified(tmp_path, robot.urdf_path.read_text(), groups=groups)
    assert "left_ring" in str(error.value)


def test_joint_in_two_groups_is_refused(robot, tmp_path):
    groups = dict(humanoid43.GROUPS)
    # Keep sizes right: swap the head's neck_pitch for waist_pitch (now in waist and head).
    groups["head"] = ("neck_yaw", "waist_pitch")
    with pytest.raises(RobotContractError) as error:
        _load_modified(tmp_path, robot.urdf_path.read_text(), groups=groups)
    message = str(error.value)
    assert "waist_pitch" in message
    assert "neck_pitch" in message  # now in no group


def test_unknown_joint_in_group_is_refused(robot, tmp_path):
    groups = dict(humanoid43.GROUPS)
    groups["head"] = ("neck_yaw", "neck_tilt")
    with pytest.raises(RobotContractError, match="neck_tilt"):
        _load_modified(tmp_path, robot.urdf_path.read_text(), groups=groups)


def test_missing_gain_is_refused(robot, tmp_path):
    path = tmp_path / "copy.urdf"
    path.write_text(robot.urdf_path.read_text())
    kp = dict(humanoid43.KP)
    del kp["left_knee"]
    with pytest.raises(RobotContractError, match="left_knee"):
        robots.load(str(path), groups=dict(humanoid43.GROUPS), kp=kp, kd=dict(humanoid43.KD))


def test_urdf_without_groups_is_refused(robot):
    with pytest.raises(RobotContractError, match="groups"):
        robots.load(str(robot.urdf_path), kp=dict(humanoid43.KP))


def test_non_urdf_xml_is_refused(tmp_path):
    with pytest.raises(RobotContractError, match="not a URDF"):
        _load_modified(tmp_path, '<?xml version="1.0"?>\n<sdf version="1.6"><model name="x"/></sdf>\n')


@pytest.mark.parametrize("content", ["this is not xml at all <<<", "", "\x00\x01\x02garbage"])
def test_garbage_file_is_refused(tmp_path, content):
    with pytest.raises(RobotContractError):
        _load_modified(tmp_path, content)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(RobotContractError):
        robots.load(str(tmp_path / "nope.urdf"), groups=dict(humanoid43.GROUPS), kp=dict(humanoid43.KP),
                    kd=dict(humanoid43.KD))


def test_contract_error_is_a_value_error():
    assert issubclass(RobotContractError, ValueError)
    assert re.search("43", robots.description.check_contract.__doc__)


def test_a_dataset_records_the_robot_revision_it_ran_and_old_ones_read_as_revision_1():
    """The default revision is recorded by number, so a dataset replays with the hands it ran whatever the default
    becomes; a dataset from before the field existed ran revision 1."""
    from training_ground.data.dataset import make_env_args
    from training_ground.envs import make_config, task_spec
    from training_ground.envs.config import with_stored_defaults

    config_class = task_spec("bread").config_class
    recorded = lambda **kw: make_env_args("x", "numpy", "ee_delta", "dense",  # noqa: E731
                                          make_config(config_class, **kw))["env_kwargs"]["config"]["robot_revision"]
    assert recorded() == robots.default_revision("humanoid43") == 3
    assert recorded(robot_revision=2) == 2 and recorded(robot_revision=1) == 1 and recorded(robot="compact43") == 1
    assert with_stored_defaults({"robot": "humanoid43"})["robot_revision"] == 1
    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", backend="numpy", robot_revision=2)
    try:
        assert env.unwrapped.task.robot.urdf_path.name == "humanoid43_r2.urdf"
    finally:
        env.close()
