"""The single-environment fast paths of the numpy engine compute the batch's bits.

One environment (what ``gymnasium.make`` gives) takes cheaper routes than a batch: the LTDL
factorisation and solve as straight-line Python on floats, cross products by gathers, a
batched broad phase over the static boxes. Each must give exactly what the batched form gives,
or recorded datasets would replay differently at N = 1 than in a batch.
"""

import numpy as np
import pytest

from training_ground import robots
from training_ground.physics import contacts
from training_ground.physics.model import _cross, _cross_last, _kinematics, _ltdl_factor, _ltdl_solve, _mass_pairs, load_model


@pytest.mark.parametrize("fixed_base", [True, False])
def test_scalar_ltdl_matches_the_batched_factorisation_bit_for_bit(fixed_base):
    model = load_model(robots.load("humanoid43"), fixed_base=fixed_base)
    rng = np.random.default_rng(3)
    q = rng.normal(size=(5, model.nq)) * 0.6
    if not fixed_base:
        q[:, 3:7] = rng.normal(size=(5, 4))
    pairs = _mass_pairs(model, _kinematics(model, np.ascontiguousarray(q.T)))
    pairs[model._sparse.diag] += rng.uniform(0.0, 0.5, size=(model.nv, 5))
    rhs = rng.normal(size=(model.nv, 5)) * 10.0
    batch = _ltdl_solve(_ltdl_factor(pairs.copy(), model._sparse), model._sparse, rhs.copy())
    for env in range(5):
        factor = _ltdl_factor(pairs[:, env:env + 1].copy(), model._sparse)
        single = _ltdl_solve(factor, model._sparse, rhs[:, env:env + 1].copy())
        assert np.array_equal(single[:, 0], batch[:, env])


def test_cross_products_agree_across_sizes_and_with_numpy():
    rng = np.random.default_rng(4)
    for shape in [(3, 4, 1), (3, 44, 64), (3, 200, 1024)]:
        a, b = rng.normal(size=shape), rng.normal(size=shape) * 1e3
        expected = np.cross(a, b, axis=0)
        assert np.array_equal(_cross(a, b), expected)
        assert np.array_equal(_cross_last(np.moveaxis(a, 0, -1), np.moveaxis(b, 0, -1)), np.moveaxis(expected, 0, -1))


def test_batched_box_broad_phase_keeps_every_contact(monkeypatch):
    class Box:
        def __init__(self, position, half, quaternion=(0.0, 0.0, 0.0, 1.0)):
            self.position, self.half_extents, self.quaternion, self.friction = position, half, quaternion, 0.7

    class Scene:
        floor_friction = 1.0
        static_boxes = [Box((0.5, 0.0, 0.4), (0.3, 0.4, 0.02)), Box((0.0, 0.6, 0.2), (0.1, 0.1, 0.2)),
                        Box((-0.4, -0.3, 0.3), (0.2, 0.1, 0.05), (0.0, 0.0, 0.3826834, 0.9238795)),
                        Box((3.0, 3.0, 0.5), (0.1, 0.1, 0.1))]

    geometry = contacts.StaticGeometry.from_scene(Scene())
    rng = np.random.default_rng(5)
    center = rng.uniform([-0.8, -0.8, 0.0], [0.9, 0.9, 0.6], size=(40, 3)).T[:, :, None]
    radius = rng.uniform(0.01, 0.06, size=40)
    fast = contacts.static_contacts(geometry, center, radius)
    monkeypatch.setattr(contacts, "_BATCHED_BROAD_PHASE", 0)  # every box through the exact test
    exact = contacts.static_contacts(geometry, center, radius)
    assert ((fast[0] > 0) & (fast[2] == 0.7)).any()  # some spheres touch boxes
    for a, b in zip(fast, exact):
        assert np.array_equal(a, b)
