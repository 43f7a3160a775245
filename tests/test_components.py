"""What a scene adds beside the robot is an engine component; the shared Engine interface names none."""

import numpy as np
import pytest

from training_ground import robots
from training_ground.physics import BACKENDS, make_engine
from training_ground.physics.cloth import ClothParams
from training_ground.physics.components import Cloth, Objects
from training_ground.physics.engine import Engine
from training_ground.physics.scene import ClothSetup, EpisodeSetup
from training_ground.scenes import bread, wardrobe


def test_the_shared_engine_interface_has_no_cloth_methods():
    assert not [name for name in dir(Engine) if "cloth" in name]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cloth_scene_gets_a_cloth_component_and_a_rigid_scene_does_not(backend):
    robot = robots.load("humanoid43")
    with make_engine(backend, robot, wardrobe.wardrobe_scene(), 1) as engine:
        cloth = engine.components["cloth"]
        assert isinstance(cloth, Cloth)
        params = ClothParams(length=0.18, width=0.25)
        pose = np.array([0.42, 0.1, wardrobe.TABLE_HEIGHT + 0.005, 0.0, 0.0, 0.0, 1.0])
        engine.reset([0], [EpisodeSetup(robot.keyframe("arms_ready"), cloth=ClothSetup(params, pose))])
        positions = cloth.positions()
        assert positions.shape == (1, wardrobe.GARMENT.num_particles, 3)
        np.testing.assert_allclose(positions[0].mean(axis=0), pose[:3], atol=1e-6)
        assert cloth.grasped().shape == (1, 2) and not cloth.grasped().any()
        assert [name for name in engine.state_blocks() if name.startswith("cloth_")]
    with make_engine(backend, robot, bread.bread_scene(), 1) as engine:
        assert "cloth" not in engine.components
        assert not [name for name in engine.state_blocks() if name.startswith("cloth_")]


def test_an_episode_that_does_not_fit_the_scene_is_refused():
    robot = robots.load("humanoid43")
    q = robot.keyframe("arms_ready")
    with make_engine("numpy", robot, bread.bread_scene(), 1) as engine:
        with pytest.raises(ValueError, match="has 1 objects"):
            engine.reset([0], [EpisodeSetup(q)])
        params, pose = bread.sample_bread(np.random.default_rng(0), bread.BreadRandomization())
        garment = ClothSetup(ClothParams(), np.array([0.4, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]))
        with pytest.raises(ValueError, match="no cloth"):
            engine.reset([0], [EpisodeSetup(q, (params,), pose[None], cloth=garment)])
        with pytest.raises(ValueError, match="one EpisodeSetup per env"):
            engine.reset([0], [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_free_objects_are_a_component_that_the_engine_reads_through(backend):
    robot = robots.load("humanoid43")
    params, pose = bread.sample_bread(np.random.default_rng(3), bread.BreadRandomization())
    with make_engine(backend, robot, bread.bread_scene(), 2) as engine:
        engine.reset(None, EpisodeSetup.per_env(np.tile(robot.keyframe("arms_ready"), (2, 1)), [[params]] * 2,
                                                np.tile(pose, (2, 1, 1))))
        objects = engine.components["objects"]
        assert isinstance(objects, Objects) and list(engine.components) == ["objects"]
        np.testing.assert_allclose(objects.poses(), np.tile(pose, (2, 1, 1)), atol=1e-9)
        np.testing.assert_array_equal(objects.poses(), engine.object_poses())
        np.testing.assert_array_equal(objects.grasped(), engine.grasped_objects())
        assert objects.velocities().shape == (2, 1, 6) and objects.hand_forces().shape == (2, 2, 1)
