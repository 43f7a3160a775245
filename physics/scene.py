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


#: Spheres in every object's cover (the numpy engine's contact model): one count for every shape,
#: so that the covers of a scene's objects stack into fixed-shape arrays.
COVER_SPHERES = 5


@dataclass(frozen=True)
class Sphere:
    """A ball of ``radius`` (m)."""

    radius: float

    def cover(self) -> tuple[np.ndarray, np.ndarray]:
        """Centres (COVER_SPHERES, 3) in the body frame and radii (COVER_SPHERES,): the ball itself, repeated."""
        return np.zeros((COVER_SPHERES, 3)), np.full(COVER_SPHERES, self.radius)

    def rounded_box(self) -> tuple[np.ndarray, float]:
        """The shape as the points within ``rounding`` of a box of ``core`` half extents (3,): every shape here is
        one, so one distance function serves them all (physics/numpy_objects.py's hand contacts)."""
        return np.zeros(3), self.radius

    def inertia(self, mass: float) -> np.ndarray:
        """Principal moments (3,) of the solid shape about its centre, in its body frame."""
        return np.full(3, 0.4 * mass * self.radius ** 2)

    def rest_height(self) -> float:
        """Height of the centre above a surface it rests on in its default orientation."""
        return self.radius

    def pybullet_shape(self, client, rgba) -> tuple[int, int]:
        """Collision and visual shape ids in a pybullet client."""
        import pybullet

        return (client.createCollisionShape(pybullet.GEOM_SPHERE, radius=self.radius),
                client.createVisualShape(pybullet.GEOM_SPHERE, radius=self.radius, rgbaColor=rgba))


@dataclass(frozen=True)
class Box:
    """A box of ``half_extents`` (m) along its body axes."""

    half_extents: tuple[float, float, float]

    def cover(self) -> tuple[np.ndarray, np.ndarray]:
        """Four spheres of the smallest half extent in the bottom corners of the box shrunk by that radius, one at the
        top centre."""
        half = np.asarray(self.half_extents, float)
        radius = half.min()
        inner = np.maximum(half - radius, 0.0)
        corners = np.array([[sx, sy, 0.0] for sx in (-1, 1) for sy in (-1, 1)]) * inner
        centers = np.concatenate([corners, [[0.0, 0.0, 0.0]]])
        centers[:, 2] = np.where(np.arange(COVER_SPHERES) < 4, -inner[2], inner[2])
        return centers, np.full(COVER_SPHERES, radius)

    def rounded_box(self) -> tuple[np.ndarray, float]:
        return np.asarray(self.half_extents, float), 0.0

    def inertia(self, mass: float) -> np.ndarray:
        hx, hy, hz = self.half_extents
        return mass / 3 * np.array([hy**2 + hz**2, hx**2 + hz**2, hx**2 + hy**2])

    def rest_height(self) -> float:
        return self.half_extents[2]

    def pybullet_shape(self, client, rgba) -> tuple[int, int]:
        import pybullet

        return (client.createCollisionShape(pybullet.GEOM_BOX, halfExtents=self.half_extents),
                client.createVisualShape(pybullet.GEOM_BOX, halfExtents=self.half_extents, rgbaColor=rgba))


@dataclass(frozen=True)
class Capsule:
    """A cylinder of ``radius`` and ``length`` (m) along its body z axis, with hemispherical caps."""

    radius: float
    length: float

    def cover(self) -> tuple[np.ndarray, np.ndarray]:
        """Spheres of the radius spaced evenly along the axis, cap centre to cap centre."""
        centers = np.zeros((COVER_SPHERES, 3))
        centers[:, 2] = np.linspace(-self.length / 2, self.length / 2, COVER_SPHERES)
        return centers, np.full(COVER_SPHERES, self.radius)

    def rounded_box(self) -> tuple[np.ndarray, float]:
        return np.array([0.0, 0.0, self.length / 2]), self.radius

    def inertia(self, mass: float) -> np.ndarray:
        radius = self.radius
        full = self.length + 2 * radius  # a cylinder of the capsule's full length: close enough for a roll
        side = mass * (3 * radius**2 + full**2) / 12
        return np.array([side, side, 0.5 * mass * radius**2])

    def rest_height(self) -> float:
        """Lying on its side (its default orientation lies the axis along z; a task turns it over)."""
        return self.radius

    def pybullet_shape(self, client, rgba) -> tuple[int, int]:
        import pybullet

        kwargs = dict(shapeType=pybullet.GEOM_CAPSULE, radius=self.radius)
        return (client.createCollisionShape(height=self.length, **kwargs),
                client.createVisualShape(length=self.length, rgbaColor=rgba, **kwargs))


#: ObjectParams.shape -> its class and the number of ``size`` values it takes.
SHAPES = {"sphere": (Sphere, 1), "box": (Box, 3), "capsule": (Capsule, 2)}


@dataclass(frozen=True)
class ObjectParams:
    """One free rigid object's per-episode physical parameters.

    shape: "capsule" (size = radius, cylinder length; axis along local z), "box"
    (size = half extents) or "sphere" (size = radius); see :data:`SHAPES`, an unknown shape or
    a size of the wrong length is a ValueError here. mass (kg), friction (Coulomb).
    """

    shape: str
    size: tuple[float, ...]
    mass: float
    friction: float
    rgba: tuple[float, float, float, float] = (0.85, 0.6, 0.3, 1.0)

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"unknown object shape {self.shape!r}; choose one of {tuple(SHAPES)}")
        count = SHAPES[self.shape][1]
        if len(self.size) != count:
            raise ValueError(f"a {self.shape} takes {count} size values, got {tuple(self.size)}")

    @property
    def geometry(self) -> Sphere | Box | Capsule:
        """The shape as its class, sized."""
        shape_class = SHAPES[self.shape][0]
        return shape_class(tuple(self.size)) if shape_class is Box else shape_class(*self.size)

    def rest_height(self) -> float:
        """Height of the centre above a surface the object rests on in its default orientation."""
        return self.geometry.rest_height()


@dataclass(frozen=True)
class Camera:
    """A fixed scene camera: the ``rgb_array`` picture at width x height, and the scene's view ``"scene"`` that image
    observations take at their own resolution (physics/cameras.py). It orbits ``target`` at ``distance`` (m), turned
    by ``yaw`` and tilted by ``pitch`` (degrees); fov is vertical (degrees), near and far the depth range (m)."""

    target: tuple[float, float, float]
    distance: float
    yaw: float
    pitch: float
    width: int = 320
    height: int = 240
    fov: float = 55.0
    near: float = 0.05
    far: float = 10.0


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

    @property
    def views(self) -> dict[str, Camera]:
        """The scene's fixed cameras by name: its picture camera, as ``"scene"``."""
        return {"scene": self.camera}

    def check_episode(self, episode: "EpisodeSetup") -> None:
        """ValueError unless ``episode`` fits this scene: one ObjectParams and finite pose per object, a garment
        only with a cloth."""
        if len(episode.objects) != self.num_objects:
            raise ValueError(f"scene {self.name!r} has {self.num_objects} objects; an episode gives {len(episode.objects)}")
        poses = np.asarray(episode.object_poses, float)
        if poses.size != 7 * self.num_objects or not np.isfinite(poses).all():
            raise ValueError(f"an episode needs one finite pose (7,) per object ({self.num_objects}), got shape {poses.shape}")
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
