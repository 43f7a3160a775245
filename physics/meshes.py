"""Collision meshes for the numpy engine: a URDF's mesh files, found, read and covered by spheres.

pybullet collides a moving body's mesh as its convex hull (btConvexHullShape); the numpy engine
collides spheres. So a mesh is replaced by spheres inside its convex hull whose union reaches
within ``tolerance`` of every point of the hull's surface: no sphere sticks out of the hull, and
no part of the hull is more than ``tolerance`` inside the cover (:func:`sphere_cover`). Meshes are
read by trimesh; covers are cached per file content, in memory and on disk.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError

#: Bump when the cover algorithm changes, so cached covers of the old one are not reused.
COVER_VERSION = 3
#: Default gap between a mesh's hull and its cover (m), and the most spheres one mesh may take.
DEFAULT_TOLERANCE = 0.015
MAX_SPHERES = 96


class MeshError(InputError):
    """A URDF's mesh that cannot be found or read."""


def resolve_mesh(urdf_path, filename: str) -> Path:
    """The file a URDF's ``<mesh filename=...>`` names: absolute, relative to the URDF, or ``package://pkg/path``
    (searched as ``pkg/path`` and ``path`` in the URDF's folder and the folders above it, as ROS packages sit)."""
    base = Path(urdf_path).resolve().parent
    if filename.startswith("file://"):
        filename = filename[len("file://"):]
    tried = []
    if filename.startswith("package://"):
        package_path = filename[len("package://"):]
        rest = package_path.split("/", 1)[1] if "/" in package_path else package_path
        for folder in (base, *base.parents[:4]):
            tried += [folder / package_path, folder / rest]
    else:
        tried.append(Path(filename) if os.path.isabs(filename) else base / filename)
    for candidate in tried:
        if candidate.is_file():
            return candidate
    shown = ", ".join(str(path) for path in tried[:6]) + (", ..." if len(tried) > 6 else "")
    raise MeshError(f"URDF {urdf_path} names mesh {filename!r}, which is not a file (looked for {shown}); "
                    f"put the mesh there or fix the filename")


def _hull(path: Path, scale):
    try:
        import trimesh
    except ImportError as error:  # a core dependency; a broken install says so
        raise MeshError(f"reading mesh {path} needs trimesh (pip install trimesh)") from error
    try:
        mesh = trimesh.load(str(path), force="mesh")
    except Exception as error:  # trimesh raises many kinds for unreadable files
        raise MeshError(f"cannot read mesh {path}: {error}") from error
    if not len(getattr(mesh, "vertices", ())):
        raise MeshError(f"mesh {path} has no vertices")
    mesh.apply_scale(np.asarray(scale, float))
    try:
        return mesh.convex_hull
    except Exception as error:
        raise MeshError(f"mesh {path} has no convex hull (flat or degenerate?): {error}") from error


def _cover(hull, tolerance: float, max_spheres: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Greedy sphere cover of a convex hull: centres (K, 3), radii (K,) and the largest gap left (m)."""
    import trimesh

    normals = hull.face_normals
    offsets = (normals * hull.triangles[:, 0]).sum(axis=1)  # inside: n . x <= offset for every face
    low, high = hull.bounds
    # Candidate centres on a grid through the hull (a few thousand at most); each gets the largest ball
    # the hull holds there.
    pitch = max(tolerance, (hull.volume / 4000) ** (1 / 3))
    axes = [np.arange(lo + pitch / 2, hi, pitch) if hi - lo > pitch else np.array([(lo + hi) / 2])
            for lo, hi in zip(low, high)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    depth = (offsets[None] - grid @ normals.T).min(axis=1)
    centers, radii = grid[depth > 1e-9], depth[depth > 1e-9]
    if not len(centers):  # thinner than the grid: its centroid, at least
        centroid = hull.vertices.mean(axis=0)
        centers, radii = centroid[None], np.array([max((offsets - normals @ centroid).min(), 1e-6)])
    # What must be covered: the hull's corners and its surface, sampled a quarter of the tolerance apart and
    # covered to 0.8 of it, so that the points between the samples are within the tolerance too.
    count = int(min(8000, max(500, hull.area / (tolerance / 4) ** 2)))
    reach = 0.8 * tolerance
    samples = np.concatenate([hull.vertices, trimesh.sample.sample_surface(hull, count, seed=0)[0]])
    covers = np.empty((len(samples), len(centers)), dtype=bool)  # [sample, candidate]: within the tolerance
    for start in range(0, len(centers), 256):
        block = slice(start, start + 256)
        gap = np.linalg.norm(samples[:, None] - centers[None, block], axis=-1) - radii[None, block]
        covers[:, block] = gap <= reach
    uncovered = np.ones(len(samples), dtype=bool)
    chosen = []
    while uncovered.any() and len(chosen) < max_spheres:
        best = int(np.argmax(covers[uncovered].sum(axis=0)))
        chosen.append(best)
        uncovered &= ~covers[:, best]
    gap = np.linalg.norm(samples[:, None] - centers[None, chosen], axis=-1) - radii[None, chosen]
    return centers[chosen], radii[chosen], float(gap.min(axis=1).max())


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "training_ground" / "sphere_covers"


_MEMORY: dict = {}


class SphereCover(NamedTuple):
    """Centres (K, 3) in the mesh's frame, radii (K,), and the gap (m): how far at most the hull's surface
    lies outside the union of the spheres (measured on the samples the cover was built on)."""

    centers: np.ndarray
    radii: np.ndarray
    gap: float


def sphere_cover(path, scale=(1.0, 1.0, 1.0), tolerance: float = DEFAULT_TOLERANCE,
                 max_spheres: int = MAX_SPHERES) -> SphereCover:
    """Spheres inside the convex hull of a mesh file, covering all of its surface to within ``tolerance``
    (m) where ``max_spheres`` allow it (else a warning gives the gap reached). Cached by the file's
    content, the scale and the settings."""
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as error:
        raise MeshError(f"cannot read mesh {path}: {error}") from error
    key = hashlib.sha256(content + repr((tuple(np.asarray(scale, float).tolist()), float(tolerance), int(max_spheres),
                                         COVER_VERSION, path.suffix.lower())).encode()).hexdigest()
    if key in _MEMORY:
        return _MEMORY[key]
    cached = _cache_dir() / f"{key}.npz"
    try:
        with np.load(cached) as stored:
            result = SphereCover(stored["centers"], stored["radii"], float(stored["gap"]))
    except (OSError, KeyError, ValueError):
        centers, radii, worst = _cover(_hull(path, scale), tolerance, max_spheres)
        if worst > tolerance:
            warnings.warn(f"mesh {path}: {max_spheres} spheres leave a gap of {worst * 1000:.1f} mm to its hull, "
                          f"more than the {tolerance * 1000:.1f} mm asked for", stacklevel=2)
        result = SphereCover(centers, radii, worst)
        try:  # a cache that cannot be written only costs the cover again next time
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.partial.npz")
            np.savez(partial, centers=centers, radii=radii, gap=worst)
            os.replace(partial, cached)
        except OSError:
            pass
    _MEMORY[key] = result
    return result


__all__ = ["DEFAULT_TOLERANCE", "MAX_SPHERES", "MeshError", "SphereCover", "resolve_mesh", "sphere_cover"]
