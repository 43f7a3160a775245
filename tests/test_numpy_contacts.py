"""Contacts of the numpy engine: physical sanity on the bread table."""

import numpy as np
import pytest

from training_ground import robots
from training_ground.physics import make_engine
from training_ground.physics.contacts import spheres_for_shape
from training_ground.physics.scene import EpisodeSetup, ObjectParams, Scene, StaticBox
from training_ground.scenes.bread import TABLE_HEIGHT, bread_scene

BOX = ObjectParams("box", (0.03, 0.03, 0.03), 0.2, 0.8)


@pytest.fixture(scope="module")
def robot():
    return robots.load("humanoid43")


def _run(engine, seconds):
    for _ in range(int(round(seconds / engine.config.control_dt))):
        engine.step()


def test_resting_box_moves_less_than_a_millimetre_in_ten_seconds_and_a_dropped_one_stops_on_the_table(robot):
    engine = make_engine("numpy", robot, bread_scene(), 2)
    start = np.array([[[0.65, 0.3, TABLE_HEIGHT + 0.03, 0, 0, 0, 1]], [[0.65, 0.3, TABLE_HEIGHT + 0.3, 0, 0, 0, 1]]])
    engine.reset(None, EpisodeSetup.per_env(np.tile(robot.keyframe("arms_ready"), (2, 1)), [[BOX], [BOX]], start))
    _run(engine, 10.0)
    poses = engine.object_poses()[:, 0]
    assert np.linalg.norm(poses[0, :3] - start[0, 0, :3]) < 1e-3
    # Dropped from 30 cm: at rest on the top, not through it (top at TABLE_HEIGHT, half size 3 cm).
    assert poses[1, 2] == pytest.approx(TABLE_HEIGHT + 0.03, abs=2e-3)
    assert np.abs(engine.object_velocities()).max() < 1e-2
    assert not engine.diverged.any()


@pytest.mark.parametrize("angle, slides", [(0.25, False), (0.6, True)])
def test_box_on_an_incline_slides_only_when_tan_angle_exceeds_friction(robot, angle, slides):
    """Incline and box friction 0.7 each combine (by product, as in Bullet) to mu = 0.49:
    tan(0.25) = 0.26 holds, tan(0.6) = 0.68 slides."""
    incline = StaticBox("incline", (1.5, 0.0, 0.5), (0.5, 0.5, 0.02), (0.0, np.sin(angle / 2), 0.0, np.cos(angle / 2)),
                        friction=0.7)
    scene = Scene("incline", (incline,), ("box",), (0.0, 0.0, 2.0), fixed_base=True)
    engine = make_engine("numpy", robot, scene, 1)
    normal = np.array([np.sin(angle), 0.0, np.cos(angle)])
    start = np.array(incline.position) + normal * (0.02 + 0.03)
    box = ObjectParams("box", (0.03, 0.03, 0.03), 0.2, 0.7)
    engine.reset(None, EpisodeSetup.per_env(robot.keyframe("standing")[None], [[box]], np.concatenate([start, incline.quaternion])[None, None]))
    _run(engine, 1.0)
    moved = np.linalg.norm(engine.object_poses()[0, 0, :3] - start)
    if slides:
        assert moved > 0.1
    else:
        assert moved < 5e-3


def test_sphere_covers_of_primitives():
    centers, radii = spheres_for_shape("cylinder", (0.05, 0.3))
    assert np.all(radii == 0.05) and centers[:, 2].min() == -0.15 and centers[:, 2].max() == 0.15
    assert np.max(np.diff(centers[:, 2])) <= 2 * 0.05 + 1e-12  # neighbours touch or overlap
    centers, radii = spheres_for_shape("box", (0.24, 0.10, 0.05))
    assert np.all(radii == 0.025)
    assert np.all(np.abs(centers) <= np.array([0.12, 0.05, 0.025]) - 0.025 + 1e-12)
    with pytest.raises(ValueError, match="mesh"):
        spheres_for_shape("mesh", ())


def test_expert_grasp_reports_hand_contact_and_holds_the_roll_on_the_numpy_engine(robot):
    """During the scripted grasp the right hand touches the roll (a normal force is reported),
    the assisted grasp welds it, and the roll rises with the hand."""
    import gymnasium

    from training_ground.agents.policies import make_expert

    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", backend="numpy")
    try:
        expert = make_expert(env)
        observation, _ = env.reset(seed=1)
        expert.reset()
        engine = env.unwrapped.task.engine
        touched = held_high = False
        start_height = observation["bread_pos"][2]
        for _ in range(120):
            observation, *_ = env.step(expert(observation))
            touched |= bool(engine.hand_contact_forces()[0, 1, 0] > 0)
            if engine.grasped_objects()[0, 1] == 0 and observation["bread_pos"][2] > start_height + 0.05:
                held_high = True
                break
        assert touched and held_high
    finally:
        env.close()
