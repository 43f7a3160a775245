"""The batched engine interface that both physics backends implement.

Every array has a leading ``num_envs`` axis. Joint arrays follow ``robot.joint_names``;
poses are ``(x, y, z, qx, qy, qz, qw)`` in the world frame; hands are ordered as
``robot.hands`` (left, right for humanoid43).

Actuators follow one law in every engine (see :func:`pd_torques`), integrated as
``EngineConfig.drive`` says (:data:`DRIVES`); physics runs at ``physics_dt`` and each
:meth:`Engine.step` advances one control period ``control_dt`` while the targets are held.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..robots import RobotDescription
from ..errors import InputError
from .cameras import view_matrices
from .components import Component, Objects
from .divergence import DivergenceBounds, points_diverged, too_far, watched_links
from .scene import EpisodeSetup, Scene
from .grasp import check_grasp_mode


#: The largest physics step taken (s): the coarsest rate that ``tground bench steps`` measures.
MAX_PHYSICS_DT = 1.0 / 200.0

#: How the PD drives are integrated (the torque is the same law, :func:`pd_torques`):
#: "explicit": evaluated at the step's start, what pybullet runs in torque mode;
#: "damping_implicit": the damping of unsaturated actuators taken at the step's end (numpy's default,
#: the law every stored dataset was recorded with); "implicit": stiffness and damping both taken at the
#: step's end, as PhysX drives do, stable for any gains (numpy only). Saturated actuators are explicit at
#: their limit in all three.
DRIVES = ("explicit", "damping_implicit", "implicit")

#: How the numpy engine puts its implicit contact term (physics/numpy_engine.py ImplicitContacts) into the
#: mass matrix, the same sum either way: "composite", as inertias of the touching links inside the CRBA
#: (the default, several times cheaper); "per_contact", a Jacobian product per contact added on the
#: matrix's pattern, what every dataset recorded before the option existed ran (the two differ by
#: rounding, 1e-16 relative, so a replay needs the one its dataset was recorded with).
CONTACT_MATRICES = ("composite", "per_contact")
#: How the numpy engine's hands touch free objects: "primitive", every hand sphere against the object's
#: exact shape (sphere, capsule or box) with static friction, its stiffness implicit on both sides
#: (the default; what physical grasping needs, physics/numpy_objects.py); "cover", hand spheres against
#: the object's five cover spheres with creeping friction, what every dataset recorded before it ran.
HAND_CONTACTS = ("primitive", "cover")


def check_drive(drive) -> None:
    if drive not in DRIVES:
        raise InputError(f"unknown drive {drive!r}; choose one of {DRIVES}")


def check_contact_matrix(contact_matrix) -> None:
    if contact_matrix not in CONTACT_MATRICES:
        raise InputError(f"unknown contact_matrix {contact_matrix!r}; choose one of {CONTACT_MATRICES}")


def check_hand_contact(hand_contact, contact_matrix) -> None:
    if hand_contact not in HAND_CONTACTS:
        raise InputError(f"unknown hand_contact {hand_contact!r}; choose one of {HAND_CONTACTS}")
    if hand_contact == "primitive" and contact_matrix != "composite":
        raise InputError("hand_contact='primitive' puts its contacts into the composite contact matrix; use "
                         "contact_matrix='composite', or hand_contact='cover' with contact_matrix='per_contact'")


@dataclass(frozen=True)
class EngineConfig:
    """physics_dt: physics step (s), at most MAX_PHYSICS_DT (1/200). control_dt: one engine.step (s), a multiple of physics_dt.

    grasp: "assisted" (weld rule in physics/grasp.py) or "physical" (contact and friction only).
    drive: how the PD drives are integrated, one of :data:`DRIVES` (pybullet runs "explicit" for
    the default "damping_implicit" and refuses "implicit").
    contact_matrix: how the numpy engine adds its implicit contact term to the mass matrix, one of
    :data:`CONTACT_MATRICES` (no effect on pybullet).
    hand_contact: how the numpy engine's hands touch free objects, one of :data:`HAND_CONTACTS` (pybullet
    collides its own shapes).
    divergence_speed: a generalised, object or cloth speed above this (rad/s or m/s) marks the env
    diverged; a last resort, checked (on numpy) in every physics substep.

    What a control step may do before the env counts as diverged (physics/divergence.py says why
    each bound is where it is; benchmarks/adversarial.py measures runs against them):
    joint_speed_factor: a joint faster than this times its URDF velocity limit.
    max_link_speed (m/s): the base, feet and palms, the free objects and the cloth particles may move
    at most this times control_dt in one control step (1 m at 50 Hz).
    max_body_speed (m/s): the base's linear speed, and the centre of mass's step over control_dt.
    max_base_rise (m): a floating base may rise at most this above its reset height.
    scene_radius (m): objects and cloth particles stay within this of the robot's base.

    render_workers: worker processes in which the numpy engine pictures its cameras (physics/rendering.py
    RenderPool); 0 pictures them in this process. No effect on pybullet, which pictures each env in its client.
    """

    physics_dt: float = 1.0 / 500.0
    control_dt: float = 1.0 / 50.0
    grasp: str = "assisted"
    drive: str = "damping_implicit"
    contact_matrix: str = "composite"
    hand_contact: str = "primitive"
    gravity: float = -9.81
    divergence_speed: float = 500.0
    joint_speed_factor: float = 15.0
    max_link_speed: float = 50.0
    max_body_speed: float = 10.0
    max_base_rise: float = 1.0
    scene_radius: float = 15.0
    render_workers: int = 0

    def __post_init__(self):
        check_grasp_mode(self.grasp)
        check_drive(self.drive)
        check_contact_matrix(self.contact_matrix)
        check_hand_contact(self.hand_contact, self.contact_matrix)
        if not 0 < self.physics_dt <= MAX_PHYSICS_DT + 1e-12:
            raise InputError(f"physics_dt must be in (0, 1/{round(1 / MAX_PHYSICS_DT)}] s (tground bench steps measures "
                             f"the tasks at 1000 to 200 Hz), got {self.physics_dt}")
        ratio = self.control_dt / self.physics_dt
        if self.control_dt < self.physics_dt or abs(ratio - round(ratio)) > 1e-6:
            raise InputError(f"control_dt ({self.control_dt}) must be a whole multiple of physics_dt ({self.physics_dt})")

    @property
    def substeps(self) -> int:
        return int(round(self.control_dt / self.physics_dt))


def pd_torques(robot: RobotDescription, joint_pos: np.ndarray, joint_vel: np.ndarray, targets: np.ndarray,
               saturated_out: np.ndarray | None = None) -> np.ndarray:
    """The actuator law: tau = clip(kp * (target - q) - kd * qd, -tau_max, tau_max), per joint.

    ``saturated_out``: a float array of the torques' shape to which 1 is added where the torque was clipped.
    """
    torque = robot.kp * (targets - joint_pos) - robot.kd * joint_vel
    if saturated_out is not None:
        saturated_out += np.abs(torque) > robot.torque_limit
    return np.clip(torque, -robot.torque_limit, robot.torque_limit)


class Engine(abc.ABC):
    """N independent copies of one scene with one robot, stepped together."""

    def __init__(self, robot: RobotDescription, scene: Scene, num_envs: int, config: EngineConfig | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.robot = robot
        self.scene = scene
        self.num_envs = int(num_envs)
        self.config = config or EngineConfig()
        self.hand_names = tuple(robot.hands)
        self.joint_targets = np.tile(robot.home_posture, (self.num_envs, 1))
        self.grasp_commands = np.zeros((self.num_envs, len(self.hand_names)), dtype=bool)
        self.diverged = np.zeros(self.num_envs, dtype=bool)
        #: (num_envs, num_joints): per actuator, the fraction of the last step's physics substeps in which
        #: its PD torque was at the torque limit (clipped). A diagnostic, not state; tasks sum it per episode.
        self.saturated_fraction = np.zeros((self.num_envs, robot.num_joints))
        #: What a control step may do before an environment counts as diverged (physics/divergence.py).
        self.divergence_bounds = DivergenceBounds.from_model(robot, scene, self.config)
        self._watched_links = watched_links(robot)
        #: External forces held on robot links: link name -> (num_envs, 3), see apply_force.
        self.external_forces: dict[str, np.ndarray] = {}
        #: What the scene adds beside the robot (physics/components.py), by name, in hook and state order.
        self.components: dict[str, Component] = {}

    def _env_ids(self, env_idx) -> np.ndarray:
        if env_idx is None:
            return np.arange(self.num_envs)
        env_idx = np.atleast_1d(np.asarray(env_idx))
        if env_idx.dtype == bool:
            env_idx = np.flatnonzero(env_idx)
        if env_idx.size and (env_idx.min() < 0 or env_idx.max() >= self.num_envs):
            raise IndexError(f"env ids {env_idx} out of range for {self.num_envs} environments")
        return env_idx.astype(np.int64)

    def set_joint_targets(self, targets: np.ndarray) -> None:
        """PD position targets (rad), shape (num_envs, 43); clipped to the joint limits."""
        targets = np.asarray(targets, dtype=float)
        if targets.shape != self.joint_targets.shape:
            raise ValueError(f"joint targets must have shape {self.joint_targets.shape}, got {targets.shape}")
        if not np.all(np.isfinite(targets)):
            raise ValueError("joint targets contain NaN or inf")
        self.joint_targets = np.clip(targets, self.robot.joint_lower, self.robot.joint_upper)

    def apply_force(self, link: str, force: np.ndarray) -> None:
        """Hold a force (num_envs, 3) in N, world frame, at the origin of ``link``'s frame.

        It acts on every physics step until replaced (a push lasts as long as the caller keeps
        it); zeros remove it, and reset clears it for the environments it resets.
        """
        force = np.asarray(force, dtype=float)
        if force.shape != (self.num_envs, 3) or not np.all(np.isfinite(force)):
            raise ValueError(f"force must be a finite array of shape {(self.num_envs, 3)}, got {force.shape}")
        self.link_index(link)  # an unknown link raises KeyError here, not mid-step
        self.external_forces[link] = force.copy()

    @abc.abstractmethod
    def link_index(self, link: str) -> int:
        """The engine's index of a robot link; KeyError naming the robot for an unknown one."""

    def _joint_arrays(self, env_ids: np.ndarray, episodes: list[EpisodeSetup]) -> tuple[np.ndarray, np.ndarray]:
        """Joint positions and velocities (n, num_joints) of a reset's episodes, each checked against the scene."""
        n = len(env_ids)
        if len(episodes) != n:
            raise ValueError(f"reset needs one EpisodeSetup per env id ({n}), got {len(episodes)}")
        for episode in episodes:
            self.scene.check_episode(episode)
        joint_pos = np.array([episode.joint_pos for episode in episodes], dtype=float).reshape(n, self.robot.num_joints)
        joint_vel = np.array([np.zeros(self.robot.num_joints) if episode.joint_vel is None else episode.joint_vel
                              for episode in episodes], dtype=float).reshape(joint_pos.shape)
        return joint_pos, joint_vel

    def _clear_forces(self, env_ids: np.ndarray) -> None:
        for force in self.external_forces.values():
            force[env_ids] = 0.0

    def set_grasp_commands(self, closing: np.ndarray) -> None:
        """Whether each hand is closing, shape (num_envs, num_hands), bool."""
        self.grasp_commands = np.asarray(closing, dtype=bool).reshape(self.grasp_commands.shape).copy()

    @abc.abstractmethod
    def reset(self, env_idx, episodes: Sequence[EpisodeSetup]) -> None:
        """Put environments ``env_idx`` into the given episodes' initial states, one EpisodeSetup each; others are untouched.

        Grasps are released, held forces cleared and joint targets set to the episodes' joint_pos.
        """

    @abc.abstractmethod
    def step(self) -> None:
        """Advance every environment by one control period."""

    @abc.abstractmethod
    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Joint positions and velocities, each (num_envs, 43)."""

    @abc.abstractmethod
    def link_poses(self, links: list[str]) -> np.ndarray:
        """World poses of the named link frames, (num_envs, len(links), 7)."""

    @abc.abstractmethod
    def point_jacobian(self, link: str, local_point) -> np.ndarray:
        """Jacobian (num_envs, 6, 43) of a point fixed in ``link``'s frame: rows linear then angular, world frame."""

    # The free rigid objects are part of every scene (possibly none), so every engine builds their
    # component as ``self.objects`` (physics/components.py Objects); these reads are its.
    objects: Objects

    def object_poses(self) -> np.ndarray:
        """(num_envs, num_objects, 7)."""
        return self.objects.poses()

    def object_velocities(self) -> np.ndarray:
        """Linear then angular velocity, (num_envs, num_objects, 6)."""
        return self.objects.velocities()

    def grasped_objects(self) -> np.ndarray:
        """Index of the object each hand holds by the assisted grasp, or -1; (num_envs, num_hands) int."""
        return self.objects.grasped()

    def hand_contact_forces(self) -> np.ndarray:
        """Total normal contact force (N) between each hand and each object, (num_envs, num_hands, num_objects)."""
        return self.objects.hand_forces()

    @abc.abstractmethod
    def center_of_mass(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole robot's centre of mass and its velocity, (num_envs, 3) each, world frame."""

    @abc.abstractmethod
    def base_velocity(self) -> np.ndarray:
        """Linear velocity of the base link's centre of mass, then its angular velocity; world frame, (num_envs, 6)."""

    @abc.abstractmethod
    def render(self, env_id: int = 0, width: int | None = None, height: int | None = None) -> np.ndarray:
        """RGB image (H, W, 3) uint8 of one environment from the scene camera."""

    def render_cameras(self, views, width: int, height: int, env_ids=None) -> tuple[np.ndarray, np.ndarray]:
        """Pictures of the named cameras ``views`` (physics/cameras.py CameraView) in environments ``env_ids``
        (default all): RGB (n, C, H, W, 3) uint8 and depth along the optical axis (n, C, H, W, 1) float32 (m).
        The cameras on robot links sit where this engine's kinematics put the links."""
        env_ids = np.arange(self.num_envs) if env_ids is None else np.asarray(env_ids, dtype=np.int64)
        views = tuple(views)
        matrices = view_matrices(self.link_poses, views, self.num_envs)[env_ids]
        return self._pictures(env_ids, matrices, views, int(width), int(height))

    @abc.abstractmethod
    def _pictures(self, env_ids, view_matrices, views, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`render_cameras` for the given rows of view matrices (n, C, 16)."""

    # ------------------------------------------------------------------ divergence
    def _watched_positions(self) -> dict[str, np.ndarray]:
        """The positions that :meth:`_left_bounds` compares across a control step: watched links, CoM, objects."""
        return {"links": self.link_poses(self._watched_links)[..., :3], "com": self.center_of_mass()[0],
                "objects": self.object_poses()[..., :3]}

    def _left_bounds(self, start: dict[str, np.ndarray]) -> np.ndarray:
        """(N,) bool: the environments whose last control step broke a bound of ``divergence_bounds``."""
        bounds, end = self.divergence_bounds, self._watched_positions()
        _, joint_vel = self.joint_state()
        base = end["links"][:, 0]
        bad = ~(np.abs(joint_vel) <= bounds.joint_speed).all(axis=1)
        bad |= too_far(self.base_velocity()[:, None, :3], bounds.body_speed)
        bad |= too_far(end["links"] - start["links"], bounds.link_step)
        bad |= too_far(end["com"] - start["com"], bounds.com_step)
        if bounds.base_rise is not None:
            bad |= ~(base[:, 2] - self.scene.robot_position[2] <= bounds.base_rise)
        bad |= points_diverged(end["objects"] - start["objects"], end["objects"], base, bounds.link_step, bounds)
        for component in self.components.values():
            bad |= component.left_bounds(bounds, base)
        return bad

    # ------------------------------------------------------------------ saving and restoring state
    @abc.abstractmethod
    def state_blocks(self) -> dict[str, np.ndarray]:
        """Everything the engine carries from one step to the next, as named (num_envs, ...) arrays (copies).

        Restoring these rows with :meth:`load_state_blocks` must make the environment step on
        exactly as it would have. The objects' per-episode parameters (shape, mass, friction)
        are not state: they come from the episode's reset. The components' blocks follow the
        engine's own, component by component.
        """

    @abc.abstractmethod
    def load_state_blocks(self, env_ids: np.ndarray, blocks: dict[str, np.ndarray]) -> None:
        """Write rows of :meth:`state_blocks` (each (len(env_ids), ...)) back into environments ``env_ids``."""

    def state_layout(self) -> "StateLayout":
        """The named blocks of :meth:`get_state`'s columns, in order."""
        return StateLayout.of(self.state_blocks())

    def get_state(self) -> np.ndarray:
        """(num_envs, S) float64: the full simulator state, laid out as :meth:`state_layout` says."""
        blocks = self.state_blocks()
        return StateLayout.of(blocks).pack(blocks)

    def set_state(self, env_idx, states: np.ndarray) -> None:
        """Restore environments ``env_idx`` to rows of :meth:`get_state`; the others are untouched."""
        env_ids = self._env_ids(env_idx)
        self.load_state_blocks(env_ids, self.state_layout().unpack(states, len(env_ids)))

    def _external_force_rows(self, links: list[str]) -> np.ndarray:
        """(num_envs, len(links), 3): the held external forces, zero where none, so the state layout is fixed."""
        rows = np.zeros((self.num_envs, len(links), 3))
        for j, link in enumerate(links):
            if link in self.external_forces:
                rows[:, j] = self.external_forces[link]
        return rows

    def _load_external_forces(self, env_ids: np.ndarray, links: list[str], rows: np.ndarray) -> None:
        for j, link in enumerate(links):
            if link in self.external_forces or np.any(rows[:, j]):
                self.external_forces.setdefault(link, np.zeros((self.num_envs, 3)))[env_ids] = rows[:, j]

    def close(self) -> None:
        """Release native resources; safe to call twice."""
        for component in self.components.values():
            component.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass(frozen=True)
class StateLayout:
    """Where each named block sits in a flat per-environment state vector (float64).

    ``blocks`` is ``((name, shape), ...)`` in column order; a block of shape ``(a, b)``
    takes ``a * b`` consecutive columns, row-major. Booleans and indices are stored as
    0.0/1.0 and whole numbers. A state grows by appending blocks (cloth particles, a new
    contact model's history), and readers find blocks by name, so adding one breaks no
    reader that looks its blocks up by name.
    """

    blocks: tuple[tuple[str, tuple[int, ...]], ...]

    @classmethod
    def of(cls, arrays: dict[str, np.ndarray]) -> "StateLayout":
        """The layout of named arrays that share a leading num_envs axis."""
        return cls(tuple((name, tuple(int(d) for d in np.shape(value)[1:])) for name, value in arrays.items()))

    @property
    def size(self) -> int:
        return sum(int(np.prod(shape, dtype=np.int64)) for _, shape in self.blocks)

    def columns(self) -> dict[str, slice]:
        """Each block's columns in the flat vector."""
        spans, start = {}, 0
        for name, shape in self.blocks:
            width = int(np.prod(shape, dtype=np.int64))
            spans[name] = slice(start, start + width)
            start += width
        return spans

    def pack(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """(N, size) float64 from named (N, ...) arrays in this layout."""
        if tuple(arrays) != tuple(name for name, _ in self.blocks):
            raise ValueError(f"state blocks {list(arrays)} do not match the layout {[n for n, _ in self.blocks]}")
        rows = [np.asarray(value, dtype=np.float64).reshape(np.shape(value)[0], -1) for value in arrays.values()]
        return np.concatenate(rows, axis=1) if rows else np.zeros((0, 0))

    def unpack(self, states: np.ndarray, rows: int | None = None) -> dict[str, np.ndarray]:
        """Named (n, ...) arrays from (n, size) states; ``rows`` checks n."""
        states = np.asarray(states, dtype=np.float64)
        if states.ndim == 1:
            states = states[None]
        if states.ndim != 2 or states.shape[1] != self.size or (rows is not None and states.shape[0] != rows):
            expected = f"({rows if rows is not None else 'n'}, {self.size})"
            raise ValueError(f"states must have shape {expected} for this state layout, got {states.shape}")
        return {name: states[:, span].reshape((states.shape[0], *shape)).copy()
                for (name, shape), span in zip(self.blocks, self.columns().values())}

    def prefixed(self, prefix: str) -> "StateLayout":
        return StateLayout(tuple((prefix + name, shape) for name, shape in self.blocks))

    def to_json(self) -> list:
        return [[name, list(shape)] for name, shape in self.blocks]

    @classmethod
    def from_json(cls, blocks: list) -> "StateLayout":
        return cls(tuple((str(name), tuple(int(d) for d in shape)) for name, shape in blocks))
