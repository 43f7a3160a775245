"""Cloth for the numpy engine: a particle grid with position-based constraints, batched over environments.

The garment is a ``rows x cols`` grid of equal particles joined by distance constraints:

- stretch: neighbours along a row or a column;
- shear: both diagonals of every grid cell;
- bend: particles two apart along a row or a column (a "bending spring", which resists
  folding only weakly, as a garment does).

Stepping is extended position-based dynamics (XPBD: Mueller et al. 2007, Macklin et al.
2016) with small steps (Macklin et al. 2019: many substeps, one constraint pass each):
predict under gravity and drag, project the constraints, resolve contacts with friction,
then set velocities from the displacement. Constraint ``i`` has compliance ``1 / k_i`` with
``k_i`` the spring stiffness of :class:`ClothParams` (N/m), so with enough substeps it tends
to the springs of pybullet's mass-spring cloth with those stiffnesses (with one pass per
substep a stiff cloth comes out somewhat softer than its springs). The constraints are
coloured once (no two constraints of a colour share a particle), and each colour is
projected for every environment at once: Gauss-Seidel between colours, pure array
operations within one, no Python loop over environments or particles.

Contacts: each particle is a sphere of radius ``thickness`` against the static scene (floor
and boxes, via :func:`physics.contacts.static_contacts`) and against moving spheres (the
robot's hands), pushed out along the contact normal. Friction against the static scene is
Coulomb's in position form: the tangential displacement of a substep is cancelled up to
``mu`` times the penetration depth that was resolved (static friction), beyond that it is
reduced by that much (sliding). ``mu`` is the product of the cloth's and the surface's
coefficients, as in Bullet. Hand contacts are frictionless; hands move the cloth by pushing
it and by pins. Pinned particles (a grasp) have infinite mass and follow given targets. A
released particle starts out inside or against the fingers that held it (a particle cannot be
pinched between them), so it passes through that hand's spheres until it is ``RELEASE_CLEARANCE``
clear of them (:func:`update_passthrough`) instead of being flung out by the opening fingers.

The cloth does not push back on the robot (its weight, a few hundred grams, is far below
what the arm's PD loop notices), and it does not collide with itself.

Arrays in the public functions have a leading ``num_envs`` axis; the step works batch-last
internally, like physics/contacts.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .contacts import StaticGeometry, sphere_pair_contacts, static_contacts
from .model import _dot
from .rotations import quat_to_matrix

STRETCH, SHEAR, BEND = 0, 1, 2
#: How far (m) a released particle must get from the spheres of the hand that held it before they collide again.
RELEASE_CLEARANCE = 0.05
CONSTRAINT_KINDS = ("stretch", "shear", "bend")


@dataclass(frozen=True)
class ClothParams:
    """One garment's per-episode physical parameters.

    length, width: rest size (m) along the grid's rows (local x) and columns (local y).
    mass: total mass (kg), shared equally by the particles.
    stretch_stiffness: stiffness (N/m) of each stretch and shear spring.
    bend_stiffness: stiffness (N/m) of each bending spring.
    friction: Coulomb coefficient, multiplied by the surface's.
    damping: drag rate (1/s) on particle velocities (air and internal damping together).
    """

    length: float = 0.24
    width: float = 0.30
    mass: float = 0.15
    stretch_stiffness: float = 400.0
    bend_stiffness: float = 2.0
    friction: float = 0.6
    damping: float = 1.0

    def __post_init__(self):
        for name in ("length", "width", "mass", "stretch_stiffness", "bend_stiffness"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"cloth {name} must be a positive finite number, got {value}")
        for name in ("friction", "damping"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"cloth {name} must be a non-negative finite number, got {value}")


@dataclass(frozen=True)
class ClothSpec:
    """The scene's garment: its grid (fixed for the engine's lifetime) and defaults.

    rows, cols: particles along local x and local y (at least 3 each, for the bending springs).
    thickness: collision radius (m) of each particle; the cloth rests this high above a surface.
    default_params, default_pose: used when an engine is reset without cloth parameters;
    the pose is the flat grid's centre and orientation ``(x, y, z, qx, qy, qz, qw)``.
    """

    name: str = "cloth"
    rows: int = 10
    cols: int = 10
    thickness: float = 0.005
    rgba: tuple[float, float, float, float] = (0.25, 0.45, 0.8, 1.0)
    default_params: ClothParams = field(default_factory=ClothParams)
    default_pose: tuple[float, ...] = (0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def __post_init__(self):
        if self.rows < 3 or self.cols < 3:
            raise ValueError(f"a cloth grid needs at least 3 x 3 particles, got {self.rows} x {self.cols}")
        if not self.thickness > 0:
            raise ValueError(f"cloth thickness must be positive, got {self.thickness}")

    @property
    def num_particles(self) -> int:
        return self.rows * self.cols

    def particle_index(self, row: int, col: int) -> int:
        return (row % self.rows) * self.cols + (col % self.cols)

    @property
    def corner_indices(self) -> np.ndarray:
        """Particles at (row 0, col 0), (row 0, last col), (last row, col 0), (last row, last col)."""
        return np.array([self.particle_index(r, c) for r in (0, -1) for c in (0, -1)])


@dataclass(frozen=True)
class ClothTopology:
    """Constraint index arrays of a grid, built once by :func:`cloth_topology`.

    grid: (P, 2) rest coordinates as fractions of (length, width), in [-0.5, 0.5].
    edges: (C, 2) particle pairs; kind: (C,) STRETCH, SHEAR or BEND.
    colors: index arrays into ``edges``; within one, no two constraints share a particle.
    triangles: (T, 3) particle indices of the surface (two per cell), for meshes.
    """

    spec: ClothSpec
    grid: np.ndarray
    edges: np.ndarray
    kind: np.ndarray
    colors: tuple[np.ndarray, ...]
    triangles: np.ndarray

    @property
    def num_particles(self) -> int:
        return self.spec.num_particles


def cloth_topology(spec: ClothSpec) -> ClothTopology:
    rows, cols = spec.rows, spec.cols
    index = np.arange(rows * cols).reshape(rows, cols)
    pairs, kinds = [], []

    def add(a, b, kind):
        pairs.append(np.stack([a.ravel(), b.ravel()], axis=1))
        kinds.append(np.full(a.size, kind))

    add(index[:, :-1], index[:, 1:], STRETCH)
    add(index[:-1, :], index[1:, :], STRETCH)
    add(index[:-1, :-1], index[1:, 1:], SHEAR)
    add(index[:-1, 1:], index[1:, :-1], SHEAR)
    add(index[:, :-2], index[:, 2:], BEND)
    add(index[:-2, :], index[2:, :], BEND)
    edges = np.concatenate(pairs)
    kind = np.concatenate(kinds)
    # Greedy colouring, once: each constraint takes the first colour its two particles lack.
    used: list[set[int]] = [set() for _ in range(rows * cols)]
    color = np.empty(len(edges), dtype=np.int64)
    for c, (a, b) in enumerate(edges):
        k = 0
        while k in used[a] or k in used[b]:
            k += 1
        color[c] = k
        used[a].add(k)
        used[b].add(k)
    colors = tuple(np.flatnonzero(color == k) for k in range(color.max() + 1))
    u = np.linspace(-0.5, 0.5, rows)
    v = np.linspace(-0.5, 0.5, cols)
    grid = np.stack(np.meshgrid(u, v, indexing="ij"), -1).reshape(-1, 2)
    a, b, c, d = index[:-1, :-1].ravel(), index[:-1, 1:].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel()
    # Counter-clockwise seen from local +z (row direction x, column direction y).
    triangles = np.concatenate([np.stack([a, c, d], 1), np.stack([a, d, b], 1)])
    return ClothTopology(spec, grid, edges, kind, colors, triangles)


@dataclass
class ClothMaterial:
    """Per-environment constants of the constraints and particles.

    rest_length: (N, C) m. compliance: (N, C) m/N (inverse stiffness). inverse_mass: (N,) 1/kg
    of one particle. friction: (N,). damping: (N,) 1/s.
    """

    rest_length: np.ndarray
    compliance: np.ndarray
    inverse_mass: np.ndarray
    friction: np.ndarray
    damping: np.ndarray

    def assign(self, env_ids: np.ndarray, other: "ClothMaterial") -> None:
        """Copy ``other``'s rows into environments ``env_ids`` (a partial reset)."""
        for name in ("rest_length", "compliance", "inverse_mass", "friction", "damping"):
            getattr(self, name)[env_ids] = getattr(other, name)


def cloth_material(topology: ClothTopology, params: Sequence[ClothParams]) -> ClothMaterial:
    scale = np.array([[p.length, p.width] for p in params])  # (N, 2)
    grid = topology.grid
    delta = (grid[topology.edges[:, 0]] - grid[topology.edges[:, 1]])[None] * scale[:, None]
    stiffness = np.array([[p.stretch_stiffness, p.stretch_stiffness, p.bend_stiffness] for p in params])
    return ClothMaterial(
        rest_length=np.sqrt((delta**2).sum(-1)),
        compliance=1.0 / stiffness[:, topology.kind],
        inverse_mass=np.array([topology.num_particles / p.mass for p in params]),
        friction=np.array([p.friction for p in params]),
        damping=np.array([p.damping for p in params]),
    )


@dataclass
class ClothState:
    """positions, velocities: (N, P, 3) in the world frame."""

    positions: np.ndarray
    velocities: np.ndarray


def grid_positions(topology: ClothTopology, params: ClothParams, pose) -> np.ndarray:
    """(P, 3) world positions of the flat grid of ``params``' size placed at ``pose`` (its centre)."""
    pose = np.asarray(pose, float)
    local = np.zeros((topology.num_particles, 3))
    local[:, 0] = topology.grid[:, 0] * params.length
    local[:, 1] = topology.grid[:, 1] * params.width
    rotation = quat_to_matrix(pose[3:] / np.linalg.norm(pose[3:]))
    return pose[:3] + (rotation[None] * local[:, None, :]).sum(-1)


def cloth_init(topology: ClothTopology, params: Sequence[ClothParams], poses: np.ndarray) -> ClothState:
    """Flat, still cloths: one per environment, each of its own size at its own pose (N, 7)."""
    positions = np.array([grid_positions(topology, p, pose) for p, pose in zip(params, np.asarray(poses, float))])
    return ClothState(positions, np.zeros_like(positions))


@dataclass(frozen=True)
class MovingSpheres:
    """Colliders that move during a step: centres at its start and end (N, S, 3), radii (S,).

    Within the step the centres move linearly from start to end. owner: (S,) int, the hand each
    sphere belongs to (for pass-through after a release); None: all zero.
    """

    start: np.ndarray
    end: np.ndarray
    radius: np.ndarray
    owner: np.ndarray | None = None


@dataclass(frozen=True)
class ClothPins:
    """Pinned particles (N, P) bool and their targets at the start and end of a step (N, P, 3).

    A pinned particle has infinite mass and moves linearly from its start to its end target.
    """

    pinned: np.ndarray
    start: np.ndarray
    end: np.ndarray


def _to_last(a: np.ndarray) -> np.ndarray:
    """(N, P, 3) -> (3, P, N), contiguous."""
    return np.ascontiguousarray(np.transpose(a, (2, 1, 0)))


def _to_first(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(a, (2, 1, 0)))


def cloth_step(state: ClothState, topology: ClothTopology, material: ClothMaterial, static: StaticGeometry,
               dt: float, substeps: int, gravity: float = -9.81, spheres: MovingSpheres | None = None,
               pins: ClothPins | None = None, passthrough: np.ndarray | None = None) -> ClothState:
    """Advance every environment's cloth by ``dt`` in ``substeps`` XPBD substeps; returns a new state.

    passthrough: (N, P) int, the owner whose spheres each particle ignores, -1 for none.
    """
    if substeps < 1:
        raise ValueError(f"substeps must be >= 1, got {substeps}")
    h = dt / substeps
    spec = topology.spec
    n = state.positions.shape[0]
    x = _to_last(state.positions)
    v = _to_last(state.velocities)
    radius = np.full(topology.num_particles, spec.thickness)
    inverse_mass = np.broadcast_to(material.inverse_mass, (topology.num_particles, n))
    if pins is not None:
        pinned = np.ascontiguousarray(pins.pinned.T)  # (P, N)
        inverse_mass = np.where(pinned, 0.0, inverse_mass)
        pin_start, pin_end = _to_last(pins.start), _to_last(pins.end)
    free = inverse_mass > 0
    friction = material.friction[None, :]
    decay = np.exp(-material.damping * h)[None, :]
    colors = []
    for members in topology.colors:
        i, j = topology.edges[members, 0], topology.edges[members, 1]
        w_i, w_j = inverse_mass[i], inverse_mass[j]
        # XPBD with one pass per substep: the multiplier starts at zero, so the update is
        # -C / (w_i + w_j + alpha / h^2).
        gain = 1.0 / (w_i + w_j + material.compliance[:, members].T / h**2)
        colors.append((i, j, w_i * gain, w_j * gain, np.ascontiguousarray(material.rest_length[:, members].T)))
    hand = None
    if spheres is not None and len(spheres.radius):
        sphere_start, sphere_end = _to_last(spheres.start), _to_last(spheres.end)
        envs = _near_spheres(x, sphere_start, sphere_end, spheres.radius + spec.thickness + 0.05)
        if len(envs):
            ignored = None
            if passthrough is not None and (passthrough[envs] >= 0).any():
                owner = np.zeros(len(spheres.radius), dtype=np.int64) if spheres.owner is None else spheres.owner
                ignored = owner[None, :, None] == np.ascontiguousarray(passthrough[envs].T)[:, None, :]  # (P, S, M)
            hand = (envs, sphere_start[..., envs], sphere_end[..., envs], spheres.radius, ignored)
    for k in range(substeps):
        fraction = (k + 1) / substeps
        previous = x
        v = v * decay
        v[2] += gravity * h
        x = previous + h * v
        if pins is not None:
            x = np.where(pinned, pin_start + fraction * (pin_end - pin_start), x)
        for i, j, gain_i, gain_j, rest in colors:
            delta = x[:, i] - x[:, j]
            length = np.sqrt(_dot(delta, delta))
            direction = delta / np.maximum(length, 1e-12)
            violation = length - rest
            x[:, i] -= gain_i * violation * direction
            x[:, j] += gain_j * violation * direction
        if hand is not None:
            envs, start, end, sphere_radius, ignored = hand
            centres = start + fraction * (end - start)
            sub = x[..., envs]
            depth, normal = sphere_pair_contacts(sub, radius, centres, sphere_radius)  # (P, S, M)
            if ignored is not None:
                depth = np.where(ignored, -np.inf, depth)
            deepest = np.argmax(depth, axis=1)  # the hand sphere each particle penetrates most
            depth = np.take_along_axis(depth, deepest[:, None], axis=1)[:, 0]
            normal = np.take_along_axis(normal, deepest[None, :, None], axis=2)[:, :, 0]
            push = np.where((depth > 0) & free[:, envs], depth, 0.0)
            x[..., envs] = sub + normal * push
        depth, normal, surface_friction = static_contacts(static, x, radius)
        touching = (depth > 0) & free
        depth = np.where(touching, depth, 0.0)
        x = x + normal * depth
        # Position-level Coulomb friction on this substep's tangential motion.
        moved = x - previous
        tangential = moved - normal * _dot(moved, normal)
        slide = np.sqrt(_dot(tangential, tangential))
        limit = friction * surface_friction * depth
        keep = np.where(slide > limit, 1.0 - limit / np.maximum(slide, 1e-15), 0.0)
        x = x - np.where(touching, 1.0 - keep, 0.0) * tangential
        v = (x - previous) / h
    return ClothState(_to_first(x), _to_first(v))


def update_passthrough(positions: np.ndarray, spheres: MovingSpheres, thickness: float, passthrough: np.ndarray,
                       released: np.ndarray, released_by: np.ndarray) -> np.ndarray:
    """The new pass-through owners (N, P): particles just ``released`` (N, P) bool by ``released_by`` (N, P)
    start passing through that owner's spheres; each keeps doing so until it is ``RELEASE_CLEARANCE`` clear of them."""
    passthrough = np.where(released, released_by, passthrough)
    env, particle = np.nonzero(passthrough >= 0)
    if not len(env):
        return passthrough
    owner = np.zeros(len(spheres.radius), dtype=np.int64) if spheres.owner is None else spheres.owner
    gap = positions[env, particle][:, None, :] - spheres.end[env]  # (M, S, 3)
    reach = spheres.radius + thickness + RELEASE_CLEARANCE
    inside = ((gap**2).sum(-1) < reach**2) & (owner[None, :] == passthrough[env, particle][:, None])
    passthrough = passthrough.copy()
    passthrough[env[~inside.any(axis=1)], particle[~inside.any(axis=1)]] = -1
    return passthrough


def _near_spheres(x: np.ndarray, start: np.ndarray, end: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Environments where some sphere's path comes within ``reach`` of the cloth's bounding box."""
    low, high = x.min(axis=1), x.max(axis=1)  # (3, N)
    near = np.zeros(x.shape[-1], dtype=bool)
    for centres in (start, end):
        gap = np.maximum(low[:, None] - centres, 0.0) + np.maximum(centres - high[:, None], 0.0)
        near |= (_dot(gap, gap) < reach[:, None] ** 2).any(axis=0)
    return np.flatnonzero(near)


def cloth_edge_strain(topology: ClothTopology, material: ClothMaterial, positions: np.ndarray,
                      kind: int = STRETCH) -> np.ndarray:
    """Relative length change (N, C_kind) of the constraints of one kind: length / rest - 1."""
    members = topology.kind == kind
    edges = topology.edges[members]
    delta = positions[:, edges[:, 0]] - positions[:, edges[:, 1]]
    return np.sqrt((delta**2).sum(-1)) / material.rest_length[:, members] - 1.0


__all__ = [
    "BEND", "CONSTRAINT_KINDS", "RELEASE_CLEARANCE", "ClothMaterial", "ClothParams", "ClothPins", "ClothSpec",
    "ClothState", "ClothTopology",
    "MovingSpheres", "SHEAR", "STRETCH", "cloth_edge_strain", "cloth_init", "cloth_material", "cloth_step",
    "cloth_topology", "grid_positions", "update_passthrough",
]
