"""Action modes: normalised actions in [-1, 1] to PD joint targets and grasp commands, batched over envs.

- ``joint_pos``: 43 values; -1 and +1 are each joint's lower and upper limit. A hand is
  *closing* (for the assisted grasp) while its mean finger target is past half-way from
  the open to the closed posture.
- ``ee_delta``: per hand (left, right): translation delta (3, world frame, times
  ``translation_scale`` m), rotation delta (3, axis-angle in the world frame, times
  ``rotation_scale`` rad) and a grasp scalar (> 0 closes the hand). Arm targets come from
  damped least-squares IK on the engine's Jacobians; every other joint holds the posture
  it was reset to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from ..physics import Engine
from ..physics.rotations import quat_to_matrix

ACTION_MODES = ("joint_pos", "ee_delta")


@dataclass(frozen=True)
class IKSettings:
    """translation_scale (m) and rotation_scale (rad): the delta of a full-scale action in one control step.

    damping: DLS damping lambda.
    max_joint_lead: how far (rad) commanded arm joints may run ahead of the measured ones.
    posture_gain: fraction of the distance to the episode's initial arm posture closed per
    step in the Jacobian's null space (keeps the redundant arm away from limits and a
    straight elbow).
    """

    translation_scale: float = 0.02
    rotation_scale: float = 0.1
    damping: float = 0.05
    max_joint_lead: float = 0.3
    posture_gain: float = 0.05


def validate_action(action, space: spaces.Box, batched: bool) -> np.ndarray:
    """Return the action as float64 clipped to [-1, 1], or raise a ValueError that says what is wrong."""
    array = np.asarray(action)
    if array.dtype not in (np.float32, np.float64):
        raise ValueError(f"action dtype {array.dtype} is not float32 or float64; pass float32 values in [-1, 1]")
    expected = space.shape
    if array.shape != expected:
        what = "batched action" if batched else "action"
        raise ValueError(f"{what} must have shape {expected}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("action contains NaN or inf; actions must be finite values in [-1, 1]")
    return np.clip(array.astype(np.float64), -1.0, 1.0)


class JointPositionController:
    def __init__(self, engine: Engine):
        robot = engine.robot
        self.engine = engine
        self.action_size = robot.num_joints
        self._center = (robot.joint_upper + robot.joint_lower) / 2
        self._half_range = (robot.joint_upper - robot.joint_lower) / 2
        self._fingers = [robot.joint_indices(h.finger_joints) for h in robot.hands.values()]
        self._open = [np.array(h.finger_open) for h in robot.hands.values()]
        self._closed = [np.array(h.finger_closed) for h in robot.hands.values()]

    def reset(self, env_ids: np.ndarray, joint_pos: np.ndarray) -> None:
        pass

    def state_blocks(self) -> dict[str, np.ndarray]:
        """Nothing: each step's targets come from that step's action alone."""
        return {}

    def load_state_blocks(self, env_ids: np.ndarray, blocks: dict[str, np.ndarray]) -> None:
        pass

    def to_action(self, joint_targets: np.ndarray) -> np.ndarray:
        return np.clip((joint_targets - self._center) / self._half_range, -1, 1)

    def apply(self, action: np.ndarray) -> None:
        targets = self._center + action * self._half_range
        closing = np.zeros((len(targets), len(self._fingers)), dtype=bool)  # a robot may have no hands
        for hand, (idx, opened, closed) in enumerate(zip(self._fingers, self._open, self._closed)):
            closing[:, hand] = ((targets[:, idx] - opened) / (closed - opened)).mean(axis=1) > 0.5
        self.engine.set_joint_targets(targets)
        self.engine.set_grasp_commands(closing)


class EndEffectorDeltaController:
    """Per-hand pose deltas through DLS IK.

    Each step moves the commanded arm joints by the DLS solution for the requested delta of
    the grasp-site pose, evaluated at the measured configuration. The commanded joints
    integrate, so a zero action holds the arm; they may lead the measured joints by at
    most ``max_joint_lead`` so that a blocked hand does not wind up force.
    """

    def __init__(self, engine: Engine, settings: IKSettings | None = None):
        robot = engine.robot
        self.engine = engine
        self.settings = settings or IKSettings()
        self.hands = list(robot.hands.values())
        self.action_size = 7 * len(self.hands)
        self._arms = [robot.joint_indices(h.arm_joints) for h in self.hands]
        self._fingers = [robot.joint_indices(h.finger_joints) for h in self.hands]
        self.joint_command = np.tile(robot.home_posture, (engine.num_envs, 1))
        self.rest_posture = self.joint_command.copy()

    def reset(self, env_ids: np.ndarray, joint_pos: np.ndarray) -> None:
        self.joint_command[env_ids] = joint_pos
        self.rest_posture[env_ids] = joint_pos

    def state_blocks(self) -> dict[str, np.ndarray]:
        """The integrated joint command and the posture the null-space pull returns to, (N, 43) each."""
        return {"joint_command": self.joint_command.copy(), "rest_posture": self.rest_posture.copy()}

    def load_state_blocks(self, env_ids: np.ndarray, blocks: dict[str, np.ndarray]) -> None:
        self.joint_command[env_ids] = blocks["joint_command"]
        self.rest_posture[env_ids] = blocks["rest_posture"]

    def apply(self, action: np.ndarray) -> None:
        s = self.settings
        action = action.reshape(action.shape[0], len(self.hands), 7)
        joint_pos, _ = self.engine.joint_state()
        for h, hand in enumerate(self.hands):
            delta = np.concatenate([s.translation_scale * action[:, h, :3], s.rotation_scale * action[:, h, 3:6]], -1)
            jacobian = self.engine.point_jacobian(hand.palm_link, hand.grasp_site)[:, :, self._arms[h]]
            arm = self._arms[h]
            step = dls_step(jacobian, delta, s.damping)
            step += null_space_step(jacobian, s.posture_gain * (self.rest_posture[:, arm] - joint_pos[:, arm]))
            command = self.joint_command[:, arm] + step
            self.joint_command[:, arm] = np.clip(command, joint_pos[:, arm] - s.max_joint_lead,
                                                 joint_pos[:, arm] + s.max_joint_lead)
            self.joint_command[:, self._fingers[h]] = hand.finger_targets(action[:, h, 6:7])
        robot = self.engine.robot
        self.joint_command = np.clip(self.joint_command, robot.joint_lower, robot.joint_upper)
        self.engine.set_joint_targets(self.joint_command)
        self.engine.set_grasp_commands(action[..., 6] > 0)


def grasp_site_poses(engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    """World position (N, H, 3) and orientation (N, H, 4) of each hand's grasp site."""
    hands = list(engine.robot.hands.values())
    poses = engine.link_poses([h.palm_link for h in hands])
    sites = np.array([h.grasp_site for h in hands])
    rotation = quat_to_matrix(poses[..., 3:])
    # Elementwise rather than einsum, whose summation order may change with the batch size.
    return poses[..., :3] + (rotation * sites[None, :, None, :]).sum(axis=-1), poses[..., 3:]


def dls_step(jacobian: np.ndarray, error: np.ndarray, damping: float) -> np.ndarray:
    """Damped least squares: dq = J^T (J J^T + lambda^2 I)^-1 e, batched over the leading axis."""
    jjt = jacobian @ np.swapaxes(jacobian, -1, -2)
    jjt = jjt + damping**2 * np.eye(jjt.shape[-1])
    return np.einsum("nji,nj->ni", jacobian, np.linalg.solve(jjt, error[..., None])[..., 0])


def null_space_step(jacobian: np.ndarray, preferred: np.ndarray) -> np.ndarray:
    """Project a preferred joint step onto the Jacobian's null space: (I - J^+ J) dq."""
    task_part = np.einsum("nij,nj->ni", np.linalg.pinv(jacobian), np.einsum("nij,nj->ni", jacobian, preferred))
    return preferred - task_part


def make_controller(action_mode: str, engine: Engine, ik: IKSettings | None = None):
    if action_mode == "joint_pos":
        return JointPositionController(engine)
    if action_mode == "ee_delta":
        return EndEffectorDeltaController(engine, ik)
    raise ValueError(f"unknown action_mode {action_mode!r}; choose one of {ACTION_MODES}")
