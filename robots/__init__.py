"""Robots are data: a URDF, joint groups, hands, gains and keyframes, checked against the 43-DoF contract."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import UnknownNameError
from . import compact43, humanoid43
from .description import (
    GROUP_SIZES,
    NUM_ACTUATED,
    CameraMount,
    HandSpec,
    RobotContractError,
    RobotDescription,
    check_contract,
    check_hands,
    describe,
)
from .spec import load_spec

#: Registered robots: name -> a function that loads its description.
_REGISTRY = {"humanoid43": humanoid43.load, "compact43": compact43.load}
#: Robots with several revisions: name -> the revisions its loader takes (``loader(revision=...)``) and the one a
#: name alone loads. Any other robot has revision 1 only.
_REVISIONS = {"humanoid43": (humanoid43.REVISIONS, humanoid43.DEFAULT_REVISION)}


def register(name: str, spec) -> None:
    """Make a robot loadable by name, in ``load(name)``, ``gymnasium.make(id, robot=name)`` and ``--set robot=name``.

    ``spec``: a RobotDescription, the path of a spec file (physics of the robot in its URDF, what
    tasks need in the TOML beside it: robots/spec.py), or a function returning a description.
    A name is registered once: registering it again with an equal description is a no-op, with
    another one an error (a dataset records the name, which must keep meaning one robot).
    Registration lasts for the process; a dataset of a registered robot replays where the same
    registration runs (or was collected with the spec file's path, which it records).
    """
    if not isinstance(name, str) or not name or name.endswith((".urdf", ".toml")):
        raise RobotContractError(f"a robot's name must be a non-empty string that is not a file name, got {name!r}")
    if isinstance(spec, RobotDescription):
        loader = lambda: spec  # noqa: E731
    elif isinstance(spec, (str, Path)) and str(spec).endswith(".toml"):
        path = Path(spec).absolute()
        loader = lambda: load_spec(path)  # noqa: E731
    elif callable(spec):
        loader = spec
    else:
        raise RobotContractError(f"register({name!r}, ...) takes a RobotDescription, a .toml spec path or a loader "
                                 f"function, got {type(spec).__name__}")
    if name in _REGISTRY:
        if not _same(_REGISTRY[name](), loader()):
            raise RobotContractError(f"robot {name!r} is already registered as another robot; choose another name")
        return
    _REGISTRY[name] = loader


def robot_name(robot):
    """A RobotDescription registered under its name, as the name; anything else unchanged."""
    if isinstance(robot, RobotDescription):
        register(robot.name, robot)
        return robot.name
    return robot


def default_revision(name) -> int:
    """The revision ``load(name)`` gives: a robot with several names its default, any other has 1 (a spec file, a
    description its own)."""
    if isinstance(name, RobotDescription):
        return name.revision
    return _REVISIONS[name][1] if name in _REVISIONS else 1


def registered() -> list[str]:
    """Names that :func:`load` knows."""
    return sorted(_REGISTRY)


def _same(a: RobotDescription, b: RobotDescription) -> bool:
    fields = [f.name for f in dataclasses.fields(RobotDescription)]
    return all(_equal(getattr(a, f), getattr(b, f)) for f in fields)


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def load(name: str = "humanoid43", revision: int | None = None, **overrides) -> RobotDescription:
    """Load a robot by registered name, spec file or URDF path; ``revision``: which of its revisions (default: the
    robot's default, :func:`default_revision`; a dataset names the one it ran, so that it replays however the robot
    changed).

    ``load("humanoid43")`` returns the project's robot; ``load("name")`` one that :func:`register`
    made known. ``load("path/to/robot.toml")`` reads a spec file (robots/spec.py): a published
    humanoid with its own groups and budget. ``load("path/to/robot.urdf", groups={...}, kp={...},
    kd={...})`` loads another humanoid under the 43-DoF contract of humanoid43 (cross-embodiment);
    a RobotContractError names the offending joints.
    ``load(name, kp={...}, kd={...})`` replaces the named joints' gains (a vendor's stiff gains,
    say; the others keep theirs). Stiff gains need the numpy engine's ``drive="implicit"``: the
    explicit law of pybullet is stable only while ``kd dt / I`` and ``sqrt(kp / I) dt`` stay below about one.
    """
    if str(name).endswith(".urdf"):
        if "groups" not in overrides:
            raise RobotContractError(f"loading URDF {name} needs groups={{group: joint names}} for {list(GROUP_SIZES)}, "
                                     f"or a spec file (robots/spec.py) that declares its own groups")
        path = Path(name)
        return describe(name=path.stem, urdf_path=path, **overrides)
    if isinstance(name, RobotDescription):
        robot = name
    elif name in _REVISIONS:
        revisions, default = _REVISIONS[name]
        if revision is not None and revision not in revisions:
            raise UnknownNameError(f"robot {name!r} has revisions {list(revisions)}, not {revision!r}")
        robot = _REGISTRY[name](revision=default if revision is None else revision)
    elif name in _REGISTRY:
        robot = _REGISTRY[name]()
    elif str(name).endswith(".toml"):
        robot = load_spec(name)
    else:
        raise UnknownNameError(f"unknown robot {name!r}; registered robots: {registered()}. Pass a spec file "
                               f"(path/to/robot.toml), or register one with training_ground.robots.register(name, spec)")
    if revision is not None and robot.revision != revision:
        raise UnknownNameError(f"robot {robot.name!r} has revision {robot.revision} only, not {revision!r}")
    return _with_gains(robot, **overrides) if overrides else robot


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
    "GROUP_SIZES", "NUM_ACTUATED", "CameraMount", "HandSpec", "RobotContractError", "RobotDescription",
    "check_contract", "check_hands", "default_revision", "describe", "load", "load_spec", "register", "registered",
    "robot_name",
]
