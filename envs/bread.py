"""BreadPickPlace: pick a randomly placed bread roll from the table and put it into the basket.

Observation (dict, positions in the robot base frame, which is fixed on its stand):
joint_pos, joint_vel (43 each); hand_pos (2 hands x 3) and hand_quat (2 x 4) of the grasp
sites; bread_pos, bread_quat; bread_to_hands and basket_to_hands (2 x 3: target minus
hand); grasped (2, 1.0 where the hand holds the roll).

Success: the roll rests inside the basket (below the rim, inside the walls), released
by both hands and nearly still. Failure (terminates): the roll falls off the table.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..scenes import bread as bread_scene
from ..scenes.base import table_mount
from ..physics.scene import EpisodeSetup, Scene
from .base import BatchedTask, TaskConfig
from .controllers import grasp_site_poses
from .registry import register_task

#: Where the dense reward guides the roll: above the basket centre.
BASKET_DROP_POINT = np.array([*bread_scene.BASKET_CENTER, bread_scene.TABLE_HEIGHT + 0.12])


@dataclasses.dataclass(frozen=True)
class BreadPickPlaceConfig(TaskConfig):
    """BreadPickPlace options (see TaskConfig for the shared ones).

    randomization: ranges of the roll's pose, size, mass and friction.
    *_scale: weights of the named dense reward terms.
    rest_speed: the roll counts as placed once slower than this (m/s).
    """

    randomization: bread_scene.BreadRandomization = dataclasses.field(default_factory=bread_scene.BreadRandomization)
    reach_scale: float = 1.0
    grasp_scale: float = 1.0
    transport_scale: float = 2.0
    place_scale: float = 10.0
    rest_speed: float = 0.2


@register_task("TrainingGround/BreadPickPlace-v0", alias="bread",
               expert="training_ground.agents.experts:BreadPickPlaceExpert")
class BreadPickPlaceTask(BatchedTask):
    """Version history: v0, first release (pybullet and numpy backends; joint_pos and ee_delta
    actions; native VectorEnv on the numpy engine).
    """

    config_class = BreadPickPlaceConfig
    reward_names = ("reach", "grasp", "transport", "place")
    instruction_templates = ("Pick up the {size} bread roll and put it in the basket.",
                             "Put the {size} roll into the basket.",
                             "Place the {size} bread roll in the basket on the table.")

    def build_scene(self) -> Scene:
        return bread_scene.bread_scene(*table_mount(self.robot, bread_scene.WORK_POINT))

    def sample_episode(self, rng):
        q = self.arms_ready_posture(rng)
        params, pose = bread_scene.sample_bread(rng, self.config.randomization)
        return EpisodeSetup(q, (params,), pose[None])

    def instruction_slots(self, env_id):
        # Short or long against the middle of the lengths the rolls are drawn from.
        low, high = self.config.randomization.length_range
        return {"size": "short" if self.episode_params[env_id][0].size[1] < (low + high) / 2 else "long"}

    def _frames(self):
        base = np.asarray(self.scene.robot_position)
        site_pos, site_quat = self.cached("sites", lambda: grasp_site_poses(self.engine))
        return base, site_pos, site_quat, self._bread_pose()

    def _bread_pose(self):
        return self.cached("bread", lambda: self.engine.object_poses()[:, 0])

    def observe(self):
        base, site_pos, site_quat, bread = self._frames()
        q, qd = self.engine.joint_state()
        basket = BASKET_DROP_POINT
        grasped = (self.engine.grasped_objects() == 0).astype(np.float32)
        n = self.num_envs
        return {
            "joint_pos": q,
            "joint_vel": qd,
            "hand_pos": (site_pos - base).reshape(n, -1),
            "hand_quat": site_quat.reshape(n, -1),
            "bread_pos": bread[:, :3] - base,
            "bread_quat": bread[:, 3:],
            "bread_to_hands": (bread[:, None, :3] - site_pos).reshape(n, -1),
            "basket_to_hands": (basket[None, None] - site_pos).reshape(n, -1),
            "grasped": grasped,
        }

    def evaluate(self):
        bread = self._bread_pose()
        speed = np.linalg.norm(self.engine.object_velocities()[:, 0, :3], axis=-1)
        held = (self.engine.grasped_objects() == 0).any(axis=1)
        inside = bread_scene.in_basket(bread[:, :3])
        success = inside & ~held & (speed < self.config.rest_speed)
        failure = bread[:, 2] < bread_scene.TABLE_HEIGHT - 0.1
        return {"success": success, "failure": failure, "held": held, "bread": bread}

    def reward_terms(self, evaluation):
        _, site_pos, _, _ = self._frames()
        bread = evaluation["bread"][:, :3]
        reach = 1.0 - np.tanh(5.0 * np.linalg.norm(site_pos - bread[:, None], axis=-1).min(axis=1))
        held = evaluation["held"].astype(float)
        transport = held * (1.0 - np.tanh(5.0 * np.linalg.norm(bread - BASKET_DROP_POINT, axis=-1)))
        return {
            "reach": np.where(held > 0, 1.0, reach),
            "grasp": held,
            "transport": transport,
            "place": evaluation["success"].astype(float),
        }
