"""Generator of ``assets/humanoid43.urdf``, the project's 43-DoF full-size humanoid.

Run ``python -m training_ground.robots.humanoid43_urdf`` to rewrite the checked-in URDF;
a test asserts that the checked-in file equals :func:`build_urdf` byte for byte.

Frames: x forward, y left, z up; at the zero posture the robot stands straight with the
arms hanging and the palms facing the thighs. Every link's inertia is computed from its
primitive shape and mass, so it is positive definite and obeys the triangle inequality.
Links that stand for a motor housing between two co-located joints are small spheres
without collision geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

URDF_PATH = Path(__file__).resolve().parent / "assets" / "humanoid43.urdf"
#: Each revision's URDF (robots/humanoid43.py REVISIONS): revision 1, the first, whose thumb sits at the palm's side
#: and folds towards the palm; revision 2, whose thumb sits at the palm's heel and swings under it against the fingers;
#: revision 3, revision 2's layout with a shorter thumb and slimmer fingers that curl further, so that thumb tip and
#: fingertips meet at one depth (a precision pinch, for parts a few centimetres wide).
URDF_PATHS = {1: URDF_PATH, 2: URDF_PATH.with_name("humanoid43_r2.urdf"), 3: URDF_PATH.with_name("humanoid43_r3.urdf")}
#: Revision 3 since its pinch hand holds the rigid tasks' objects by friction alone (README, physical grasping);
#: datasets record the revision they ran, and one without the field reads as revision 1 (envs/config.py).
DEFAULT_REVISION = 3


@dataclass(frozen=True)
class Shape:
    """A primitive: ``kind`` in {"box", "sphere", "cylinder"}, centred at ``xyz`` in the link frame.

    box: size=(sx, sy, sz); sphere: size=(radius,); cylinder: size=(radius, length), axis along
    the local z axis after ``rpy``.
    """

    kind: str
    size: tuple[float, ...]
    xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    collide: bool = True


@dataclass(frozen=True)
class Link:
    name: str
    mass: float
    shape: Shape
    color: str = "grey"
    #: Reflected rotor inertia (kg m^2) of the actuator housed in this link, added isotropically
    #: (see _motor for why).
    rotor_inertia: float = 0.0


@dataclass(frozen=True)
class Joint:
    name: str
    parent: str
    child: str
    xyz: tuple[float, float, float]
    axis: tuple[float, float, float]
    lower: float
    upper: float
    effort: float
    velocity: float
    kind: str = "revolute"


COLORS = {
    "grey": "0.55 0.57 0.6 1",
    "dark": "0.2 0.21 0.23 1",
    "white": "0.9 0.9 0.92 1",
    "accent": "0.1 0.45 0.8 1",
}


def _shape_inertia(shape: Shape, mass: float) -> tuple[float, float, float]:
    """Principal moments (Ixx, Iyy, Izz) of a solid primitive about its centre, in its own frame."""
    if shape.kind == "box":
        sx, sy, sz = shape.size
        return (
            mass * (sy**2 + sz**2) / 12.0,
            mass * (sx**2 + sz**2) / 12.0,
            mass * (sx**2 + sy**2) / 12.0,
        )
    if shape.kind == "sphere":
        (radius,) = shape.size
        moment = 0.4 * mass * radius**2
        return (moment, moment, moment)
    if shape.kind == "cylinder":
        radius, length = shape.size
        side = mass * (3.0 * radius**2 + length**2) / 12.0
        return (side, side, 0.5 * mass * radius**2)
    raise ValueError(f"unknown shape kind {shape.kind!r}")


def _rotation_from_rpy(rpy: tuple[float, float, float]) -> list[list[float]]:
    roll, pitch, yaw = rpy
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch),
                              math.sin(pitch), math.cos(yaw), math.sin(yaw))
    return [
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ]


def _inertia_tensor(shape: Shape, mass: float) -> list[list[float]]:
    """Inertia about the centre of mass, expressed in the link frame (R diag(I) R^T)."""
    principal = _shape_inertia(shape, mass)
    rotation = _rotation_from_rpy(shape.rpy)
    return [
        [sum(rotation[i][k] * principal[k] * rotation[j][k] for k in range(3)) for j in range(3)]
        for i in range(3)
    ]


def _fmt(value: float) -> str:
    text = f"{value:.6g}"
    return "0" if text in ("-0", "0") else text


def _vec(values) -> str:
    return " ".join(_fmt(v) for v in values)


def _geometry(shape: Shape) -> str:
    if shape.kind == "box":
        return f'<box size="{_vec(shape.size)}"/>'
    if shape.kind == "sphere":
        return f'<sphere radius="{_fmt(shape.size[0])}"/>'
    radius, length = shape.size
    return f'<cylinder radius="{_fmt(radius)}" length="{_fmt(length)}"/>'


def link_inertia(link: Link) -> list[list[float]]:
    """Inertia about the centre of mass in the link frame: the shape's plus the rotor's."""
    inertia = _inertia_tensor(link.shape, link.mass)
    return [[value + (link.rotor_inertia if i == j else 0.0) for j, value in enumerate(row)] for i, row in enumerate(inertia)]


def _link_xml(link: Link) -> str:
    inertia = link_inertia(link)
    origin = f'<origin xyz="{_vec(link.shape.xyz)}" rpy="{_vec(link.shape.rpy)}"/>'
    lines = [
        f'  <link name="{link.name}">',
        "    <inertial>",
        f'      <origin xyz="{_vec(link.shape.xyz)}" rpy="0 0 0"/>',
        f'      <mass value="{_fmt(link.mass)}"/>',
        f'      <inertia ixx="{_fmt(inertia[0][0])}" ixy="{_fmt(inertia[0][1])}" '
        f'ixz="{_fmt(inertia[0][2])}" iyy="{_fmt(inertia[1][1])}" iyz="{_fmt(inertia[1][2])}" '
        f'izz="{_fmt(inertia[2][2])}"/>',
        "    </inertial>",
        "    <visual>",
        f"      {origin}",
        f"      <geometry>{_geometry(link.shape)}</geometry>",
        f'      <material name="{link.color}"/>',
        "    </visual>",
    ]
    if link.shape.collide:
        lines += [
            "    <collision>",
            f"      {origin}",
            f"      <geometry>{_geometry(link.shape)}</geometry>",
            "    </collision>",
        ]
    lines.append("  </link>")
    return "\n".join(lines)


def _joint_xml(joint: Joint) -> str:
    lines = [
        f'  <joint name="{joint.name}" type="{joint.kind}">',
        f'    <parent link="{joint.parent}"/>',
        f'    <child link="{joint.child}"/>',
        f'    <origin xyz="{_vec(joint.xyz)}" rpy="0 0 0"/>',
        f'    <axis xyz="{_vec(joint.axis)}"/>',
        f'    <limit lower="{_fmt(joint.lower)}" upper="{_fmt(joint.upper)}" '
        f'effort="{_fmt(joint.effort)}" velocity="{_fmt(joint.velocity)}"/>',
        "  </joint>",
    ]
    return "\n".join(lines)


def _motor(name: str, mass: float, radius: float = 0.04, rotor_inertia: float = 0.0) -> Link:
    """A motor housing between co-located joints.

    Real actuators add the rotor's inertia times the gear ratio squared (armature). URDF
    has no armature, so it is carried here as extra isotropic inertia of the housing. It
    is what keeps the light links between co-located joints from forming stiff modes that
    an explicit PD law at 500 Hz cannot integrate (checked by tests/test_robot.py).
    """
    return Link(name, mass, Shape("sphere", (radius,), collide=False), "dark", rotor_inertia)


# Body dimensions (m). Pelvis height above the floor at the zero posture is
# HIP_DROP + THIGH + SHANK + ANKLE_HEIGHT = 1.03; head top about 1.85.
HIP_DROP, HIP_WIDTH = 0.06, 0.10
THIGH, SHANK, ANKLE_HEIGHT = 0.44, 0.44, 0.09
FOOT_CENTER_X = 0.04  # the sole's centre is ahead of the ankle
WAIST_HEIGHT, NECK_HEIGHT, SHOULDER_HEIGHT, SHOULDER_WIDTH = 0.08, 0.48, 0.40, 0.22
UPPER_ARM, FOREARM = 0.32, 0.28
PALM_LENGTH, FINGER_LENGTH, FINGER_RADIUS = 0.09, 0.07, 0.009
#: Revision 3's finger and thumb radius: a tip resting on the tray floor has its centre this high, below the top of
#: a 6 mm chip even when the arm follows it down 2 mm late, so it pushes on the chip's side; a 6 mm tip met the top
#: edge and rode up over it (pybullet, seed 0), a 9 mm one pushes the chip down rather than across.
PINCH_FINGER_RADIUS = 0.004
#: Revision 3's thumb length, from its first joint to its tip (m): long enough to reach the fingertips' depth as
#: both close on a part, short enough to stay clear of the fingers' far side on a roll.
PINCH_THUMB_LENGTH = 0.056


def _leg(side: str, sign: float) -> tuple[list[Link], list[Joint]]:
    p = f"{side}_"
    links = [
        _motor(p + "hip_yaw_link", 1.0, rotor_inertia=0.05),
        _motor(p + "hip_roll_link", 1.2, rotor_inertia=0.05),
        Link(p + "thigh", 8.0, Shape("cylinder", (0.065, THIGH - 0.06), (0, 0, -THIGH / 2))),
        Link(p + "shank", 4.0, Shape("cylinder", (0.05, SHANK - 0.06), (0, 0, -SHANK / 2))),
        _motor(p + "ankle_pitch_link", 0.4, 0.03, rotor_inertia=0.01),
        Link(p + "foot", 1.2, Shape("box", (0.24, 0.10, 0.05), (FOOT_CENTER_X, 0, -ANKLE_HEIGHT + 0.025)), "dark"),
    ]
    joints = [
        Joint(p + "hip_yaw", "pelvis", p + "hip_yaw_link", (0, sign * HIP_WIDTH, -HIP_DROP), (0, 0, 1), -0.8, 0.8, 200, 10),
        Joint(p + "hip_roll", p + "hip_yaw_link", p + "hip_roll_link", (0, 0, 0), (1, 0, 0), -0.5, 0.5, 300, 10),
        Joint(p + "hip_pitch", p + "hip_roll_link", p + "thigh", (0, 0, 0), (0, 1, 0), -2.0, 0.8, 400, 10),
        Joint(p + "knee", p + "thigh", p + "shank", (0, 0, -THIGH), (0, 1, 0), 0.0, 2.4, 400, 10),
        Joint(p + "ankle_pitch", p + "shank", p + "ankle_pitch_link", (0, 0, -SHANK), (0, 1, 0), -0.8, 0.6, 250, 10),
        Joint(p + "ankle_roll", p + "ankle_pitch_link", p + "foot", (0, 0, 0), (1, 0, 0), -0.4, 0.4, 150, 10),
    ]
    return links, joints


def _arm(side: str, sign: float) -> tuple[list[Link], list[Joint]]:
    p = f"{side}_"
    # Shoulder roll is positive outwards on both sides, so the sign flips the axis, not the range.
    links = [
        _motor(p + "shoulder_pitch_link", 0.6, rotor_inertia=0.06),
        _motor(p + "shoulder_roll_link", 0.6, rotor_inertia=0.06),
        Link(p + "upper_arm", 2.2, Shape("cylinder", (0.045, UPPER_ARM - 0.06), (0, 0, -UPPER_ARM / 2)), "white", 0.02),
        Link(p + "forearm", 1.4, Shape("cylinder", (0.04, FOREARM - 0.06), (0, 0, -FOREARM / 2)), "white", 0.01),
        _motor(p + "wrist_yaw_link", 0.25, 0.03, rotor_inertia=0.008),
        _motor(p + "wrist_pitch_link", 0.25, 0.03, rotor_inertia=0.008),
        Link(p + "palm", 0.45, Shape("box", (0.08, 0.03, PALM_LENGTH), (0, 0, -0.02 - PALM_LENGTH / 2)), "dark"),
    ]
    joints = [
        Joint(p + "shoulder_pitch", "torso", p + "shoulder_pitch_link", (0, sign * SHOULDER_WIDTH, SHOULDER_HEIGHT), (0, 1, 0), -3.0, 1.0, 120, 12),
        Joint(p + "shoulder_roll", p + "shoulder_pitch_link", p + "shoulder_roll_link", (0, 0, 0), (sign, 0, 0), -0.8, 2.5, 120, 12),
        Joint(p + "shoulder_yaw", p + "shoulder_roll_link", p + "upper_arm", (0, 0, 0), (0, 0, 1), -2.0, 2.0, 80, 12),
        Joint(p + "elbow", p + "upper_arm", p + "forearm", (0, 0, -UPPER_ARM), (0, 1, 0), -2.4, 0.1, 80, 12),
        Joint(p + "wrist_yaw", p + "forearm", p + "wrist_yaw_link", (0, 0, -FOREARM), (0, 0, 1), -1.6, 1.6, 20, 15),
        Joint(p + "wrist_pitch", p + "wrist_yaw_link", p + "wrist_pitch_link", (0, 0, 0), (0, 1, 0), -1.3, 1.3, 20, 15),
        Joint(p + "wrist_roll", p + "wrist_pitch_link", p + "palm", (0, 0, 0), (1, 0, 0), -1.0, 1.0, 20, 15),
    ]
    return links, joints


def _hand(side: str, sign: float, revision: int = DEFAULT_REVISION) -> tuple[list[Link], list[Joint]]:
    """Four single-link fingers along the palm's lower edge and a two-joint thumb.

    The palm faces the body's midline (-y on the left hand, +y on the right), so fingers
    flex about the x axis towards the palm side.

    Revision 1: the thumb hangs in front of the palm face at its side edge and folds back towards
    the palm. It cannot oppose the fingers around an object: a grasp from above only hooks it
    (README, *Physics*).
    Revision 2: the thumb sits at the palm's heel, lying back along the wrist when open, and
    swings out of the palm face and forward under it (both joints about the x axis, like the
    fingers'): an object under the palm is held between the thumb on its near side and the curled
    fingers on its far side.
    Revision 3: revision 2's thumb joints with a shorter, slimmer thumb and slimmer fingers that curl past pointing
    down, so that thumb tip and fingertips close on each other at one depth like two jaws (a precision pinch of a
    part 1-3 cm wide), and on a roll meet it below its middle from both sides.
    """
    p = f"{side}_"
    palm_bottom = -0.02 - PALM_LENGTH
    finger_shape = Shape("cylinder", (FINGER_RADIUS, FINGER_LENGTH - 2 * FINGER_RADIUS), (0, 0, -FINGER_LENGTH / 2))
    finger_axis = (-sign, 0, 0)
    if revision == 1:
        # Fingers curl from the palm's lower edge towards the palm side (-sign * y); the thumb
        # hangs in front of the palm face and curls back towards it (+sign * y).
        thumb_axis = (sign, 0, 0)
        links = [
            Link(p + "thumb_metacarpal", 0.04, Shape("cylinder", (0.011, 0.02), (0, -sign * 0.015, 0), (math.pi / 2, 0, 0), collide=False), "dark", 1e-4),
            Link(p + "thumb", 0.03, Shape("cylinder", (FINGER_RADIUS, 0.06 - 2 * FINGER_RADIUS), (0, 0, -0.03)), "grey"),
        ]
        joints = [
            Joint(p + "thumb_rotation", p + "palm", p + "thumb_metacarpal", (0.035, -sign * 0.015, -0.06), (0, 0, 1), 0.0, 1.5, 3, 20),
            Joint(p + "thumb_flexion", p + "thumb_metacarpal", p + "thumb", (0, -sign * 0.03, 0), thumb_axis, 0.0, 1.2, 2, 20),
        ]
    elif revision == 2:
        # At 0 both thumb links point back along the wrist (+z); a positive angle turns them out of the palm face
        # (-sign * y) and on, forward (-z): about (sign, 0, 0), as the fingers turn about (-sign, 0, 0) from -z.
        thumb_axis = (sign, 0, 0)
        links = [
            Link(p + "thumb_metacarpal", 0.04, Shape("cylinder", (0.011, 0.025), (0, 0, 0.0125), collide=False), "dark", 1e-4),
            Link(p + "thumb", 0.03, Shape("cylinder", (FINGER_RADIUS, 0.045 - 2 * FINGER_RADIUS), (0, 0, 0.0225)), "grey"),
        ]
        joints = [
            Joint(p + "thumb_rotation", p + "palm", p + "thumb_metacarpal", (0.0, -sign * 0.015, -0.025), thumb_axis, 0.0, 2.4, 3, 20),
            Joint(p + "thumb_flexion", p + "thumb_metacarpal", p + "thumb", (0, 0, 0.025), thumb_axis, 0.0, 1.2, 2, 20),
        ]
    elif revision == 3:
        # Revision 2's joints, a shorter, slimmer thumb whose both links collide, and slimmer fingers that swing past
        # pointing down: thumb tip and fingertips then close on each other at one depth (measured by
        # physics/hand_geometry.py's Pinch), while a roll between them is met below its middle by both.
        thumb_axis = (sign, 0, 0)
        radius, metacarpal = PINCH_FINGER_RADIUS, 0.025
        distal = PINCH_THUMB_LENGTH - metacarpal
        finger_shape = Shape("cylinder", (radius, FINGER_LENGTH - 2 * radius), (0, 0, -FINGER_LENGTH / 2))
        links = [
            Link(p + "thumb_metacarpal", 0.04, Shape("cylinder", (0.007, metacarpal - 0.014), (0, 0, metacarpal / 2)), "dark", 1e-4),
            # Its flexion motor's rotor (4e-5 kg m^2 reflected) keeps the short distal link inside the explicit law's
            # bound at the fingers' gains (tests/test_robot.py).
            Link(p + "thumb", 0.025, Shape("cylinder", (radius, distal - 2 * radius), (0, 0, distal / 2)), "grey", 4e-5),
        ]
        joints = [
            Joint(p + "thumb_rotation", p + "palm", p + "thumb_metacarpal", (0.0, -sign * 0.015, -0.025), thumb_axis, 0.0, 2.4, 3, 20),
            Joint(p + "thumb_flexion", p + "thumb_metacarpal", p + "thumb", (0, 0, metacarpal), thumb_axis, 0.0, 1.2, 2, 20),
        ]
    else:
        raise ValueError(f"humanoid43 has revisions {sorted(URDF_PATHS)}, not {revision!r}")
    finger_upper = 2.3 if revision == 3 else 1.6  # revision 3's fingers swing past pointing down, to meet the thumb
    for finger, x in (("index", 0.03), ("middle", 0.01), ("ring", -0.01), ("little", -0.03)):
        links.append(Link(p + finger, 0.03, finger_shape, "grey"))
        joints.append(Joint(p + finger, p + "palm", p + finger, (x, 0, palm_bottom), finger_axis, 0.0, finger_upper, 2, 20))
    return links, joints


def robot_tree(revision: int = DEFAULT_REVISION) -> tuple[list[Link], list[Joint]]:
    """All links (root first) and joints of humanoid43 at ``revision``."""
    links = [Link("pelvis", 10.0, Shape("box", (0.18, 0.30, 0.14)), "dark")]
    joints: list[Joint] = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        leg_links, leg_joints = _leg(side, sign)
        links += leg_links
        joints += leg_joints
    links += [
        _motor("waist_yaw_link", 1.5, 0.05, rotor_inertia=0.1),
        _motor("waist_roll_link", 1.5, 0.05, rotor_inertia=0.1),
        Link("torso", 20.0, Shape("box", (0.22, 0.34, 0.40), (0, 0, 0.22)), "white"),
        _motor("neck_yaw_link", 0.5, 0.035, rotor_inertia=0.01),
        Link("head", 4.0, Shape("sphere", (0.12,), (0.01, 0, 0.14)), "accent"),
    ]
    joints += [
        Joint("waist_yaw", "pelvis", "waist_yaw_link", (0, 0, WAIST_HEIGHT), (0, 0, 1), -1.0, 1.0, 150, 8),
        Joint("waist_roll", "waist_yaw_link", "waist_roll_link", (0, 0, 0), (1, 0, 0), -0.4, 0.4, 200, 8),
        Joint("waist_pitch", "waist_roll_link", "torso", (0, 0, 0), (0, 1, 0), -0.3, 0.8, 250, 8),
        Joint("neck_yaw", "torso", "neck_yaw_link", (0, 0, NECK_HEIGHT), (0, 0, 1), -1.2, 1.2, 20, 8),
        Joint("neck_pitch", "neck_yaw_link", "head", (0, 0, 0), (0, 1, 0), -0.6, 0.9, 20, 8),
    ]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        arm_links, arm_joints = _arm(side, sign)
        hand_links, hand_joints = _hand(side, sign, revision)
        links += arm_links + hand_links
        joints += arm_joints + hand_joints
    return links, joints


def build_urdf(revision: int = DEFAULT_REVISION) -> str:
    links, joints = robot_tree(revision)
    parts = ['<?xml version="1.0"?>', "<!-- Generated by training_ground/robots/humanoid43_urdf.py: do not edit by hand. -->",
             '<robot name="humanoid43">']
    parts += [f'  <material name="{name}"><color rgba="{rgba}"/></material>' for name, rgba in COLORS.items()]
    parts += [_link_xml(link) for link in links]
    parts += [_joint_xml(joint) for joint in joints]
    parts.append("</robot>")
    return "\n".join(parts) + "\n"


def main() -> None:
    URDF_PATH.parent.mkdir(parents=True, exist_ok=True)
    for revision, path in URDF_PATHS.items():
        path.write_text(build_urdf(revision))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
