"""Contact geometry and forces of the numpy engine, batch-last.

Every moving body is approximated by collision spheres generated from its primitive shapes;
the static world is the floor plane and oriented boxes. A sphere that penetrates a surface
by depth d feels a penalty spring-damper normal force and regularised Coulomb friction:

    f_n = max(0, k d - c v_n),   f_t = -mu f_n v_t / sqrt(|v_t|^2 + eps^2)

Stiffness and damping follow each body's mass (``k = m w^2``, ``c = 2 m w``, critically
damped at ``w = contact_frequency``) so that one explicit contact step is stable for light
objects and heavy robots alike at the same dt.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np

from .meshes import resolve_mesh, sphere_cover
from .model import _dot, _floats, _rpy_matrix
from .rotations import quat_to_matrix


@dataclass(frozen=True)
class SphereSet:
    """Spheres fixed to bodies: body (S,) index, center (S, 3) in the body frame, radius (S,), and
    inset (S,): how far the shape a sphere covers may reach beyond the spheres (a mesh cover's gap,
    physics/meshes.py; 0 for the primitives' covers), which a touch test adds to its margin."""

    body: np.ndarray
    center: np.ndarray
    radius: np.ndarray
    inset: np.ndarray | None = None

    def __post_init__(self):
        if self.inset is None:
            object.__setattr__(self, "inset", np.zeros(len(self.radius)))

    @property
    def size(self) -> int:
        return len(self.radius)


def spheres_for_shape(kind: str, size, origin=np.zeros(3), rotation=np.eye(3)) -> tuple[np.ndarray, np.ndarray]:
    """Centres (K, 3) and radii (K,) that cover a primitive placed at origin/rotation.

    sphere: itself. cylinder/capsule (radius, length along local z): spheres of the radius
    along the axis, touching or overlapping, ends included (a capsule up to the dimples between
    spheres, at most 0.13 radius deep). box (full sizes): spheres of the smallest half extent
    on a grid over the box, again touching or overlapping.
    """
    if kind == "sphere":
        local, radii = np.zeros((1, 3)), np.array([float(size[0])])
    elif kind in ("cylinder", "capsule"):
        radius, length = float(size[0]), float(size[1])
        count = max(2, int(math.ceil(length / (2 * radius))) + 1)
        local = np.zeros((count, 3))
        local[:, 2] = np.linspace(-length / 2, length / 2, count)
        radii = np.full(count, radius)
    elif kind == "box":
        half = np.asarray(size, float) / 2
        radius = half.min()
        axes = [np.linspace(-(h - radius), h - radius, max(1, int(math.ceil((h - radius) / radius)) + 1))
                if h > radius + 1e-12 else np.zeros(1) for h in half]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        local, radii = grid, np.full(len(grid), radius)
    else:
        raise ValueError(f"no sphere cover for shape {kind!r}")
    return origin + local @ rotation.T, radii


def box_corner_spheres(size, origin=np.zeros(3), rotation=np.eye(3), fraction: float = 0.2):
    """Eight small spheres (radius ``fraction`` of the smallest half extent) in a box's corners.

    A grid of spheres as large as the box is thin stops short of its edges by that radius, so
    a foot covered only by the grid stands on a support polygon that is too small (a 24 cm
    foot loses 5 cm) and rocks on its rounded heel; the corner spheres restore the true
    footprint to within the small radius.
    """
    half = np.asarray(size, float) / 2
    radius = fraction * half.min()
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * 3, indexing="ij")).reshape(3, -1).T
    return origin + (signs * (half - radius)) @ rotation.T, np.full(8, radius)


def robot_spheres(urdf_path, link_names: tuple[str, ...], links=None) -> SphereSet:
    """Spheres of every collision shape of a URDF (primitives, and meshes by physics/meshes.py), attached to
    links by index into link_names; ``links``: only these links' (default: all)."""
    root = ET.parse(urdf_path).getroot()
    bodies, centers_list, radii, insets = [], [], [], []
    for element in root.findall("link"):
        name = element.get("name")
        if links and name not in links:
            continue
        for collision in element.findall("collision"):
            origin = collision.find("origin")
            xyz = _floats(origin.get("xyz") if origin is not None else None)
            rotation = _rpy_matrix(_floats(origin.get("rpy") if origin is not None else None))
            geometry = list(collision.find("geometry"))[0]
            if geometry.tag == "mesh":
                # Spheres inside the mesh's convex hull, the shape pybullet collides (physics/meshes.py).
                centers, r, gap = sphere_cover(resolve_mesh(urdf_path, geometry.get("filename", "")),
                                               _floats(geometry.get("scale"), (1.0, 1.0, 1.0)))
                local, inset = xyz + centers @ rotation.T, gap
            else:
                if geometry.tag == "box":
                    size = [float(x) for x in geometry.get("size").split()]
                elif geometry.tag == "sphere":
                    size = [float(geometry.get("radius"))]
                elif geometry.tag in ("cylinder", "capsule"):
                    size = [float(geometry.get("radius")), float(geometry.get("length"))]
                else:
                    raise ValueError(f"link {name!r} has a {geometry.tag} collision shape; the numpy engine takes "
                                     f"boxes, spheres, cylinders, capsules and meshes")
                local, r = spheres_for_shape(geometry.tag, size, xyz, rotation)
                inset = 0.0
                if geometry.tag == "box":
                    corners, corner_radii = box_corner_spheres(size, xyz, rotation)
                    local, r = np.concatenate([local, corners]), np.concatenate([r, corner_radii])
            bodies += [link_names.index(name)] * len(r)
            centers_list.append(local)
            radii.append(r)
            insets.append(np.full(len(r), inset))
    return SphereSet(np.array(bodies), np.concatenate(centers_list), np.concatenate(radii), np.concatenate(insets))


def contact_spheres(robot, link_names: tuple[str, ...]) -> SphereSet:
    """The spheres of the robot's contact links (``robot.contact_links``; every link when it names none),
    attached to links by index into link_names."""
    return robot_spheres(robot.urdf_path, link_names, robot.contact_links)


def standing_height(robot, posture: np.ndarray) -> float:
    """How high the robot's base link stands in ``posture`` (joint positions) with its lowest foot sphere on
    the floor (m): what a spec file that gives no ``standing_base_height`` gets (its feet's shapes decide)."""
    from .model import kinematics, load_model

    if not robot.feet:
        raise ValueError(f"robot {robot.name!r} declares no feet to stand on; give its standing_base_height")
    model = load_model(robot, fixed_base=True)
    kin = kinematics(model, np.asarray(posture, float)[None])
    spheres = robot_spheres(robot.urdf_path, model.link_names, robot.feet)
    rotation = kin.rotation[:, :, spheres.body, 0]  # (3, 3, S)
    heights = kin.origin[2, spheres.body, 0] + (rotation[2] * spheres.center.T).sum(axis=0)
    return float(-(heights - spheres.radius).min())


@dataclass(frozen=True)
class StaticGeometry:
    """The floor (z = floor_height) and oriented boxes, batch-independent.

    box_center (B, 3), box_rotation (B, 3, 3) (box axes as columns), box_half (B, 3), box_friction (B,).
    """

    floor_height: float
    floor_friction: float
    box_center: np.ndarray
    box_rotation: np.ndarray
    box_half: np.ndarray
    box_friction: np.ndarray
    # Derived: box_aligned (B,) whether a box's axes are the world's.
    box_aligned: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "box_aligned", np.array([np.array_equal(r, np.eye(3)) for r in self.box_rotation],
                                                         dtype=bool))

    @classmethod
    def from_scene(cls, scene) -> "StaticGeometry":
        boxes = scene.static_boxes
        return cls(
            floor_height=0.0,
            floor_friction=scene.floor_friction,
            box_center=np.array([b.position for b in boxes]).reshape(-1, 3),
            box_rotation=quat_to_matrix(np.array([b.quaternion for b in boxes]).reshape(-1, 4)),
            box_half=np.array([b.half_extents for b in boxes]).reshape(-1, 3),
            box_friction=np.array([b.friction for b in boxes]),
        )


_AXES = np.arange(3)[:, None]
#: Boxes x spheres x environments up to which :func:`_boxes_in_reach` tests all boxes at once.
_BATCHED_BROAD_PHASE = 1 << 15


def _boxes_in_reach(geometry: StaticGeometry, center: np.ndarray, reach: np.ndarray):
    """Indices of the boxes that some sphere may touch, in order.

    For few spheres and environments (one environment pays per numpy call, per box) all boxes are
    tested at once, each grown by the sphere radius and a margin: a superset of the boxes the
    exact test of :func:`static_contacts` keeps, which then runs on those alone, so the contacts
    are the same bits. Large batches skip it and test every box.
    """
    boxes = len(geometry.box_half)
    if not boxes or boxes * center[0].size > _BATCHED_BROAD_PHASE:
        return range(boxes)
    local = center[None] - geometry.box_center[:, :, None, None]  # (B, 3, S, N)
    if not geometry.box_aligned.all():
        local = (geometry.box_rotation[:, :, :, None, None] * local[:, :, None]).sum(axis=1)
    bound = geometry.box_half[:, :, None, None] + reach + 1e-6
    # NaN centres compare False here; the exact test also rejects them, so no box is lost.
    near = (np.abs(local) < bound).all(axis=1)
    return np.flatnonzero(near.reshape(boxes, -1).any(axis=1)).tolist()


def static_contacts(geometry: StaticGeometry, center: np.ndarray, radius: np.ndarray):
    """Deepest static contact of each sphere.

    center: (3, S, N) world positions; radius: (S,) or (S, N). Returns depth (S, N) (<= 0: no contact),
    unit normal (3, S, N) pointing from the surface into the sphere, and friction (S, N).
    Each box first keeps only the spheres within its bounding sphere (broad phase); the exact
    sphere-box test runs on those.
    """
    reach = radius[:, None] if radius.ndim == 1 else radius  # radii (S,) or per environment (S, N)
    depth = reach - (center[2] - geometry.floor_height)
    normal = np.zeros_like(center)
    normal[2] = 1.0
    friction = np.full(depth.shape, geometry.floor_friction)
    for b in _boxes_in_reach(geometry, center, reach):
        rotation, half = geometry.box_rotation[b], geometry.box_half[b]
        offset = center - geometry.box_center[b][:, None, None]
        aligned = geometry.box_aligned[b]
        # Elementwise products rather than matmul/einsum, whose summation order can change with
        # the batch: an environment must compute the same bits alone or in a batch.
        local_all = offset if aligned else (rotation[:, :, None, None] * offset[:, None]).sum(axis=0)
        # Broad phase: the box grown by the sphere radius, in the box frame.
        near = ((np.abs(local_all[0]) < half[0] + reach) & (np.abs(local_all[1]) < half[1] + reach)
                & (np.abs(local_all[2]) < half[2] + reach))
        sphere_index, env_index = np.nonzero(near)
        if not len(sphere_index):
            continue
        local = local_all[:, sphere_index, env_index]  # sphere centres in the box frame, (3, M)
        clamped = np.clip(local, -half[:, None], half[:, None])
        gap = local - clamped
        distance = np.sqrt(_dot(gap, gap))
        outside = distance > 1e-12
        # Inside the box: push out through the nearest face.
        face_gap = half[:, None] - np.abs(local)
        face = np.argmin(face_gap, axis=0)
        inside_normal = (_AXES == face) * np.where(local >= 0, 1.0, -1.0)
        local_normal = np.where(outside, gap / np.where(outside, distance, 1.0), inside_normal)
        sphere_radius = radius[sphere_index] if radius.ndim == 1 else radius[sphere_index, env_index]
        box_depth = np.where(outside, sphere_radius - distance, sphere_radius + face_gap.min(axis=0))
        deeper = box_depth > depth[sphere_index, env_index]
        sphere_index, env_index = sphere_index[deeper], env_index[deeper]
        depth[sphere_index, env_index] = box_depth[deeper]
        normal[:, sphere_index, env_index] = (rotation[:, :, None] * local_normal[None, :, deeper]).sum(axis=1)
        friction[sphere_index, env_index] = geometry.box_friction[b]
    return depth, normal, friction


def penalty_forces(depth, normal, velocity, friction, mass, frequency: float, slip_speed: float = 0.01):
    """Contact forces (3, S, N) from depth (S, N), normal (3, S, N) and contact-point velocity (3, S, N),
    with regularised Coulomb friction (for contacts that keep no history, such as hand against object).

    mass: effective mass behind each sphere, setting k = m w^2 and c = 2 m w.
    """
    stiffness = mass * frequency**2
    damping = 2.0 * mass * frequency
    normal_speed = _dot(velocity, normal)
    magnitude = np.where(depth > 0, np.maximum(0.0, stiffness * depth - damping * normal_speed), 0.0)
    tangential = velocity - normal * normal_speed
    slip = np.sqrt(_dot(tangential, tangential) + slip_speed**2)
    return normal * magnitude - tangential * (friction * magnitude / slip)


def sticky_forces(depth, normal, velocity, friction, mass, frequency: float, displacement: np.ndarray, dt: float):
    """Like :func:`penalty_forces` but with static friction: a tangential spring-damper on the
    contact's accumulated tangential displacement (3, S, N), capped by the Coulomb cone.

    Regularised friction creeps (it needs slip to push back), and an explicit step bounds how
    little slip it may need; the spring holds a box on an incline still and, integrated from
    the contact-point velocity, lets a roll roll. ``displacement`` is updated in place and
    cleared where the contact opens. Returns the forces (3, S, N) and where the contact slides (S, N).
    """
    stiffness = mass * frequency**2
    damping = 2.0 * mass * frequency
    touching = depth > 0
    normal_speed = _dot(velocity, normal)
    magnitude = np.where(touching, np.maximum(0.0, stiffness * depth - damping * normal_speed), 0.0)
    tangential_velocity = velocity - normal * normal_speed
    displacement -= normal * _dot(displacement, normal)  # keep it in the current tangent plane
    displacement += dt * tangential_velocity
    displacement *= touching
    spring = -stiffness * displacement - damping * tangential_velocity
    size = np.sqrt(_dot(spring, spring))
    limit = friction * magnitude
    sliding = size > limit
    scale = np.where(sliding, limit / np.maximum(size, 1e-12), 1.0)
    spring *= scale
    # While sliding, the spring stretches no further than the cone allows.
    displacement[:] = np.where(sliding, -spring / np.maximum(stiffness, 1e-12), displacement)
    return normal * magnitude + spring, sliding


def rounded_box_distance(point, core, rounding):
    """Signed distance from points to a rounded box, the outward normal there and the nearest surface point.

    point: (..., 3) in the box's frame; core: (..., 3) half extents of the inner box; rounding: (...) the radius
    around it (a sphere: core 0; a capsule: core (0, 0, half length); a box: rounding 0). Inside the inner box the
    normal is that of its nearest face. Returns distance (...), normal (..., 3), surface point (..., 3).
    """
    nearest = np.clip(point, -core, core)
    offset = point - nearest
    distance = np.sqrt((offset * offset).sum(-1))
    outside = distance > 1e-12
    normal = offset / np.where(outside, distance, 1.0)[..., None]
    # Inside the core: out through the nearest face.
    margin = core - np.abs(point)
    face = np.argmin(margin, axis=-1)
    inside_normal = np.zeros_like(point)
    np.put_along_axis(inside_normal, face[..., None], np.where(
        np.take_along_axis(point, face[..., None], -1) < 0, -1.0, 1.0), axis=-1)
    inside_depth = np.take_along_axis(margin, face[..., None], -1)[..., 0]
    normal = np.where(outside[..., None], normal, inside_normal)
    distance = np.where(outside, distance, -inside_depth) - rounding
    surface = point - normal * distance[..., None]
    return distance, normal, surface


def sphere_pair_contacts(center_a, radius_a, center_b, radius_b):
    """Depth (A, B, N) and unit normal (3, A, B, N) from b towards a for sphere pairs."""
    offset = center_a[:, :, None] - center_b[:, None, :]
    distance = np.sqrt(_dot(offset, offset))
    radius_a = radius_a[:, None, :] if radius_a.ndim == 2 else radius_a[:, None, None]  # (A,) or per env (A, N)
    depth = radius_a + radius_b[None, :, None] - distance
    normal = offset / np.maximum(distance, 1e-9)
    return depth, normal


__all__ = ["SphereSet", "StaticGeometry", "box_corner_spheres", "penalty_forces", "robot_spheres", "rounded_box_distance", "sphere_pair_contacts",
           "spheres_for_shape", "standing_height", "static_contacts", "sticky_forces"]
