"""Physical grasping on the numpy engine: hand spheres against an object's exact shape, with Coulomb friction and
static friction (physics/numpy_objects.py, ``hand_contact="primitive"``), held to what Coulomb predicts and to
pybullet, the reference, on the same rigs: a roll squeezed by two fingers (hold or slide), lifted and held for
5 s, pushed along the table; then the rule of what counts as held, and the tasks' refusals.

The grasp-level rig: a bread roll, axis vertical, in mid-air above the table, squeezed between two of the right
hand's spheres held still on either side of it (kinematic fingers: the robot's other hand spheres are moved out
of reach, so only the object's contact code acts). Each contact's normal force is k * depth with k = m w^2 / 5
(the object's stiffness, module docstring), so the pair holds the roll's weight while 2 mu k depth > m g.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pybullet
import pytest

import training_ground  # noqa: F401  (registers the tasks)
from training_ground.physics import grasp as grasp_rule
from training_ground.physics.numpy_objects import HAND_CONTACT_FREQUENCY, OBJECT_SPHERES
from training_ground.physics.rotations import quat_to_matrix

SUBSTEPS = 500  # 1 s at 500 Hz


def _fingers(engine) -> np.ndarray:
    """Two spheres of the right hand on different links: the palm's first and the first finger's."""
    hand = engine._hand_spheres[1]
    links = engine.spheres.body[hand]
    return np.array([hand[0], hand[np.flatnonzero(links != links[0])[0]]])


def _rig(grasp="physical"):
    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", backend="numpy", grasp=grasp)
    env.reset(seed=0)
    engine = env.unwrapped.task.engine
    objects = engine.objects
    roll = objects.params[0][0]
    radius = roll.size[0]
    objects.pose[0, 0] = [0.4, 0.0, 1.3, 0.0, 0.0, 0.0, 1.0]  # axis vertical, 0.3 m and more above the table
    objects.vel[0, 0] = 0.0
    return env, engine, objects, roll, radius, _fingers(engine)


def _squeeze(depth_fraction: float, grasp="physical", substeps: int = SUBSTEPS, lift_speed: float = 0.0,
             lift_substeps: int = 0):
    """Squeeze with each finger pressed ``depth_fraction`` times the holding depth into the roll for ``substeps``
    physics steps, the first ``lift_substeps`` of them rising at ``lift_speed`` (m/s); the roll's drop relative
    to the fingers (m), the depth that just holds it, the roll, the last reaction on the robot spheres and the
    objects."""
    env, engine, objects, roll, radius, fingers = _rig(grasp)
    dt = engine.config.physics_dt
    k = roll.mass / OBJECT_SPHERES * HAND_CONTACT_FREQUENCY ** 2
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
    for substep in range(substeps):
        rising = substep < lift_substeps
        velocity[2, fingers, 0] = lift_speed if rising else 0.0
        robot_force = np.zeros_like(world)
        objects.substep_forces(world, velocity, robot_force, dt)
        objects.substep_integrate(dt)
        if rising:
            world[2, fingers, 0] += lift_speed * dt
    drop = start + lift_speed * dt * lift_substeps - objects.pose[0, 0, 2]
    env.close()
    return drop, holding_depth, roll, robot_force, objects


def test_two_fingers_squeezing_twice_as_hard_as_its_weight_needs_hold_the_roll():
    drop, holding_depth, roll, robot_force, objects = _squeeze(2.0)
    # Static friction: it sags by the tangential springs' stretch, m g / (2 k), and stays there.
    assert drop < 2e-3, drop
    assert np.abs(objects.vel[0, 0]).max() < 1e-3
    # The fingers carry its weight: the reaction on the two spheres is the roll's weight, downwards.
    assert robot_force[2].sum() == pytest.approx(roll.mass * -9.81, rel=0.02)


def test_a_roll_lifted_and_held_for_5_s_slips_under_1_cm():
    """Lifted 10 cm in 0.5 s (0.2 m/s) and held 4.5 s more, twice as hard as its weight needs: it lags the fingers
    by the springs' stretch and no more. Seen: 1.7 mm on numpy; pybullet, the same rig on rails that rise, 0.6 mm."""
    drop, holding_depth, roll, _, objects = _squeeze(2.0, substeps=5 * 500, lift_speed=0.2, lift_substeps=250)
    assert 0.0 < drop < 0.01, drop
    k = roll.mass / OBJECT_SPHERES * HAND_CONTACT_FREQUENCY ** 2
    fingers = _fingers(objects.engine)
    reference = _pybullet_squeeze(roll, objects.engine.spheres.radius[fingers], k * 2.0 * holding_depth, 5.0,
                                  lift_speed=0.2, lift_seconds=0.5)
    assert abs(reference) < 0.01, reference


def test_two_fingers_squeezing_half_as_hard_let_it_slide_as_coulomb_says():
    drop, holding_depth, roll, _, _ = _squeeze(0.5, substeps=25)
    # Sliding friction 2 mu k depth = m g / 2: it falls at g / 2, 6.4 mm in 0.05 s (a/2 (T^2 + T dt), the
    # semi-implicit Euler sum), the fingers still on its cylinder. Seen: 6.1 mm; the first substeps stick (the
    # tangential springs, implicit on the object's side, take them to the cone), so it starts late.
    t, dt = 0.05, 1 / 500
    coulomb = 0.5 * (9.81 / 2) * (t * t + t * dt)
    assert drop == pytest.approx(coulomb, rel=0.08), (drop, coulomb)
    # And without friction's hold the roll would fall 12.7 mm: the fingers did slow it.
    assert drop < 0.6 * 0.5 * 9.81 * (t * t + t * dt)


def _pybullet_squeeze(roll, finger_radii, force: float, seconds: float, lift_speed: float = 0.0,
                      lift_seconds: float = 0.0) -> float:
    """The same rig in pybullet, the reference: the roll (its radius, length, mass and friction) between two
    spheres of the hand spheres' radii (friction 1.0, as robot links have), each on a horizontal rail and pushed
    into it with ``force`` newtons; the rails rise at ``lift_speed`` for the first ``lift_seconds``. Returns the
    roll's drop relative to the rails (m)."""
    client = pybullet.connect(pybullet.DIRECT)
    try:
        pybullet.setGravity(0, 0, -9.81, physicsClientId=client)
        pybullet.setTimeStep(1 / 500, physicsClientId=client)
        radius, length = roll.size
        shape = pybullet.createCollisionShape(pybullet.GEOM_CAPSULE, radius=radius, height=length, physicsClientId=client)
        body = pybullet.createMultiBody(roll.mass, shape, -1, [0, 0, 1.0], physicsClientId=client)
        pybullet.changeDynamics(body, -1, lateralFriction=roll.friction, rollingFriction=0.0, spinningFriction=0.0,
                                linearDamping=0.0, angularDamping=0.0, physicsClientId=client)
        fingers = []
        for finger_radius, side in zip(finger_radii, (1.0, -1.0)):
            at = [side * (radius + finger_radius), 0.0, 1.0]
            sphere = pybullet.createCollisionShape(pybullet.GEOM_SPHERE, radius=finger_radius, physicsClientId=client)
            finger = pybullet.createMultiBody(1.0, sphere, -1, at, physicsClientId=client)
            pybullet.changeDynamics(finger, -1, lateralFriction=1.0, linearDamping=0.0, angularDamping=0.0,
                                    physicsClientId=client)
            rail = pybullet.createConstraint(finger, -1, -1, -1, pybullet.JOINT_PRISMATIC, [1, 0, 0], [0, 0, 0], at,
                                             physicsClientId=client)
            pybullet.changeConstraint(rail, maxForce=1e4, physicsClientId=client)
            fingers.append((finger, side, rail, at))
        height = 1.0
        for step in range(round(seconds * 500)):
            if step < round(lift_seconds * 500):
                height += lift_speed / 500
                for _, _, rail, at in fingers:
                    pybullet.changeConstraint(rail, jointChildPivot=[at[0], at[1], height], maxForce=1e4,
                                              physicsClientId=client)
            for finger, side, _, _ in fingers:
                position = pybullet.getBasePositionAndOrientation(finger, physicsClientId=client)[0]
                pybullet.applyExternalForce(finger, -1, [-side * force, 0.0, 0.0], position, pybullet.WORLD_FRAME,
                                            physicsClientId=client)
            pybullet.stepSimulation(physicsClientId=client)
        return height - pybullet.getBasePositionAndOrientation(body, physicsClientId=client)[0][2]
    finally:
        pybullet.disconnect(client)


@pytest.mark.parametrize("fraction, seconds", [(2.0, 1.0), (0.5, 0.05)])
def test_pybullet_holds_and_lets_slide_the_same_roll_as_the_numpy_engine(fraction, seconds):
    """The reference on the same rig, squeezed with the normal force the numpy contacts press with (k depth).
    Seen: twice the holding force, pybullet 0.04 mm in 1 s against numpy's 0.15 mm (its springs' stretch);
    half of it, 6.5 mm against numpy's 6.1 mm and Coulomb's 6.4 mm in 0.05 s."""
    drop, holding_depth, roll, _, objects = _squeeze(fraction, substeps=round(seconds * 500))
    engine = objects.engine
    k = roll.mass / OBJECT_SPHERES * HAND_CONTACT_FREQUENCY ** 2
    reference = _pybullet_squeeze(roll, engine.spheres.radius[_fingers(engine)], k * fraction * holding_depth,
                                  seconds)
    if fraction > 1:
        assert reference < 1e-3 and drop < 2e-3, (reference, drop)
    else:
        coulomb = 0.5 * 9.81 * (1 - fraction) * (seconds ** 2 + seconds / 500)
        assert reference == pytest.approx(coulomb, rel=0.05), (reference, coulomb)
        assert drop == pytest.approx(reference, rel=0.15), (drop, reference)


def test_cover_contacts_add_nothing_to_the_robots_implicit_contacts():
    """What datasets recorded before the primitive contacts ran, unchanged: explicit hand contacts."""
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


def test_what_counts_as_held_is_one_rule_of_links_and_force():
    links = np.array([[[2, 1], [1, 3]]])  # (N=1, H=2, K=2)
    force = np.array([[[0.6, 9.0], [5.0, 0.4]]])
    heavy = np.array([[1.0, 1.0]])  # 0.1 kg objects' weights (N)
    # Hand 0 holds object 0 (two links, 0.6 N); hand 1 touches object 0 with one link and object 1 too lightly.
    np.testing.assert_array_equal(grasp_rule.contact_holds(links, force, heavy), [[0, -1]])
    # A 2 g part (0.02 N) is held by twice its weight: 0.4 N on object 1 holds it, 0.03 N does not.
    light = np.array([[1.0, 0.02]])
    np.testing.assert_array_equal(grasp_rule.contact_holds(links, force, light), [[0, 1]])
    force[0, 1, 1] = 0.03
    np.testing.assert_array_equal(grasp_rule.contact_holds(links, force, light), [[0, -1]])


def test_a_squeezed_roll_counts_as_held_and_is_never_welded():
    """Under grasp="physical" the numpy engine reports what contact holds (grasped: the squeezing hand), and the
    held roll keeps moving by its forces alone: before this change a held object followed the palm as a weld
    does, which threw it 10 cm in one step with a zero quaternion."""
    env, engine, objects, roll, radius, fingers = _rig()
    kin = engine._current_kinematics()
    world, _, _ = engine._robot_spheres_world(kin, np.zeros((engine.model.nv, 1)))
    world[:, objects._hand_sphere_ids] += 10.0
    centre = objects.pose[0, 0, :3].copy()
    for finger, side in zip(fingers, (1.0, -1.0)):
        world[:, finger, 0] = centre + side * np.array([radius + engine.spheres.radius[finger] - 0.01, 0.0, 0.0])
    for _ in range(10):
        objects.substep_forces(world, np.zeros_like(world), np.zeros_like(world), engine.config.physics_dt)
        objects.substep_integrate(engine.config.physics_dt)
    before = objects.pose.copy()
    objects.end_step()
    np.testing.assert_array_equal(objects.grasped()[0], [-1, 0])  # the right hand holds the roll
    np.testing.assert_array_equal(objects.pose, before)  # and nothing moved it but its contacts
    env.close()


def test_fingers_pressing_a_heavy_roll_stay_stable_through_the_robots_implicit_contacts():
    """A 1 kg roll under humanoid43 revision 2's stiff fingers: its hand contacts (k = m w^2 / 5 at
    HAND_CONTACT_FREQUENCY, up to 32,000 N/m) on fingertips of a few grams of effective mass are far past what an
    explicit step holds, so they join the robot's implicit contacts (NumpyObjects.implicit_contacts). Seen with
    them left explicit (a one-off patch): seeds 0-2 all diverge within 44 control steps, finger joints reach
    116-177 rad/s; implicit, none diverges."""
    from training_ground.agents.policies import make_expert

    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", backend="numpy", grasp="physical", robot_revision=2,
                         randomization={"mass_range": [1.0, 1.0]})
    try:
        expert = make_expert(env)
        pressed = 0.0
        engine = env.unwrapped.task.engine
        for seed in range(3):
            observation, _ = env.reset(seed=seed)
            expert.reset()
            for _ in range(100):
                observation, _, terminated, truncated, info = env.step(expert(observation))
                pressed = max(pressed, float(engine.objects.hand_forces().max()))
                assert not info["diverged"], seed
                if terminated or truncated:
                    break
        assert pressed > 5.0  # the hand did squeeze the roll
    finally:
        env.close()


@pytest.mark.parametrize("backend", ["numpy", "pybullet"])
def test_cloth_refuses_the_physical_grasp_it_cannot_have(backend):
    """Before this change WardrobeFold took grasp="physical" and silently held nothing."""
    with pytest.raises(ValueError, match="cloth is held by the pin rule"):
        gymnasium.make("TrainingGround/WardrobeFold-v0", backend=backend, grasp="physical")


@pytest.mark.parametrize("backend", ["numpy", "pybullet"])
def test_both_engines_report_what_contact_holds_by_the_one_rule(backend):
    """The bread expert's physical descent and close, seed 0, 100 control steps, humanoid43 revision 2: ``grasped`` is 1 exactly while two links of the
    right hand press on the roll with 0.5 N or more (its weight is 0.5-1.5 N; physics/grasp.py contact_holds), on both engines. Before
    this change it stayed 0 under grasp="physical" whatever touched."""
    from training_ground.agents.policies import make_expert

    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", backend=backend, grasp="physical", robot_revision=2)
    try:
        engine, expert = env.unwrapped.task.engine, None
        expert = make_expert(env)
        observation, _ = env.reset(seed=0)
        expert.reset()
        held_steps = 0
        for _ in range(100):
            observation, *_ = env.step(expert(observation))
            if backend == "numpy":
                links, force = engine.objects._touching_links, engine.objects.contact_forces
                weight = engine.objects._mass * 9.81
            else:
                (links, force), weight = engine.objects._hand_touches(), engine.objects.masses * 9.81
            expected = grasp_rule.contact_holds(links, force, weight)[0, 1] == 0
            assert observation["grasped"][1] == float(expected)
            held_steps += expected
        assert held_steps > 0
    finally:
        env.close()


def _numpy_push(seed: int, speed: float, push_seconds: float, rest_seconds: float):
    """A fingertip sphere pushes the roll lying on the table along its axis, from 5 mm behind its cap, at
    ``speed`` for ``push_seconds``, then stops; the roll's pose before and after, and the rig."""
    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", backend="numpy", grasp="physical")
    try:
        env.reset(seed=seed)
        engine = env.unwrapped.task.engine
        objects = engine.objects
        roll = objects.params[0][0]
        radius, length = roll.size
        before = objects.pose[0, 0].copy()
        axis = quat_to_matrix(before[3:])[:, 2]
        kin = engine._current_kinematics()
        world, _, _ = engine._robot_spheres_world(kin, np.zeros((engine.model.nv, 1)))
        world[:, objects._hand_sphere_ids] += 10.0
        finger = _fingers(engine)[1]
        finger_radius = engine.spheres.radius[finger]
        start = before[:3] - axis * (length / 2 + radius + finger_radius + 0.005)
        world[:, finger, 0] = start
        velocity = np.zeros_like(world)
        dt = engine.config.physics_dt
        for substep in range(round((push_seconds + rest_seconds) / dt)):
            pushing = substep < round(push_seconds / dt)
            velocity[:, finger, 0] = axis * speed if pushing else 0.0
            objects.substep_forces(world, velocity, np.zeros_like(world), dt)
            objects.substep_integrate(dt)
            if pushing:
                world[:, finger, 0] += axis * speed * dt
        return before, objects.pose[0, 0].copy(), roll, finger_radius, start, axis, engine.scene
    finally:
        env.close()


def _pybullet_push(before, roll, finger_radius, start, axis, scene, speed, push_seconds, rest_seconds):
    """The same push in pybullet: the scene's static boxes, the roll, and a sphere held by a constraint whose
    pivot moves along the push (it does not collide with the table)."""
    client = pybullet.connect(pybullet.DIRECT)
    try:
        pybullet.setGravity(0, 0, -9.81, physicsClientId=client)
        pybullet.setTimeStep(1 / 500, physicsClientId=client)
        statics = []
        for box in scene.static_boxes:
            shape = pybullet.createCollisionShape(pybullet.GEOM_BOX, halfExtents=box.half_extents, physicsClientId=client)
            body = pybullet.createMultiBody(0, shape, -1, box.position, box.quaternion, physicsClientId=client)
            pybullet.changeDynamics(body, -1, lateralFriction=box.friction, physicsClientId=client)
            statics.append(body)
        radius, length = roll.size
        shape = pybullet.createCollisionShape(pybullet.GEOM_CAPSULE, radius=radius, height=length, physicsClientId=client)
        body = pybullet.createMultiBody(roll.mass, shape, -1, before[:3], before[3:], physicsClientId=client)
        pybullet.changeDynamics(body, -1, lateralFriction=roll.friction, rollingFriction=0.0, spinningFriction=0.0,
                                linearDamping=0.0, angularDamping=0.0, physicsClientId=client)
        sphere = pybullet.createCollisionShape(pybullet.GEOM_SPHERE, radius=finger_radius, physicsClientId=client)
        pusher = pybullet.createMultiBody(10.0, sphere, -1, start, physicsClientId=client)
        pybullet.changeDynamics(pusher, -1, lateralFriction=1.0, physicsClientId=client)
        for static in statics:
            pybullet.setCollisionFilterPair(pusher, static, -1, -1, 0, physicsClientId=client)
        hold = pybullet.createConstraint(pusher, -1, -1, -1, pybullet.JOINT_FIXED, [0, 0, 0], [0, 0, 0], start,
                                         physicsClientId=client)
        at = np.array(start, float)
        for step in range(round((push_seconds + rest_seconds) * 500)):
            if step < round(push_seconds * 500):
                at = at + axis * speed / 500
            pybullet.changeConstraint(hold, jointChildPivot=at.tolist(), maxForce=1e5, physicsClientId=client)
            pybullet.stepSimulation(physicsClientId=client)
        position, quaternion = pybullet.getBasePositionAndOrientation(body, physicsClientId=client)
        return np.array([*position, *quaternion])
    finally:
        pybullet.disconnect(client)


@pytest.mark.parametrize("seed", range(5))
def test_a_roll_pushed_along_the_table_ends_where_pybullet_puts_it(seed):
    """Pushed 5 cm along its axis at 0.1 m/s, then left for 0.5 s: it slides about 45 mm. Seen: the engines
    within 0.5-2.7 mm of each other, axes within 0.1-2.3 degrees (seeds 0-4)."""
    speed, push, rest = 0.1, 0.5, 0.5
    before, after, roll, finger_radius, start, axis, scene = _numpy_push(seed, speed, push, rest)
    reference = _pybullet_push(before, roll, finger_radius, start, axis, scene, speed, push, rest)
    assert np.linalg.norm(after[:2] - before[:2]) > 0.04  # it was pushed
    assert np.linalg.norm(after[:3] - reference[:3]) < 0.005
    turned = abs(quat_to_matrix(after[3:])[:, 2] @ quat_to_matrix(reference[3:])[:, 2])
    assert np.degrees(np.arccos(min(1.0, turned))) < 4.0


@pytest.mark.parametrize("backend", ["numpy", "pybullet"])
def test_revision_3s_thumb_and_fingers_pick_the_roll_by_friction_alone(backend):
    """humanoid43 revision 3 (the pinch hand): the bread expert, told by the measured pinch where thumb and fingers
    meet, closes them on the roll from both sides and carries it to the basket with no weld, seeds 0-5 (100 seeds
    measured 100/100 on numpy, 98/100 on pybullet: benchmarks/results/experts_r3_pinch.json)."""
    from training_ground.benchmarks.expert_success import run_expert_batch

    success, _ = run_expert_batch("TrainingGround/BreadPickPlace-v0", backend, 6, grasp="physical",
                                  overrides={"robot_revision": 3})
    assert success.all(), np.flatnonzero(~success)
