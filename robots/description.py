"""Declarative robot descriptions and the 43-DoF contract.

A robot is data: a URDF plus the names that tasks use (joint groups, hands, keyframes)
and the actuator gains. Limits are read from the URDF so that there is one source of
truth for both engines.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

#: The actuated-joint budget of every robot this project runs, per group.
GROUP_SIZES = {"legs": 12, "waist": 3, "head": 2, "arms": 14, "hands": 12}
NUM_ACTUATED = sum(GROUP_SIZES.values())

ACTUATED_TYPES = ("revolute", "continuous", "prismatic")


class RobotContractError(InputError):
    """A robot description that breaks the 43-DoF contract or names unknown joints."""


@dataclass(frozen=True)
class HandSpec:
    """What a task needs to know about one hand.

    palm_link: link whose frame is the end effector.
    grasp_site: point in the palm frame at the centre of the grasp volume (m).
    arm_joints: the 7 joints the end-effector IK moves, shoulder to wrist.
    finger_joints: the joints the grasp scalar closes.
    finger_open / finger_closed: finger targets (rad) at grasp = -1 and +1.
    finger_close_from: per finger, the fraction of the grasp command's range (0 at -1, 1 at +1) at which it
    leaves ``finger_open``; it reaches ``finger_closed`` at +1. Empty: every finger moves over the whole range.
    A thumb that swings a long way under the palm waits this way while the fingers pre-shape, so that a half-closed
    hand (a cloth pinch) does not drive it into the table.
    """

    palm_link: str
    grasp_site: tuple[float, float, float]
    arm_joints: tuple[str, ...]
    finger_joints: tuple[str, ...]
    finger_open: tuple[float, ...]
    finger_closed: tuple[float, ...]
    finger_close_from: tuple[float, ...] = ()

    def finger_targets(self, grasp: np.ndarray) -> np.ndarray:
        """Finger targets (..., F) for grasp commands (..., 1) in [-1, 1]."""
        fraction = (np.asarray(grasp, dtype=np.float64) + 1.0) / 2.0
        start = np.array(self.finger_close_from or (0.0,) * len(self.finger_joints))
        fraction = np.clip((fraction - start) / (1.0 - start), 0.0, 1.0)
        opened, closed = np.array(self.finger_open), np.array(self.finger_closed)
        return opened + fraction * (closed - opened)

    def grasp_reached(self, positions: np.ndarray, joints=None) -> np.ndarray:
        """The grasp command (...) whose targets the fingers at ``positions`` (..., F) stand at: the inverse of
        :meth:`finger_targets`, averaged over the fingers that move over the whole range (a staged finger says
        nothing while it waits), of those in ``joints`` (a bool mask (F,); default all). Fingers lag their
        targets, and an object stops them: this is where they are."""
        start = np.array(self.finger_close_from or (0.0,) * len(self.finger_joints))
        opened, closed = np.array(self.finger_open), np.array(self.finger_closed)
        whole = (start == 0.0) & (np.ones(len(start), bool) if joints is None else np.asarray(joints, bool))
        fraction = (np.asarray(positions, dtype=np.float64)[..., whole] - opened[whole]) / (closed - opened)[whole]
        return 2.0 * np.clip(fraction, 0.0, 1.0).mean(axis=-1) - 1.0


@dataclass(frozen=True)
class CameraMount:
    """A camera fixed to a link of the robot (a head camera, a wrist camera).

    link: the link it is fixed to. position: the optical centre in the link's frame (m). forward: the optical
    axis, up: the image's up direction, both in the link's frame (need not be unit length, must not be parallel).
    fov: vertical field of view (degrees). near, far: the depth range (m); depth beyond ``far`` reads ``far``.
    """

    link: str
    position: tuple[float, float, float]
    forward: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov: float = 60.0
    near: float = 0.02
    far: float = 4.0

    def problems(self) -> list[str]:
        """What is wrong with this mount, in words (empty: nothing)."""
        found = []
        for label in ("position", "forward", "up"):
            value = getattr(self, label)
            if len(value) != 3 or not np.isfinite(np.asarray(value, float)).all():
                found.append(f"{label} must be three finite numbers, got {value!r}")
        if not found and np.linalg.norm(np.cross(self.forward, self.up)) < 1e-9 * (
                np.linalg.norm(self.forward) * np.linalg.norm(self.up) + 1e-300):
            found.append(f"forward {self.forward} and up {self.up} must not be parallel (or zero)")
        if not 0.0 < self.fov < 180.0:
            found.append(f"fov must be in (0, 180) degrees, got {self.fov}")
        if not 0.0 < self.near < self.far:
            found.append(f"need 0 < near < far, got near={self.near}, far={self.far}")
        return found


@dataclass(frozen=True)
class RobotDescription:
    """A loaded robot. Arrays are ordered like ``joint_names``.

    joint_lower, joint_upper: position limits (rad), shape (43,).
    velocity_limit: (rad/s), shape (43,). torque_limit: (N m), shape (43,).
    kp (N m/rad), kd (N m s/rad): PD gains, shape (43,).
    keyframes: name -> joint positions, shape (43,).
    """

    name: str
    urdf_path: Path
    joint_names: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    joint_lower: np.ndarray
    joint_upper: np.ndarray
    velocity_limit: np.ndarray
    torque_limit: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    keyframes: dict[str, np.ndarray]
    hands: dict[str, HandSpec] = field(default_factory=dict)
    base_link: str = "pelvis"
    #: Height of the base link above the floor when standing at the ``standing`` keyframe, feet flat (m);
    #: None: computed from the feet's collision shapes when a task builds its scene (physics.contacts.standing_height).
    standing_base_height: float | None = 1.0
    #: Links whose collision shapes take part in contacts in the numpy engine (empty: all).
    contact_links: tuple[str, ...] = ()
    #: Foot links (left, right) and the centre of each sole in its foot's frame (m): balance
    #: tasks measure the support from these.
    feet: tuple[str, ...] = ()
    sole_center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: The keyframe the robot holds before any task has reset it: the engines' initial posture.
    home_keyframe: str = "standing"
    #: The link that balance tasks push (empty: the robot names none).
    torso_link: str = ""
    #: Which revision of the named robot this is (robots.load(name, revision=...)): a robot that changes keeps
    #: its earlier revisions, so that a dataset recorded with one replays with it.
    revision: int = 1
    #: Cameras fixed to the robot's links, by name ("head", "left_wrist", ...): what obs_mode="rgb" renders.
    cameras: dict[str, CameraMount] = field(default_factory=dict)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def joint_indices(self, names) -> np.ndarray:
        """Indices into ``joint_names`` of the given joints or group name."""
        if isinstance(names, str):
            names = self.groups[names]
        lookup = {name: i for i, name in enumerate(self.joint_names)}
        missing = [n for n in names if n not in lookup]
        if missing:
            raise KeyError(f"robot {self.name!r} has no joints {missing}")
        return np.array([lookup[n] for n in names], dtype=np.int64)

    @property
    def home_posture(self) -> np.ndarray:
        """Joint positions (43,) of :attr:`home_keyframe`; engines start there, tasks then reset."""
        return self.keyframe(self.home_keyframe)

    def keyframe(self, name: str) -> np.ndarray:
        if name not in self.keyframes:
            raise KeyError(f"robot {self.name!r} has no keyframe {name!r}; it has {sorted(self.keyframes)}")
        return self.keyframes[name].copy()


@dataclass(frozen=True)
class UrdfJoint:
    name: str
    type: str
    parent: str
    child: str
    lower: float
    upper: float
    effort: float
    velocity: float


def _urdf_root(urdf_path: Path) -> ET.Element:
    """A URDF's <robot> element; a file that is not a URDF raises RobotContractError."""
    try:
        root = ET.parse(urdf_path).getroot()
    except (ET.ParseError, OSError) as error:
        raise RobotContractError(f"cannot read URDF {urdf_path}: {error}") from error
    if root.tag != "robot":
        raise RobotContractError(f"{urdf_path} is not a URDF: root element is <{root.tag}>, expected <robot>")
    return root


def read_urdf_joints(urdf_path: Path) -> list[UrdfJoint]:
    """Joints of a URDF in file order. A file that is not a URDF raises RobotContractError."""
    root = _urdf_root(urdf_path)
    joints = []
    for element in root.findall("joint"):
        limit = element.find("limit")
        attrs = limit.attrib if limit is not None else {}
        joints.append(UrdfJoint(
            name=element.get("name", ""),
            type=element.get("type", ""),
            parent=element.find("parent").get("link") if element.find("parent") is not None else "",
            child=element.find("child").get("link") if element.find("child") is not None else "",
            lower=float(attrs.get("lower", -np.pi)),
            upper=float(attrs.get("upper", np.pi)),
            effort=float(attrs.get("effort", 0.0)),
            velocity=float(attrs.get("velocity", 0.0)),
        ))
    return joints


def check_contract(urdf_path: Path, groups: dict[str, tuple[str, ...]], group_sizes: dict[str, int] | None = GROUP_SIZES,
                   budget: int | None = None) -> list[UrdfJoint]:
    """Refuse a robot whose actuated joints are not exactly its budget of revolute joints, each in one group.

    ``group_sizes``: the groups a robot must have and their sizes; the default is humanoid43's
    43-DoF contract (legs 12, waist 3, head 2, arms 14, hands 12). None lets a robot declare its
    own groups of any size (a published body without a neck, or without hands); ``budget``
    (default: the sum of ``group_sizes``, else 43) is then the number of actuated joints it must have.
    Returns the URDF's actuated joints. Every error names the offending joints so the author can
    fix the URDF or the group mapping.
    """
    joints = read_urdf_joints(urdf_path)
    actuated = [j for j in joints if j.type in ACTUATED_TYPES]
    budget = budget if budget is not None else (sum(group_sizes.values()) if group_sizes else NUM_ACTUATED)
    problems = []
    not_revolute = [j.name for j in actuated if j.type != "revolute"]
    if not_revolute:
        problems.append(f"actuated joints must be revolute; not revolute: {not_revolute}")
    if len(actuated) != budget:
        problems.append(f"expected exactly {budget} actuated joints, found {len(actuated)}")
    if group_sizes is not None:
        unknown_groups = sorted(set(groups) - set(group_sizes))
        missing_groups = sorted(set(group_sizes) - set(groups))
        if unknown_groups:
            problems.append(f"unknown groups {unknown_groups}; the groups are {list(group_sizes)}")
        if missing_groups:
            problems.append(f"missing groups {missing_groups}")
        for group, size in group_sizes.items():
            if group in groups and len(groups[group]) != size:
                problems.append(f"group {group!r} must have {size} joints, has {len(groups[group])}: {list(groups[group])}")
    else:
        empty = [group for group, names in groups.items() if not names]
        if not groups or empty:
            problems.append(f"declare at least one group, each with at least one joint (empty: {empty})")
    actuated_names = {j.name for j in actuated}
    seen: dict[str, str] = {}
    duplicated, not_actuated = [], []
    for group, names in groups.items():
        for name in names:
            if name in seen:
                duplicated.append(f"{name} (in {seen[name]!r} and {group!r})")
            seen[name] = group
            if name not in actuated_names:
                not_actuated.append(name)
    if duplicated:
        problems.append(f"joints in more than one group: {duplicated}")
    if not_actuated:
        problems.append(f"grouped joints that are not actuated joints of the URDF: {not_actuated}")
    ungrouped = [j.name for j in actuated if j.name not in seen]
    if ungrouped:
        problems.append(f"actuated joints in no group: {ungrouped}")
    if problems:
        if group_sizes is not None:
            rule = (f"Every robot needs exactly {budget} actuated revolute joints, each in exactly one of "
                    + ", ".join(f"{g} ({n})" for g, n in group_sizes.items()) + ".")
        else:
            rule = (f"This robot declares a budget of {budget} actuated revolute joints, each in exactly one of its "
                    f"groups {list(groups)}.")
        raise RobotContractError(f"robot URDF {urdf_path} breaks its {budget}-DoF contract:\n  - "
                                 + "\n  - ".join(problems) + "\n" + rule)
    return actuated


def urdf_link_names(urdf_path: Path) -> set[str]:
    """The names of a URDF's links."""
    return {element.get("name", "") for element in _urdf_root(urdf_path).findall("link")}


def check_cameras(name: str, cameras: dict[str, CameraMount], links: set[str]) -> None:
    """Refuse cameras on links the URDF lacks, or whose geometry cannot make a picture."""
    problems = []
    for camera, mount in cameras.items():
        if mount.link not in links:
            problems.append(f"camera {camera!r} is fixed to link {mount.link!r}, which the URDF lacks")
        problems.extend(f"camera {camera!r}: {problem}" for problem in mount.problems())
    if problems:
        raise RobotContractError(f"robot {name!r}:\n  - " + "\n  - ".join(problems))


def check_hands(name: str, hands: dict[str, HandSpec], joint_names) -> None:
    """Refuse hands whose joints are unknown or whose open and closed fingers cannot be told apart."""
    problems = []
    for side, hand in hands.items():
        unknown = [j for j in (*hand.arm_joints, *hand.finger_joints) if j not in joint_names]
        if unknown:
            problems.append(f"hand {side!r} names joints the robot does not have: {unknown}")
        if not (len(hand.finger_joints) == len(hand.finger_open) == len(hand.finger_closed)):
            problems.append(f"hand {side!r}: {len(hand.finger_joints)} finger joints but {len(hand.finger_open)} "
                            f"open and {len(hand.finger_closed)} closed positions")
            continue
        if hand.finger_close_from and (len(hand.finger_close_from) != len(hand.finger_joints)
                                       or not all(0.0 <= x < 1.0 for x in hand.finger_close_from)):
            problems.append(f"hand {side!r}: finger_close_from {hand.finger_close_from} must give each of its "
                            f"{len(hand.finger_joints)} fingers a fraction in [0, 1) of the grasp command's range")
        still = [j for j, a, b in zip(hand.finger_joints, hand.finger_open, hand.finger_closed) if a == b]
        if still:
            problems.append(f"hand {side!r}: finger_open equals finger_closed for {still}, so the grasp command "
                            f"cannot move them; give each finger distinct open and closed positions (rad)")
        if len(hand.grasp_site) != 3:
            problems.append(f"hand {side!r}: grasp_site must be a point (x, y, z) in the palm frame")
    if problems:
        raise RobotContractError(f"robot {name!r}:\n  - " + "\n  - ".join(problems))


def describe(
    name: str,
    urdf_path: str | Path,
    groups: dict[str, tuple[str, ...]],
    kp: dict[str, float] | None = None,
    kd: dict[str, float] | None = None,
    keyframes: dict[str, dict[str, float]] | None = None,
    hands: dict[str, HandSpec] | None = None,
    base_link: str = "pelvis",
    standing_base_height: float | None = 1.0,
    contact_links: tuple[str, ...] = (),
    feet: tuple[str, ...] = (),
    sole_center: tuple[float, float, float] = (0.0, 0.0, 0.0),
    group_sizes: dict[str, int] | None = GROUP_SIZES,
    budget: int | None = None,
    torso_link: str = "",
    home_keyframe: str = "standing",
    revision: int = 1,
    cameras: dict[str, CameraMount] | None = None,
) -> RobotDescription:
    """Build a RobotDescription from a URDF and a group mapping, checking the contract.

    Joint order is the groups' order (for the default ``group_sizes``, legs, waist, head, arms,
    hands, so tasks that address joints by group run unchanged on any robot that declares the
    same groups; otherwise the order the groups are declared in). Gains and keyframes map joint
    names to values; joints a keyframe omits sit at 0 clipped to limits. ``group_sizes`` and
    ``budget``: see :func:`check_contract`.
    """
    urdf_path = Path(urdf_path)
    actuated = {j.name: j for j in check_contract(urdf_path, groups, group_sizes, budget)}
    order = group_sizes if group_sizes is not None else groups
    joint_names = tuple(n for group in order for n in groups[group])
    for label, gains in (("kp", kp), ("kd", kd)):
        if gains is None:
            raise RobotContractError(f"robot {name!r} needs {label}= gains, a mapping joint name -> value for every "
                                     f"actuated joint (or a spec file's [{label}] table)")
        missing = [n for n in joint_names if n not in gains]
        extra = [n for n in gains if n not in actuated]
        if missing or extra:
            raise RobotContractError(f"{label} gains for robot {name!r}: missing {missing}, unknown {extra}")
    lower = np.array([actuated[n].lower for n in joint_names])
    upper = np.array([actuated[n].upper for n in joint_names])
    frames = {}
    for frame_name, values in (keyframes or {}).items():
        unknown = [n for n in values if n not in actuated]
        if unknown:
            raise RobotContractError(f"keyframe {frame_name!r} names unknown joints {unknown}")
        frames[frame_name] = np.clip(np.array([values.get(n, 0.0) for n in joint_names]), lower, upper)
    if home_keyframe not in frames:
        # A robot without keyframes stands at its zero posture (clipped to the limits).
        frames.setdefault(home_keyframe, np.clip(np.zeros(len(joint_names)), lower, upper))
    check_hands(name, dict(hands or {}), joint_names)
    if cameras:  # the links are read only for a robot that has cameras to check
        check_cameras(name, dict(cameras), urdf_link_names(urdf_path))
    return RobotDescription(
        name=name,
        urdf_path=urdf_path,
        joint_names=joint_names,
        groups={g: tuple(groups[g]) for g in order},
        joint_lower=lower,
        joint_upper=upper,
        velocity_limit=np.array([actuated[n].velocity for n in joint_names]),
        torque_limit=np.array([actuated[n].effort for n in joint_names]),
        kp=np.array([kp[n] for n in joint_names], dtype=float),
        kd=np.array([kd[n] for n in joint_names], dtype=float),
        keyframes=frames,
        hands=dict(hands or {}),
        base_link=base_link,
        standing_base_height=standing_base_height,
        contact_links=tuple(contact_links),
        feet=tuple(feet),
        sole_center=tuple(float(x) for x in sole_center),
        torso_link=torso_link,
        home_keyframe=home_keyframe,
        revision=revision,
        cameras=dict(cameras or {}),
    )
