"""Batched rigid-body kinematics and dynamics of a robot in numpy, fixed or floating base.

A Pinocchio-style functional API, every array batched over a leading axis N:

    model = load_model(robot, fixed_base=True)      # the same URDF pybullet loads
    poses = forward_kinematics(model, q)            # (N, links, 7) link frames in the world
    M = mass_matrix(model, q)                       # (N, nv, nv), composite-rigid-body algorithm
    b = bias_forces(model, q, v)                    # (N, nv): Coriolis, centrifugal and gravity (RNEA)
    J = jacobian(model, q, "right_palm", point)     # (N, 6, nv): linear rows, then angular rows

Layout (documented once, used everywhere):

- fixed base: ``q`` and ``v`` are (N, 43) in ``robot.joint_names`` order; the base sits at
  ``base_position`` / ``base_quaternion``. pybullet's ``calculateMassMatrix`` and
  ``calculateInverseDynamics`` take the same joints in URDF order.
- floating base: ``q`` is (N, 50) = base position (3, world), base orientation quaternion
  (4, **xyzw** as in pybullet), joints (43); ``v`` is (N, 49) = base linear velocity of the
  base origin (3, world frame), base angular velocity (3, world frame), joint velocities (43).

Spatial quantities are taken about the base origin with world-aligned axes, never about
the world origin, so precision does not degrade as the robot walks away. Loops run over
tree depth (about 13 levels for humanoid43), never over environments.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from ..robots import RobotDescription
from .rotations import matrix_to_quat, quat_to_matrix


@dataclass(frozen=True)
class Model:
    """Kinematic tree in topological order (parents before children). L links, n joints.

    link_names: (L,). parent: (L,) parent link index, -1 for the base link.
    origin_rotation (L, 3, 3), origin_translation (L, 3): joint frame in the parent link frame.
    axis: (L, 3) joint axis in the link frame (zeros for the base and fixed joints).
    joint_of_link: (L,) index of the link's joint into the joint coordinates, -1 if none.
    mass (L,), com (L, 3) in the link frame, inertia (L, 3, 3) about the COM in the link frame.
    levels: link indices grouped by depth in the tree, root level first.
    floating: whether the base has 6 free coordinates in front of the joints.
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
    floating: bool
    levels: tuple[np.ndarray, ...]
    ancestors: np.ndarray
    dof_parent: np.ndarray
    dof_chains: tuple[np.ndarray, ...]

    @property
    def num_links(self) -> int:
        return len(self.link_names)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def nq(self) -> int:
        return self.num_joints + (7 if self.floating else 0)

    @property
    def nv(self) -> int:
        return self.num_joints + (6 if self.floating else 0)

    @property
    def base_dofs(self) -> int:
        return 6 if self.floating else 0

    def link_index(self, link: str) -> int:
        try:
            return self.link_names.index(link)
        except ValueError:
            raise KeyError(f"model has no link {link!r}; links are {list(self.link_names)}") from None

    def split(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Base positions (N, 3), base rotations (N, 3, 3) and joint positions (N, n) from q."""
        q = np.atleast_2d(np.asarray(q, float))
        if q.shape[-1] != self.nq:
            kind = "floating-base (3 position + 4 quaternion xyzw + joints)" if self.floating else "fixed-base"
            raise ValueError(f"q must have {self.nq} columns for this {kind} model, got shape {q.shape}")
        if self.floating:
            quat = q[:, 3:7] / np.linalg.norm(q[:, 3:7], axis=-1, keepdims=True)
            return q[:, :3], quat_to_matrix(quat), q[:, 7:]
        n = q.shape[0]
        return np.broadcast_to(self.base_position, (n, 3)), np.broadcast_to(self.base_rotation, (n, 3, 3)), q


def _floats(text: str | None, default=(0.0, 0.0, 0.0)) -> np.ndarray:
    return np.array([float(x) for x in text.split()]) if text else np.array(default, float)


def _rpy_matrix(rpy) -> np.ndarray:
    roll, pitch, yaw = rpy
    rx = np.array([[1, 0, 0], [0, math.cos(roll), -math.sin(roll)], [0, math.sin(roll), math.cos(roll)]])
    ry = np.array([[math.cos(pitch), 0, math.sin(pitch)], [0, 1, 0], [-math.sin(pitch), 0, math.cos(pitch)]])
    rz = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _read_urdf(path) -> tuple[dict, dict]:
    """Links (name -> mass, com, inertia in the link frame) and joints (child name -> fields) of a URDF."""
    root = ET.parse(path).getroot()
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
            tensor = np.array([[i["ixx"], i["ixy"], i["ixz"]], [i["ixy"], i["iyy"], i["iyz"]],
                               [i["ixz"], i["iyz"], i["izz"]]])
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
    return links, joints


def load_model(robot: RobotDescription, fixed_base: bool = True, base_position=(0.0, 0.0, 0.0),
               base_quaternion=(0.0, 0.0, 0.0, 1.0), gravity=(0.0, 0.0, -9.81)) -> Model:
    """Read the robot's URDF into a Model (``base_*`` place a fixed base; a floating base takes them from q)."""
    links, joints = _read_urdf(robot.urdf_path)
    base = next(name for name in links if name not in joints)
    order = [base]
    for name in order:  # breadth-first: parents before children
        order += [child for child, joint in joints.items() if joint["parent"] == name]
    joint_index = {name: i for i, name in enumerate(robot.joint_names)}
    parent, rotations, translations, axes, joint_of_link, depth = [-1], [np.eye(3)], [np.zeros(3)], [np.zeros(3)], [-1], [0]
    for name in order[1:]:
        joint = joints[name]
        parent.append(order.index(joint["parent"]))
        depth.append(depth[parent[-1]] + 1)
        rotations.append(joint["rotation"])
        translations.append(joint["translation"])
        moving = joint["type"] in ("revolute", "continuous")
        axes.append(joint["axis"] / np.linalg.norm(joint["axis"]) if moving else np.zeros(3))
        joint_of_link.append(joint_index[joint["name"]] if moving else -1)
    parent, depth = np.array(parent), np.array(depth)
    ancestors = np.zeros((len(order), len(order)), dtype=bool)  # [link, j]: j is link or one of its ancestors
    for link in range(len(order)):
        walk = link
        while walk >= 0:
            ancestors[link, walk] = True
            walk = parent[walk]
    joint_of_link = np.array(joint_of_link)
    base_dofs = 0 if fixed_base else 6
    # Parent of each velocity coordinate in the tree (the base's six form a chain): the
    # sparsity pattern the LTDL factorisation of the mass matrix exploits.
    dof_parent = -np.ones(base_dofs + len(robot.joint_names), dtype=np.int64)
    dof_parent[1:base_dofs] = np.arange(base_dofs - 1)
    for link in range(1, len(order)):
        if joint_of_link[link] < 0:
            continue
        walk = parent[link]
        while walk > 0 and joint_of_link[walk] < 0:
            walk = parent[walk]
        own = base_dofs + joint_of_link[link]
        dof_parent[own] = base_dofs + joint_of_link[walk] if walk > 0 else base_dofs - 1
    if np.any(dof_parent >= np.arange(len(dof_parent))):
        raise ValueError("joint order must list every joint after its parent joint for the tree-sparse solve")
    chains = []
    for k in range(len(dof_parent)):
        chain, walk = [], dof_parent[k]
        while walk >= 0:
            chain.append(walk)
            walk = dof_parent[walk]
        chains.append(np.array(chain[::-1], dtype=np.int64))
    return Model(
        link_names=tuple(order), parent=parent, origin_rotation=np.array(rotations),
        origin_translation=np.array(translations), axis=np.array(axes), joint_of_link=joint_of_link,
        mass=np.array([links[n][0] for n in order]), com=np.array([links[n][1] for n in order]),
        inertia=np.array([links[n][2] for n in order]), joint_names=robot.joint_names,
        joint_lower=robot.joint_lower.copy(), joint_upper=robot.joint_upper.copy(),
        base_position=np.asarray(base_position, float), base_rotation=quat_to_matrix(np.asarray(base_quaternion, float)),
        gravity=np.asarray(gravity, float), floating=not fixed_base,
        levels=tuple(np.flatnonzero(depth == d) for d in range(depth.max() + 1)),
        ancestors=ancestors, dof_parent=dof_parent, dof_chains=tuple(chains),
    )


def _axis_rotations(axes: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotations (N, K, 3, 3) about unit axes (K, 3) by angles (N, K), Rodrigues' formula."""
    x, y, z = axes[:, 0], axes[:, 1], axes[:, 2]
    zero = np.zeros_like(x)
    skew = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    s, c = np.sin(angles)[..., None, None], np.cos(angles)[..., None, None]
    return np.eye(3) + s * skew + (1 - c) * (skew @ skew)


@dataclass
class Kinematics:
    """Per-link quantities for one batch of configurations (world-aligned, about the base origin).

    rotation (N, L, 3, 3); origin (N, L, 3): link frame origins relative to the base origin;
    axis (N, L, 3): joint axes in the world (zero for the base); com (N, L, 3) relative to
    the base origin; base_position (N, 3) in the world.
    """

    rotation: np.ndarray
    origin: np.ndarray
    axis: np.ndarray
    com: np.ndarray
    base_position: np.ndarray


def kinematics(model: Model, q: np.ndarray) -> Kinematics:
    base_position, base_rotation, joints = model.split(q)
    n = joints.shape[0]
    rotation = np.empty((n, model.num_links, 3, 3))
    origin = np.empty((n, model.num_links, 3))
    rotation[:, 0] = base_rotation
    origin[:, 0] = 0.0
    has_joint = model.joint_of_link >= 0
    angles = np.zeros((n, model.num_links))
    angles[:, has_joint] = joints[:, model.joint_of_link[has_joint]]
    joint_rotation = _axis_rotations(model.axis, angles)  # identity where the axis is zero
    for level in model.levels[1:]:
        parent_rotation = rotation[:, model.parent[level]]
        origin[:, level] = origin[:, model.parent[level]] + np.einsum(
            "nkij,kj->nki", parent_rotation, model.origin_translation[level])
        rotation[:, level] = parent_rotation @ model.origin_rotation[level] @ joint_rotation[:, level]
    axis = np.einsum("nlij,lj->nli", rotation, model.axis)
    com = origin + np.einsum("nlij,lj->nli", rotation, model.com)
    return Kinematics(rotation, origin, axis, com, np.array(base_position, copy=True))


def forward_kinematics(model: Model, q: np.ndarray) -> np.ndarray:
    """World poses (N, L, 7) of every link frame (position, quaternion xyzw), in ``model.link_names`` order."""
    kin = kinematics(model, q)
    return np.concatenate([kin.origin + kin.base_position[:, None], matrix_to_quat(kin.rotation)], axis=-1)


def motion_subspaces(model: Model, kin: Kinematics) -> np.ndarray:
    """Each link joint's motion axis as a spatial vector [angular; linear at the base origin], (N, L, 6)."""
    return np.concatenate([kin.axis, np.cross(kin.origin, kin.axis)], axis=-1)


def _point_jacobians(model: Model, kin: Kinematics, links: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Jacobians (N, K, 6, nv) of points (N, K, 3) (relative to the base origin) fixed to ``links`` (K,)."""
    n, nb = points.shape[0], model.base_dofs
    mask = model.ancestors[links]  # (K, L)
    lever = points[:, :, None, :] - kin.origin[:, None, :, :]  # (N, K, L, 3)
    linear = np.cross(kin.axis[:, None], lever) * mask[None, :, :, None]
    angular = kin.axis[:, None] * mask[None, :, :, None]
    jac = np.zeros((n, len(links), 6, model.nv))
    moving = model.joint_of_link >= 0
    columns = nb + model.joint_of_link[moving]
    jac[..., :3, columns] = np.swapaxes(linear[:, :, moving], -1, -2)
    jac[..., 3:, columns] = np.swapaxes(angular[:, :, moving], -1, -2)
    if model.floating:
        jac[..., :3, :3] = np.eye(3)
        # Angular base velocity w moves a point at p (relative to the base origin) by w x p.
        px, py, pz = points[..., 0], points[..., 1], points[..., 2]
        zero = np.zeros_like(px)
        jac[..., :3, 3:6] = -np.stack([np.stack([zero, -pz, py], -1), np.stack([pz, zero, -px], -1),
                                       np.stack([-py, px, zero], -1)], -2)
        jac[..., 3:, 3:6] = np.eye(3)
    return jac


def jacobian(model: Model, q: np.ndarray, link: str, point=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Jacobian (N, 6, nv) of a point fixed in ``link``'s frame: world-frame linear rows, then angular rows."""
    kin = kinematics(model, q)
    index = model.link_index(link)
    local = np.asarray(point, float)
    world_point = kin.origin[:, index] + kin.rotation[:, index] @ local
    return _point_jacobians(model, kin, np.array([index]), world_point[:, None])[:, 0]


def spatial_inertias(model: Model, kin: Kinematics) -> np.ndarray:
    """Each link's spatial inertia about the base origin, (N, L, 6, 6), [angular; linear] ordering."""
    rotated = kin.rotation @ model.inertia @ np.swapaxes(kin.rotation, -1, -2)
    c = kin.com
    zero = np.zeros_like(c[..., 0])
    cross = np.stack([np.stack([zero, -c[..., 2], c[..., 1]], -1), np.stack([c[..., 2], zero, -c[..., 0]], -1),
                      np.stack([-c[..., 1], c[..., 0], zero], -1)], -2)
    mass = model.mass[:, None, None]
    top_left = rotated - mass * cross @ cross
    top_right = mass * cross
    bottom_right = mass * np.eye(3)
    return np.concatenate([np.concatenate([top_left, top_right], -1),
                           np.concatenate([-top_right, np.broadcast_to(bottom_right, top_left.shape)], -1)], -2)


def _composite(model: Model, inertias: np.ndarray) -> np.ndarray:
    """Subtree sums of per-link quantities, (N, L, ...), accumulated leaf level to root level."""
    total = inertias.copy()
    for level in reversed(model.levels[1:]):
        np.add.at(total, (slice(None), model.parent[level]), total[:, level])
    return total


def mass_matrix(model: Model, q: np.ndarray, kin: Kinematics | None = None) -> np.ndarray:
    """Joint-space mass matrix (N, nv, nv) by the composite-rigid-body algorithm.

    H[i, j] = S_j . (Ic_i S_i) for j an ancestor of i, with Ic_i the composite spatial
    inertia of the subtree below joint i, everything about the base origin.
    """
    kin = kin or kinematics(model, q)
    composite = _composite(model, spatial_inertias(model, kin))
    subspace = motion_subspaces(model, kin)
    n, nb = subspace.shape[0], model.base_dofs
    force = np.einsum("nlij,nlj->nli", composite, subspace)  # (N, L, 6)
    coupling = np.einsum("nld,nkd->nlk", force, subspace) * model.ancestors  # [i, j]: j ancestor of i
    moving = np.flatnonzero(model.joint_of_link >= 0)
    dofs = nb + model.joint_of_link[moving]
    matrix = np.zeros((n, model.nv, model.nv))
    block = coupling[:, moving][:, :, moving]
    matrix[:, dofs[:, None], dofs] = block + np.swapaxes(block, -1, -2) * (1 - np.eye(len(moving)))
    if model.floating:
        # Base coordinates: [linear velocity of the base origin, angular velocity], while the
        # spatial algebra is [angular; linear], hence the swap of the two 3-blocks.
        swap = np.r_[3:6, 0:3]
        matrix[:, :6, :6] = composite[:, 0][:, swap][:, :, swap]
        base_force = force[:, moving][:, :, swap]  # Ic_i S_i seen by the base coordinates
        matrix[:, dofs, :6] = base_force
        matrix[:, :6, dofs] = np.swapaxes(base_force, -1, -2)
    return matrix


def bias_forces(model: Model, q: np.ndarray, v: np.ndarray, kin: Kinematics | None = None) -> np.ndarray:
    """Generalised bias forces (N, nv) = C(q, v) v + g(q), by recursive Newton-Euler.

    The torques (and, on a floating base, the base wrench: force, then moment about the base
    origin) that give zero generalised acceleration, like pybullet's
    ``calculateInverseDynamics(q, v, 0)`` under the same gravity.
    """
    kin = kin or kinematics(model, q)
    v = np.atleast_2d(np.asarray(v, float))
    if v.shape[-1] != model.nv:
        raise ValueError(f"v must have {model.nv} columns, got shape {v.shape}")
    n, links, nb = v.shape[0], model.num_links, model.base_dofs
    joint = model.joint_of_link
    rate = np.zeros((n, links))
    rate[:, joint >= 0] = v[:, nb + joint[joint >= 0]]
    omega = np.zeros((n, links, 3))
    alpha = np.zeros((n, links, 3))
    accel = np.zeros((n, links, 3))  # classical acceleration of each link origin, gravity as upward base acceleration
    accel[:, 0] = -model.gravity
    if model.floating:
        omega[:, 0] = v[:, 3:6]
        # Coordinates are the base origin's velocity, so the base origin has zero acceleration here.
    for level in model.levels[1:]:
        parent = model.parent[level]
        spin = kin.axis[:, level] * rate[:, level, None]
        omega[:, level] = omega[:, parent] + spin
        alpha[:, level] = alpha[:, parent] + np.cross(omega[:, parent], spin)
        offset = kin.origin[:, level] - kin.origin[:, parent]
        accel[:, level] = (accel[:, parent] + np.cross(alpha[:, parent], offset)
                           + np.cross(omega[:, parent], np.cross(omega[:, parent], offset)))
    to_com = kin.com - kin.origin
    accel_com = accel + np.cross(alpha, to_com) + np.cross(omega, np.cross(omega, to_com))
    force = model.mass[:, None] * accel_com
    inertia = kin.rotation @ model.inertia @ np.swapaxes(kin.rotation, -1, -2)
    momentum = np.einsum("nlij,nlj->nli", inertia, omega)
    # Moments about the base origin, so subtree sums need no transport terms.
    moment = (np.einsum("nlij,nlj->nli", inertia, alpha) + np.cross(omega, momentum)
              + np.cross(kin.com, force))
    force = _composite(model, force)
    moment = _composite(model, moment)
    torque = np.zeros((n, model.nv))
    moving = joint >= 0
    # Torque about a joint axis through the link origin p: a . (M_O - p x F).
    about_joint = moment[:, moving] - np.cross(kin.origin[:, moving], force[:, moving])
    torque[:, nb + joint[moving]] = np.einsum("nli,nli->nl", kin.axis[:, moving], about_joint)
    if model.floating:
        torque[:, :3] = force[:, 0]
        torque[:, 3:6] = moment[:, 0]
    return torque


def ltdl_factor(matrix: np.ndarray, chains: tuple[np.ndarray, ...]) -> np.ndarray:
    """Featherstone's LTDL factorisation H = L^T D L of tree-structured mass matrices (batched).

    ``chains[k]`` lists coordinate k's ancestors, root first (``Model.dof_chains``); every
    ancestor has a smaller index. Fill-in stays inside the ancestor pattern, so the cost is
    the sum of squared depths rather than nv^3. The result holds D on the diagonal and L at
    [k, ancestor of k]; the upper triangle is left stale.
    """
    h = matrix.copy()
    for k in range(h.shape[-1] - 1, -1, -1):
        chain = chains[k]
        if not len(chain):
            continue
        row = h[:, k, chain]
        a = row / h[:, k, k, None]
        # For i, j in the chain with j an ancestor-or-self of i: H[i, j] -= a_i H[k, j].
        lower = np.tril(np.ones((len(chain), len(chain)), dtype=bool))
        block = h[:, chain[:, None], chain]
        h[:, chain[:, None], chain] = np.where(lower, block - a[:, :, None] * row[:, None, :], block)
        h[:, k, chain] = a
    return h


def ltdl_solve(factor: np.ndarray, chains: tuple[np.ndarray, ...], rhs: np.ndarray) -> np.ndarray:
    """Solve H x = rhs given ``ltdl_factor(H, chains)``, batched over the leading axis."""
    x = rhs.copy()
    nv = x.shape[-1]
    for i in range(nv - 1, -1, -1):  # L^T y = rhs
        chain = chains[i]
        if len(chain):
            x[:, chain] -= factor[:, i, chain] * x[:, i, None]
    x /= np.diagonal(factor, axis1=-2, axis2=-1)
    for i in range(nv):  # L x = y
        chain = chains[i]
        if len(chain):
            x[:, i] -= np.einsum("nj,nj->n", factor[:, i, chain], x[:, chain])
    return x
