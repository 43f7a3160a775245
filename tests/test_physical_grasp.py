"""Physical grasping on the numpy engine: hand spheres against an object's exact shape, with Coulomb friction and
static friction (physics/numpy_objects.py, ``hand_contact="primitive"``), held to what Coulomb predicts.

The grasp-level rig: a bread roll, axis vertical, in mid-air above the table, squeezed between two of the right
hand's spheres held still on either side of it (kinematic fingers: the robot's other hand spheres are moved out
of reach, so only the object's contact code acts). Each contact's normal force is k * depth with k = m w^2 / 5
(the object's stiffness, module docstring), so the pair holds the roll's weight while 2 mu k depth > m g.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import training_ground  # noqa: F401  (registers the tasks)
from training_ground.physics.numpy_objects import OBJECT_SPHERES

SUBSTEPS = 500  # 1 s at 500 Hz


def _rig(grasp="physical"):
    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", backend="numpy", grasp=grasp)
    env.reset(seed=0)
    engine = env.unwrapped.task.engine
    objects = engine.objects
    roll = objects.params[0][0]
    radius = roll.size[0]
    objects.pose[0, 0] = [0.4, 0.0, 1.3, 0.0, 0.0, 0.0, 1.0]  # axis vertical, 0.3 m and more above the table
    objects.vel[0, 0] = 0.0
    fingers = engine._hand_spheres[1][:2]
    return env, engine, objects, roll, radius, fingers


def _squeeze(depth_fraction: float, grasp="physical", substeps: int = SUBSTEPS):
    """Squeeze with each finger pressed ``depth_fraction`` times the holding depth into the roll for ``substeps``
    physics steps; the roll's drop (m), the depth that just holds it, the roll, the last reaction on the robot
    spheres and the objects."""
    env, engine, objects, roll, radius, fingers = _rig(grasp)
    dt = engine.config.physics_dt
    k = roll.mass / OBJECT_SPHERES * engine.contact_frequency ** 2
    holding_depth = roll.mass * -engine.config.gravity / (2 * roll.friction * k)
    depth = depth_fraction * holding_depth
    kin = engine._current_kinematics()
    world, _, _ = engine._robot_spheres_world(kin, np.zeros((engine.model.nv, 1)))
    world[:, objects._hand_sphere_ids] += 10.0  # every hand sphere out of reach ...
    centre = objects.pose[0, 0, :3].copy()
    for finger, side in zip(fingers, (1.0, -1.0)):  # ... but two, pressed into the roll's sides
        r = engine.spheres.radius[finger]
        world[:, finger, 0] = centre + side * np.array([radius + r - depth, 0.0, 0.0])
    velocity = np.zeros_like(world)
    start = objects.pose[0, 0, 2]
    for _ in range(substeps):
        robot_force = np.zeros_like(world)
        objects.substep_forces(world, velocity, robot_force, dt)
        objects.substep_integrate(dt)
    drop = start - objects.pose[0, 0, 2]
    env.close()
    return drop, holding_depth, roll, robot_force, objects


def test_two_fingers_squeezing_twice_as_hard_as_its_weight_needs_hold_the_roll():
    drop, holding_depth, roll, robot_force, objects = _squeeze(2.0)
    # Static friction: it sags by the tangential springs' stretch, m g / (2 k), and stays there.
    assert drop < 2e-3, drop
    assert np.abs(objects.vel[0, 0]).max() < 1e-3
    # The fingers carry its weight: the reaction on the two spheres is the roll's weight, downwards.
    assert robot_force[2].sum() == pytest.approx(roll.mass * -9.81, rel=0.02)


def test_two_fingers_squeezing_half_as_hard_let_it_slide_as_coulomb_says():
    drop, holding_depth, roll, _, _ = _squeeze(0.5, substeps=25)
    # Sliding friction 2 mu k depth = m g / 2: it falls at g / 2, 6.4 mm in 0.05 s (a/2 (T^2 + T dt), the
    # semi-implicit Euler sum), the fingers still on its cylinder; before it slides, the tangential springs
    # stretch to the cone, mu k depth / k = mu depth (0.7 mm here), as a real pad's pre-sliding displacement does.
    t, dt = 0.05, 1 / 500
    expected = 0.5 * (9.81 / 2) * (t * t + t * dt) + roll.friction * 0.5 * holding_depth
    # Seen: 7.08 mm against 6.92 mm; the formula leaves out the first substeps' fall while the springs build up.
    assert drop == pytest.approx(expected, rel=0.05), (drop, expected)
    # And without friction's hold the roll would fall 12.7 mm: the fingers did slow it.
    assert drop < 0.6 * 0.5 * 9.81 * (t * t + t * dt)


def test_cover_contacts_let_even_a_hard_squeeze_creep():
    """What datasets recorded before the primitive contacts ran: friction without stiction creeps."""
    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", backend="numpy", grasp="physical",
                         hand_contact="cover", contact_matrix="per_contact")
    env.reset(seed=0)
    assert env.unwrapped.task.engine.objects.implicit_contacts() is None
    env.close()


def test_hand_contact_values_are_checked():
    with pytest.raises(ValueError, match="unknown hand_contact"):
        gymnasium.make("TrainingGround/BreadPickPlace-v0", backend="numpy", hand_contact="glue")
    with pytest.raises(ValueError, match="composite contact matrix"):
        gymnasium.make("TrainingGround/BreadPickPlace-v0", backend="numpy", contact_matrix="per_contact")
