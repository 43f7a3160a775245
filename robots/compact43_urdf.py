"""Generator of ``assets/compact43.urdf`` and its collision meshes, the project's second robot.

compact43 differs from humanoid43 where published robots differ from it: about 1.3 m and
35 kg; its URDF's root link is the torso (the waist joints sit between the torso and the
pelvis, so the legs hang below them); no neck; 7-joint hands (two-joint thumb, two-joint
index and middle fingers, a ring finger); every collision shape a mesh file, written here
with trimesh under ``assets/compact43_meshes/`` and referenced by relative path; and an IMU
frame on a fixed joint without ``<inertial>``.

Run ``python -m training_ground.robots.compact43_urdf`` to rewrite the checked-in URDF and
meshes; a test asserts that the checked-in files equal :func:`build_urdf` and
:func:`build_meshes` byte for byte.

Frames: x forward, y left, z up, as humanoid43. Inertias come from the same primitive each
mesh is made of (humanoid43_urdf.link_inertia), so they match the collided shape.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from .humanoid43_urdf import COLORS, Joint, Link, Shape, _fmt, _joint_xml, _motor, _vec, link_inertia

ASSETS = Path(__file__).resolve().parent / "assets"
URDF_PATH = ASSETS / "compact43.urdf"
MESH_FOLDER = "compact43_meshes"
MESH_DIR = ASSETS / MESH_FOLDER
#: Facets of every round mesh: enough that the hull is within 0.5 mm of the primitive at these sizes.
ROUND_SECTIONS = 24

# Body dimensions (m). The waist joints and the torso's origin sit at the pelvis's origin; the hips
# HIP_DROP below. Torso origin above the floor at the zero posture: HIP_DROP + THIGH + SHANK +
# ANKLE_HEIGHT = 0.755; head top about 1.29.
HIP_DROP, HIP_WIDTH = 0.10, 0.075
THIGH, SHANK, ANKLE_HEIGHT = 0.30, 0.30, 0.055
FOOT_SIZE = (0.18, 0.08, 0.035)
FOOT_CENTER_X = 0.03  # the sole's centre is ahead of the ankle
SHOULDER_HEIGHT, SHOULDER_WIDTH, HEAD_MOUNT = 0.30, 0.16, 0.36
UPPER_ARM, FOREARM = 0.23, 0.21
PALM_LENGTH, FINGER_RADIUS = 0.065, 0.007
PROXIMAL, DISTAL = 0.035, 0.025
PALM_TOP = 0.015  # the palm box starts this far below the wrist


def _mesh_name(link: Link) -> str:
    """Left and right links share a mesh: the name without the side."""
    return link.name.removeprefix("left_").removeprefix("right_") + ".stl"


def _leg(side: str, sign: float) -> tuple[list[Link], list[Joint]]:
    p = f"{side}_"
    foot_z = -ANKLE_HEIGHT + FOOT_SIZE[2] / 2
    links = [
        _motor(p + "hip_yaw_link", 0.4, 0.03, rotor_inertia=0.02),
        _motor(p + "hip_roll_link", 0.5, 0.03, rotor_inertia=0.02),
        Link(p + "thigh", 2.8, Shape("cylinder", (0.05, THIGH - 0.05), (0, 0, -THIGH / 2))),
        Link(p + "shank", 1.5, Shape("cylinder", (0.04, SHANK - 0.05), (0, 0, -SHANK / 2))),
        _motor(p + "ankle_pitch_link", 0.15, 0.025, rotor_inertia=0.01),
        Link(p + "foot", 0.5, Shape("box", FOOT_SIZE, (FOOT_CENTER_X, 0, foot_z)), "dark", 0.001),
    ]
    joints = [
        Joint(p + "hip_yaw", "pelvis", p + "hip_yaw_link", (0, sign * HIP_WIDTH, -HIP_DROP), (0, 0, 1), -0.8, 0.8, 80, 10),
        Joint(p + "hip_roll", p + "hip_yaw_link", p + "hip_roll_link", (0, 0, 0), (1, 0, 0), -0.5, 0.5, 120, 10),
        Joint(p + "hip_pitch", p + "hip_roll_link", p + "thigh", (0, 0, 0), (0, 1, 0), -2.0, 0.8, 160, 10),
        Joint(p + "knee", p + "thigh", p + "shank", (0, 0, -THIGH), (0, 1, 0), 0.0, 2.4, 160, 10),
        Joint(p + "ankle_pitch", p + "shank", p + "ankle_pitch_link", (0, 0, -SHANK), (0, 1, 0), -0.8, 0.6, 100, 10),
        Joint(p + "ankle_roll", p + "ankle_pitch_link", p + "foot", (0, 0, 0), (1, 0, 0), -0.4, 0.4, 60, 10),
    ]
    return links, joints


def _arm(side: str, sign: float) -> tuple[list[Link], list[Joint]]:
    p = f"{side}_"
    links = [
        _motor(p + "shoulder_pitch_link", 0.25, 0.03, rotor_inertia=0.02),
        _motor(p + "shoulder_roll_link", 0.25, 0.03, rotor_inertia=0.02),
        Link(p + "upper_arm", 0.9, Shape("cylinder", (0.035, UPPER_ARM - 0.05), (0, 0, -UPPER_ARM / 2)), "white", 0.008),
        Link(p + "forearm", 0.55, Shape("cylinder", (0.03, FOREARM - 0.05), (0, 0, -FOREARM / 2)), "white", 0.004),
        _motor(p + "wrist_yaw_link", 0.1, 0.02, rotor_inertia=0.003),
        _motor(p + "wrist_pitch_link", 0.1, 0.02, rotor_inertia=0.003),
        Link(p + "palm", 0.18, Shape("box", (0.06, 0.022, PALM_LENGTH), (0, 0, -PALM_TOP - PALM_LENGTH / 2)), "dark",
             0.0005),
    ]
    joints = [
        Joint(p + "shoulder_pitch", "torso", p + "shoulder_pitch_link", (0, sign * SHOULDER_WIDTH, SHOULDER_HEIGHT),
              (0, 1, 0), -3.0, 1.0, 50, 12),
        Joint(p + "shoulder_roll", p + "shoulder_pitch_link", p + "shoulder_roll_link", (0, 0, 0), (sign, 0, 0),
              -0.8, 2.5, 50, 12),
        Joint(p + "shoulder_yaw", p + "shoulder_roll_link", p + "upper_arm", (0, 0, 0), (0, 0, 1), -2.0, 2.0, 35, 12),
        Joint(p + "elbow", p + "upper_arm", p + "forearm", (0, 0, -UPPER_ARM), (0, 1, 0), -2.4, 0.1, 35, 12),
        Joint(p + "wrist_yaw", p + "forearm", p + "wrist_yaw_link", (0, 0, -FOREARM), (0, 0, 1), -1.6, 1.6, 10, 15),
        Joint(p + "wrist_pitch", p + "wrist_yaw_link", p + "wrist_pitch_link", (0, 0, 0), (0, 1, 0), -1.3, 1.3, 10, 15),
        Joint(p + "wrist_roll", p + "wrist_pitch_link", p + "palm", (0, 0, 0), (1, 0, 0), -1.0, 1.0, 10, 15),
    ]
    return links, joints


def _finger(name: str, length: float) -> Link:
    shape = Shape("cylinder", (FINGER_RADIUS, length - 2 * FINGER_RADIUS), (0, 0, -length / 2))
    return Link(name, 0.015, shape, "grey", 2e-5)


def _hand(side: str, sign: float) -> tuple[list[Link], list[Joint]]:
    """Seven finger joints: a thumb that turns and flexes, two-joint index and middle fingers, a ring finger.

    As humanoid43's hand, the fingers hang from the palm's lower edge and curl towards the palm side
    (-sign * y); the thumb hangs in front of the palm face and curls back under it, so the two meet
    below the palm: an opposing grasp.
    """
    p = f"{side}_"
    palm_bottom = -PALM_TOP - PALM_LENGTH
    finger_axis, thumb_axis = (-sign, 0, 0), (sign, 0, 0)
    links = [
        Link(p + "thumb_metacarpal", 0.02, Shape("cylinder", (0.008, 0.015), (0, -sign * 0.01, 0), (math.pi / 2, 0, 0),
                                                   collide=False), "dark", 5e-5),
        _finger(p + "thumb", 0.045),
        _finger(p + "index_proximal", PROXIMAL), _finger(p + "index_distal", DISTAL),
        _finger(p + "middle_proximal", PROXIMAL), _finger(p + "middle_distal", DISTAL),
        _finger(p + "ring", PROXIMAL + DISTAL),
    ]
    joints = [
        Joint(p + "thumb_rotation", p + "palm", p + "thumb_metacarpal", (0.025, -sign * 0.011, -0.045), (0, 0, 1),
              0.0, 1.5, 1.5, 20),
        Joint(p + "thumb_flexion", p + "thumb_metacarpal", p + "thumb", (0, -sign * 0.02, 0), thumb_axis, 0.0, 1.2, 1, 20),
        Joint(p + "index_proximal", p + "palm", p + "index_proximal", (0.02, 0, palm_bottom), finger_axis, 0.0, 1.4, 1, 20),
        Joint(p + "index_distal", p + "index_proximal", p + "index_distal", (0, 0, -PROXIMAL), finger_axis, 0.0, 1.2, 0.6, 20),
        Joint(p + "middle_proximal", p + "palm", p + "middle_proximal", (0, 0, palm_bottom), finger_axis, 0.0, 1.4, 1, 20),
        Joint(p + "middle_distal", p + "middle_proximal", p + "middle_distal", (0, 0, -PROXIMAL), finger_axis,
              0.0, 1.2, 0.6, 20),
        Joint(p + "ring", p + "palm", p + "ring", (-0.02, 0, palm_bottom), finger_axis, 0.0, 1.6, 1, 20),
    ]
    return links, joints


def robot_tree() -> tuple[list[Link], list[Joint], list[tuple[str, str, tuple[float, float, float]]], list[str]]:
    """All links (root first) and actuated joints of compact43, its fixed joints (name, child, offset from the
    torso) and the names of the links written without ``<inertial>``."""
    links = [Link("torso", 10.0, Shape("box", (0.16, 0.26, 0.30), (0, 0, 0.19)), "white")]
    joints: list[Joint] = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        arm_links, arm_joints = _arm(side, sign)
        hand_links, hand_joints = _hand(side, sign)
        links += arm_links + hand_links
        joints += arm_joints + hand_joints
    # The waist hangs the pelvis below the torso: pitch, roll, yaw from the torso down.
    links += [
        _motor("waist_pitch_link", 0.6, 0.04, rotor_inertia=0.04),
        _motor("waist_roll_link", 0.6, 0.04, rotor_inertia=0.04),
        Link("pelvis", 4.5, Shape("box", (0.12, 0.22, 0.10), (0, 0, -0.05)), "dark"),
        Link("head", 2.5, Shape("sphere", (0.085,), (0.01, 0, 0.09)), "accent"),
        Link("imu", 0.0, Shape("box", (0.01, 0.01, 0.01), collide=False)),
    ]
    joints += [
        Joint("waist_pitch", "torso", "waist_pitch_link", (0, 0, 0), (0, 1, 0), -0.3, 0.8, 100, 8),
        Joint("waist_roll", "waist_pitch_link", "waist_roll_link", (0, 0, 0), (1, 0, 0), -0.4, 0.4, 80, 8),
        Joint("waist_yaw", "waist_roll_link", "pelvis", (0, 0, 0), (0, 0, 1), -1.0, 1.0, 60, 8),
    ]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        leg_links, leg_joints = _leg(side, sign)
        links += leg_links
        joints += leg_joints
    fixed = [("head_mount", "head", (0.0, 0.0, HEAD_MOUNT)), ("imu_mount", "imu", (0.0, 0.0, 0.2))]
    return links, joints, fixed, ["imu"]


def _mesh(shape: Shape):
    """The trimesh of a primitive, centred at its own origin (the URDF's <origin> places it)."""
    import trimesh

    if shape.kind == "box":
        return trimesh.creation.box(shape.size)
    if shape.kind == "sphere":
        return trimesh.creation.icosphere(subdivisions=2, radius=shape.size[0])
    radius, length = shape.size
    return trimesh.creation.cylinder(radius=radius, height=length, sections=ROUND_SECTIONS)


def build_meshes() -> dict[str, bytes]:
    """Mesh file name -> binary STL of every colliding link's shape (left and right share one)."""
    links, *_ = robot_tree()
    meshes = {}
    for link in links:
        if link.shape.collide:
            buffer = io.BytesIO()
            _mesh(link.shape).export(buffer, file_type="stl")
            meshes.setdefault(_mesh_name(link), buffer.getvalue())
    return meshes


def _link_xml(link: Link, bare: bool) -> str:
    lines = [f'  <link name="{link.name}">']
    if not bare:
        inertia = link_inertia(link)
        lines += [
            "    <inertial>",
            f'      <origin xyz="{_vec(link.shape.xyz)}" rpy="0 0 0"/>',
            f'      <mass value="{_fmt(link.mass)}"/>',
            f'      <inertia ixx="{_fmt(inertia[0][0])}" ixy="{_fmt(inertia[0][1])}" '
            f'ixz="{_fmt(inertia[0][2])}" iyy="{_fmt(inertia[1][1])}" iyz="{_fmt(inertia[1][2])}" '
            f'izz="{_fmt(inertia[2][2])}"/>',
            "    </inertial>",
        ]
    if link.shape.collide:
        origin = f'<origin xyz="{_vec(link.shape.xyz)}" rpy="{_vec(link.shape.rpy)}"/>'
        geometry = f'<geometry><mesh filename="{MESH_FOLDER}/{_mesh_name(link)}"/></geometry>'
        lines += [
            "    <visual>", f"      {origin}", f"      {geometry}", f'      <material name="{link.color}"/>', "    </visual>",
            "    <collision>", f"      {origin}", f"      {geometry}", "    </collision>",
        ]
    elif not bare:  # a motor housing: seen, not collided
        lines += [
            "    <visual>",
            f'      <origin xyz="{_vec(link.shape.xyz)}" rpy="0 0 0"/>',
            f'      <geometry><sphere radius="{_fmt(link.shape.size[0])}"/></geometry>',
            f'      <material name="{link.color}"/>',
            "    </visual>",
        ]
    lines.append("  </link>")
    return "\n".join(lines)


def _fixed_joint_xml(name: str, child: str, xyz) -> str:
    return "\n".join([
        f'  <joint name="{name}" type="fixed">',
        '    <parent link="torso"/>',
        f'    <child link="{child}"/>',
        f'    <origin xyz="{_vec(xyz)}" rpy="0 0 0"/>',
        "  </joint>",
    ])


def build_urdf() -> str:
    links, joints, fixed, bare = robot_tree()
    parts = ['<?xml version="1.0"?>', "<!-- Generated by training_ground/robots/compact43_urdf.py: do not edit by hand. -->",
             '<robot name="compact43">']
    parts += [f'  <material name="{name}"><color rgba="{rgba}"/></material>' for name, rgba in COLORS.items()]
    parts += [_link_xml(link, link.name in bare) for link in links]
    # Joints listed legs first: children before their parents (the waist), as vendors' files may.
    legs = [j for j in joints if j.parent == "pelvis" or j.name.split("_", 1)[-1] in
            ("hip_roll", "hip_pitch", "knee", "ankle_pitch", "ankle_roll")]
    parts += [_joint_xml(joint) for joint in legs + [j for j in joints if j not in legs]]
    parts += [_fixed_joint_xml(*joint) for joint in fixed]
    parts.append("</robot>")
    return "\n".join(parts) + "\n"


def main() -> None:
    MESH_DIR.mkdir(parents=True, exist_ok=True)
    meshes = build_meshes()
    for stale in MESH_DIR.glob("*.stl"):
        if stale.name not in meshes:
            stale.unlink()
    for name, content in meshes.items():
        (MESH_DIR / name).write_bytes(content)
    URDF_PATH.write_text(build_urdf())
    print(f"wrote {URDF_PATH} and {len(meshes)} meshes in {MESH_DIR}")


if __name__ == "__main__":
    main()
