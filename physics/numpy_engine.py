"""The numpy engine: batched articulated-body dynamics, stepped for all environments at once.

Pure functions over a state dataclass (Brax's shape) plus an :class:`Engine` wrapper:

    model = load_model(robot, fixed_base=True)
    params = ActuatorParams.from_robot(robot)
    state = init(model, q, v)
    state = step(model, params, state, joint_targets, dt)

One physics step: forward kinematics; mass matrix by the composite-rigid-body algorithm;
bias forces by recursive Newton-Euler; the PD law of :func:`physics.engine.pd_torques`
clipped to the torque limits, with the damping of unsaturated actuators (and joint
damping) treated implicitly by adding ``dt * kd`` to the mass matrix diagonal together
with the armature; an LTDL factorisation that follows the tree's sparsity (no dense
solve); semi-implicit Euler; joint position limits as a projection that stops motion into
the limit; quaternion renormalisation. An environment whose state stops being finite or
exceeds the divergence speed keeps its last good state and is flagged.

Contacts and free objects arrive with the scenes issue; until then this engine runs
scenes without free objects (a clear error says so otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..robots import RobotDescription
from ..scenes.base import Scene
from .engine import Engine, EngineConfig
from .model import (Model, _bias_forces, _kinematics, _ltdl_factor, _ltdl_solve, _mass_pairs, kinematics,
                    load_model)
from .rotations import axis_angle_to_quat, matrix_to_quat, quat_multiply


@dataclass
class State:
    """Batched simulator state.

    q: (N, nq) generalised positions (floating base: position, quaternion xyzw, joints).
    v: (N, nv) generalised velocities (floating base: linear, angular in the world, joints).
    diverged: (N,) bool, set once an environment blew up; it then stays frozen.
    """

    q: np.ndarray
    v: np.ndarray
    diverged: np.ndarray


@dataclass(frozen=True)
class ActuatorParams:
    """Per-joint actuator and joint parameters, (n,) each.

    kp, kd: PD gains; torque_limit; armature: reflected rotor inertia added to the mass
    matrix diagonal (zero for humanoid43, whose rotors are inside the URDF links);
    damping: passive joint damping (N m s/rad).
    """

    kp: np.ndarray
    kd: np.ndarray
    torque_limit: np.ndarray
    armature: np.ndarray
    damping: np.ndarray

    @classmethod
    def from_robot(cls, robot: RobotDescription, armature: float = 0.0, damping: float = 0.0) -> "ActuatorParams":
        n = robot.num_joints
        return cls(robot.kp.copy(), robot.kd.copy(), robot.torque_limit.copy(),
                   np.full(n, float(armature)), np.full(n, float(damping)))


def init(model: Model, q: np.ndarray, v: np.ndarray | None = None) -> State:
    q = np.array(np.atleast_2d(q), dtype=float)
    if q.shape[-1] != model.nq:
        raise ValueError(f"q must have {model.nq} columns, got shape {q.shape}")
    v = np.zeros((q.shape[0], model.nv)) if v is None else np.array(np.atleast_2d(v), dtype=float)
    if v.shape != (q.shape[0], model.nv):
        raise ValueError(f"v must have shape {(q.shape[0], model.nv)}, got {v.shape}")
    if model.floating:
        q[:, 3:7] /= np.linalg.norm(q[:, 3:7], axis=-1, keepdims=True)
    return State(q, v, np.zeros(q.shape[0], dtype=bool))


def accelerations(model: Model, params: ActuatorParams, state: State, targets: np.ndarray, dt: float,
                  external: np.ndarray | None = None, implicit_damping: bool = True) -> np.ndarray:
    """Generalised accelerations (N, nv) for one step.

    ``implicit_damping=False`` evaluates the damping explicitly, exactly as the pybullet
    reference does; tests use it to hold the dynamics to the reference step for step.
    """
    nb = model.base_dofs
    q_last = np.ascontiguousarray(state.q.T)
    v_last = np.ascontiguousarray(state.v.T)
    kin = _kinematics(model, q_last)
    pattern = model._sparse
    matrix = _mass_pairs(model, kin)
    rhs = -_bias_forces(model, kin, v_last)
    joint_pos, joint_vel = q_last[model.nq - model.num_joints:], v_last[nb:]
    kp, kd, limit = params.kp[:, None], params.kd[:, None], params.torque_limit[:, None]
    torque = kp * (targets.T - joint_pos) - kd * joint_vel
    saturated = np.abs(torque) > limit
    torque = np.where(saturated, np.clip(torque, -limit, limit), torque)
    # Implicit damping: the force -kd v(t + dt) = -kd v(t) - kd dt a moves kd dt onto the diagonal.
    damping = (np.where(saturated, 0.0, kd) + params.damping[:, None]) if implicit_damping else 0.0
    matrix[pattern.diag[nb:]] += params.armature[:, None] + dt * damping
    rhs[nb:] += torque - params.damping[:, None] * joint_vel
    if external is not None:
        rhs += external.T
    return _ltdl_solve(_ltdl_factor(matrix, pattern), pattern, rhs).T


def step(model: Model, params: ActuatorParams, state: State, targets: np.ndarray, dt: float,
         divergence_speed: float = 500.0, external: np.ndarray | None = None, implicit_damping: bool = True) -> State:
    """Advance every environment by dt (semi-implicit Euler); returns a new State."""
    nb, n_joints = model.base_dofs, model.num_joints
    accel = accelerations(model, params, state, targets, dt, external, implicit_damping)
    v = state.v + dt * accel
    q = state.q.copy()
    joints = q[:, model.nq - n_joints:]
    joints += dt * v[:, nb:]
    # Joint limits: clamp the position and stop the velocity that points into the limit.
    below, above = joints < model.joint_lower, joints > model.joint_upper
    np.clip(joints, model.joint_lower, model.joint_upper, out=joints)
    joint_vel = v[:, nb:]
    joint_vel[(below & (joint_vel < 0)) | (above & (joint_vel > 0))] = 0.0
    if model.floating:
        q[:, :3] += dt * v[:, :3]
        turn = axis_angle_to_quat(dt * v[:, 3:6])
        quat = quat_multiply(turn, q[:, 3:7])
        q[:, 3:7] = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
    bad = ~np.isfinite(q).all(axis=1) | ~np.isfinite(v).all(axis=1) | (np.abs(v).max(axis=1) > divergence_speed)
    bad |= state.diverged
    q[bad], v[bad] = state.q[bad], state.v[bad]
    return State(q, v, bad)


class NumpyEngine(Engine):
    """The Engine interface over :func:`step`; every call is vectorised over environments."""

    def __init__(self, robot: RobotDescription, scene: Scene, num_envs: int = 1, config: EngineConfig | None = None,
                 gui: bool = False):
        super().__init__(robot, scene, num_envs, config)
        self.implicit_damping = True
        if scene.num_objects:
            raise NotImplementedError(
                f"scene {scene.name!r} has free objects, which need contacts; the numpy engine does not simulate "
                "contacts yet. Use backend='pybullet' for it.")
        if gui:
            raise RuntimeError("the numpy engine has no GUI; use render_mode='rgb_array' or backend='pybullet'")
        self.model = load_model(robot, fixed_base=scene.fixed_base, base_position=scene.robot_position,
                                base_quaternion=scene.robot_quaternion, gravity=(0.0, 0.0, self.config.gravity))
        self.params = ActuatorParams.from_robot(robot)
        q = np.tile(robot.keyframe("standing"), (self.num_envs, 1))
        if self.model.floating:
            base = np.concatenate([scene.robot_position, scene.robot_quaternion])
            q = np.concatenate([np.tile(base, (self.num_envs, 1)), q], axis=1)
        self.state = init(self.model, q)
        self._viewer = None

    @property
    def _joint_slice(self) -> slice:
        return slice(self.model.nq - self.model.num_joints, None)

    def reset(self, env_idx, joint_pos, objects=None, object_poses=None, joint_vel=None) -> None:
        env_ids = self._env_ids(env_idx)
        joint_pos = np.asarray(joint_pos, float).reshape(len(env_ids), self.robot.num_joints)
        joint_vel = np.zeros_like(joint_pos) if joint_vel is None else np.asarray(joint_vel, float).reshape(joint_pos.shape)
        if not (np.isfinite(joint_pos).all() and np.isfinite(joint_vel).all()):
            raise ValueError("reset state contains NaN or inf")
        q, v = self.state.q.copy(), self.state.v.copy()
        q[env_ids, self._joint_slice] = joint_pos
        v[env_ids] = 0.0
        v[env_ids, self.model.base_dofs:] = joint_vel
        if self.model.floating:
            q[env_ids, :3] = self.scene.robot_position
            q[env_ids, 3:7] = self.scene.robot_quaternion
        diverged = self.state.diverged.copy()
        diverged[env_ids] = False
        self.state = State(q, v, diverged)
        self.joint_targets[env_ids] = joint_pos
        self.grasp_commands[env_ids] = False
        self.diverged = diverged.copy()

    def step(self) -> None:
        dt = self.config.physics_dt
        for _ in range(self.config.substeps):
            self.state = step(self.model, self.params, self.state, self.joint_targets, dt, self.config.divergence_speed,
                              implicit_damping=self.implicit_damping)
        self.diverged = self.state.diverged.copy()

    def joint_state(self):
        return self.state.q[:, self._joint_slice].copy(), self.state.v[:, self.model.base_dofs:].copy()

    def link_poses(self, links):
        indices = [self.model.link_index(link) for link in links]
        kin = kinematics(self.model, self.state.q)
        positions = np.moveaxis(kin.origin[:, indices] + kin.base_position[:, None], 0, -1).transpose(1, 0, 2)
        rotations = np.moveaxis(kin.rotation[:, :, indices], (0, 1), (-2, -1)).transpose(1, 0, 2, 3)
        return np.concatenate([positions, matrix_to_quat(rotations)], axis=-1)

    def point_jacobian(self, link, local_point):
        from .model import jacobian

        return jacobian(self.model, self.state.q, link, local_point)[:, :, self.model.base_dofs:]

    def object_poses(self):
        return np.zeros((self.num_envs, 0, 7))

    def object_velocities(self):
        return np.zeros((self.num_envs, 0, 6))

    def grasped_objects(self):
        return -np.ones((self.num_envs, len(self.hand_names)), dtype=np.int64)

    def hand_contact_forces(self):
        return np.zeros((self.num_envs, len(self.hand_names), 0))

    def render(self, env_id: int = 0, width: int | None = None, height: int | None = None) -> np.ndarray:
        """Copy one environment's poses into a pybullet viewer and take the scene camera's picture."""
        from .pybullet_engine import PybulletEngine

        if self._viewer is None:
            self._viewer = PybulletEngine(self.robot, self.scene, 1, self.config)
        joint_pos, joint_vel = self.joint_state()
        self._viewer.reset([0], joint_pos[env_id:env_id + 1], [[]], np.zeros((1, 0, 7)))
        if self.model.floating:
            client, body = self._viewer.clients[0], self._viewer._robot_ids[0]
            client.resetBasePositionAndOrientation(body, self.state.q[env_id, :3], self.state.q[env_id, 3:7])
        return self._viewer.render(0, width, height)

    def close(self) -> None:
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None
