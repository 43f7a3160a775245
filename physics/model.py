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

import functools
import heapq
import math
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

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
    # Derived, batch-last constants of the hot path (recomputed by dataclasses.replace).
    _terms: tuple = field(init=False, repr=False, compare=False)
    _translation: np.ndarray = field(init=False, repr=False, compare=False)
    _axis_last: np.ndarray = field(init=False, repr=False, compare=False)
    _com_last: np.ndarray = field(init=False, repr=False, compare=False)
    _inertia_last: np.ndarray = field(init=False, repr=False, compare=False)
    _level_parents: tuple = field(init=False, repr=False, compare=False)
    _level_groups: tuple = field(init=False, repr=False, compare=False)
    _pairs: tuple = field(init=False, repr=False, compare=False)
    _moving_links: np.ndarray = field(init=False, repr=False, compare=False)
    _parent_or_self: np.ndarray = field(init=False, repr=False, compare=False)
    _rate_index: np.ndarray = field(init=False, repr=False, compare=False)
    _angle_index: np.ndarray = field(init=False, repr=False, compare=False)
    _sparse: "SparsePattern" = field(init=False, repr=False, compare=False)
    _base_block: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        derived = {
            "_terms": _local_rotation_terms(self),
            "_translation": np.ascontiguousarray(self.origin_translation.T),
            "_axis_last": np.ascontiguousarray(self.axis.T),
            "_com_last": np.ascontiguousarray(self.com.T),
            "_inertia_last": np.ascontiguousarray(np.moveaxis(self.inertia, 0, -1)),
            "_level_parents": tuple((_index(level), _index(self.parent[level])) for level in self.levels[1:]),
            "_moving_links": np.flatnonzero(self.joint_of_link >= 0),
            "_parent_or_self": np.maximum(self.parent, 0),
        }
        derived["_rate_index"] = (6 if self.floating else 0) + self.joint_of_link[derived["_moving_links"]]
        derived["_angle_index"] = (7 if self.floating else 0) + self.joint_of_link[derived["_moving_links"]]
        groups = []
        for level in self.levels[1:]:
            ordered = level[np.argsort(self.parent[level], kind="stable")]
            parents, starts = np.unique(self.parent[ordered], return_index=True)
            # One child per parent: the subtree sum is a plain add (reduceat of one-element segments copies).
            groups.append((_index(ordered), _index(parents), None if len(parents) == len(ordered) else starts))
        derived["_level_groups"] = tuple(groups)
        moving = derived["_moving_links"]
        rows, cols = [], []
        for i in moving:
            for j in moving:
                if self.ancestors[i, j]:
                    rows.append(i)
                    cols.append(j)
        rows, cols = np.array(rows), np.array(cols)
        base = 6 if self.floating else 0
        derived["_pairs"] = (rows, cols, base + self.joint_of_link[rows], base + self.joint_of_link[cols])
        derived["_sparse"] = SparsePattern.build(self.dof_chains, rows, cols, self.joint_of_link, base)
        lower = [(i, j) for i in range(base) for j in range(i + 1)]  # the base block's entries on the pattern
        derived["_base_block"] = (np.array([_base_position(derived["_sparse"], i, j) for i, j in lower], dtype=np.int64),
                                  np.array([i for i, _ in lower], dtype=np.int64),
                                  np.array([j for _, j in lower], dtype=np.int64))
        for name, value in derived.items():
            object.__setattr__(self, name, value)

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


def _index(indices: np.ndarray):
    """``indices`` as a slice where they are a contiguous increasing range (a view rather than a gather), else as is."""
    indices = np.asarray(indices)
    if len(indices) and np.array_equal(indices, np.arange(indices[0], indices[0] + len(indices))):
        return slice(int(indices[0]), int(indices[0]) + len(indices))
    return indices


def _floats(text: str | None, default=(0.0, 0.0, 0.0)) -> np.ndarray:
    return np.array([float(x) for x in text.split()]) if text else np.array(default, float)


def _rpy_matrix(rpy) -> np.ndarray:
    roll, pitch, yaw = rpy
    rx = np.array([[1, 0, 0], [0, math.cos(roll), -math.sin(roll)], [0, math.sin(roll), math.cos(roll)]])
    ry = np.array([[math.cos(pitch), 0, math.sin(pitch)], [0, 1, 0], [-math.sin(pitch), 0, math.cos(pitch)]])
    rz = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
    return rz @ ry @ rx


#: What a moving link without ``<inertial>`` weighs on both engines: 1 g (kg) and 1e-6 kg m^2 about each axis
#: through its origin, a solid sphere of 5 cm radius. Small beside any real link, so that the robot is the one its
#: URDF describes, yet not zero, so that a joint whose subtree carries no mass keeps a finite inertia (a massless
#: leaf makes the mass matrix singular). pybullet on its own gives such links 1 kg and 1 kg m^2, absurd for a
#: sensor or motor frame; the pybullet engine sets these values instead (physics/pybullet_engine.py).
MISSING_INERTIAL_MASS = 1e-3
MISSING_INERTIAL_INERTIA = 1e-6


def _read_urdf(path) -> tuple[dict, dict]:
    """Links (name -> mass, com, inertia in the link frame, or None without ``<inertial>``) and joints
    (child name -> fields) of a URDF."""
    root = ET.parse(path).getroot()
    links = {}
    for element in root.findall("link"):
        inertial = element.find("inertial")
        if inertial is None:
            links[element.get("name")] = None
            continue
        origin = inertial.find("origin")
        mass = float(inertial.find("mass").get("value"))
        com = _floats(origin.get("xyz") if origin is not None else None)
        rotation = _rpy_matrix(_floats(origin.get("rpy") if origin is not None else None))
        i = {k: float(v) for k, v in inertial.find("inertia").attrib.items()}
        tensor = np.array([[i["ixx"], i["ixy"], i["ixz"]], [i["ixy"], i["iyy"], i["iyz"]],
                           [i["ixz"], i["iyz"], i["izz"]]])
        links[element.get("name")] = (mass, com, rotation @ tensor @ rotation.T)
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


def _fill_missing_inertials(urdf_path, links: dict, joints: dict, fixed_base: bool) -> tuple[str, ...]:
    """The one rule for links without ``<inertial>``, both engines' (vendor URDFs have them for sensor and motor
    frames): ``links``' None entries are filled in place; returns their names.

    A link welded to its parent (a fixed joint) or to the world (the root of a fixed base) is massless: it merges
    into what it is welded to and changes nothing. A link that moves on its own (a joint that is not fixed, or the
    root of a floating base) gets :data:`MISSING_INERTIAL_MASS` and :data:`MISSING_INERTIAL_INERTIA` at its origin,
    with a warning naming it, since the URDF leaves its dynamics undefined.
    """
    filled = []
    for name, inertial in links.items():
        if inertial is not None:
            continue
        welded = joints[name]["type"] == "fixed" if name in joints else fixed_base
        if welded:
            mass, inertia = 0.0, 0.0
        else:
            mass, inertia = MISSING_INERTIAL_MASS, MISSING_INERTIAL_INERTIA
            warnings.warn(f"link {name!r} of {urdf_path} moves but has no <inertial>: both engines give it {mass} kg "
                          f"and {inertia} kg m^2 at its origin (physics/model.py MISSING_INERTIAL_MASS)", stacklevel=3)
        links[name] = (mass, np.zeros(3), np.eye(3) * inertia)
        filled.append(name)
    return tuple(filled)


def urdf_inertials(urdf_path, fixed_base: bool) -> tuple[dict[str, tuple[float, np.ndarray, np.ndarray]], tuple[str, ...]]:
    """Every link's mass, centre of mass and inertia about it (link frame) as :func:`load_model` reads them, and the
    names of the links that had no ``<inertial>`` (filled by :func:`_fill_missing_inertials`' rule): for an engine
    that loads the URDF itself (pybullet) to set the same."""
    links, joints = _read_urdf(urdf_path)
    return links, _fill_missing_inertials(urdf_path, links, joints, fixed_base)


def load_model(robot: RobotDescription, fixed_base: bool = True, base_position=(0.0, 0.0, 0.0),
               base_quaternion=(0.0, 0.0, 0.0, 1.0), gravity=(0.0, 0.0, -9.81)) -> Model:
    """Read the robot's URDF into a Model (``base_*`` place a fixed base; a floating base takes them from q)."""
    links, joints = _read_urdf(robot.urdf_path)
    _fill_missing_inertials(robot.urdf_path, links, joints, fixed_base)
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


# ---------------------------------------------------------------------------------------------
# Internals run batch-LAST: arrays shaped (..., links, N), with the 3x3 algebra written out as
# broadcast products. That layout keeps every numpy call long and contiguous, which measured
# several times faster than stacks of small matrices (see DESIGN.md's speed notes).


def _mat_mat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, 3, ...) @ (3, 3, ...) element-wise over the trailing axes."""
    return (a[:, :, None] * b[None]).sum(axis=1)


def _mat_vec(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(3, 3, ...) @ (3, ...)."""
    return (a * v[None]).sum(axis=1)


_NEXT, _AFTER_NEXT = np.array([1, 2, 0]), np.array([2, 0, 1])
#: Elements below which :func:`_cross` gathers (fewest numpy calls) rather than writing into one output.
_SMALL_CROSS = 3 * 2048


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross products of (3, ...) arrays: c_i = a_(i+1) b_(i+2) - a_(i+2) b_(i+1), the same products either way.

    Small arrays (one environment) pay per numpy call, so they take four gathers and three operations;
    large ones pay for temporaries, so they write the three rows into one preallocated output.
    """
    if a.size <= _SMALL_CROSS and b.size <= _SMALL_CROSS:
        return a.take(_NEXT, 0) * b.take(_AFTER_NEXT, 0) - a.take(_AFTER_NEXT, 0) * b.take(_NEXT, 0)
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), np.result_type(a, b))
    a0, a1, a2 = a
    b0, b1, b2 = b
    np.multiply(a1, b2, out=out[0])
    out[0] -= a2 * b1
    np.multiply(a2, b0, out=out[1])
    out[1] -= a0 * b2
    np.multiply(a0, b1, out=out[2])
    out[2] -= a1 * b0
    return out


def _cross_last(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross(a, b)`` of (..., 3) arrays, broadcast: the same products and differences, without its axis juggling."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size <= _SMALL_CROSS and b.size <= _SMALL_CROSS:
        return a.take(_NEXT, -1) * b.take(_AFTER_NEXT, -1) - a.take(_AFTER_NEXT, -1) * b.take(_NEXT, -1)
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    np.multiply(a1, b2, out=out[..., 0])
    out[..., 0] -= a2 * b1
    np.multiply(a2, b0, out=out[..., 1])
    out[..., 1] -= a0 * b2
    np.multiply(a0, b1, out=out[..., 2])
    out[..., 2] -= a1 * b0
    return out


def ordered_sum(array: np.ndarray, axis: int) -> np.ndarray:
    """Sum along ``axis`` strictly in index order.

    ``ndarray.sum`` switches to pairwise summation when the summed axis is effectively the
    innermost one, as it is for a batch-last array with a single environment, so its rounding
    would depend on the batch size; env i of a batch must match a single env bit for bit.
    """
    array = np.moveaxis(array, axis, 0)
    total = array[0].copy()
    for row in array[1:]:
        total += row
    return total


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


@dataclass
class Kinematics:
    """Per-link quantities for one batch, batch-last, world-aligned, about the base origin.

    rotation (3, 3, L, N); origin (3, L, N): link frame origins relative to the base origin;
    axis (3, L, N): joint axes in the world (zero for the base); com (3, L, N) relative to the
    base origin; base_position (3, N) in the world.
    """

    rotation: np.ndarray
    origin: np.ndarray
    axis: np.ndarray
    com: np.ndarray
    base_position: np.ndarray
    link_inertia: np.ndarray

    #: (L,) each link's parent, the base its own (its row of parent_offset is zero and unused).
    parent: np.ndarray | None = None
    #: Velocity-dependent results by (name, the velocities' bytes): one substep's contacts and RNEA, and
    #: the reads between two steps, share them. The arrays are read-only.
    velocity_cache: dict = field(default_factory=dict, repr=False)

    def cached_by_velocity(self, name: str, v_last: np.ndarray, compute):
        key = (name, v_last.shape, v_last.tobytes())
        result = self.velocity_cache.get(key)
        if result is None:
            if len(self.velocity_cache) > 8:
                self.velocity_cache.clear()
            result = compute()
            for array in result:
                array.flags.writeable = False
            self.velocity_cache[key] = result
        return result

    @functools.cached_property
    def parent_offset(self) -> np.ndarray:
        """Each link origin relative to its parent's, (3, L, N), shared by the velocity recursions."""
        return self.origin - self.origin.take(self.parent, axis=1)

    @functools.cached_property
    def inertia(self) -> np.ndarray:
        """Rotational inertia of each link about its COM in world axes, R I R^T, (3, 3, L, N)."""
        return _mat_mat(_mat_mat(self.rotation, self.link_inertia[..., None]), np.swapaxes(self.rotation, 0, 1))


def _local_rotation_terms(model: Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R_origin, R_origin K and R_origin K^2 per link (3, 3, L): R_origin R_axis(q) = A + sin q B + (1 - cos q) C."""
    x, y, z = model.axis[:, 0], model.axis[:, 1], model.axis[:, 2]
    zero = np.zeros_like(x)
    skew = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    first = model.origin_rotation @ skew
    second = first @ skew
    return tuple(np.ascontiguousarray(np.moveaxis(m, 0, -1)) for m in (model.origin_rotation, first, second))


def _kinematics(model: Model, q_last: np.ndarray) -> Kinematics:
    """Forward kinematics from batch-last generalised positions (nq, N)."""
    n = q_last.shape[-1]
    links = model.num_links
    angles = np.zeros((links, n))
    angles[model._moving_links] = q_last[model._angle_index]
    a, b, c = model._terms
    local = a[..., None] + b[..., None] * np.sin(angles) + c[..., None] * (1.0 - np.cos(angles))
    rotation = np.empty((3, 3, links, n))
    origin = np.empty((3, links, n))
    if model.floating:
        quat = q_last[3:7] / np.sqrt((q_last[3:7] ** 2).sum(axis=0))
        rotation[:, :, 0] = np.moveaxis(quat_to_matrix(quat.T), 0, -1)
        base_position = q_last[:3].copy()
    else:
        rotation[:, :, 0] = model.base_rotation[:, :, None]
        base_position = np.repeat(model.base_position[:, None], n, axis=1)
    origin[:, 0] = 0.0
    translation = model._translation  # (3, L)
    for level, parent in model._level_parents:
        parent_rotation = rotation[:, :, parent]
        origin[:, level] = origin[:, parent] + (parent_rotation * translation[None, :, level, None]).sum(axis=1)
        rotation[:, :, level] = _mat_mat(parent_rotation, local[:, :, level])
    axis = (rotation * model._axis_last[None, :, :, None]).sum(axis=1)
    com = origin + (rotation * model._com_last[None, :, :, None]).sum(axis=1)
    return Kinematics(rotation, origin, axis, com, base_position, model._inertia_last, model._parent_or_self)


def _as_last(model: Model, q: np.ndarray) -> np.ndarray:
    q = np.atleast_2d(np.asarray(q, float))
    model.split(q[:1])  # shape check with a clear message
    return np.ascontiguousarray(q.T)


def kinematics(model: Model, q: np.ndarray) -> Kinematics:
    """Batch-last kinematics (see :class:`Kinematics`) of batch-first positions q (N, nq)."""
    return _kinematics(model, _as_last(model, q))


def forward_kinematics(model: Model, q: np.ndarray) -> np.ndarray:
    """World poses (N, L, 7) of every link frame (position, quaternion xyzw), in ``model.link_names`` order."""
    kin = kinematics(model, q)
    positions = np.moveaxis(kin.origin + kin.base_position[:, None], 0, -1).transpose(1, 0, 2)
    rotations = np.moveaxis(kin.rotation, (0, 1), (-2, -1)).transpose(1, 0, 2, 3)
    return np.concatenate([positions, matrix_to_quat(rotations)], axis=-1)


def point_jacobians(model: Model, kin: Kinematics, links: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Jacobians (N, K, 6, nv) of points (N, K, 3), relative to the base origin, fixed to ``links`` (K,)."""
    axis = np.moveaxis(kin.axis, 0, -1).transpose(1, 0, 2)  # (N, L, 3)
    origin = np.moveaxis(kin.origin, 0, -1).transpose(1, 0, 2)
    n, nb = points.shape[0], model.base_dofs
    mask = model.ancestors[links]  # (K, L)
    lever = points[:, :, None, :] - origin[:, None, :, :]  # (N, K, L, 3)
    linear = _cross_last(axis[:, None], lever) * mask[None, :, :, None]
    angular = axis[:, None] * mask[None, :, :, None]
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


def link_coms(kin: Kinematics) -> np.ndarray:
    """Centres of mass (N, L, 3) relative to the base origin."""
    return np.moveaxis(kin.com, 0, -1).transpose(1, 0, 2)


def jacobian(model: Model, q: np.ndarray, link: str, point=(0.0, 0.0, 0.0),
             kin: Kinematics | None = None) -> np.ndarray:
    """Jacobian (N, 6, nv) of a point fixed in ``link``'s frame: world-frame linear rows, then angular rows.

    ``kin``: the kinematics of ``q`` when the caller already has them.
    """
    kin = kin or kinematics(model, q)
    index = model.link_index(link)
    world_point = kin.origin[:, index] + _mat_vec(kin.rotation[:, :, index], np.asarray(point, float)[:, None])
    return point_jacobians(model, kin, np.array([index]), world_point.T[:, None])[:, 0]


def _composite(model: Model, values: np.ndarray) -> np.ndarray:
    """Subtree sums (..., L, N) of per-link values, accumulated from the deepest level up, in place."""
    for level, parents, starts in reversed(model._level_groups):
        if starts is None:
            values[..., parents, :] += values[..., level, :]
        else:
            values[..., parents, :] += np.add.reduceat(values[..., level, :], starts, axis=-2)
    return values


def _inertia_terms(model: Model, kin: Kinematics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-link mass (L, 1), first moment h = m c (3, L, N) and rotational inertia J about the base origin (3, 3, L, N)."""
    rotated = kin.inertia
    mass = model.mass[:, None]
    c = kin.com
    inertia = rotated - mass * c[:, None] * c[None, :]
    diagonal = mass * _dot(c, c)
    for i in range(3):
        inertia[i, i] += diagonal
    return mass, mass * c, inertia


def _parents_first(chains) -> list[int]:
    """Coordinates ordered so that each comes after its parent (the last of its ancestor chain), ties by index:
    the identity for coordinates already numbered parents first, whatever order a robot lists its joints in."""
    children = [[] for _ in chains]
    waiting = [0] * len(chains)
    for k, chain in enumerate(chains):
        if len(chain):
            children[int(chain[-1])].append(k)
            waiting[k] = 1
    ready = [k for k in range(len(chains)) if not waiting[k]]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for child in children[k]:
            heapq.heappush(ready, child)
    return order


@dataclass(frozen=True)
class SparsePattern:
    """Where the mass matrix can be non-zero: entry (i, j) with j an ancestor-or-self of i.

    The mass matrix and its LTDL factor live in a (pairs, N) array indexed by this pattern,
    never as a dense (nv, nv, N) block. ``row[k]``/``chain[k]``: positions of (k, j) for j in
    k's ancestor chain (root first); ``diag``: positions of (k, k); per k, ``block[k]`` and
    ``block_rows[k]``, ``block_cols[k]``: the chain-by-chain lower-triangle updates of the
    factorisation. ``joint_pairs``: positions of the link pairs of the CRBA.
    """

    rows: np.ndarray
    cols: np.ndarray
    chain: tuple
    row: tuple
    diag: np.ndarray
    block: tuple
    block_rows: tuple
    block_cols: tuple
    joint_pairs: np.ndarray
    base_pairs: np.ndarray
    below: tuple = ()
    below_pos: tuple = ()
    #: Coordinates in the order the factorisation eliminates them: every coordinate before its ancestors
    #: (for coordinates numbered parents first, nv - 1 down to 0).
    elimination: tuple = ()
    #: Python source of the factorisation and solve of one environment, unrolled (see :func:`_ltdl_factor`).
    scalar_factor: str = ""
    scalar_solve: str = ""

    @classmethod
    def build(cls, chains, link_rows, link_cols, joint_of_link, base_dofs) -> "SparsePattern":
        pairs = [(i, j) for i in range(len(chains)) for j in (*chains[i], i)]
        position = {pair: p for p, pair in enumerate(pairs)}
        rows = np.array([p[0] for p in pairs])
        cols = np.array([p[1] for p in pairs])
        row = tuple(np.array([position[(k, j)] for j in chains[k]], dtype=np.int64) for k in range(len(chains)))
        diag = np.array([position[(k, k)] for k in range(len(chains))])
        block, block_rows, block_cols = [], [], []
        for k in range(len(chains)):
            r, c = np.tril_indices(len(chains[k]))
            block.append(np.array([position[(chains[k][a], chains[k][b])] for a, b in zip(r, c)], dtype=np.int64))
            block_rows.append(r)
            block_cols.append(c)
        joint_pairs = np.array([position[(base_dofs + joint_of_link[i], base_dofs + joint_of_link[j])]
                                for i, j in zip(link_rows, link_cols)], dtype=np.int64)
        # (joint dof, base dof b) for every joint, base dofs 0..5 in order; empty for a fixed base.
        base_pairs = np.array([[position[(base_dofs + joint, b)] for b in range(base_dofs)]
                               for joint in range(len(chains) - base_dofs)], dtype=np.int64)
        base_pairs = base_pairs.reshape(len(chains) - base_dofs, base_dofs)
        # For each coordinate j, the coordinates that have it as an ancestor, and where (i, j) is stored.
        below = [np.array([i for i in range(len(chains)) if j in chains[i]], dtype=np.int64) for j in range(len(chains))]
        below_pos = [np.array([position[(i, j)] for i in below[j]], dtype=np.int64) for j in range(len(chains))]
        elimination = tuple(reversed(_parents_first(chains)))
        # One environment: every operation of the batched loops below, in their order, as straight-line
        # Python on local float variables (a loop with a numpy call per coordinate costs ten times more).
        count = len(pairs)
        values = ", ".join(f"v{p}" for p in range(count)) + ","
        lines = ["def factor(v):", f"    {values} = v"]
        for k in elimination:
            if not len(chains[k]):
                continue
            lines.append(f"    d = v{diag[k]}")
            lines += [f"    a{a} = v{p} / d" for a, p in enumerate(row[k].tolist())]
            # The row keeps H[k, j] until the end of k's step, as the batched form's copy does.
            lines += [f"    v{t} -= a{i} * v{row[k][j]}" for t, i, j in zip(block[k], block_rows[k], block_cols[k])]
            lines += [f"    v{p} = a{a}" for a, p in enumerate(row[k].tolist())]
        scalar_factor = "\n".join(lines + [f"    return [{values}]", ""])
        unknowns = ", ".join(f"x{i}" for i in range(len(chains))) + ","
        lines = ["def solve(f, x):", f"    {values.replace('v', 'f')} = f", f"    {unknowns} = x"]
        for i in elimination:  # L^T y = rhs
            lines += [f"    x{j} -= f{p} * x{i}" for j, p in zip(chains[i], row[i])]
        lines += [f"    x{k} = x{k} / f{diag[k]}" for k in range(len(chains))]
        for j in reversed(elimination):  # L x = y
            lines += [f"    x{i} -= f{p} * x{j}" for i, p in zip(below[j], below_pos[j])]
        scalar_solve = "\n".join(lines + [f"    return [{unknowns}]", ""])
        return cls(rows, cols, tuple(chains), row, diag, tuple(block), tuple(block_rows), tuple(block_cols),
                   joint_pairs, base_pairs, tuple(below), tuple(below_pos),
                   scalar_factor=scalar_factor, scalar_solve=scalar_solve, elimination=elimination)

    def to_dense(self, values: np.ndarray, nv: int) -> np.ndarray:
        """Symmetric dense matrices (N, nv, nv) from pair values (pairs, N)."""
        dense = np.zeros((values.shape[-1], nv, nv))
        dense[:, self.rows, self.cols] = values.T
        dense[:, self.cols, self.rows] = values.T
        return dense

    def from_dense(self, dense: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(dense[:, self.rows, self.cols].T)


def _mass_pairs(model: Model, kin: Kinematics, point_masses: np.ndarray | None = None) -> np.ndarray:
    """Composite-rigid-body algorithm, batch-last: the mass matrix on its sparsity pattern, (pairs, N).

    With the composite mass m, first moment h and rotational inertia J (about the base origin)
    of the subtree below joint i, and its motion axis S_i = [a_i; l_i = p_i x a_i], the
    subtree's momentum for a unit joint rate is F_i = [J a + h x l; m l - h x a], and
    H[i, j] = S_j . F_i for j an ancestor-or-self of i.

    ``point_masses``: (slots, values) extra masses carried by links, added to their own before the
    subtree sums: slots (C,) = link * N + env, values (13, C) their mass (row 0), first moment (1-3)
    and rotational inertia about the base origin (4-12, row-major 3x3), summed in the given order.
    H gains their sum_l J^T m J, for masses that are not the links' own (the sticking contacts of
    physics/numpy_engine.py, whose implicit term w J_p^T J_p is a point mass w at the contact point).
    """
    n = kin.axis.shape[-1]
    pattern = model._sparse
    mass, first, inertia = _inertia_terms(model, kin)
    # The three subtree sums in one pass over the levels: rows 0 (mass), 1-3 (first moment), 4-12 (inertia).
    terms = np.empty((13, model.num_links, n))
    terms[0] = mass
    terms[1:4] = first
    terms[4:] = inertia.reshape(9, model.num_links, n)
    if point_masses is not None:
        np.add.at(terms.reshape(13, -1), (slice(None), point_masses[0]), point_masses[1])
    _composite(model, terms)
    mass, first, inertia = terms[0], terms[1:4], terms[4:].reshape(3, 3, model.num_links, n)
    axis = kin.axis
    linear = _cross(kin.origin, axis)
    force_angular = _mat_vec(inertia, axis) + _cross(first, linear)
    force_linear = mass * linear - _cross(first, axis)
    link_rows, link_cols = model._pairs[0], model._pairs[1]
    values = np.empty((len(pattern.rows), n))
    values[pattern.joint_pairs] = (_dot(force_angular[:, link_rows], axis[:, link_cols])
                                   + _dot(force_linear[:, link_rows], linear[:, link_cols]))
    if model.floating:
        # Base coordinates [linear velocity of the base origin; angular velocity]: the root's
        # composite inertia [[m, -[h]x], [[h]x, J]], and each joint's F_i read by them.
        h = first[:, 0]
        base = np.zeros((6, 6, n))
        base[0, 0] = base[1, 1] = base[2, 2] = mass[0]
        base[3, 1], base[3, 2], base[3, 3] = -h[2], h[1], inertia[0, 0, 0]
        base[4, 0], base[4, 2], base[4, 3], base[4, 4] = h[2], -h[0], inertia[1, 0, 0], inertia[1, 1, 0]
        base[5, 0], base[5, 1], base[5, 3], base[5, 4], base[5, 5] = (-h[1], h[0], inertia[2, 0, 0], inertia[2, 1, 0],
                                                                     inertia[2, 2, 0])
        positions, rows, cols = model._base_block
        values[positions] = base[rows, cols]
        joints = model.joint_of_link[model._moving_links]
        values[pattern.base_pairs[joints, :3]] = np.moveaxis(force_linear[:, model._moving_links], 0, 1)
        values[pattern.base_pairs[joints, 3:]] = np.moveaxis(force_angular[:, model._moving_links], 0, 1)
    return values


def _base_position(pattern: SparsePattern, i: int, j: int) -> int:
    """Position of base-block entry (i, j), j <= i < 6."""
    return int(pattern.diag[i]) if i == j else int(pattern.row[i][j])


def _mass_matrix(model: Model, kin: Kinematics) -> np.ndarray:
    """Dense mass matrices (N, nv, nv) (for the public API; the step uses the pair storage)."""
    return model._sparse.to_dense(_mass_pairs(model, kin), model.nv)


def mass_matrix(model: Model, q: np.ndarray, kin: Kinematics | None = None) -> np.ndarray:
    """Joint-space mass matrix (N, nv, nv) by the composite-rigid-body algorithm."""
    kin = kin or kinematics(model, q)
    return _mass_matrix(model, kin)


def _angular_velocities(model: Model, kin: Kinematics, v_last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each link's angular velocity (3, L, N) and its joint's own contribution, axis times rate (3, L, N)."""
    return kin.cached_by_velocity("angular", v_last, lambda: _compute_angular_velocities(model, kin, v_last))


def _compute_angular_velocities(model: Model, kin: Kinematics, v_last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    links, n = model.num_links, v_last.shape[-1]
    rate = np.zeros((links, n))
    rate[model._moving_links] = v_last[model._rate_index]
    omega = np.zeros((3, links, n))
    if model.floating:
        omega[:, 0] = v_last[3:6]
    spin = kin.axis * rate
    for level, parent in model._level_parents:
        omega[:, level] = omega[:, parent] + spin[:, level]
    return omega, spin


def _bias_forces(model: Model, kin: Kinematics, v_last: np.ndarray) -> np.ndarray:
    """Recursive Newton-Euler, batch-last: bias (nv, N) from velocities (nv, N).

    The recursion runs level by level only for the sums along the tree; the cross products it
    adds depend on quantities that are already final (parent velocities, offsets), so they are
    taken for all links at once: the same products and sums in the same order as link by link.
    """
    links, n = model.num_links, v_last.shape[-1]
    omega, spin = _angular_velocities(model, kin, v_last)
    parent = model._parent_or_self
    parent_omega = omega.take(parent, axis=1)
    offset = kin.parent_offset
    turn = _cross(parent_omega, spin)
    alpha = np.zeros((3, links, n))
    for level, parents in model._level_parents:
        alpha[:, level] = alpha[:, parents] + turn[:, level]
    transport = _cross(alpha.take(parent, axis=1), offset)
    centripetal = _cross(parent_omega, _cross(parent_omega, offset))
    accel = np.zeros((3, links, n))  # classical acceleration of each link origin
    accel[:, 0] = -model.gravity[:, None]  # gravity as an upward base acceleration
    # (The base origin's own acceleration is zero in these coordinates.)
    for level, parents in model._level_parents:
        accel[:, level] = accel[:, parents] + transport[:, level] + centripetal[:, level]
    to_com = kin.com - kin.origin
    accel_com = accel + _cross(alpha, to_com) + _cross(omega, _cross(omega, to_com))
    force = model.mass[:, None] * accel_com
    inertia = kin.inertia
    # Moments about the base origin, so subtree sums need no transport terms.
    moment = _mat_vec(inertia, alpha) + _cross(omega, _mat_vec(inertia, omega)) + _cross(kin.com, force)
    return generalized_forces(model, kin, force, moment)


def generalized_forces(model: Model, kin: Kinematics, force: np.ndarray, moment: np.ndarray) -> np.ndarray:
    """J^T of per-link wrenches: forces (3, L, N) and moments about the base origin (3, L, N) -> (nv, N).

    Sums the wrenches over each subtree; a joint sees a . (M - p x F) about its axis through
    the link origin p, a floating base the total force and moment. Leaves its inputs as they were.
    """
    n, nb, moving = force.shape[-1], model.base_dofs, model._moving_links
    wrench = _composite(model, np.concatenate([force, moment]))  # both subtree sums in one pass over the levels
    force, moment = wrench[:3], wrench[3:]
    result = np.zeros((model.nv, n))
    about_joint = moment[:, moving] - _cross(kin.origin[:, moving], force[:, moving])
    result[nb + model.joint_of_link[moving]] = _dot(kin.axis[:, moving], about_joint)
    if model.floating:
        result[:3] = force[:, 0]
        result[3:6] = moment[:, 0]
    return result


def link_velocities(model: Model, kin: Kinematics, v_last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Angular velocity (3, L, N) and velocity of each link origin (3, L, N) in the world frame (read-only)."""
    return kin.cached_by_velocity("links", v_last, lambda: _link_velocities(model, kin, v_last))


def _link_velocities(model: Model, kin: Kinematics, v_last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    omega, _ = _angular_velocities(model, kin, v_last)
    # Each link adds its parent's angular velocity across the offset: all links' terms at once, summed down the levels.
    lever = _cross(omega.take(model._parent_or_self, axis=1), kin.parent_offset)
    velocity = np.zeros_like(omega)
    if model.floating:
        velocity[:, 0] = v_last[:3]
    for level, parent in model._level_parents:
        velocity[:, level] = velocity[:, parent] + lever[:, level]
    return omega, velocity


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
    return _bias_forces(model, kin, np.ascontiguousarray(v.T)).T


def _ltdl_factor(values: np.ndarray, pattern: SparsePattern) -> np.ndarray:
    """Featherstone's LTDL factorisation H = L^T D L, in place on pair storage (pairs, N).

    Fill-in stays inside the ancestor pattern, so the cost is the sum of squared depths
    rather than nv^3. Afterwards the diagonal positions hold D and the others L.

    One environment runs the same operations in the same order on Python floats (IEEE doubles,
    like numpy's float64 ufuncs, so the same bits), without a numpy call per coordinate.
    """
    if values.shape[-1] == 1:
        values[:, 0] = _compiled(pattern.scalar_factor, "factor")(values[:, 0].tolist())
        return values
    for k in pattern.elimination:
        if not len(pattern.chain[k]):
            continue
        row = values[pattern.row[k]]
        a = row / values[pattern.diag[k]]
        # For i, j in the chain with j an ancestor-or-self of i: H[i, j] -= a_i H[k, j].
        values[pattern.block[k]] -= a[pattern.block_rows[k]] * row[pattern.block_cols[k]]
        values[pattern.row[k]] = a
    return values


_COMPILED: dict = {}


def _compiled(source: str, name: str):
    """The function ``name`` defined by ``source``, compiled once per process (patterns keep only the text)."""
    function = _COMPILED.get(source)
    if function is None:
        namespace: dict = {}
        exec(compile(source, f"<SparsePattern.{name}>", "exec"), namespace)
        function = _COMPILED[source] = namespace[name]
    return function


def _ltdl_solve(factor: np.ndarray, pattern: SparsePattern, rhs: np.ndarray) -> np.ndarray:
    """Solve H x = rhs (nv, N) given ``_ltdl_factor``; rhs is overwritten with x."""
    if rhs.shape[-1] == 1:  # one environment: the same operations on Python floats (see _ltdl_factor)
        rhs[:, 0] = _compiled(pattern.scalar_solve, "solve")(factor[:, 0].tolist(), rhs[:, 0].tolist())
        return rhs
    x = rhs
    for i in pattern.elimination:  # L^T y = rhs, leaves first
        if len(pattern.chain[i]):
            x[pattern.chain[i]] -= factor[pattern.row[i]] * x[i]
    x /= factor[pattern.diag]
    for j in reversed(pattern.elimination):  # L x = y, column by column: no reductions, so no summation order that depends on N
        if len(pattern.below[j]):
            x[pattern.below[j]] -= factor[pattern.below_pos[j]] * x[j]
    return x


def ltdl_factor(model: Model, matrix: np.ndarray) -> np.ndarray:
    """Factor batch-first mass matrices (N, nv, nv) of ``model``; returns the pair storage (pairs, N)."""
    return _ltdl_factor(model._sparse.from_dense(np.asarray(matrix, float)), model._sparse)


def ltdl_solve(model: Model, factor: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve with :func:`ltdl_factor`'s result for right-hand sides (N, nv)."""
    return _ltdl_solve(factor, model._sparse, np.ascontiguousarray(np.asarray(rhs, float).T)).T
