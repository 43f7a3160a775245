"""Floating-base mode: the robot stands on its own feet, on both engines."""

import numpy as np
import pytest

from training_ground import robots
from training_ground.physics import make_engine
from training_ground.physics.scene import EpisodeSetup, Scene


@pytest.mark.parametrize("backend", ["pybullet", "numpy"])
def test_standing_keyframe_holds_for_ten_seconds(backend):
    robot = robots.load("humanoid43")
    scene = Scene("floor", (), (), (0.0, 0.0, robot.standing_base_height + 0.005), fixed_base=False)
    engine = make_engine(backend, robot, scene, num_envs=1)
    try:
        standing = robot.keyframe("standing")[None]
        engine.reset(None, EpisodeSetup.per_env(standing))
        for _ in range(int(10.0 / engine.config.control_dt)):
            engine.step()
        pelvis = engine.link_poses([robot.base_link])[0, 0]
        tilt = 2 * np.arccos(np.clip(abs(pelvis[6]), 0, 1))
        assert not engine.diverged.any()
        assert pelvis[2] > robot.standing_base_height - 0.05, f"pelvis sank to {pelvis[2]:.3f} m: the robot fell"
        assert tilt < 0.15, f"pelvis tilted {tilt:.2f} rad"
        assert engine.point_jacobian("right_palm", (0.0, 0.0, 0.0)).shape == (1, 6, robot.num_joints)
    finally:
        engine.close()
