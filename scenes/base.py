"""Helpers shared by the scene files; the description types themselves are in physics/scene.py."""

from __future__ import annotations

import functools

import numpy as np

from .. import robots
from ..physics.model import forward_kinematics, load_model
from ..physics.rotations import quat_to_matrix
from ..physics.scene import StaticBox


def table_boxes(center: tuple[float, float], half: tuple[float, float], height: float,
                top_rgba=(0.75, 0.7, 0.62, 1.0), friction: float = 0.8) -> list[StaticBox]:
    """A work table: a 4 cm top whose upper face is at ``height`` and four legs, as static boxes."""
    (cx, cy), (hx, hy) = center, half
    top = StaticBox("table_top", (cx, cy, height - 0.02), (hx, hy, 0.02), friction=friction, rgba=top_rgba)
    legs = [
        StaticBox(f"table_leg_{i}", (cx + sx * (hx - 0.03), cy + sy * (hy - 0.03), (height - 0.04) / 2),
                  (0.025, 0.025, (height - 0.04) / 2), rgba=(0.4, 0.4, 0.42, 1.0))
        for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1)))
    ]
    return [top, *legs]


def _reach_and_shoulder(robot) -> tuple[float, np.ndarray]:
    """The right arm's reach (its first joint to its grasp site, arm hanging straight at the zero posture) and
    that joint's world position at the ``arms_ready`` keyframe with the base at its standing height."""
    hand = robot.hands["right"]
    model = load_model(robot, fixed_base=True)
    shoulder = next(i for i, joint in enumerate(model.joint_of_link)
                    if joint >= 0 and model.joint_names[joint] == hand.arm_joints[0])
    palm = model.link_index(hand.palm_link)

    def points(q):
        poses = forward_kinematics(model, q[None])[0]
        site = poses[palm, :3] + quat_to_matrix(poses[palm, 3:]) @ np.asarray(hand.grasp_site)
        return poses[shoulder, :3], site

    straight = np.clip(np.zeros(robot.num_joints), robot.joint_lower, robot.joint_upper)
    top, site = points(straight)
    shoulder_ready, _ = points(robot.keyframe("arms_ready"))
    return float(np.linalg.norm(site - top)), shoulder_ready + np.array([0.0, 0.0, robot.standing_base_height])


@functools.cache
def _reference_arm() -> tuple[float, np.ndarray]:
    return _reach_and_shoulder(robots.load("humanoid43"))


def table_mount(robot, work_point) -> tuple[float, float]:
    """Where a table scene mounts ``robot``: (base height, forward) of its base (m), the scenes' arguments.

    humanoid43 stands with its feet on the floor (forward 0, its standing base height), the tables were laid out
    for its arms. Another robot's stand puts its right shoulder (at ``arms_ready``) where humanoid43's is, drawn
    towards ``work_point`` (world x, y, z on the table) by the share its arm is shorter: the same reach to the
    work point in units of the arm, so a small robot sits closer and lower (or higher, on a riser) at the same
    table. Exactly humanoid43's mount for humanoid43.
    """
    reference_reach, reference_shoulder = _reference_arm()
    reach, shoulder = _reach_and_shoulder(robot)
    scale = reach / reference_reach
    target = reference_shoulder + (1.0 - scale) * (np.asarray(work_point, float) - reference_shoulder)
    offset = target - shoulder
    return float(robot.standing_base_height + offset[2]), float(offset[0])
