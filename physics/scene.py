"""Scene description types that both engines build from: static boxes, free objects, cameras and where the robot
stands; and :class:`EpisodeSetup`, one environment's initial state, which tasks draw and engines reset to.

They live in physics (below scenes) because the engines consume them; scenes/ fills them in.

Poses are ``(x, y, z, qx, qy, qz, qw)`` in the world frame (pybullet's quaternion order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cloth import ClothParams, ClothSpec


IDENTITY_QUAT = (0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class StaticBox:
    """An immovable box: ``half_extents`` (m), pose of its centre, Coulomb friction."""

    name: str
    position: tuple[float, float, float]
    half_extents: tuple[float, float, float]
    quaternion: tuple[float, float, float, float] = IDENTITY_QUAT
    friction: float = 0.8
    rgba: tuple[float, float, float, float] = (0.6, 0.45, 0.3, 1.0)


@dataclass(frozen=True)
class ObjectParams:
    """One free rigid object's per-episode physical parameters.

    shape: "capsule" (size = radius, cylinder length; axis along local z), "box"
    (size = half extents) or "sphere" (size = radius). mass (kg), friction (Coulomb).
    """

    shape: str
    size: tuple[float, ...]
    mass: float
    friction: float
    rgba: tuple[float, float, float, float] = (0.85, 0.6, 0.3, 1.0)

    def half_height_lying(self) -> float:
        """Height of the centre above a surface the object rests on in its default orientation."""
        if self.shape == "capsule":
            return self.size[0]
        if self.shape == "box":
            return self.size[2]
        return self.size[0]


@dataclass(frozen=True)
class Camera:
    """A fixed scene camera for ``rgb_array`` images."""

    target: tuple[float, float, float]
    distance: float
    yaw: float
    pitch: float
    width: int = 320
    height: int = 240
    fov: float = 55.0


@dataclass(frozen=True)
class Scene:
    """Everything an engine builds once: floor, static boxes, free object names, robot mount.

    fixed_base: the pelvis is mounted on a stand at ``robot_position`` (table-top work);
    otherwise the robot stands on its feet (floating base).
    """

    name: str
    static_boxes: tuple[StaticBox, ...]
    object_names: tuple[str, ...]
    robot_position: tuple[float, float, float]
    robot_quaternion: tuple[float, float, float, float] = IDENTITY_QUAT
    fixed_base: bool = True
    floor_friction: float = 0.9
    camera: Camera = field(default_factory=lambda: Camera((0.4, 0.0, 0.9), 2.2, 50.0, -25.0))
    cloth: ClothSpec | None = None  # a garment (physics/cloth.py), or none

    @property
    def num_objects(self) -> int:
        return len(self.object_names)

    def check_episode(self, episode: "EpisodeSetup") -> None:
        """ValueError unless ``episode`` fits this scene: one ObjectParams per object, a garment only with a cloth."""
        if len(episode.objects) != self.num_objects:
            raise ValueError(f"scene {self.name!r} has {self.num_objects} objects; an episode gives {len(episode.objects)}")
        if episode.cloth is not None and self.cloth is None:
            raise ValueError(f"scene {self.name!r} has no cloth; reset without cloth parameters")


@dataclass(frozen=True)
class ClothSetup:
    """One episode's garment: its ClothParams (physics/cloth.py), laid flat at ``pose`` (7,)."""

    params: ClothParams
    pose: np.ndarray


@dataclass(frozen=True)
class EpisodeSetup:
    """One environment's initial state, as a task's ``sample_episode`` draws it and ``Engine.reset`` takes it.

    joint_pos, joint_vel: (num_joints,); no joint_vel starts the joints at rest.
    objects: one ObjectParams per scene object, resting at object_poses (num_objects, 7).
    cloth: the garment of a scene with a cloth; None takes the scene's ClothSpec defaults.
    """

    joint_pos: np.ndarray
    objects: tuple[ObjectParams, ...] = ()
    object_poses: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))
    cloth: ClothSetup | None = None
    joint_vel: np.ndarray | None = None

    @classmethod
    def per_env(cls, joint_pos, objects=None, object_poses=None) -> list["EpisodeSetup"]:
        """One setup per row of joint_pos (n, num_joints), with objects (per env, one ObjectParams per scene
        object) at object_poses (n, num_objects, 7); no objects for a scene without any."""
        joint_pos = np.asarray(joint_pos, float)
        objects = [()] * len(joint_pos) if objects is None else objects
        object_poses = np.zeros((len(joint_pos), 0, 7)) if object_poses is None else np.asarray(object_poses, float)
        return [cls(q, tuple(params), poses) for q, params, poses in zip(joint_pos, objects, object_poses)]
