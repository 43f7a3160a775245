"""Stand: keep balance on both feet while random pushes hit the torso.

The robot stands free (floating base) on the floor. Each episode draws an initial posture
near the ``standing`` keyframe and a schedule of horizontal pushes on the torso
(scenes/stand.py); success is staying up for the whole episode.

Observation (dict, world-aligned, positions relative to the centre of the two soles):
joint_pos, joint_vel (43 each); base_height (1); base_quat (4); base_velocity (6: linear,
angular, world frame); com_pos and com_vel (3 each: the robot's centre of mass relative to
the sole centre, and its velocity); feet_pos (2 x 3, sole centres relative to the centre of
mass).

Failure (terminates): the pelvis drops below ``fall_height`` or tilts beyond ``fall_tilt``.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from .. import robots
from ..physics.model import urdf_inertials
from ..physics.rotations import quat_to_matrix
from ..scenes import stand as stand_scene
from ..physics.scene import EpisodeSetup, Scene
from .base import BatchedTask, EpisodeArray, TaskConfig
from .registry import register_task


#: The fall height as a share of the standing base height: humanoid43's pelvis at 0.75 of 1.021 m.
FALL_FRACTION = 0.75 / 1.021


def _total_mass(urdf_path) -> float:
    links, _ = urdf_inertials(urdf_path, fixed_base=False)
    return float(sum(mass for mass, _, _ in links.values()))


@functools.cache
def _reference_body() -> tuple[float, float]:
    """humanoid43's mass (kg) and standing base height (m): what the default pushes were sized for."""
    reference = robots.load("humanoid43")
    return _total_mass(reference.urdf_path), reference.standing_base_height


def push_scales(robot) -> tuple[float, float]:
    """(force scale, duration scale) that make humanoid43's pushes dynamically similar on ``robot``.

    Froude scaling: forces go with the mass, times with sqrt(height / g). The velocity a push gives then
    goes with sqrt(height) and the capture-point step (velocity / sqrt(g / height)) with the height, as
    the feet do. Exactly (1.0, 1.0) for humanoid43.
    """
    reference_mass, reference_height = _reference_body()
    return _total_mass(robot.urdf_path) / reference_mass, float(np.sqrt(robot.standing_base_height / reference_height))


@dataclasses.dataclass(frozen=True)
class StandConfig(TaskConfig):
    """Stand options (see TaskConfig for the shared ones).

    max_steps: 250 control steps, 5 s at the default 50 Hz.
    pushes: how many pushes hit the torso and the ranges they are drawn from, for humanoid43.
    scale_pushes: scale each push to the robot as dynamic similarity does (:func:`push_scales`): the force
    by the robot's mass over humanoid43's, the duration by the square root of its standing base height
    over humanoid43's, so that a push moves the capture point by the same share of the robot's size
    (humanoid43's pushes are unchanged; a 35 kg robot hit by an 80 kg robot's push is thrown 2.3 times
    as fast). False: the ranges in newtons and seconds as given, for every robot.
    init_joint_noise: uniform noise (rad) on the arms, waist and head; init_leg_noise on the legs.
    fall_height (m), fall_tilt (rad): the robot has fallen once its pelvis is lower or more tilted;
    fall_height None (the default) is the same share of the robot's own standing base height as
    humanoid43's 0.75 m is of its 1.021 m (:data:`FALL_FRACTION`), so a shorter robot is not fallen
    while it stands.
    *_scale: weights of the named dense reward terms.
    """

    max_steps: int = 250
    pushes: stand_scene.PushRandomization = dataclasses.field(default_factory=stand_scene.PushRandomization)
    scale_pushes: bool = True
    init_joint_noise: float = 0.05
    init_leg_noise: float = 0.01
    fall_height: float | None = None
    fall_tilt: float = 0.7
    alive_scale: float = 0.5
    upright_scale: float = 1.0
    balance_scale: float = 1.0
    stillness_scale: float = 0.5
    success_scale: float = 10.0


@register_task("TrainingGround/Stand-v0", alias="stand",
               expert="training_ground.agents.balance:StandBalanceExpert")
class StandTask(BatchedTask):
    """Version history: v0, first release (pybullet and numpy backends; joint_pos (default)
    and ee_delta actions; native VectorEnv on the numpy engine).
    """

    config_class = StandConfig
    #: What a standing robot senses itself: its joints, and the pelvis's orientation and velocity (an IMU's).
    proprio_keys = ("joint_pos", "joint_vel", "base_quat", "base_velocity")
    reward_names = ("alive", "upright", "balance", "stillness", "success")
    instruction_templates = ("Stand still and keep your balance.",
                             "Keep your balance when you are pushed.",
                             "Stay upright on both feet.")
    default_action_mode = "joint_pos"
    robot_needs = ("feet", "torso", "group:legs", "keyframe:standing")

    def build_scene(self) -> Scene:
        return stand_scene.stand_scene(self.robot.standing_base_height)

    def sample_episode(self, rng):
        robot = self.robot
        q = robot.keyframe("standing")
        upper = np.concatenate([robot.joint_indices(g) for g in ("waist", "head", "arms") if g in robot.groups])
        legs = robot.joint_indices("legs")
        q[upper] += rng.uniform(-1, 1, len(upper)) * self.config.init_joint_noise
        q[legs] += rng.uniform(-1, 1, len(legs)) * self.config.init_leg_noise
        q = np.clip(q, robot.joint_lower, robot.joint_upper)
        return EpisodeSetup(q)

    def episode_state(self):
        # The push schedule is drawn at reset; a restored state must push the same way.
        return {"pushes": EpisodeArray((self.config.pushes.count, 5), saved=True)}

    def init_episode(self, env_ids, episodes, rngs):
        for env_id, rng in zip(env_ids, rngs):
            self.pushes[env_id] = stand_scene.sample_pushes(rng, self.push_ranges)

    @functools.cached_property
    def push_ranges(self) -> stand_scene.PushRandomization:
        """The configured push ranges, scaled to the robot when ``scale_pushes`` (:func:`push_scales`)."""
        ranges = self.config.pushes
        if not self.config.scale_pushes:
            return ranges
        force, time = push_scales(self.robot)
        return dataclasses.replace(ranges, magnitude_range=tuple(force * x for x in ranges.magnitude_range),
                                   duration_range=tuple(time * x for x in ranges.duration_range))

    def before_step(self):
        time = self.elapsed * self.config.control_dt
        self.engine.apply_force(self.robot.torso_link, stand_scene.push_force(self.pushes, time))

    def _soles(self):
        def compute():
            feet = self.engine.link_poses(list(self.robot.feet))  # (N, 2, 7)
            offset = quat_to_matrix(feet[..., 3:]) @ np.asarray(self.robot.sole_center)
            return feet[..., :3] + offset
        return self.cached("soles", compute)

    def _com(self):
        return self.cached("com", self.engine.center_of_mass)

    def _base(self):
        return self.cached("base", lambda: self.engine.link_poses([self.robot.base_link])[:, 0])

    def observe(self):
        q, qd = self.engine.joint_state()
        soles = self._soles()
        center = soles.mean(axis=1)
        com, com_vel = self._com()
        base = self._base()
        n = self.num_envs
        return {
            "joint_pos": q,
            "joint_vel": qd,
            "base_height": base[:, 2:3] - center[:, 2:3],
            "base_quat": base[:, 3:],
            "base_velocity": self.engine.base_velocity(),
            "com_pos": com - center,
            "com_vel": com_vel,
            "feet_pos": (soles - com[:, None]).reshape(n, -1),
        }

    def evaluate(self):
        base = self._base()
        # The pelvis's up axis; its z component is the cosine of the tilt. Only algebraic
        # operations here: numpy's SIMD transcendentals can round differently with the batch
        # size, and env i of a batch must match a single env bit for bit.
        upright = quat_to_matrix(base[:, 3:])[:, 2, 2]
        fall_height = self.config.fall_height
        if fall_height is None:
            fall_height = FALL_FRACTION * self.robot.standing_base_height
        fallen = (base[:, 2] < fall_height) | (upright < np.cos(self.config.fall_tilt))
        survived = (self.elapsed >= self.config.max_steps) & ~fallen
        return {"success": survived, "failure": fallen, "upright": upright}

    def reward_terms(self, evaluation):
        soles = self._soles()
        com, com_vel = self._com()
        offset = np.sqrt(((com[:, :2] - soles.mean(axis=1)[:, :2]) ** 2).sum(axis=-1))
        speed = np.sqrt((com_vel**2).sum(axis=-1))
        return {
            "alive": (~evaluation["failure"]).astype(float),
            "upright": evaluation["upright"],
            "balance": 1.0 / (1.0 + (10.0 * offset) ** 2),
            "stillness": -speed / (1.0 + speed),
            "success": evaluation["success"].astype(float),
        }
