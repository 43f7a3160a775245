"""Robots are data: a URDF, joint groups, hands, gains and keyframes, checked against the 43-DoF contract."""

from __future__ import annotations

from pathlib import Path

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
    """
    if name in _REGISTRY and not overrides:
        return _REGISTRY[name]()
    if str(name).endswith(".urdf"):
        if "groups" not in overrides:
            raise RobotContractError(f"loading URDF {name} needs groups={{group: joint names}} for {list(GROUP_SIZES)}")
        path = Path(name)
        return describe(name=path.stem, urdf_path=path, **overrides)
    raise UnknownNameError(f"unknown robot {name!r}; registered robots: {sorted(_REGISTRY)}, or pass a .urdf path with groups=")


__all__ = [
    "GROUP_SIZES", "NUM_ACTUATED", "HandSpec", "RobotContractError", "RobotDescription",
    "check_contract", "describe", "load",
]
