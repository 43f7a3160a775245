"""Named cameras and their geometry: which cameras a robot and a scene have, and where each one looks.

A camera is either fixed to a robot link (robots/description.py CameraMount: a head camera, a wrist
camera) or fixed in the scene (physics/scene.py Camera: the scene's views). Both engines picture
them through pybullet's renderer (physics/rendering.py); this module gives the matrices that
renderer takes, batched over environments, from the engine's own link poses, so the numpy
engine's cameras sit where its kinematics put them.

Matrices follow pybullet's (OpenGL's) convention: 16 floats, column-major, as
``pybullet.computeViewMatrix`` and ``computeProjectionMatrixFOV`` return them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet

from ..errors import InputError
from ..robots.description import CameraMount, RobotDescription
from .rotations import quat_to_matrix
from .scene import Camera, Scene


@dataclass(frozen=True)
class CameraView:
    """One named camera of an environment: on a robot link (``mount``) or fixed in the scene (``fixed``)."""

    name: str
    mount: CameraMount | None = None
    fixed: Camera | None = None

    @property
    def fov(self) -> float:
        return (self.mount or self.fixed).fov

    @property
    def near(self) -> float:
        return (self.mount or self.fixed).near

    @property
    def far(self) -> float:
        return (self.mount or self.fixed).far

    def projection(self, width: int, height: int) -> np.ndarray:
        """(16,) the projection matrix of a ``width`` x ``height`` picture."""
        return np.array(pybullet.computeProjectionMatrixFOV(self.fov, width / height, self.near, self.far))


def available_cameras(robot: RobotDescription, scene: Scene) -> dict[str, CameraView]:
    """Every camera an environment of ``robot`` in ``scene`` has, by name: the robot's, then the scene's views."""
    views = {name: CameraView(name, mount=mount) for name, mount in robot.cameras.items()}
    for name, camera in scene.views.items():
        if name in views:
            raise InputError(f"robot {robot.name!r} and scene {scene.name!r} both have a camera {name!r}; "
                             f"rename one of them")
        views[name] = CameraView(name, fixed=camera)
    return views


def resolve_cameras(robot: RobotDescription, scene: Scene, names) -> tuple[CameraView, ...]:
    """The named cameras, in the order given; an unknown or repeated name raises InputError listing the cameras."""
    available = available_cameras(robot, scene)
    names = list(names)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise InputError(
            f"unknown camera(s) {unknown}: robot {robot.name!r} has {sorted(robot.cameras) or 'none'} and scene "
            f"{scene.name!r} has {sorted(scene.views) or 'none'}. Name cameras from these (config key 'cameras'), "
            f"or declare the robot's in its spec file ([cameras.NAME]: link, position, forward, up, fov)")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"camera(s) {repeated} named more than once in 'cameras'")
    if not names:
        raise InputError("an image observation mode needs at least one camera (config key 'cameras'); "
                         f"this robot and scene have {sorted(available)}")
    return tuple(available[name] for name in names)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(..., 16) view matrices of cameras at ``eye`` looking at ``target`` with ``up`` (..., 3) each: pybullet's
    ``computeViewMatrix``, batched."""
    eye, target, up = (np.asarray(a, float) for a in (eye, target, up))
    forward = target - eye
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    side = np.cross(forward, up)
    side = side / np.linalg.norm(side, axis=-1, keepdims=True)
    true_up = np.cross(side, forward)
    matrix = np.zeros(eye.shape[:-1] + (4, 4))  # [column][row]: pybullet's column-major order, flattened
    matrix[..., :3, 0], matrix[..., :3, 1], matrix[..., :3, 2] = side, true_up, -forward
    matrix[..., 3, 0] = -(side * eye).sum(-1)
    matrix[..., 3, 1] = -(true_up * eye).sum(-1)
    matrix[..., 3, 2] = (forward * eye).sum(-1)
    matrix[..., 3, 3] = 1.0
    return matrix.reshape(eye.shape[:-1] + (16,))


def mount_frames(link_poses: np.ndarray, mount: CameraMount) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eye, forward and up (N, 3) each, world frame, of a camera ``mount`` on links at ``link_poses`` (N, 7)."""
    rotation = quat_to_matrix(link_poses[:, 3:])
    eye = link_poses[:, :3] + rotation @ np.asarray(mount.position, float)
    forward = rotation @ np.asarray(mount.forward, float)
    up = rotation @ np.asarray(mount.up, float)
    return eye, forward, up


def fixed_view(camera: Camera) -> np.ndarray:
    """(16,) the view matrix of a scene camera (orbit form: target, distance, yaw, pitch)."""
    return np.array(pybullet.computeViewMatrixFromYawPitchRoll(camera.target, camera.distance, camera.yaw,
                                                                camera.pitch, 0.0, 2))


def view_matrices(link_poses, views: tuple[CameraView, ...], num_envs: int) -> np.ndarray:
    """(num_envs, len(views), 16) view matrices. ``link_poses(links)`` gives (num_envs, len(links), 7) world poses
    (an engine's ``link_poses``); it is called once, for the links the mounted cameras sit on."""
    matrices = np.zeros((num_envs, len(views), 16))
    mounted = [i for i, view in enumerate(views) if view.mount is not None]
    if mounted:
        poses = link_poses([views[i].mount.link for i in mounted])
        for column, i in enumerate(mounted):
            eye, forward, up = mount_frames(poses[:, column], views[i].mount)
            matrices[:, i] = look_at(eye, eye + forward, up)
    for i, view in enumerate(views):
        if view.fixed is not None:
            matrices[:, i] = fixed_view(view.fixed)
    return matrices


def depth_from_buffer(buffer: np.ndarray, near: float, far: float) -> np.ndarray:
    """Metres along the optical axis from an OpenGL depth buffer in [0, 1] (1: nothing within ``far``)."""
    buffer = np.asarray(buffer, np.float64)
    return (far * near / (far - (far - near) * buffer)).astype(np.float32)


__all__ = ["CameraView", "available_cameras", "depth_from_buffer", "fixed_view", "look_at", "mount_frames",
           "resolve_cameras", "view_matrices"]
