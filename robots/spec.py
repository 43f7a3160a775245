"""Robot spec files: what the tasks need to know about a published humanoid, in a TOML file beside its URDF.

A vendor's URDF says how the robot is built; the spec says how the training ground uses it::

    name = "g1"
    urdf = "g1.urdf"                 # relative to this file
    budget = 29                      # actuated joints (default 43)
    base_link = "pelvis"
    torso_link = "torso_link"        # the link balance tasks push
    standing_base_height = 0.79      # base link above the floor at the standing keyframe (m); left out:
                                     # computed from the feet's collision shapes
    feet = ["left_ankle_roll_link", "right_ankle_roll_link"]
    sole_center = [0.04, 0.0, -0.03] # centre of each sole in its foot's frame (m)
    contact_links = ["left_ankle_roll_link", "right_ankle_roll_link"]
    home_keyframe = "standing"

    [groups]                         # any names and sizes; every actuated joint in exactly one
    legs = ["left_hip_pitch_joint", ...]
    arms = [...]

    [kp]                             # joint name or fnmatch pattern -> gain; the first match wins
    "*_knee_joint" = 150.0
    "*" = 40.0

    [kd]
    "*" = 2.0

    [keyframes.standing]
    left_knee_joint = 0.3

    [hands.left]
    palm_link = "left_rubber_hand"
    grasp_site = [0.0, 0.0, -0.05]
    arm_joints = [...]
    finger_joints = [...]
    finger_open = [...]
    finger_closed = [...]
    finger_close_from = [...]        # optional: where each finger starts closing (HandSpec)

    [cameras.head]                   # any number of named cameras fixed to links (CameraMount)
    link = "head_link"
    position = [0.1, 0.0, 0.05]      # optical centre in the link's frame (m)
    forward = [1.0, 0.0, -0.6]       # optical axis in the link's frame
    up = [0.6, 0.0, 1.0]             # optional: the image's up (default +z)
    fov = 70.0                       # optional: vertical field of view (degrees); near, far: depth range (m)

Unknown keys are refused by name, as the task configs' are.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from .description import CameraMount, HandSpec, RobotContractError, RobotDescription, describe, read_urdf_joints, ACTUATED_TYPES

#: Top-level keys of a spec file and whether each is required.
SPEC_KEYS = {"name": False, "urdf": True, "budget": False, "groups": True, "kp": True, "kd": True, "keyframes": False,
             "hands": False, "base_link": False, "torso_link": False, "standing_base_height": False, "feet": False,
             "sole_center": False, "contact_links": False, "home_keyframe": False, "cameras": False}
HAND_KEYS = ("palm_link", "grasp_site", "arm_joints", "finger_joints", "finger_open", "finger_closed")
OPTIONAL_HAND_KEYS = ("finger_close_from",)
CAMERA_KEYS = ("link", "position", "forward")
OPTIONAL_CAMERA_KEYS = ("up", "fov", "near", "far")


def _cameras(path: Path, tables: dict) -> dict[str, CameraMount]:
    cameras = {}
    for name, camera in tables.items():
        if not isinstance(camera, dict):
            raise RobotContractError(f"robot spec {path}: [cameras.{name}] must be a table with keys {list(CAMERA_KEYS)}")
        missing = [key for key in CAMERA_KEYS if key not in camera]
        unknown = sorted(set(camera) - set(CAMERA_KEYS) - set(OPTIONAL_CAMERA_KEYS))
        if missing or unknown:
            raise RobotContractError(f"robot spec {path}: [cameras.{name}] lacks {missing}, has unknown keys {unknown}")
        try:
            cameras[name] = CameraMount(link=str(camera["link"]),
                                        **{key: tuple(float(x) for x in camera[key])
                                           for key in ("position", "forward", "up") if key in camera},
                                        **{key: float(camera[key]) for key in ("fov", "near", "far") if key in camera})
        except (TypeError, ValueError) as error:
            raise RobotContractError(f"robot spec {path}: [cameras.{name}]: {error}") from None
    return cameras


def _gains(path: Path, label: str, patterns: dict, joints: list[str]) -> dict[str, float]:
    """Per-joint gains from a table of joint names or fnmatch patterns (first match wins)."""
    if not isinstance(patterns, dict):
        raise RobotContractError(f"{path}: [{label}] must be a table of joint name or pattern -> gain")
    gains, unmatched = {}, []
    for joint in joints:
        value = next((value for pattern, value in patterns.items() if fnmatch.fnmatchcase(joint, pattern)), None)
        if value is None:
            unmatched.append(joint)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RobotContractError(f"{path}: [{label}] {joint!r} must be a number, got {value!r}")
        else:
            gains[joint] = float(value)
    if unmatched:
        raise RobotContractError(f"{path}: [{label}] gives no gain for {unmatched}; name them or add a pattern "
                                 f'such as "*" = value')
    unused = [pattern for pattern in patterns if not any(fnmatch.fnmatchcase(j, pattern) for j in joints)]
    if unused:
        raise RobotContractError(f"{path}: [{label}] names no actuated joint with {unused}")
    return gains


def load_spec(path: str | Path) -> RobotDescription:
    """The RobotDescription a spec file describes; every problem raises RobotContractError naming the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as error:
        raise RobotContractError(f"cannot read robot spec {path}: {error}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise RobotContractError(f"robot spec {path} is not valid TOML: {error}") from error
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise RobotContractError(f"robot spec {path}: unknown keys {unknown}; the keys are {sorted(SPEC_KEYS)}")
    missing = [key for key, required in SPEC_KEYS.items() if required and key not in data]
    if missing:
        raise RobotContractError(f"robot spec {path} lacks {missing}")
    urdf = (path.parent / data["urdf"]).resolve()
    if not urdf.is_file():
        raise RobotContractError(f"robot spec {path}: its urdf {data['urdf']!r} is not a file ({urdf})")
    groups = data["groups"]
    if not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
        raise RobotContractError(f"robot spec {path}: [groups] must map group names to lists of joint names")
    actuated = [j.name for j in read_urdf_joints(urdf) if j.type in ACTUATED_TYPES]
    hands = {}
    for side, hand in data.get("hands", {}).items():
        missing = [key for key in HAND_KEYS if key not in hand]
        unknown = sorted(set(hand) - set(HAND_KEYS) - set(OPTIONAL_HAND_KEYS))
        if missing or unknown:
            raise RobotContractError(f"robot spec {path}: [hands.{side}] lacks {missing}, has unknown keys {unknown}")
        hands[side] = HandSpec(palm_link=hand["palm_link"], grasp_site=tuple(float(x) for x in hand["grasp_site"]),
                               arm_joints=tuple(hand["arm_joints"]), finger_joints=tuple(hand["finger_joints"]),
                               finger_open=tuple(float(x) for x in hand["finger_open"]),
                               finger_closed=tuple(float(x) for x in hand["finger_closed"]),
                               finger_close_from=tuple(float(x) for x in hand.get("finger_close_from", ())))
    options = {key: data[key] for key in ("base_link", "torso_link", "standing_base_height", "home_keyframe")
               if key in data}
    options.setdefault("standing_base_height", None)  # from the feet, when a task builds its scene
    for key in ("feet", "contact_links"):
        if key in data:
            options[key] = tuple(data[key])
    if "sole_center" in data:
        options["sole_center"] = tuple(float(x) for x in data["sole_center"])
    return describe(name=data.get("name", path.stem), urdf_path=urdf, groups={g: tuple(v) for g, v in groups.items()},
                    kp=_gains(path, "kp", data["kp"], actuated), kd=_gains(path, "kd", data["kd"], actuated),
                    keyframes=data.get("keyframes"), hands=hands, group_sizes=None,
                    cameras=_cameras(path, data.get("cameras", {})),
                    budget=int(data.get("budget", 43)), **options)


__all__ = ["load_spec"]
