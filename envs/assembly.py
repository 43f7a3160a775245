"""Assembly3C: pick a chip from the parts tray and seat it in the target socket on a circuit board.

Observation (dict, positions in the robot base frame, which is fixed on its stand):
joint_pos, joint_vel (43 each); hand_pos (2 hands x 3) and hand_quat (2 x 4) of the grasp
sites; chip_pos, chip_quat, chip_size (half extents); socket_pos (the target socket's
centre on the board surface) and socket_quat; chip_to_hands and socket_to_hands (2 x 3:
target minus hand); chip_to_seat (the chip's centre minus where it sits when seated);
grasped (2, 1.0 where the hand holds the chip).

Success: the chip is seated (scenes/assembly.py ``seated``: within 2 mm of its seated
position and 5 degrees of the socket's orientation, up to quarter turns), released by both
hands and nearly still. Failure (terminates): the chip falls off the table.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..scenes import assembly as assembly_scene
from ..scenes.base import table_mount
from ..scenes.bread import WORK_POINT
from ..physics.scene import EpisodeSetup, Scene
from .base import BatchedTask, EpisodeArray, TaskConfig
from .controllers import grasp_site_poses
from .registry import register_task

#: How high above its seat the dense reward guides a carried chip before it is lowered (m).
APPROACH_HEIGHT = 0.03


@dataclasses.dataclass(frozen=True)
class Assembly3CConfig(TaskConfig):
    """Assembly3C options (see TaskConfig for the shared ones).

    randomization: ranges of the chip's pose, size, mass and friction.
    *_scale: weights of the named dense reward terms.
    rest_speed, rest_spin: the chip counts as seated only once slower than these (m/s, rad/s),
    so that a chip passing through the seated pose while it settles does not count.
    """

    max_steps: int = 400
    randomization: assembly_scene.ChipRandomization = dataclasses.field(
        default_factory=assembly_scene.ChipRandomization)
    reach_scale: float = 1.0
    grasp_scale: float = 1.0
    transport_scale: float = 2.0
    insert_scale: float = 4.0
    seat_scale: float = 10.0
    rest_speed: float = 0.02
    rest_spin: float = 0.5


@register_task("TrainingGround/Assembly3C-v0", alias="assembly",
               expert="training_ground.agents.experts:Assembly3CExpert")
class Assembly3CTask(BatchedTask):
    """Version history: v0, first release (pybullet and numpy backends; joint_pos and ee_delta
    actions; native VectorEnv).
    """

    config_class = Assembly3CConfig
    reward_names = ("reach", "grasp", "transport", "insert", "seat")
    instruction_templates = ("Insert the {part} into the {socket} socket on the board.",
                             "Pick the {part} from the tray and seat it in the {socket} socket.",
                             "Put the {part} in the {socket} socket.")
    part_name = "chip"

    def build_scene(self) -> Scene:
        return assembly_scene.assembly_scene(*table_mount(self.robot, WORK_POINT),
                                             socket_inner_half=self.config.randomization.socket_inner_half)

    def sample_episode(self, rng):
        q = self.arms_ready_posture(rng)
        params, pose = assembly_scene.sample_chip(rng, self.config.randomization)
        return EpisodeSetup(q, (params,), pose[None])

    def episode_state(self):
        # The target socket and the chip's size come back with the episode's reset (its seed); whether
        # the chip was held at the last step is carried from step to step.
        return {"target_socket": EpisodeArray((), np.int64), "chip_half": EpisodeArray((3,)),
                "held_before": EpisodeArray((), bool, saved=True)}

    def init_episode(self, env_ids, episodes, rngs) -> None:
        self.target_socket[env_ids] = [assembly_scene.sample_socket(rng) for rng in rngs]
        self.chip_half[env_ids] = [episode.objects[0].size for episode in episodes]

    def advance(self, evaluation) -> None:
        self.held_before[:] = evaluation["held"]

    def instruction_slots(self, env_id):
        # The three sockets in a row across the board, named as the robot sees them (+y is its left).
        ys = [y for _, y in assembly_scene.SOCKET_CENTERS]
        rank = sorted(range(len(ys)), key=ys.__getitem__).index(int(self.target_socket[env_id]))
        return {"part": self.part_name, "socket": ("right", "middle", "left")[rank]}

    def _chip_pose(self):
        return self.cached("chip", lambda: self.engine.object_poses()[:, 0])

    def _sites(self):
        return self.cached("sites", lambda: grasp_site_poses(self.engine))

    def _seat(self):
        """Target socket poses (N, 7) and the seated-chip measures of the current state."""
        def compute():
            sockets = assembly_scene.socket_pose(self.target_socket)
            return sockets, assembly_scene.seated(self._chip_pose(), sockets, self.chip_half[:, 2])
        return self.cached("seat", compute)

    def observe(self):
        base = np.asarray(self.scene.robot_position)
        site_pos, site_quat = self._sites()
        chip = self._chip_pose()
        sockets, _ = self._seat()
        seat_position = sockets[:, :3] + self.chip_half[:, 2:] * [0.0, 0.0, 1.0]
        q, qd = self.engine.joint_state()
        n = self.num_envs
        return {
            "joint_pos": q,
            "joint_vel": qd,
            "hand_pos": (site_pos - base).reshape(n, -1),
            "hand_quat": site_quat.reshape(n, -1),
            "chip_pos": chip[:, :3] - base,
            "chip_quat": chip[:, 3:],
            "chip_size": self.chip_half.copy(),
            "socket_pos": sockets[:, :3] - base,
            "socket_quat": sockets[:, 3:].copy(),
            "chip_to_hands": (chip[:, None, :3] - site_pos).reshape(n, -1),
            "socket_to_hands": (sockets[:, None, :3] - site_pos).reshape(n, -1),
            "chip_to_seat": chip[:, :3] - seat_position,
            "grasped": (self.engine.grasped_objects() == 0).astype(np.float32),
        }

    def evaluate(self):
        chip = self._chip_pose()
        _, seat = self._seat()
        velocity = self.engine.object_velocities()[:, 0]
        still = ((np.linalg.norm(velocity[:, :3], axis=-1) < self.config.rest_speed)
                 & (np.linalg.norm(velocity[:, 3:], axis=-1) < self.config.rest_spin))
        held = (self.engine.grasped_objects() == 0).any(axis=1)
        # Let go for a whole control step as well: a chip still where the hand opened has not shown
        # yet that something holds it up (unsupported, it would be falling at 0.2 m/s by then).
        success = seat["within"] & ~held & ~self.held_before & still
        failure = chip[:, 2] < assembly_scene.TABLE_HEIGHT - 0.1
        return {"success": success, "failure": failure, "held": held, "chip": chip, "seat": seat}

    def reward_terms(self, evaluation):
        site_pos, _ = self._sites()
        sockets, seat = self._seat()
        chip = evaluation["chip"][:, :3]
        held = evaluation["held"].astype(float)
        reach = 1.0 - np.tanh(5.0 * np.linalg.norm(site_pos - chip[:, None], axis=-1).min(axis=1))
        above_seat = sockets[:, :3] + (self.chip_half[:, 2] + APPROACH_HEIGHT)[:, None] * [0.0, 0.0, 1.0]
        transport = held * (1.0 - np.tanh(5.0 * np.linalg.norm(chip - above_seat, axis=-1)))
        # Millimetre and degree scales: this term only grows once the chip is at the socket.
        insert = (1.0 - np.tanh(seat["position_error"] / 0.005)) * (1.0 - np.tanh(seat["angle_error"] / 0.1))
        return {
            "reach": np.where(held > 0, 1.0, reach),
            "grasp": held,
            "transport": transport,
            "insert": insert,
            "seat": evaluation["success"].astype(float),
        }


@dataclasses.dataclass(frozen=True)
class Assembly3CSmallConfig(Assembly3CConfig):
    """Assembly3C with the small part (scenes/assembly.py SMALL_PART) and sockets to fit it."""

    randomization: assembly_scene.ChipRandomization = assembly_scene.SMALL_PART


@register_task("TrainingGround/Assembly3CSmall-v0", alias="assembly_small",
               expert="training_ground.agents.experts:Assembly3CExpert")
class Assembly3CSmallTask(Assembly3CTask):
    """The small-part variant: a 2 cm part instead of a 3 cm chip, the same bench, tray and board.

    Version history: v0, first release.
    """

    config_class = Assembly3CSmallConfig
    part_name = "small part"
