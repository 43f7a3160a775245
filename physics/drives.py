"""Whether a PD drive law can integrate a robot's gains at a step: the single-joint criterion.

For one joint of inertia I under the PD law at step dt, with the error e = q - q* and x = dt v,
semi-implicit Euler is a linear 2x2 recurrence in (x, e) with s = kp dt^2 / I, c = kd dt / I:

- explicit:          x' = (1 - c) x - s e,            e' = e + x';  stable iff c < 2 and s + 2 c < 4;
- damping_implicit:  x' = (x - s e) / (1 + c),         e' = e + x';  stable iff s < 4 + 2 c;
- implicit:          x' = (x - s e) / (1 + c + s),     e' = e + x';  stable for every s, c > 0

(Jury's conditions on the trace and determinant). :func:`drive_margins` is the ratio to the bound,
so a margin of 1 or more means the joint, on its own, grows without bound. I is the effective
inertia at the robot's home posture with the other joints free, 1 / (M^-1)_ii, the smallest the joint
sees there; humanoid43's own gains reach 0.65 (ankle roll) on the explicit law, ten times those 6.5.
Scaling kp and kd together keeps s / c, so the damping-implicit law holds any multiple of a stable pair
of gains; it fails for stiff, lightly damped drives (kp dt > 2 kd, with kp dt^2 / I large).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..robots import RobotDescription
from .model import load_model, mass_matrix


def drive_margins(robot: RobotDescription, drive: str, dt: float, fixed_base: bool = True) -> np.ndarray:
    """(num_joints,): each joint's distance to instability under ``drive`` at ``dt``; >= 1 is unstable."""
    if drive == "implicit":
        return np.zeros(robot.num_joints)
    model = load_model(robot, fixed_base=fixed_base)
    q = robot.home_posture[None]
    if model.floating:
        q = np.concatenate([[[0.0, 0.0, robot.standing_base_height, 0.0, 0.0, 0.0, 1.0]], q], axis=1)
    inverse = np.linalg.inv(mass_matrix(model, q)[0])
    inertia = 1.0 / np.diag(inverse)[model.base_dofs:]
    s, c = robot.kp * dt * dt / inertia, robot.kd * dt / inertia
    if drive == "explicit":
        return np.maximum(c / 2.0, (s + 2.0 * c) / 4.0)
    return s / (4.0 + 2.0 * c)


def check_drive_stability(robot: RobotDescription, drive: str, dt: float, fixed_base: bool, engine: str) -> None:
    """Refuse gains that ``drive`` cannot integrate at ``dt``, naming the worst joints and the way out."""
    margins = drive_margins(robot, drive, dt, fixed_base)
    bad = np.flatnonzero(margins >= 1.0)
    if bad.size:
        worst = bad[np.argsort(-margins[bad])][:4]
        named = ", ".join(f"{robot.joint_names[i]} ({margins[i]:.1f})" for i in worst)
        raise InputError(
            f"the PD gains of robot {robot.name!r} are unstable under the {drive} drive law at physics_dt={dt:g} s on the "
            f"{engine} engine: {bad.size} joint(s) past the single-joint bound (margin >= 1: {named}{', ...' if bad.size > 4 else ''}). "
            f"Use backend='numpy' with drive='implicit', a smaller physics_dt, or softer gains.")
