"""The numpy engine's cloth (physics/cloth.py): contacts, constraints, friction, pins, determinism."""

from types import SimpleNamespace

import numpy as np
import pytest

from training_ground.physics.cloth import (BEND, SHEAR, STRETCH, ClothParams, ClothPins, ClothSpec, MovingSpheres,
                                           cloth_edge_strain, cloth_init, cloth_material, cloth_step, cloth_topology)
from training_ground.physics.contacts import StaticGeometry
from training_ground.physics.scene import StaticBox

SPEC = ClothSpec(rows=10, cols=10, thickness=0.005)
TOPOLOGY = cloth_topology(SPEC)
TABLE_TOP = 0.95
FLAT = (0.0, 0.0, 0.0, 1.0)


def geometry(*boxes, floor_friction=0.9):
    return StaticGeometry.from_scene(SimpleNamespace(static_boxes=tuple(boxes), floor_friction=floor_friction))


TABLE = geometry(StaticBox("table", (0.5, 0.0, TABLE_TOP - 0.02), (0.3, 0.5, 0.02), friction=0.8))


def simulate(params, poses, steps, static=TABLE, pins=None, spheres=None, substeps=20):
    state = cloth_init(TOPOLOGY, params, np.asarray(poses, float))
    material = cloth_material(TOPOLOGY, params)
    for k in range(steps):
        step_pins = pins(k, state) if pins else None
        step_spheres = spheres(k) if spheres else None
        state = cloth_step(state, TOPOLOGY, material, static, 0.02, substeps, spheres=step_spheres, pins=step_pins)
    return state, material


def test_topology_colours_never_share_a_particle_and_cover_every_constraint():
    edges = TOPOLOGY.edges
    assert sorted(np.concatenate(TOPOLOGY.colors).tolist()) == list(range(len(edges)))
    for members in TOPOLOGY.colors:
        particles = edges[members].ravel()
        assert len(np.unique(particles)) == len(particles)
    counts = {kind: int((TOPOLOGY.kind == kind).sum()) for kind in (STRETCH, SHEAR, BEND)}
    assert counts == {STRETCH: 2 * 10 * 9, SHEAR: 2 * 9 * 9, BEND: 2 * 10 * 8}


def test_a_dropped_cloth_comes_to_rest_on_the_table_without_passing_through():
    params = [ClothParams(), ClothParams(length=0.2, width=0.28, mass=0.25, stretch_stiffness=600.0)]
    tilt = np.array([np.sin(0.15), 0.0, 0.0, np.cos(0.15)])  # dropped at a slant: one edge lands first
    poses = [[0.45, 0.0, TABLE_TOP + 0.05, *FLAT], [0.5, 0.1, TABLE_TOP + 0.1, *tilt]]
    lowest = np.inf
    state = cloth_init(TOPOLOGY, params, np.array(poses))
    material = cloth_material(TOPOLOGY, params)
    for _ in range(60):
        state = cloth_step(state, TOPOLOGY, material, TABLE, 0.02, 20)
        lowest = min(lowest, state.positions[..., 2].min())
    z = state.positions[..., 2]
    assert lowest > TABLE_TOP + SPEC.thickness - 1e-3  # never sank into the table during the fall
    np.testing.assert_allclose(z, TABLE_TOP + SPEC.thickness, atol=2e-3)  # lying flat on it
    assert np.abs(state.velocities).max() < 0.02
    for kind in (STRETCH, SHEAR):
        assert np.abs(cloth_edge_strain(TOPOLOGY, material, state.positions, kind)).max() < 0.03


def test_free_fall_follows_gravity():
    params = [ClothParams(damping=0.0)]
    state, _ = simulate(params, [[0.0, 0.0, 5.0, *FLAT]], 25, static=geometry())
    t = 25 * 0.02
    # Semi-implicit Euler at the substep h drops g t (t + h) / 2.
    h = 0.02 / 20
    np.testing.assert_allclose(state.positions[0, :, 2], 5.0 - 9.81 * t * (t + h) / 2, atol=1e-9)
    np.testing.assert_allclose(state.velocities[0, :, 2], -9.81 * t, atol=1e-9)


def test_pinned_corners_follow_their_pins_and_the_cloth_hangs_stretched_only_a_little():
    params = [ClothParams(stretch_stiffness=500.0, mass=0.15)]
    corners = SPEC.corner_indices[2:]  # the far edge's corners
    pinned = np.zeros((1, SPEC.num_particles), bool)
    pinned[0, corners] = True
    path = []

    def pins(k, state):
        start = state.positions.copy()
        end = start.copy()
        end[0, corners] += [0.0, 0.0, 0.01] if k < 35 else [0.004, 0.0, 0.0]  # lift 35 cm, then carry
        path.append(end[0, corners].copy())
        return ClothPins(pinned, start, end)

    state, material = simulate(params, [[0.45, 0.0, TABLE_TOP + 0.005, *FLAT]], 80, pins=pins)
    np.testing.assert_allclose(state.positions[0, corners], path[-1], atol=1e-12)
    # The cloth hangs below its pins, its free edge clear of the table.
    assert state.positions[0, :, 2].max() <= path[-1][0, 2] + 1e-9
    assert state.positions[0, :, 2].min() > TABLE_TOP + 0.02
    strain = cloth_edge_strain(TOPOLOGY, material, state.positions, STRETCH)
    assert np.median(np.abs(strain)) < 0.01 and strain.max() < 0.08


def test_friction_holds_cloth_on_a_gentle_incline_and_lets_it_slide_on_a_slippery_one():
    angle = 0.25  # tan = 0.255
    q = (0.0, np.sin(angle / 2), 0.0, np.cos(angle / 2))
    incline = geometry(StaticBox("ramp", (0.0, 0.0, 0.5), (0.5, 0.5, 0.02), q, friction=1.0))
    normal = np.array([np.sin(angle), 0.0, np.cos(angle)])
    centre = np.array([0.0, 0.0, 0.5]) + normal * (0.02 + SPEC.thickness + 0.002)
    params = [ClothParams(friction=0.6), ClothParams(friction=0.1)]
    state, _ = simulate(params, [[*centre, *q]] * 2, 40, static=incline)
    moved = np.linalg.norm(state.positions.mean(axis=1) - centre, axis=-1)
    assert moved[0] < 0.01  # mu 0.6 > tan 0.25: stays
    # mu 0.1: slides, accelerating at g (sin - mu cos) for about 0.8 s
    expected = 0.5 * 9.81 * (np.sin(angle) - 0.1 * np.cos(angle)) * 0.8**2
    assert 0.6 * expected < moved[1] < 1.2 * expected


def test_a_hand_sphere_pushes_the_cloth_instead_of_passing_through():
    radius = np.array([0.03])
    params = [ClothParams()]
    start_height = TABLE_TOP + 0.2

    def spheres(k):
        z = max(start_height - 0.01 * k, TABLE_TOP + 0.04)
        start = np.array([[[0.45, 0.0, z + 0.01 if k else z]]])
        return MovingSpheres(start, np.array([[[0.45, 0.0, z]]]), radius)

    state, _ = simulate(params, [[0.45, 0.0, TABLE_TOP + 0.005, *FLAT]], 25, spheres=spheres)
    gap = np.linalg.norm(state.positions[0] - [0.45, 0.0, TABLE_TOP + 0.04], axis=-1)
    assert gap.min() > radius[0] + SPEC.thickness - 2e-3  # no particle inside the sphere
    assert state.positions[0, :, 2].min() > TABLE_TOP + SPEC.thickness - 1e-3


def test_same_inputs_same_bits_and_a_batch_env_equals_the_env_alone():
    params = [ClothParams(), ClothParams(length=0.2, mass=0.2, friction=0.4), ClothParams(width=0.25)]
    poses = [[0.45, 0.0, TABLE_TOP + 0.03, *FLAT], [0.5, 0.1, TABLE_TOP + 0.05, *FLAT], [0.4, -0.1, 1.2, *FLAT]]
    corner = SPEC.corner_indices[3]

    def pins(k, state):
        pinned = np.zeros(state.positions.shape[:2], bool)
        pinned[:, corner] = True
        end = state.positions.copy()
        end[:, corner, 2] += 0.005
        return ClothPins(pinned, state.positions.copy(), end)

    def spheres(k):
        centre = np.tile([0.45, 0.0, TABLE_TOP + 0.2 - 0.005 * k], (3, 1, 1))
        return MovingSpheres(centre, centre - [0.0, 0.0, 0.005], np.array([0.02]))

    batch, _ = simulate(params, poses, 30, pins=pins, spheres=spheres)
    again, _ = simulate(params, poses, 30, pins=pins, spheres=spheres)
    assert np.array_equal(batch.positions, again.positions)
    for i in range(3):
        alone, _ = simulate(params[i:i + 1], poses[i:i + 1], 30,
                            pins=lambda k, s: _rows(pins(k, s), 1), spheres=lambda k: _rows(spheres(k), 1))
        assert np.array_equal(alone.positions[0], batch.positions[i])
        assert np.array_equal(alone.velocities[0], batch.velocities[i])


def _rows(value, n):
    if isinstance(value, ClothPins):
        return ClothPins(value.pinned[:n], value.start[:n], value.end[:n])
    return MovingSpheres(value.start[:n], value.end[:n], value.radius)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="mass"):
        ClothParams(mass=0.0)
    with pytest.raises(ValueError, match="friction"):
        ClothParams(friction=-0.1)
    with pytest.raises(ValueError, match="3 x 3"):
        ClothSpec(rows=2)
    with pytest.raises(ValueError, match="substeps"):
        cloth_step(cloth_init(TOPOLOGY, [ClothParams()], np.array([[0, 0, 1, *FLAT]])), TOPOLOGY,
                   cloth_material(TOPOLOGY, [ClothParams()]), TABLE, 0.02, 0)
