"""Batched rigid-body kinematics and dynamics of a robot, in numpy (fixed base).

A Pinocchio-style functional API:

    model = load_model(robot)                       # from the same URDF as pybullet
    poses = forward_kinematics(model, q)            # (N, links, 7) link frames in the world
    M = mass_matrix(model, q)                       # (N, 43, 43)
    b = bias_forces(model, q, v)                    # (N, 43): Coriolis, centrifugal and gravity
    J = jacobian(model, q, "right_palm", point)     # (N, 6, 43): linear rows, then angular

``q`` and ``v`` are (N, 43) in ``robot.joint_names`` order (pybullet's
``calculateMassMatrix``/``calculateInverseDynamics`` take the same joints in URDF order;
the tests map between the two). The base is fixed at ``base_position`` /
``base_quaternion`` (xyzw). World-frame quantities are taken about the base origin, not
the world origin, so precision does not depend on where the robot stands.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from ..robots import RobotDescription
from .rotations import quat_to_matrix, matrix_to_quat


@dataclass(frozen=True)
class Model:
    """Kinematic tree in topological order (parents before children). L links, n joints.

    link_names: (L,). parent: (L,) parent link index, -1 for the base.
    origin_rotation (L, 3, 3), origin_translation (L, 3): joint frame in the parent link frame.
    axis: (L, 3) joint axis in the link frame (zeros for fixed joints and the base).
    joint_of_link: (L,) index into q of the link's joint, -1 if none.
    mass (L,), com (L, 3) in the link frame, inertia (L, 3, 3) about the COM in the link frame.
    joint_lower, joint_upper (n,).
    """

    link_names: tuple[str, ...]
    parent: np.ndarray
    origin_rotation: np.ndarray
    origin_translation: np.ndarray
    axis: np.ndarray
    joint_of_link: np.ndarray
    mass: np.ndarray
    com: np.ndarray
    inertia: np.ndarray
    joint_names: tuple[str, ...]
    joint_lower: np.ndarray
    joint_upper: np.ndarray
    base_position: np.ndarray
    base_rotation: np.ndarray
    gravity: np.ndarray

    @property
    def num_links(self) -> int:
        return len(self.link_names)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def link_index(self, link: str) -> int:
        try:
            return self.link_names.index(link)
        except ValueError:
            raise KeyError(f"model has no link {link!r}") from None


def _floats(text: str | None, default=(0.0, 0.0, 0.0)) -> np.ndarray:
    return np.array([float(x) for x in text.split()]) if text else np.array(default, float)


def _rpy_matrix(rpy) -> np.ndarray:
    roll, pitch, yaw = rpy
    rx = np.array([[1, 0, 0], [0, math.cos(roll), -math.sin(roll)], [0, math.sin(roll), math.cos(roll)]])
    ry = np.array([[math.cos(pitch), 0, math.sin(pitch)], [0, 1, 0], [-math.sin(pitch), 0, math.cos(pitch)]])
    rz = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
    return rz @ ry @ rx


def load_model(robot: RobotDescription, base_position=(0.0, 0.0, 0.0), base_quaternion=(0.0, 0.0, 0.0, 1.0),
               gravity=(0.0, 0.0, -9.81)) -> Model:
    """Read the robot's URDF (the same file pybullet loads) into a Model with a fixed base."""
    root = ET.parse(robot.urdf_path).getroot()
    links = {}
    for element in root.findall("link"):
        inertial = element.find("inertial")
        mass, com, inertia = 0.0, np.zeros(3), np.zeros((3, 3))
        if inertial is not None:
            origin = inertial.find("origin")
            mass = float(inertial.find("mass").get("value"))
            com = _floats(origin.get("xyz") if origin is not None else None)
            rotation = _rpy_matrix(_floats(origin.get("rpy") if origin is not None else None))
            i = {k: float(v) for k, v in inertial.find("inertia").attrib.items()}
            tensor = np.array([[i["ixx"], i["ixy"], i["ixz"]], [i["ixy"], i["iyy"], i["iyz"]], [i["ixz"], i["iyz"], i["izz"]]])
            inertia = rotation @ tensor @ rotation.T
        links[element.get("name")] = (mass, com, inertia)
    joints = {}
    for element in root.findall("joint"):
        origin = element.find("origin")
        axis = element.find("axis")
        joints[element.find("child").get("link")] = dict(
            name=element.get("name"), type=element.get("type"), parent=element.find("parent").get("link"),
            translation=_floats(origin.get("xyz") if origin is not None else None),
            rotation=_rpy_matrix(_floats(origin.get("rpy") if origin is not None else None)),
            axis=_floats(axis.get("xyz") if axis is not None else None, (1.0, 0.0, 0.0)),
        )
    base = next(name for name in links if name not in joints)
    order = [base]
    for name in order:  # breadth-first: parents before children
        order += [child for child, joint in joints.items() if joint["parent"] == name]
    joint_index = {name: i for i, name in enumerate(robot.joint_names)}
    parent, rotations, translations, axes, joint_of_link = [], [], [], [], []
    for name in order:
        if name == base:
            parent.append(-1)
            rotations.append(np.eye(3))
            translations.append(np.zeros(3))
            axes.append(np.zeros(3))
            joint_of_link.append(-1)
            continue
        joint = joints[name]
        parent.append(order.index(joint["parent"]))
        rotations.append(joint["rotation"])
        translations.append(joint["translation"])
        moving = joint["type"] in ("revolute", "continuous")
        axis = joint["axis"] / np.linalg.norm(joint["axis"])
        axes.append(axis if moving else np.zeros(3))
        joint_of_link.append(joint_index[joint["name"]] if moving else -1)
    return Model(
        link_names=tuple(order),
        parent=np.array(parent),
        origin_rotation=np.array(rotations),
        origin_translation=np.array(translations),
        axis=np.array(axes),
        joint_of_link=np.array(joint_of_link),
        mass=np.array([links[n][0] for n in order]),
        com=np.array([links[n][1] for n in order]),
        inertia=np.array([links[n][2] for n in order]),
        joint_names=robot.joint_names,
        joint_lower=robot.joint_lower.copy(),
        joint_upper=robot.joint_upper.copy(),
        base_position=np.asarray(base_position, float),
        base_rotation=quat_to_matrix(np.asarray(base_quaternion, float)),
        gravity=np.asarray(gravity, float),
    )


def _axis_rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (N, 3, 3) about a fixed unit axis by angles (N,) (Rodrigues)."""
    x, y, z = axis
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def _link_frames(model: Model, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Link rotations (N, L, 3, 3) and origins (N, L, 3) relative to the base origin, world-aligned."""
    q = np.atleast_2d(np.asarray(q, float))
    n = q.shape[0]
    rotations = np.empty((n, model.num_links, 3, 3))
    origins = np.empty((n, model.num_links, 3))
    for link in range(model.num_links):
        parent = model.parent[link]
        if parent < 0:
            rotations[:, link] = model.base_rotation
            origins[:, link] = 0.0
            continue
        rotation = rotations[:, parent] @ model.origin_rotation[link]
        origins[:, link] = origins[:, parent] + rotations[:, parent] @ model.origin_translation[link]
        joint = model.joint_of_link[link]
        if joint >= 0:
            rotation = rotation @ _axis_rotation(model.axis[link], q[:, joint])
        rotations[:, link] = rotation
    return rotations, origins


def forward_kinematics(model: Model, q: np.ndarray) -> np.ndarray:
    """World poses (N, L, 7) of every link frame, in ``model.link_names`` order."""
    rotations, origins = _link_frames(model, q)
    return np.concatenate([origins + model.base_position, matrix_to_quat(rotations)], axis=-1)


def _ancestor_mask(model: Model) -> np.ndarray:
    """(L, L) bool: entry [link, j] is True when link j is ``link`` or one of its ancestors."""
    mask = np.zeros((model.num_links, model.num_links), dtype=bool)
    for link in range(model.num_links):
        walk = link
        while walk >= 0:
            mask[link, walk] = True
            walk = model.parent[walk]
    return mask


def _point_jacobians(model: Model, rotations, origins, links: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Jacobians (N, K, 6, n) of points (N, K, 3), relative to the base origin, fixed to ``links`` (K,)."""
    n = rotations.shape[0]
    axes_world = np.einsum("nlij,lj->nli", rotations, model.axis)  # zero for non-joints
    mask = _ancestor_mask(model)[links]  # (K, L)
    lever = points[:, :, None, :] - origins[:, None, :, :]  # (N, K, L, 3)
    linear = np.cross(axes_world[:, None], lever) * mask[None, :, :, None]
    angular = np.broadcast_to(axes_world[:, None], lever.shape) * mask[None, :, :, None]
    jac = np.zeros((n, len(links), 6, model.num_joints))
    moving = model.joint_of_link >= 0
    jac[..., :3, model.joint_of_link[moving]] = np.swapaxes(linear[:, :, moving], -1, -2)
    jac[..., 3:, model.joint_of_link[moving]] = np.swapaxes(angular[:, :, moving], -1, -2)
    return jac


def jacobian(model: Model, q: np.ndarray, link: str, point=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Jacobian (N, 6, n) of a point fixed in ``link``'s frame: world-frame linear rows then angular rows."""
    rotations, origins = _link_frames(model, q)
    index = model.link_index(link)
    world_point = origins[:, index] + rotations[:, index] @ np.asarray(point, float)
    return _point_jacobians(model, rotations, origins, np.array([index]), world_point[:, None])[:, 0]


def mass_matrix(model: Model, q: np.ndarray) -> np.ndarray:
    """Joint-space mass matrix (N, n, n): sum over links of m Jv^T Jv + Jw^T I_world Jw at each COM."""
    rotations, origins = _link_frames(model, q)
    coms = origins + np.einsum("nlij,lj->nli", rotations, model.com)
    links = np.arange(model.num_links)
    jac = _point_jacobians(model, rotations, origins, links, coms)  # (N, L, 6, n)
    inertia_world = rotations @ model.inertia @ np.swapaxes(rotations, -1, -2)
    linear, angular = jac[:, :, :3], jac[:, :, 3:]
    return (np.einsum("l,nlik,nlim->nkm", model.mass, linear, linear)
            + np.einsum("nlik,nlij,nljm->nkm", angular, inertia_world, angular))


def bias_forces(model: Model, q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Generalised bias forces (N, n) = C(q, v) v + g(q), by recursive Newton-Euler in the world frame.

    Equal to the joint torques that give zero joint acceleration, i.e. pybullet's
    ``calculateInverseDynamics(q, v, 0)`` under the same gravity.
    """
    q = np.atleast_2d(np.asarray(q, float))
    v = np.atleast_2d(np.asarray(v, float))
    rotations, origins = _link_frames(model, q)
    n, links = q.shape[0], model.num_links
    axes = np.einsum("nlij,lj->nli", rotations, model.axis)
    coms = origins + np.einsum("nlij,lj->nli", rotations, model.com)
    inertia_world = rotations @ model.inertia @ np.swapaxes(rotations, -1, -2)
    joint = model.joint_of_link
    rate = np.where(joint >= 0, v[:, np.maximum(joint, 0)], 0.0)  # (N, L)
    omega = np.zeros((n, links, 3))
    alpha = np.zeros((n, links, 3))
    accel_origin = np.zeros((n, links, 3))
    force = np.zeros((n, links, 3))
    moment = np.zeros((n, links, 3))
    for link in range(links):
        parent = model.parent[link]
        if parent < 0:
            accel_origin[:, link] = -model.gravity  # gravity as an upward base acceleration
        else:
            spin = axes[:, link] * rate[:, link, None]
            omega[:, link] = omega[:, parent] + spin
            alpha[:, link] = alpha[:, parent] + np.cross(omega[:, parent], spin)
            offset = origins[:, link] - origins[:, parent]
            accel_origin[:, link] = (accel_origin[:, parent] + np.cross(alpha[:, parent], offset)
                                     + np.cross(omega[:, parent], np.cross(omega[:, parent], offset)))
        to_com = coms[:, link] - origins[:, link]
        accel_com = (accel_origin[:, link] + np.cross(alpha[:, link], to_com)
                     + np.cross(omega[:, link], np.cross(omega[:, link], to_com)))
        force[:, link] = model.mass[link] * accel_com
        spin_momentum = np.einsum("nij,nj->ni", inertia_world[:, link], omega[:, link])
        moment[:, link] = (np.einsum("nij,nj->ni", inertia_world[:, link], alpha[:, link])
                           + np.cross(omega[:, link], spin_momentum) + np.cross(to_com, force[:, link]))
    torque = np.zeros((n, model.num_joints))
    for link in range(links - 1, -1, -1):
        parent = model.parent[link]
        if joint[link] >= 0:
            torque[:, joint[link]] = np.einsum("ni,ni->n", axes[:, link], moment[:, link])
        if parent >= 0:
            force[:, parent] += force[:, link]
            moment[:, parent] += moment[:, link] + np.cross(origins[:, link] - origins[:, parent], force[:, link])
    return torque
