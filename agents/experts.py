"""Scripted experts: state machines over the ``ee_delta`` action mode, batched over envs.

An expert reads only the task's observation (dict of arrays with a leading env axis, or
a single env's dict) and returns normalised actions, so the same object drives a single
env, a batch, or data collection.
"""

from __future__ import annotations

import numpy as np

from ..envs.controllers import IKSettings
from ..physics.rotations import matrix_to_quat, quat_conjugate, quat_multiply, quat_to_axis_angle, quat_to_matrix
from ..scenes import bread as bread_scene

# Right-hand grasp site orientation for a top-down grasp: palm facing down, fingers forward.
# Columns are the palm frame's x, y, z axes in the world (see robots/humanoid43.py).
_TOP_DOWN_RIGHT = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


class BreadPickPlaceExpert:
    """Right hand: hover over the roll, descend, close, lift, carry over the basket, lower, open.

    Phases advance per env on position error and timers; a grasp that has not taken hold
    after ``grasp_wait`` steps sends that env back to hovering (a retry).
    """

    APPROACH, DESCEND, CLOSE, LIFT, CARRY, LOWER, RELEASE, RETREAT = range(8)
    hand = 1  # right
    hover_height = 0.10
    carry_height = 0.17
    place_height = 0.085
    grasp_wait = 12
    palm_to_site = 0.03  # grasp site below the palm surface (m)

    def __init__(self, num_envs: int = 1, ik: IKSettings | None = None, base_position=(0.0, 0.0, 0.0)):
        self.ik = ik or IKSettings()
        self.num_envs = num_envs
        self.base_position = np.asarray(base_position, float)
        self.phase = np.zeros(num_envs, dtype=np.int64)
        self.timer = np.zeros(num_envs, dtype=np.int64)
        self.grasp_yaw = np.zeros(num_envs)

    @classmethod
    def for_env(cls, env, num_envs: int | None = None) -> "BreadPickPlaceExpert":
        task = env.unwrapped.task
        return cls(num_envs or task.num_envs, task.config.ik, task.scene.robot_position)

    def reset(self, env_mask=None) -> None:
        mask = slice(None) if env_mask is None else np.asarray(env_mask)
        self.phase[mask] = self.APPROACH
        self.timer[mask] = 0

    def __call__(self, observation: dict) -> np.ndarray:
        single = observation["bread_pos"].ndim == 1
        obs = {k: np.asarray(v, float)[None] if single else np.asarray(v, float) for k, v in observation.items()}
        action = self.act(obs)
        return action[0] if single else action

    def _yaw_for(self, bread_quat: np.ndarray) -> np.ndarray:
        # Fingers wrap across the roll: turn the hand so they point perpendicular to its axis.
        axis = quat_to_matrix(bread_quat)[..., :, 2]
        yaw = np.arctan2(axis[..., 1], axis[..., 0]) + np.pi / 2
        yaw = (yaw + np.pi / 2) % np.pi - np.pi / 2
        return np.clip(yaw, -0.7, 0.7)

    def act(self, obs: dict) -> np.ndarray:
        n = obs["bread_pos"].shape[0]
        h = self.hand
        hand_pos = obs["hand_pos"].reshape(n, -1, 3)[:, h]
        hand_quat = obs["hand_quat"].reshape(n, -1, 4)[:, h]
        bread = obs["bread_pos"]
        grasped = obs["grasped"][:, h] > 0.5
        basket = hand_pos + obs["basket_to_hands"].reshape(n, -1, 3)[:, h]
        table = bread_scene.TABLE_HEIGHT - self.base_position[2]

        phase, timer = self.phase, self.timer
        timer += 1
        approaching = phase == self.APPROACH
        self.grasp_yaw = np.where(approaching, self._yaw_for(obs["bread_quat"]), self.grasp_yaw)

        target = np.empty((n, 3))
        above_bread = bread + [0.0, 0.0, self.hover_height]
        target[:] = above_bread
        # Coming back from a missed grasp: rise before moving sideways so as not to sweep the roll away.
        low = (hand_pos[:, 2] < above_bread[:, 2] - 0.03) & (np.linalg.norm(hand_pos[:, :2] - bread[:, :2], axis=-1) > 0.02)
        target = np.where(low[:, None], np.concatenate([hand_pos[:, :2], above_bread[:, 2:]], -1), target)
        # Lying roll: its height above the table is its radius; stop with the palm just on top of it.
        radius = bread[:, 2] - table
        grasp_point = bread + np.stack([np.zeros(n), np.zeros(n), np.maximum(radius - self.palm_to_site, 0.0) - 0.004], -1)
        target = np.where(((phase == self.DESCEND) | (phase == self.CLOSE))[:, None], grasp_point, target)
        lift = hand_pos * [1, 1, 0] + [0, 0, table + self.carry_height]
        target = np.where((phase == self.LIFT)[:, None], lift, target)
        over_basket = basket * [1, 1, 0] + [0, 0, table + self.carry_height]
        target = np.where((phase == self.CARRY)[:, None], over_basket, target)
        in_basket = basket * [1, 1, 0] + [0, 0, table + self.place_height]
        target = np.where(((phase == self.LOWER) | (phase == self.RELEASE))[:, None], in_basket, target)
        target = np.where((phase == self.RETREAT)[:, None], over_basket + [0, 0, 0.05], target)

        error = target - hand_pos
        distance = np.linalg.norm(error, axis=-1)
        close = (phase == self.CLOSE) | (phase == self.LIFT) | (phase == self.CARRY) | (phase == self.LOWER)

        yaw = self.grasp_yaw
        turn = np.stack([np.cos(yaw), -np.sin(yaw), np.zeros(n), np.sin(yaw), np.cos(yaw), np.zeros(n),
                         np.zeros(n), np.zeros(n), np.ones(n)], -1).reshape(n, 3, 3)
        desired = matrix_to_quat(turn @ _TOP_DOWN_RIGHT)
        rotation_error = quat_to_axis_angle(quat_multiply(desired, quat_conjugate(hand_quat)))
        aligned = np.linalg.norm(rotation_error, axis=-1) < 0.15

        # Phase transitions, evaluated on this step's measurements.
        new = phase.copy()
        new[(phase == self.APPROACH) & (distance < 0.015) & aligned] = self.DESCEND
        new[(phase == self.DESCEND) & ((distance < 0.008) | (timer > 25))] = self.CLOSE
        new[(phase == self.CLOSE) & grasped & (timer > 3)] = self.LIFT
        new[(phase == self.CLOSE) & ~grasped & (timer > self.grasp_wait)] = self.APPROACH
        new[(phase == self.LIFT) & (distance < 0.02)] = self.CARRY
        new[(phase == self.CARRY) & (distance < 0.02)] = self.LOWER
        new[(phase == self.LOWER) & ((distance < 0.015) | (timer > 40))] = self.RELEASE
        new[(phase == self.RELEASE) & (timer > 8)] = self.RETREAT
        dropped = ((phase == self.LIFT) | (phase == self.CARRY)) & ~grasped
        new[dropped] = self.APPROACH
        timer[new != phase] = 0
        self.phase = new

        gain = 0.3
        action = np.zeros((n, 2, 7))
        action[:, h, :3] = np.clip(gain * error / self.ik.translation_scale, -1, 1)
        action[:, h, 3:6] = np.clip(gain * rotation_error / self.ik.rotation_scale, -1, 1)
        action[:, h, 6] = np.where(close, 1.0, -1.0)
        action[:, 1 - h, 6] = -1.0
        return action.reshape(n, -1).astype(np.float32)


EXPERTS = {"TrainingGround/BreadPickPlace-v0": BreadPickPlaceExpert}


def make_expert(env, task_id: str | None = None):
    """The scripted expert for an env of a registered task (made by gymnasium.make or directly)."""
    from ..envs import TASKS

    if task_id is None:
        task_class = type(env.unwrapped.task)
        task_id = next((name for name, (_, cls, _) in TASKS.items() if cls is task_class), None)
    if task_id not in EXPERTS:
        raise KeyError(f"no scripted expert for {task_id!r}; experts exist for {sorted(EXPERTS)}")
    return EXPERTS[task_id].for_env(env)
