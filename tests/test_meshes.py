"""Collision meshes: found (relative and package:// paths), covered by spheres within their tolerance for the
numpy engine, loaded natively by pybullet, and a robot with mesh feet stands on both engines as on boxes."""

from __future__ import annotations

import dataclasses
import re
import shutil
import warnings

import numpy as np
import pytest
import trimesh

from training_ground.physics import EngineConfig, make_engine
from training_ground.physics.meshes import DEFAULT_TOLERANCE, MeshError, resolve_mesh, sphere_cover
from training_ground.physics.scene import EpisodeSetup
from training_ground.scenes import stand as stand_scene

FOOT_BOX = '<geometry><box size="0.24 0.1 0.05"/></geometry>'


def _gap(mesh: trimesh.Trimesh, centers, radii) -> float:
    """How far the cover lies inside the mesh's hull at worst (fresh surface samples), after checking
    that no sphere sticks out of the hull (up to the float32 rounding of an STL file's vertices)."""
    hull = mesh.convex_hull
    normals = hull.face_normals
    offsets = (normals * hull.triangles[:, 0]).sum(axis=1)
    depth = (offsets[None] - centers @ normals.T).min(axis=1)
    assert (radii <= depth + 1e-6).all()
    points = np.concatenate([hull.vertices, trimesh.sample.sample_surface(hull, 3000, seed=7)[0]])
    return (np.linalg.norm(points[:, None] - centers[None], axis=-1) - radii[None]).min(axis=1).max()


@pytest.mark.parametrize("shape", ["box", "cylinder", "capsule", "icosphere"])
def test_a_cover_lies_inside_the_hull_and_reaches_within_its_tolerance(tmp_path, shape):
    mesh = {"box": lambda: trimesh.creation.box((0.24, 0.1, 0.05)),
            "cylinder": lambda: trimesh.creation.cylinder(radius=0.05, height=0.35),
            "capsule": lambda: trimesh.creation.capsule(height=0.3, radius=0.04),
            "icosphere": lambda: trimesh.creation.icosphere(radius=0.07)}[shape]()
    path = tmp_path / f"{shape}.stl"
    mesh.export(path)
    centers, radii, gap = sphere_cover(path)
    assert _gap(mesh, centers, radii) <= DEFAULT_TOLERANCE
    assert 0 < gap <= DEFAULT_TOLERANCE  # the gap it reports: on its own samples, within the tolerance
    # Scaled in the URDF: the cover of the scaled mesh. Twice the size, a box's edges take more spheres
    # than one mesh may have: the cover then says what it reached.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scaled_centers, scaled_radii, _ = sphere_cover(path, scale=(2.0, 2.0, 2.0), tolerance=0.02)
    scaled = mesh.copy()
    scaled.apply_scale(2.0)
    gap = _gap(scaled, scaled_centers, scaled_radii)
    if caught:
        assert re.search(r"spheres leave a gap of [0-9.]+ mm", str(caught[0].message))
    else:
        assert gap <= 0.02


@pytest.mark.parametrize("suffix", ["stl", "obj", "dae"])
def test_the_mesh_formats_of_published_robots_are_read(tmp_path, suffix):
    mesh = trimesh.creation.capsule(height=0.2, radius=0.03)
    path = tmp_path / f"part.{suffix}"
    mesh.export(path)
    centers, radii, _ = sphere_cover(path)
    assert _gap(mesh, centers, radii) <= DEFAULT_TOLERANCE
    path.write_text("not a mesh")
    with pytest.raises(MeshError, match="cannot read mesh|has no vertices"):
        sphere_cover(path)


def test_covers_are_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "part.stl"
    trimesh.creation.box((0.1, 0.2, 0.3)).export(path)
    first = sphere_cover(path, tolerance=0.03)
    assert list((tmp_path / "cache" / "training_ground" / "sphere_covers").glob("*.npz"))
    from training_ground.physics import meshes

    meshes._MEMORY.clear()
    again = sphere_cover(path, tolerance=0.03)  # from the disk cache
    np.testing.assert_array_equal(first.centers, again.centers)
    assert first.gap == again.gap
    trimesh.creation.box((0.1, 0.2, 0.4)).export(path)  # another content: another cover
    assert not np.array_equal(sphere_cover(path, tolerance=0.03)[1], first[1])


def test_mesh_paths_relative_and_package(tmp_path):
    (tmp_path / "my_robot" / "meshes").mkdir(parents=True)
    (tmp_path / "my_robot" / "urdf").mkdir()
    mesh = tmp_path / "my_robot" / "meshes" / "foot.stl"
    trimesh.creation.box((0.1, 0.1, 0.1)).export(mesh)
    urdf = tmp_path / "my_robot" / "urdf" / "robot.urdf"
    assert resolve_mesh(urdf, "package://my_robot/meshes/foot.stl") == mesh
    assert resolve_mesh(urdf, "../meshes/foot.stl").resolve() == mesh
    with pytest.raises(MeshError, match=r"names mesh 'package://my_robot/meshes/hand.stl', which is not a file"):
        resolve_mesh(urdf, "package://my_robot/meshes/hand.stl")


def _mesh_footed(robot, tmp_path):
    """humanoid43 with each foot's box collision replaced by an STL mesh of the same box."""
    trimesh.creation.box((0.24, 0.1, 0.05)).export(tmp_path / "foot.stl")
    text, count = re.subn(r"(<collision>\s*<origin [^>]*/>\s*)" + re.escape(FOOT_BOX),
                          r'\1<geometry><mesh filename="foot.stl"/></geometry>', robot.urdf_path.read_text())
    assert count == 2
    (tmp_path / "mesh_feet.urdf").write_text(text)
    return dataclasses.replace(robot, name="mesh_feet", urdf_path=tmp_path / "mesh_feet.urdf")


@pytest.mark.parametrize("backend", ["numpy", "pybullet"])
def test_a_robot_on_mesh_feet_stands_as_on_box_feet(robot, tmp_path, backend):
    heights = {}
    for body in (robot, _mesh_footed(robot, tmp_path)):
        engine = make_engine(backend, body, stand_scene.stand_scene(body.standing_base_height), 1, EngineConfig())
        try:
            engine.reset(None, EpisodeSetup.per_env(body.keyframe("standing")[None]))
            for _ in range(50):  # 1 s holding the standing posture
                engine.step()
            assert not engine.diverged.any()
            heights[body.name] = engine.link_poses([body.base_link])[0, 0, 2]
        finally:
            engine.close()
    # The mesh cover reaches within the tolerance (15 mm) of the box's surface: the robot may sink that much deeper.
    assert abs(heights["mesh_feet"] - heights["humanoid43"]) < DEFAULT_TOLERANCE


def test_a_missing_mesh_file_is_one_clear_error(robot, tmp_path):
    body = _mesh_footed(robot, tmp_path)
    shutil.move(tmp_path / "foot.stl", tmp_path / "elsewhere.stl")
    with pytest.raises(MeshError, match="names mesh 'foot.stl', which is not a file"):
        make_engine("numpy", body, stand_scene.stand_scene(body.standing_base_height), 1)


def test_mesh_spheres_carry_their_covers_gap_and_primitive_spheres_none(robot, tmp_path):
    from training_ground.physics import load_model
    from training_ground.physics.contacts import contact_spheres

    body = _mesh_footed(robot, tmp_path)
    model = load_model(body)
    spheres = contact_spheres(body, model.link_names)
    feet = np.isin(np.array(model.link_names)[spheres.body], body.feet)
    assert (spheres.inset[feet] > 0).all() and (spheres.inset[feet] <= DEFAULT_TOLERANCE).all()
    assert (spheres.inset[~feet] == 0).all()  # the assisted grasp's touch test is humanoid43's as before
