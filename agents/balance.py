"""The Stand task's scripted expert: PD posture plus a capture-point balance law.

It commands the ``standing`` keyframe through the ``joint_pos`` action mode and shifts the
ankle targets so that the centre of pressure moves toward the capture point
xi = c + c_dot / w (w = sqrt(g / h)), the point over which the centre of mass would come to
rest (the ankle strategy). The ankle PD turns the target shift into torque. The default
pushes of the Stand task stay within this strategy's reach; pelvis-tilt feedback at the hips
was tried and made things worse (it fights the ankles), so it is not here.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

GRAVITY = 9.81


def ankle_joints(robot):
    """Each foot's ankle pitch and roll joints, found from the robot's kinematics: above each of
    ``robot.feet``, the nearest joints whose axes lie along the world's y (pitch) and x (roll) at the
    standing posture. Returns (indices (2,), signs (2,)) for pitch, then roll; a sign of -1 where a
    joint's axis points the other way than humanoid43's (+y, +x), so that a positive shift still
    presses the toes down and the outer edge (for roll) the same way."""
    from ..physics import load_model
    from ..physics.model import kinematics

    model = load_model(robot, fixed_base=True)
    kin = kinematics(model, robot.keyframe("standing")[None])
    found = {"pitch": ([], []), "roll": ([], [])}
    for foot in robot.feet:
        chain = [link for link in np.flatnonzero(model.ancestors[model.link_index(foot)])
                 if model.joint_of_link[link] >= 0]
        chain.sort(key=lambda link: -model.ancestors[link].sum())  # nearest the foot first
        for kind, world_axis in (("pitch", 1), ("roll", 0)):
            link = next((link for link in chain if abs(kin.axis[world_axis, link, 0]) > 0.9), None)
            if link is None:
                raise InputError(f"the balance expert needs an ankle {kind} joint above foot {foot!r} of robot "
                                 f"{robot.name!r} (an axis along the world's {'xy'[world_axis]} when standing)")
            found[kind][0].append(robot.joint_names.index(model.joint_names[model.joint_of_link[link]]))
            found[kind][1].append(1.0 if kin.axis[world_axis, link, 0] > 0 else -1.0)
    return tuple((np.array(indices), np.array(signs)) for indices, signs in found.values())


class StandBalanceExpert:
    """Batched balance controller over the Stand task's observation; one instance drives N envs."""

    ankle_gain = 1.5  # rad of ankle pitch/roll target per m of capture-point offset
    max_shift = 0.35  # rad: the largest target shift, inside the joints' ranges

    def __init__(self, robot, num_envs: int = 1):
        self.robot = robot
        self.num_envs = num_envs
        self.standing = robot.keyframe("standing")
        self._center = (robot.joint_upper + robot.joint_lower) / 2
        self._half_range = (robot.joint_upper - robot.joint_lower) / 2
        (self.ankle_pitch, self.pitch_sign), (self.ankle_roll, self.roll_sign) = ankle_joints(robot)

    @classmethod
    def for_task(cls, task, num_envs: int | None = None) -> "StandBalanceExpert":
        """The expert for a batched task (envs/base.py BatchedTask); ``for_env`` takes a Gymnasium env."""
        if task.action_mode != "joint_pos":
            raise InputError("the Stand expert commands joint targets; make the env with action_mode='joint_pos'")
        return cls(task.robot, num_envs or task.num_envs)

    @classmethod
    def for_env(cls, env, num_envs: int | None = None) -> "StandBalanceExpert":
        return cls.for_task(env.unwrapped.task, num_envs)

    def reset(self, env_mask=None) -> None:
        """Stateless: nothing to clear (kept for the common expert interface)."""

    def __call__(self, observation: dict) -> np.ndarray:
        single = observation["com_pos"].ndim == 1
        obs = {k: np.asarray(v, float)[None] if single else np.asarray(v, float) for k, v in observation.items()}
        action = self.act(obs)
        return action[0] if single else action

    def act(self, obs: dict) -> np.ndarray:
        com, com_vel = (np.asarray(obs[key], dtype=np.float64) for key in ("com_pos", "com_vel"))
        omega = np.sqrt(GRAVITY / np.maximum(com[:, 2], 0.3))
        capture = com[:, :2] + com_vel[:, :2] / omega[:, None]  # relative to the sole centre
        targets = np.tile(self.standing, (len(com), 1))
        clip = lambda value: np.clip(value, -self.max_shift, self.max_shift)[:, None]
        # A positive ankle pitch presses the toes down, pushing the centre of pressure forward.
        targets[:, self.ankle_pitch] += self.pitch_sign * clip(self.ankle_gain * capture[:, 0])
        targets[:, self.ankle_roll] += self.roll_sign * clip(-self.ankle_gain * capture[:, 1])
        return np.clip((targets - self._center) / self._half_range, -1, 1).astype(np.float32)
