"""Object shapes are classes (physics/scene.py): sphere cover, inertia, rest height, pybullet shape; an unknown one is an error."""

import numpy as np
import pybullet
import pytest
from pybullet_utils import bullet_client

from training_ground.physics.scene import COVER_SPHERES, SHAPES, Box, Capsule, ObjectParams, Sphere


def test_an_unknown_shape_or_a_wrong_size_is_refused_when_the_params_are_made():
    with pytest.raises(ValueError, match="unknown object shape 'cylinder'"):
        ObjectParams("cylinder", (0.03, 0.1), 0.1, 0.8)
    with pytest.raises(ValueError, match="a box takes 3 size values"):
        ObjectParams("box", (0.03, 0.03), 0.1, 0.8)


def test_params_resolve_to_their_shape_class():
    assert ObjectParams("sphere", (0.04,), 0.1, 0.8).geometry == Sphere(0.04)
    assert ObjectParams("box", (0.01, 0.02, 0.03), 0.1, 0.8).geometry == Box((0.01, 0.02, 0.03))
    assert ObjectParams("capsule", (0.03, 0.06), 0.1, 0.8).geometry == Capsule(0.03, 0.06)
    assert set(SHAPES) == {"sphere", "box", "capsule"}


@pytest.mark.parametrize("shape", [Sphere(0.04), Box((0.01, 0.02, 0.03)), Capsule(0.03, 0.06)], ids=str)
def test_every_cover_has_the_same_number_of_spheres_inside_the_shape(shape):
    centers, radii = shape.cover()
    assert centers.shape == (COVER_SPHERES, 3) and radii.shape == (COVER_SPHERES,)
    if isinstance(shape, Box):
        assert np.all(np.abs(centers) + radii[:, None] <= np.asarray(shape.half_extents) + 1e-12)
    if isinstance(shape, Capsule):
        np.testing.assert_allclose(centers[[0, -1], 2], [-0.03, 0.03])


def test_inertia_and_rest_height_follow_the_solid_shapes():
    np.testing.assert_allclose(Sphere(0.1).inertia(2.0), [0.008] * 3)
    np.testing.assert_allclose(Box((0.1, 0.2, 0.3)).inertia(3.0), [0.13, 0.10, 0.05])
    side = Capsule(0.1, 0.2).inertia(1.0)
    assert side[0] == side[1] > side[2] == pytest.approx(0.005)
    assert (Sphere(0.1).rest_height(), Box((0.1, 0.2, 0.3)).rest_height(), Capsule(0.1, 0.2).rest_height()) == (
        0.1, 0.3, 0.1)


def test_each_shape_builds_its_pybullet_shape():
    client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
    try:
        for shape, kind in ((Sphere(0.04), pybullet.GEOM_SPHERE), (Box((0.01, 0.02, 0.03)), pybullet.GEOM_BOX),
                            (Capsule(0.03, 0.06), pybullet.GEOM_CAPSULE)):
            collision, visual = shape.pybullet_shape(client, (1.0, 0.0, 0.0, 1.0))
            assert collision >= 0 and visual >= 0
            body = client.createMultiBody(0.1, collision, visual)
            assert client.getCollisionShapeData(body, -1)[0][2] == kind
    finally:
        client.disconnect()
