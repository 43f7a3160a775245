"""What every hand-moving scripted expert shares: batched phase and timer, construction from a task, reset.

An expert is a batched state machine over the ``ee_delta`` action mode: one instance drives
N environments, each with its own phase and timer. Subclasses set the phase constants
(``APPROACH`` first) and implement ``__call__``/``act``. What an expert knows of the hands (which way a
palm faces, where the curled fingertips end) it reads from the robot's description
(physics/hand_geometry.py), so the same expert drives any robot whose spec declares two hands.
"""

from __future__ import annotations

import numpy as np

from .. import robots
from ..envs.controllers import IKSettings
from ..errors import InputError
from ..physics.hand_geometry import HandGeometry, measure_hand


class HandExpert:
    APPROACH = 0

    def __init__(self, num_envs: int = 1, ik: IKSettings | None = None, base_position=(0.0, 0.0, 0.0),
                 robot: robots.RobotDescription | str = "humanoid43", grasp: str = "physical"):
        robot = robots.load(robot) if isinstance(robot, str) else robot
        #: Whether objects must be held by contact and friction (grasp="physical"), not by the assisted weld.
        self.physical = grasp == "physical"
        #: Each hand's measured shape, in the engine's hand order (the robot's hands as declared).
        self.hands: tuple[HandGeometry, ...] = tuple(measure_hand(robot, side) for side in robot.hands)
        #: Each hand's spec and where its finger joints sit in the ``joint_pos`` observation.
        self.hand_specs = tuple(robot.hands.values())
        self.finger_indices = tuple(robot.joint_indices(spec.finger_joints) for spec in self.hand_specs)
        self.ik = ik or IKSettings()
        self.num_envs = num_envs
        self.base_position = np.asarray(base_position, float)
        self.phase = np.zeros(num_envs, dtype=np.int64)
        self.timer = np.zeros(num_envs, dtype=np.int64)

    @classmethod
    def for_task(cls, task, num_envs: int | None = None):
        """The expert for a batched task (envs/base.py BatchedTask); ``for_env`` takes a Gymnasium env."""
        if task.action_mode != "ee_delta":
            raise InputError(f"the {cls.__name__} moves the hands; make the env with action_mode='ee_delta'")
        return cls(num_envs or task.num_envs, task.config.ik, task.scene.robot_position, task.robot,
                   task.config.grasp)

    @classmethod
    def for_env(cls, env, num_envs: int | None = None):
        return cls.for_task(env.unwrapped.task, num_envs)

    def reset(self, env_mask=None) -> None:
        """Start over in the masked environments (all by default)."""
        mask = slice(None) if env_mask is None else np.asarray(env_mask)
        self.phase[mask] = self.APPROACH
        self.timer[mask] = 0
