"""What a scene adds to an engine beside the robot (free objects, a garment): components that each engine builds,
resets, steps and saves.

An engine builds its components from the scene and keeps them in ``engine.components``
(name -> component). It calls every component's hooks in that order: ``reset`` after the
robot's reset (the pybullet engine also calls ``prepare_world`` on each client before it builds
the world), ``begin_step`` before a control period's physics substeps, ``end_step`` after
them (and after the rigid objects' grasps), ``state_blocks`` after the robot's blocks and
``load_state_blocks`` after the robot is restored. After ``end_step`` the engine asks each
``left_bounds`` whether the control step broke the divergence bounds (physics/divergence.py);
the numpy engine then calls ``keep_last_good`` to put the environments that did back. The
shared :class:`~.engine.Engine` interface names no component; a task that needs one reads it
by name, e.g. ``engine.components["cloth"].positions()``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np

from .cloth import ClothSpec
from .divergence import DivergenceBounds, points_diverged
from .scene import EpisodeSetup


class Component:
    """One part of a scene, built for one engine (it keeps that engine). Every hook defaults to nothing."""

    #: The key of this component in ``engine.components``.
    name: str = ""

    def prepare_world(self, client) -> None:
        """The pybullet engine's hook: set up a fresh client before the floor, boxes and robot are built."""

    def reset(self, env_ids: np.ndarray, episodes: Sequence[EpisodeSetup]) -> None:
        """Start ``episodes`` (one per env id) in environments ``env_ids``, after the robot's reset."""

    def begin_step(self) -> None:
        """Before a control period's physics substeps."""

    def substep_forces(self, robot_world, robot_velocity, robot_force, dt: float) -> None:
        """The numpy engine's hook, in every physics substep before the robot's: contacts with the robot's
        spheres (world positions and velocities (3, S, N)), adding their reactions to robot_force (3, S, N)."""

    def implicit_contacts(self):
        """The numpy engine's hook, right after :meth:`substep_forces`: this substep's contacts of robot spheres
        against this component's moving bodies that the robot's implicit contact treatment should take
        (physics/numpy_objects.py HandContacts: sphere, env, normal, relative, stiffness, damping, sliding),
        or None."""
        return None

    def substep_integrate(self, dt: float) -> None:
        """The numpy engine's hook, in every physics substep after the robot's."""

    def end_step(self) -> None:
        """After the control period's substeps."""

    def left_bounds(self, bounds: DivergenceBounds, robot_base: np.ndarray) -> np.ndarray:
        """After ``end_step``: (num_envs,) bool, where this component's last control step broke ``bounds``
        (physics/divergence.py); ``robot_base`` (num_envs, 3) is the robot's base position. The engine
        checks the rigid objects itself."""
        return np.zeros(len(robot_base), dtype=bool)

    def keep_last_good(self, env_mask: np.ndarray) -> None:
        """The numpy engine's hook: put environments ``env_mask`` back as they were at ``begin_step``, their
        last good state (the control step just run blew them up)."""

    def state_blocks(self) -> dict[str, np.ndarray]:
        """This component's named (num_envs, ...) state arrays (copies), appended after the engine's own."""
        return {}

    def load_state_blocks(self, env_ids: np.ndarray, blocks: dict[str, np.ndarray]) -> None:
        """Write rows of :meth:`state_blocks` back into ``env_ids``; ``blocks`` holds the engine's too."""

    def close(self) -> None:
        """Release native resources; safe to call twice."""


class Objects(Component, abc.ABC):
    """The scene's free rigid objects (possibly none), with what the hands hold (physics/grasp.py)."""

    name = "objects"

    @abc.abstractmethod
    def poses(self) -> np.ndarray:
        """(num_envs, num_objects, 7)."""

    @abc.abstractmethod
    def velocities(self) -> np.ndarray:
        """Linear then angular velocity, (num_envs, num_objects, 6)."""

    @abc.abstractmethod
    def grasped(self) -> np.ndarray:
        """Index of the object each hand holds, or -1; (num_envs, num_hands) int: welded by the assisted grasp, or
        held by contact under the physical one (grasp.contact_holds)."""

    def welded(self) -> np.ndarray:
        """Index of the object each hand has welded to its palm, or -1: what it holds under the assisted grasp, and
        nothing under the physical one."""
        held = self.grasped()
        return held if self.engine.config.grasp == "assisted" else np.full_like(held, -1)

    @abc.abstractmethod
    def hand_forces(self) -> np.ndarray:
        """Total normal contact force (N) between each hand and each object, (num_envs, num_hands, num_objects)."""


class Cloth(Component, abc.ABC):
    """A garment: a particle grid (physics/cloth.py) that the hands pin by the cloth grasp rule (physics/grasp.py)."""

    name = "cloth"

    def __init__(self, spec: ClothSpec, num_envs: int, num_hands: int):
        self.spec = spec
        self.num_envs, self.num_hands = num_envs, num_hands

    @abc.abstractmethod
    def positions(self) -> np.ndarray:
        """World positions of the particles, (num_envs, P, 3) in the grid's row-major order."""

    @abc.abstractmethod
    def velocities(self) -> np.ndarray:
        """The particles' mean velocity over the last control period (displacement / control_dt), (num_envs, P, 3)."""

    @abc.abstractmethod
    def pinned_by(self) -> np.ndarray:
        """The hand pinning each particle, or -1; (num_envs, P) int."""

    def left_bounds(self, bounds, robot_base):
        """A particle faster than a hand over the control period, or beyond the scene radius."""
        return points_diverged(self.velocities(), self.positions(), robot_base, bounds.link_speed, bounds)

    def grasped(self) -> np.ndarray:
        """Whether each hand pins cloth particles, (num_envs, num_hands) bool."""
        return (self.pinned_by()[:, None, :] == np.arange(self.num_hands)[None, :, None]).any(axis=2)

    def garments(self, env_ids: np.ndarray, episodes: Sequence[EpisodeSetup]):
        """The episodes' ClothParams and poses (n, 7), the spec's defaults where an episode names none."""
        spec = self.spec
        params = [spec.default_params if e.cloth is None else e.cloth.params for e in episodes]
        poses = np.array([spec.default_pose if e.cloth is None else e.cloth.pose for e in episodes], dtype=float)
        if poses.shape != (len(env_ids), 7) or not np.isfinite(poses).all():
            raise ValueError(f"cloth needs one finite pose (7,) per reset env ({len(env_ids)}), got shape {poses.shape}")
        return params, poses
