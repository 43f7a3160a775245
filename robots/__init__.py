"""Robots are data: a URDF, joint groups, hands, gains and keyframes, checked against the 43-DoF contract."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import UnknownNameError
from . import humanoid43
from .description import (
    GROUP_SIZES,
    NUM_ACTUATED,
    HandSpec,
    RobotContractError,
    RobotDescription,
    check_contract,
    describe,
)

_REGISTRY = {"humanoid43": humanoid43.load}


def load(name: str = "humanoid43", **overrides) -> RobotDescription:
    """Load a robot by registered name, or any humanoid URDF path with a group mapping.

    ``load("humanoid43")`` returns the project's robot. ``load("path/to/robot.urdf",
    groups={...}, kp={...}, kd={...})`` loads another humanoid (cross-embodiment); its URDF
    must satisfy the 43-DoF contract or a RobotContractError names the offending joints.
    ``load("humanoid43", kp={...}, kd={...})`` replaces the named joints' gains of a registered
    robot (a vendor's stiff gains, say; the others keep theirs). Stiff gains need the numpy
    engine's ``drive="implicit"``: the explicit law of pybullet is stable only while
    ``kd dt / I`` and ``sqrt(kp / I) dt`` stay below about one.
    """
    if name in _REGISTRY:
        robot = _REGISTRY[name]()
        return _with_gains(robot, **overrides) if overrides else robot
    if str(name).endswith(".urdf"):
        if "groups" not in overrides:
            raise RobotContractError(f"loading URDF {name} needs groups={{group: joint names}} for {list(GROUP_SIZES)}")
        path = Path(name)
        return describe(name=path.stem, urdf_path=path, **overrides)
    raise UnknownNameError(f"unknown robot {name!r}; registered robots: {sorted(_REGISTRY)}, or pass a .urdf path with groups=")


def _with_gains(robot: RobotDescription, kp: dict | None = None, kd: dict | None = None, **other) -> RobotDescription:
    if other:
        raise RobotContractError(f"a registered robot ({robot.name!r}) takes only kp= and kd= overrides, "
                                 f"got {sorted(other)}")
    gains = {}
    for label, values, current in (("kp", kp, robot.kp), ("kd", kd, robot.kd)):
        if values is None:
            continue
        unknown = [joint for joint in values if joint not in robot.joint_names]
        if unknown:
            raise RobotContractError(f"{label} gains for robot {robot.name!r} name unknown joints {unknown}")
        array = current.copy()
        array[robot.joint_indices(list(values))] = [float(values[joint]) for joint in values]
        if not (np.isfinite(array).all() and (array >= 0).all()):
            raise RobotContractError(f"{label} gains for robot {robot.name!r} must be finite and >= 0")
        gains[label] = array
    return dataclasses.replace(robot, **gains)


__all__ = [
    "GROUP_SIZES", "NUM_ACTUATED", "HandSpec", "RobotContractError", "RobotDescription",
    "check_contract", "describe", "load",
]
