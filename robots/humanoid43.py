"""humanoid43: a Qinglong-class full-size humanoid, about 1.85 m and 80 kg, 43 actuated joints.

Declarative data only: the URDF comes from ``humanoid43_urdf.py``; this file names the
groups, hands, PD gains and keyframes that tasks use.

The gains are chosen for the explicit PD law at 500 Hz: for each joint the damping
``kd * dt / I`` and stiffness ``sqrt(kp / I) * dt`` stay below about 0.5 for the smallest
inertia ``I`` the joint can see, so the explicit pybullet reference is stable as well as
the numpy engine, which treats damping implicitly. Real robots' gains are stiffer (a vendor's
ankles reach kd dt / I of 10 to 100, real fingers kp of tens of N m/rad): load them with
``robots.load("humanoid43", kp={...}, kd={...})`` and run the numpy engine's ``drive="implicit"``
(physics/drives.py gives each law's bound; pybullet refuses gains outside the explicit one).
"""

from __future__ import annotations

from importlib import resources

from .description import CameraMount, HandSpec, RobotDescription, describe
from . import humanoid43_urdf
from .humanoid43_urdf import ANKLE_HEIGHT, FOOT_CENTER_X, URDF_PATHS

#: The robot's revisions (humanoid43_urdf.py URDF_PATHS says how their hands differ).
REVISIONS = tuple(sorted(URDF_PATHS))
#: The revision a name alone loads: 3, the precision pinch, on which every expert was measured at 100 seeds
#: (benchmarks/results/experts_defaults*.json; README, Measured). Revision 2's thumb grasps a roll physically but
#: cannot pinch a chip; revision 1's cannot close a grip at all.
DEFAULT_REVISION = humanoid43_urdf.DEFAULT_REVISION
#: Each revision's curled finger targets (thumb_rotation, thumb_flexion, index, middle, ring, little): revision
#: 2's thumb swings 2.3 rad from along the wrist to under the palm.
FINGER_CLOSED = {1: (1.0, 0.9, 1.2, 1.2, 1.2, 1.2), 2: (2.3, 0.8, 1.2, 1.2, 1.2, 1.2), 3: (2.2, 0.2, 2.2, 2.2, 2.2, 2.2)}
#: Where each finger starts closing, as a fraction of the grasp command's range (HandSpec.finger_close_from).
#: Revision 2's thumb waits for the second half: half-way through its swing it points straight down out of the
#: palm, 8 cm below it, so a half-closed hand pinching cloth 1.5 cm over the table would drive it into the table.
FINGER_CLOSE_FROM = {1: (), 2: (0.5, 0.5, 0.0, 0.0, 0.0, 0.0), 3: ()}

#: Revisions whose thumb's first link collides (the whole thumb closes on a roll, not only its tip).
COLLIDING_METACARPAL = (3,)

SIDES = ("left", "right")
#: Pelvis above the floor at the standing keyframe, feet flat (m).
STANDING_BASE_HEIGHT = 1.021
LEG = ("hip_yaw", "hip_roll", "hip_pitch", "knee", "ankle_pitch", "ankle_roll")
ARM = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist_yaw", "wrist_pitch", "wrist_roll")
HAND = ("thumb_rotation", "thumb_flexion", "index", "middle", "ring", "little")

GROUPS = {
    "legs": tuple(f"{s}_{j}" for s in SIDES for j in LEG),
    "waist": ("waist_yaw", "waist_roll", "waist_pitch"),
    "head": ("neck_yaw", "neck_pitch"),
    "arms": tuple(f"{s}_{j}" for s in SIDES for j in ARM),
    "hands": tuple(f"{s}_{j}" for s in SIDES for j in HAND),
}

# (kp N m/rad, kd N m s/rad) per joint kind, shared by both sides.
_GAINS = {
    "hip_yaw": (300, 5), "hip_roll": (800, 15), "hip_pitch": (800, 15), "knee": (800, 15),
    "ankle_pitch": (1500, 10), "ankle_roll": (600, 2.5),
    "waist_yaw": (1500, 40), "waist_roll": (1500, 40), "waist_pitch": (2000, 50),
    "neck_yaw": (80, 1.0), "neck_pitch": (80, 2.0),
    "shoulder_pitch": (400, 20), "shoulder_roll": (400, 20), "shoulder_yaw": (200, 4),
    "elbow": (300, 10), "wrist_yaw": (40, 1.0), "wrist_pitch": (40, 1.0), "wrist_roll": (40, 1.0),
    "thumb_rotation": (0.5, 0.004), "thumb_flexion": (0.5, 0.004),
    "index": (0.5, 0.005), "middle": (0.5, 0.005), "ring": (0.5, 0.005), "little": (0.5, 0.005),
}


def _kind(joint: str) -> str:
    for side in SIDES:
        if joint.startswith(side + "_"):
            return joint[len(side) + 1:]
    return joint


ALL_JOINTS = tuple(j for group in GROUPS.values() for j in group)
KP = {j: float(_GAINS[_kind(j)][0]) for j in ALL_JOINTS}
KD = {j: float(_GAINS[_kind(j)][1]) for j in ALL_JOINTS}
#: Revision 2's fingers and thumb are four times as stiff, so that a hand squeezes what it holds with newtons, not
#: tenths (still inside the explicit law's bound of pybullet at 500 Hz: physics/drives.py).
FINGER_GAINS = {2: (2.0, 0.006), 3: (2.0, 0.006)}
#: Revision 3's thumb rotation is twice as stiff again: in a pinch the thumb alone opposes two or more fingers, and
#: a weaker thumb is pushed back (inside the explicit bound: the joint carries 1e-4 kg m^2 of rotor; the flexion,
#: which drives the light distal link alone, keeps the fingers' gains).
THUMB_GAINS = {3: (4.0, 0.012)}


def _gains(revision: int) -> tuple[dict, dict]:
    kp, kd = dict(KP), dict(KD)
    for gains, kinds in ((FINGER_GAINS, HAND), (THUMB_GAINS, HAND[:1])):
        if revision in gains:
            for joint in ALL_JOINTS:
                if _kind(joint) in kinds:
                    kp[joint], kd[joint] = gains[revision]
    return kp, kd

# A slight knee bend keeps the standing robot off its knee limits.
_STANDING = {f"{s}_{j}": v for s in SIDES for j, v in (("hip_pitch", -0.15), ("knee", 0.3), ("ankle_pitch", -0.15))}
# Torso leaning over the table, both grasp sites in front of the body with the palms facing
# down, joints well inside their limits (found by DLS IK with a mid-range null-space term).
# Mirroring: joints about y (pitch) and the already-mirrored shoulder roll keep their value,
# joints about x and z change sign.
_RIGHT_ARM_READY = {"shoulder_pitch": -0.231, "shoulder_roll": 0.54, "shoulder_yaw": 0.685, "elbow": -1.663,
                    "wrist_yaw": 0.963, "wrist_pitch": 0.628, "wrist_roll": -0.377}
_MIRROR_SIGN = {"shoulder_pitch": 1, "shoulder_roll": 1, "shoulder_yaw": -1, "elbow": 1,
                "wrist_yaw": -1, "wrist_pitch": 1, "wrist_roll": -1}
_ARMS_READY = {
    **_STANDING,
    "waist_pitch": 0.3,
    "neck_pitch": 0.5,
    **{f"right_{j}": v for j, v in _RIGHT_ARM_READY.items()},
    **{f"left_{j}": _MIRROR_SIGN[j] * v for j, v in _RIGHT_ARM_READY.items()},
}
KEYFRAMES = {"standing": _STANDING, "arms_ready": _ARMS_READY}


def _cameras() -> dict[str, CameraMount]:
    """The head camera at the front of the head sphere (r = 0.12 m about (0.01, 0, 0.14)), tilted 31 degrees down,
    so that at arms_ready it sees the table, both hands and what lies between them. A wrist camera under each wrist,
    4 cm off the palm (which faces -y on the left hand, +y on the right), looking down along the fingers at what
    the hand grasps: the eye-in-hand view of the field's imitation datasets."""
    cameras = {"head": CameraMount(link="head", position=(0.135, 0.0, 0.15), forward=(1.0, 0.0, -0.6),
                                   up=(0.6, 0.0, 1.0), fov=70.0)}
    for side in SIDES:
        palm = -1.0 if side == "left" else 1.0
        cameras[f"{side}_wrist"] = CameraMount(link=f"{side}_palm", position=(0.0, palm * 0.04, 0.02),
                                               forward=(0.0, palm * 0.08, -0.14), up=(0.0, -palm, 0.0), fov=90.0,
                                               near=0.01, far=2.0)
    return cameras


def _hand(side: str, revision: int) -> HandSpec:
    sign = 1.0 if side == "left" else -1.0
    return HandSpec(
        palm_link=f"{side}_palm",
        grasp_site=(0.0, -sign * 0.045, -0.09),
        arm_joints=tuple(f"{side}_{j}" for j in ARM),
        finger_joints=tuple(f"{side}_{j}" for j in HAND),
        finger_open=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        finger_closed=FINGER_CLOSED[revision],
        finger_close_from=FINGER_CLOSE_FROM[revision],
    )


def load(revision: int = DEFAULT_REVISION) -> RobotDescription:
    if revision not in REVISIONS:
        raise ValueError(f"humanoid43 has revisions {REVISIONS}, not {revision!r}")
    urdf = resources.files("training_ground.robots").joinpath("assets", URDF_PATHS[revision].name)
    kp, kd = _gains(revision)
    return describe(
        name="humanoid43",
        urdf_path=str(urdf),
        groups=GROUPS,
        kp=kp,
        kd=kd,
        keyframes=KEYFRAMES,
        hands={side: _hand(side, revision) for side in SIDES},
        base_link="pelvis",
        standing_base_height=STANDING_BASE_HEIGHT,
        # Hands against objects and tables, forearms against table edges, feet against the floor.
        contact_links=tuple(f"{side}_{link}" for side in SIDES for link in (
            "palm", *(("thumb_metacarpal",) if revision in COLLIDING_METACARPAL else ()), "thumb", "index", "middle",
            "ring", "little", "forearm", "foot")),
        feet=tuple(f"{side}_foot" for side in SIDES),
        sole_center=(FOOT_CENTER_X, 0.0, -ANKLE_HEIGHT),
        torso_link="torso",
        revision=revision,
        cameras=_cameras(),
    )
