"""compact43: the project's second robot, about 1.3 m and 35 kg, 43 actuated joints, rooted at its torso.

Declarative data only: the URDF and meshes come from ``compact43_urdf.py``; this file names the
groups, hands, PD gains and keyframes that tasks use. Its groups are its own (no head; 7-joint
hands), so it is described with ``group_sizes=None, budget=43``.

Gains follow humanoid43's rule for the explicit PD law at 500 Hz (``kd dt / I`` and
``sqrt(kp / I) dt`` below about 0.5 for the smallest inertia a joint sees; physics/drives.py
checks it), helped by the reflected rotor inertia the generator gives light links. The ankles
are stiff enough to stand: the robot is a pendulum of about m g h = 35 * 9.81 * 0.6 = 210 N m/rad
about its ankles, which the two ankle pitch drives together exceed several times.
"""

from __future__ import annotations

import math
from importlib import resources

from .description import CameraMount, HandSpec, RobotDescription, describe
from .compact43_urdf import ANKLE_HEIGHT, FOOT_CENTER_X, HIP_DROP, SHANK, THIGH

SIDES = ("left", "right")
LEG = ("hip_yaw", "hip_roll", "hip_pitch", "knee", "ankle_pitch", "ankle_roll")
ARM = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist_yaw", "wrist_pitch", "wrist_roll")
HAND = ("thumb_rotation", "thumb_flexion", "index_proximal", "index_distal", "middle_proximal", "middle_distal", "ring")

GROUPS = {
    "legs": tuple(f"{s}_{j}" for s in SIDES for j in LEG),
    "waist": ("waist_yaw", "waist_roll", "waist_pitch"),
    "arms": tuple(f"{s}_{j}" for s in SIDES for j in ARM),
    "hands": tuple(f"{s}_{j}" for s in SIDES for j in HAND),
}

# (kp N m/rad, kd N m s/rad) per joint kind, shared by both sides.
_GAINS = {
    "hip_yaw": (120, 2), "hip_roll": (300, 6), "hip_pitch": (300, 6), "knee": (300, 6),
    "ankle_pitch": (400, 4), "ankle_roll": (150, 1),
    "waist_yaw": (300, 8), "waist_roll": (400, 10), "waist_pitch": (500, 12),
    "shoulder_pitch": (120, 4), "shoulder_roll": (120, 4), "shoulder_yaw": (60, 1.5),
    "elbow": (80, 2.5), "wrist_yaw": (12, 0.3), "wrist_pitch": (12, 0.3), "wrist_roll": (12, 0.3),
    "thumb_rotation": (0.2, 0.0015), "thumb_flexion": (0.2, 0.0015),
    "index_proximal": (0.2, 0.0015), "index_distal": (0.1, 0.001),
    "middle_proximal": (0.2, 0.0015), "middle_distal": (0.1, 0.001), "ring": (0.2, 0.0015),
}


def _kind(joint: str) -> str:
    for side in SIDES:
        if joint.startswith(side + "_"):
            return joint[len(side) + 1:]
    return joint


ALL_JOINTS = tuple(j for group in GROUPS.values() for j in group)
KP = {j: float(_GAINS[_kind(j)][0]) for j in ALL_JOINTS}
KD = {j: float(_GAINS[_kind(j)][1]) for j in ALL_JOINTS}

# A slight knee bend keeps the standing robot off its knee limits; hip and ankle pitch cancel the
# knee so that the torso stays upright and the feet flat.
_HIP_PITCH, _KNEE = -0.15, 0.3
_STANDING = {f"{s}_{j}": v for s in SIDES for j, v in (("hip_pitch", _HIP_PITCH), ("knee", _KNEE),
                                                         ("ankle_pitch", -_HIP_PITCH - _KNEE))}
#: Torso (the base link) above the floor at the standing keyframe with the soles flat on it (m): the hip
#: drop, the thigh and shank turned by their pitch, and the ankle above the sole.
STANDING_BASE_HEIGHT = HIP_DROP + THIGH * math.cos(_HIP_PITCH) + SHANK * math.cos(_HIP_PITCH + _KNEE) + ANKLE_HEIGHT
# Both grasp sites in front of the body, 0.12 m above the table of the table scenes where they mount it
# (scenes/base.py table_mount), with the palms turned as humanoid43's at its arms_ready (found by DLS IK with a
# mid-range null-space term). The torso is the base, so on a fixed stand the arms reach without the waist.
# Mirroring as humanoid43's keyframe.
_RIGHT_ARM_READY = {"shoulder_pitch": 0.176, "shoulder_roll": 0.822, "shoulder_yaw": 0.699, "elbow": -1.832,
                    "wrist_yaw": 0.719, "wrist_pitch": 0.658, "wrist_roll": -0.538}
_MIRROR_SIGN = {"shoulder_pitch": 1, "shoulder_roll": 1, "shoulder_yaw": -1, "elbow": 1,
                "wrist_yaw": -1, "wrist_pitch": 1, "wrist_roll": -1}
_ARMS_READY = {
    **_STANDING,
    **{f"right_{j}": v for j, v in _RIGHT_ARM_READY.items()},
    **{f"left_{j}": _MIRROR_SIGN[j] * v for j, v in _RIGHT_ARM_READY.items()},
}
KEYFRAMES = {"standing": _STANDING, "arms_ready": _ARMS_READY}


def _cameras() -> dict[str, CameraMount]:
    """humanoid43's cameras scaled to this body: one at the front of the fixed head (no neck to bow it),
    tilted 52 degrees down onto the table,
    and one under each wrist looking along the fingers."""
    cameras = {"head": CameraMount(link="head", position=(0.1, 0.0, 0.1), forward=(1.0, 0.0, -1.3), up=(1.3, 0.0, 1.0),
                                   fov=70.0)}
    for side in SIDES:
        palm = -1.0 if side == "left" else 1.0
        cameras[f"{side}_wrist"] = CameraMount(link=f"{side}_palm", position=(0.0, palm * 0.035, 0.015),
                                               forward=(0.0, palm * 0.065, -0.115), up=(0.0, -palm, 0.0), fov=90.0,
                                               near=0.01, far=2.0)
    return cameras


def _hand(side: str) -> HandSpec:
    sign = 1.0 if side == "left" else -1.0
    return HandSpec(
        palm_link=f"{side}_palm",
        grasp_site=(0.0, -sign * 0.035, -0.07),
        arm_joints=tuple(f"{side}_{j}" for j in ARM),
        finger_joints=tuple(f"{side}_{j}" for j in HAND),
        finger_open=(0.0,) * len(HAND),
        finger_closed=(1.0, 0.9, 1.1, 0.9, 1.1, 0.9, 1.2),
    )


def load() -> RobotDescription:
    urdf = resources.files("training_ground.robots").joinpath("assets", "compact43.urdf")
    return describe(
        name="compact43",
        urdf_path=str(urdf),
        groups=GROUPS,
        kp=KP,
        kd=KD,
        keyframes=KEYFRAMES,
        hands={side: _hand(side) for side in SIDES},
        base_link="torso",
        standing_base_height=STANDING_BASE_HEIGHT,
        # Hands against objects and tables, forearms against table edges, feet against the floor.
        contact_links=tuple(f"{side}_{link}" for side in SIDES for link in (
            "palm", "thumb", "index_proximal", "index_distal", "middle_proximal", "middle_distal", "ring",
            "forearm", "foot")),
        feet=tuple(f"{side}_foot" for side in SIDES),
        sole_center=(FOOT_CENTER_X, 0.0, -ANKLE_HEIGHT),
        torso_link="torso",
        group_sizes=None,
        budget=43,
        cameras=_cameras(),
    )
