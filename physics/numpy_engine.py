"""The numpy engine: batched articulated-body dynamics, stepped for all environments at once.

Pure functions over a state dataclass (Brax's shape) plus an :class:`Engine` wrapper:

    model = load_model(robot, fixed_base=True)
    params = ActuatorParams.from_robot(robot)
    state = init(model, q, v)
    state = step(model, params, state, joint_targets, dt)

One physics step: forward kinematics; mass matrix by the composite-rigid-body algorithm;
bias forces by recursive Newton-Euler; the PD law of :func:`physics.engine.pd_torques`
clipped to the torque limits, integrated as the ``drive`` option says (:func:`accelerations`:
explicit; damping-implicit, the default, adding ``dt * kd`` to the mass matrix diagonal; or
implicit in stiffness and damping, adding ``dt * kd + dt^2 * kp``), with the armature and
the joint damping (implicit unless the drive is explicit) on the same diagonal; an LTDL
factorisation that follows the tree's sparsity (no dense solve); semi-implicit Euler; joint
position limits as a projection that stops motion into the limit; quaternion renormalisation. An environment whose state stops being finite or
exceeds the divergence speed keeps its last good state and is flagged; so does one whose
control step breaks the bounds of physics/divergence.py (joint, link, body, object and cloth
motion), which goes back to the step's start.

What the scene adds beside the robot, free objects and a garment, are components
(physics/components.py) that the engine builds, resets, steps and saves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..robots import RobotDescription
from .contacts import StaticGeometry, contact_spheres, static_contacts, sticky_forces
from .engine import Engine, EngineConfig, check_drive
from .numpy_cloth import NumpyCloth
from .numpy_objects import NumpyObjects
from .rendering import RenderPool, Snapshot, Viewer
from .model import (Kinematics, Model, _bias_forces, _cross, _cross_last, _dot, _kinematics, _ltdl_factor, _ltdl_solve,
                    _mass_pairs, generalized_forces, jacobian, link_velocities, load_model, ordered_sum)
from .rotations import axis_angle_to_quat, matrix_to_quat, quat_multiply
from .scene import Scene


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
                  external: np.ndarray | None = None, drive: str = "damping_implicit",
                  kin: Kinematics | None = None, extra_matrix=None, saturated_out: np.ndarray | None = None,
                  point_masses: np.ndarray | None = None) -> np.ndarray:
    """Generalised accelerations (N, nv) for one step.

    ``drive`` (physics/engine.py DRIVES): "explicit" evaluates the PD torque at the step's start,
    exactly as the pybullet reference does (tests hold the dynamics to it step for step);
    "damping_implicit" takes the damping of unsaturated actuators at the step's end (the default);
    "implicit" takes their stiffness and damping at the step's end, stable for any gains.
    Saturation is decided, in every law, from the PD torque at the step's start (the motor's torque
    now, :func:`physics.engine.pd_torques`); a saturated actuator applies its limit explicitly.
    ``kin``: the kinematics of ``state.q`` when the caller already has them (contacts do).
    ``extra_matrix``: (pair positions, env indices, values) added to the mass matrix on its
    sparsity pattern, for forces treated implicitly by the caller (see :class:`ImplicitContacts`);
    ``point_masses``: masses carried by the links, added to their inertias in the mass matrix
    (physics/model.py ``_mass_pairs``), the same kind of term gathered per link (:func:`contact_point_masses`).
    ``saturated_out``: (num_joints, N) float, batch-last; 1 is added where an actuator is saturated.
    """
    nb = model.base_dofs
    q_last = np.ascontiguousarray(state.q.T)
    v_last = np.ascontiguousarray(state.v.T)
    kin = kin if kin is not None else _kinematics(model, q_last)
    pattern = model._sparse
    matrix = _mass_pairs(model, kin, point_masses)
    rhs = -_bias_forces(model, kin, v_last)
    joint_pos, joint_vel = q_last[model.nq - model.num_joints:], v_last[nb:]
    kp, kd, limit = params.kp[:, None], params.kd[:, None], params.torque_limit[:, None]
    torque = kp * (targets.T - joint_pos) - kd * joint_vel
    saturated = np.abs(torque) > limit
    if saturated_out is not None:
        saturated_out += saturated
    torque = np.where(saturated, np.clip(torque, -limit, limit), torque)
    if drive == "damping_implicit":
        # Implicit damping: the force -kd v(t + dt) = -kd v(t) - kd dt a moves kd dt onto the diagonal.
        damping = np.where(saturated, 0.0, kd) + params.damping[:, None]
    elif drive == "implicit":
        # Semi-implicit Euler: v' = v + dt a, q' = q + dt v'. Taking the drive's torque at the step's end,
        #   kp (q* - q') - kd v' = kp (q* - q) - (kd + dt kp) v' = kp (q* - q) - (kd + dt kp) v - (kd + dt kp) dt a,
        # so (M + dt kd + dt^2 kp) a = kp (q* - q) - (kd + dt kp) v + (other forces): the diagonal gets
        # dt (kd + dt kp), the right-hand side the torque less dt kp v. Diagonal only, so the tree-sparse
        # pattern is unchanged; unconditionally stable for a joint, whatever kp dt^2 / I and kd dt / I are.
        stiffness = np.where(saturated, 0.0, kp)
        damping = np.where(saturated, 0.0, kd) + dt * stiffness + params.damping[:, None]
        torque = torque - dt * stiffness * joint_vel
    elif drive == "explicit":
        damping = 0.0
    else:
        check_drive(drive)  # raises, naming the choices
    matrix[pattern.diag[nb:]] += params.armature[:, None] + dt * damping
    rhs[nb:] += torque - params.damping[:, None] * joint_vel
    if external is not None:
        rhs += external.T
    if extra_matrix is not None:
        np.add.at(matrix, (extra_matrix[0], extra_matrix[1]), extra_matrix[2])
    return _ltdl_solve(_ltdl_factor(matrix, pattern), pattern, rhs).T


def step(model: Model, params: ActuatorParams, state: State, targets: np.ndarray, dt: float,
         divergence_speed: float = 500.0, external: np.ndarray | None = None, drive: str = "damping_implicit",
         kin: Kinematics | None = None, extra_matrix=None, saturated_out: np.ndarray | None = None,
         point_masses: np.ndarray | None = None) -> State:
    """Advance every environment by dt (semi-implicit Euler); returns a new State. See :func:`accelerations`."""
    nb, n_joints = model.base_dofs, model.num_joints
    accel = accelerations(model, params, state, targets, dt, external, drive, kin, extra_matrix, saturated_out,
                          point_masses)
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


_IDENTITY = np.eye(3)


def contact_point_masses(num_envs: int, body, env, point, weight):
    """The implicit term of sticking contacts (:class:`ImplicitContacts`, A = I) as point masses of their links.

    While a contact at p (about the base origin) sticks, its term weight J_p^T J_p is the mass
    matrix of a point of mass ``weight`` at p on its link b, so it joins b's inertia in the CRBA
    (physics/model.py ``_mass_pairs``) instead of costing a Jacobian product per contact.
    body, env: (C,) each contact's link and environment, in the order of ``np.nonzero`` over
    (spheres, N), which is the order each link's masses are summed in (an env gets the same
    bits alone or in a batch); point: (3, C); weight: (C,) = dt c + dt^2 k. Returns
    ``_mass_pairs``' point_masses: slots (C,) and values (13, C).
    """
    x, y, z = point
    squared = x * x + y * y + z * z
    values = np.array([np.ones_like(x), x, y, z,
                       squared - x * x, -x * y, -x * z,
                       -y * x, squared - y * y, -y * z,
                       -z * x, -z * y, squared - z * z]) * weight
    return body * num_envs + env, values


class ImplicitContacts:
    """Backward-Euler treatment of the robot's static contacts, on the mass matrix's own pattern.

    A foot must carry the whole robot, so its contacts are stiff, yet the foot is a light
    link: an explicit step of such a spring on such a mass is unstable at 500 Hz. With the
    contact force linearised over the step, f(t + dt) = f - (c + dt k) J^T A J dt a - dt k J^T A J v,
    the term (dt c + dt^2 k) J^T A J joins the mass matrix and -dt k J^T A (J v) the forces;
    A = n n^T for a sliding contact, the identity while it sticks (tangential spring).
    J of a point on link b touches only b's ancestor chain, and every pair of coordinates
    on one chain is already in the tree-sparse pattern, so the factorisation keeps its shape.
    """

    def __init__(self, model: Model, sphere_body: np.ndarray):
        nb = model.base_dofs
        position = {(int(i), int(j)): p for p, (i, j) in enumerate(zip(model._sparse.rows, model._sparse.cols))}
        dof_lists, slot_links = [], []
        for body in sphere_body:
            chain = [link for link in np.flatnonzero(model.ancestors[body]) if model.joint_of_link[link] >= 0]
            chain.sort(key=lambda link: model.ancestors[link].sum())  # root first: by depth, whatever the joint order
            dof_lists.append(list(range(nb)) + [nb + model.joint_of_link[link] for link in chain])
            slot_links.append([-1] * nb + chain)
        width = max(len(d) for d in dof_lists)
        spheres = len(sphere_body)
        self.dofs = np.zeros((spheres, width), dtype=np.int64)
        self.valid = np.zeros((spheres, width), dtype=bool)
        self.slot_link = np.zeros((spheres, width), dtype=np.int64)
        self.pairs = np.zeros((spheres, width, width), dtype=np.int64)
        for s, (dofs, links) in enumerate(zip(dof_lists, slot_links)):
            m = len(dofs)
            self.dofs[s, :m], self.valid[s, :m], self.slot_link[s, :m] = dofs, True, np.maximum(links, 0)
            for a in range(m):
                for b in range(a + 1):  # (later, earlier) = (descendant, ancestor): stored in the pattern
                    self.pairs[s, a, b] = position[(dofs[a], dofs[b])]
        lower = np.tril(np.ones((width, width), dtype=bool))
        self.lower = lower[None] & self.valid[:, :, None] & self.valid[:, None, :]
        self.joint_slot = self.valid.copy()
        self.joint_slot[:, :nb] = False
        self.width = self.valid.sum(axis=1)  # each sphere's chain: base coordinates, then its joints
        self.base_dofs, self.nv = nb, model.nv

    def terms(self, kin: Kinematics, relative, velocity, normal, active, sliding, stiffness, damping, dt: float):
        """(pair positions, env indices, matrix values) and the force term (nv, N) of the touching spheres.

        relative, velocity, normal: (3, S, N) contact points about the base origin, their velocities,
        contact normals; active, sliding: (S, N) bool; stiffness, damping: (S, N).
        """
        sphere, env = np.nonzero(active)
        n = relative.shape[-1]
        point = relative[:, sphere, env].T  # (C, 3)
        links = self.slot_link[sphere]  # (C, m)
        axis = kin.axis[:, links, env[:, None]].transpose(1, 2, 0)  # (C, m, 3)
        origin = kin.origin[:, links, env[:, None]].transpose(1, 2, 0)
        columns = _cross_last(axis, point[:, None] - origin) * self.joint_slot[sphere][..., None]  # (C, m, 3)
        nb = self.base_dofs
        if nb:
            columns[:, :3] = _IDENTITY
            # A base angular rate w moves the point by w x p: the column of w_k is e_k x p.
            columns[:, 3:6] = _cross_last(_IDENTITY[None], point[:, None])
        n_hat = normal[:, sphere, env].T  # (C, 3)
        stick = ~sliding[sphere, env]
        # J^T A J with A = n n^T + stick (I - n n^T).
        along = columns @ n_hat[:, :, None]  # (C, m, 1)
        gram = (1.0 - stick)[:, None, None] * (along * along.transpose(0, 2, 1))
        gram = gram + stick[:, None, None] * (columns @ columns.transpose(0, 2, 1))
        k, c = stiffness[sphere, env], damping[sphere, env]
        lower = self.lower[sphere]
        values = ((dt * c + dt * dt * k)[:, None, None] * gram)[lower]
        pairs = self.pairs[sphere][lower]
        envs = np.broadcast_to(env[:, None, None], lower.shape)[lower]
        point_velocity = velocity[:, sphere, env].T  # (C, 3)
        weighted = np.where(stick[:, None], point_velocity, n_hat * (point_velocity * n_hat).sum(-1, keepdims=True))
        generalized = -(dt * k)[:, None] * (columns @ weighted[:, :, None])[..., 0]  # (C, m)
        force = np.zeros((self.nv, n))
        valid = self.valid[sphere]
        np.add.at(force, (self.dofs[sphere][valid], np.broadcast_to(env[:, None], valid.shape)[valid]), generalized[valid])
        return (pairs, envs, values), force

    def sliding_terms(self, kin: Kinematics, sphere, env, relative, velocity, normal, stiffness, damping, dt: float,
                      num_envs: int):
        """:meth:`terms` of contacts that slide (A = n n^T), each on its own chain's width.

        A sliding contact's term is rank one, weight u u^T with u = J^T n, so it needs u alone, not
        a Gram matrix. Contacts are grouped by the length of their chain (on a fixed base a foot's
        6 joints, a fingertip's 12): each group computes on its own width. sphere, env: (C,) sphere-major;
        relative, velocity, normal: (3, C); stiffness, damping: (C,).
        """
        nb = self.base_dofs
        matrix_parts, force = [], np.zeros((self.nv, num_envs))
        width = self.width[sphere]
        for m in np.unique(width):
            group = np.flatnonzero(width == m)
            s, e = sphere[group], env[group]
            point, n_hat = relative[:, group].T, normal[:, group].T  # (C', 3)
            links = self.slot_link[s, nb:m]
            axis = kin.axis[:, links, e[:, None]].transpose(1, 2, 0)  # (C', m - nb, 3)
            origin = kin.origin[:, links, e[:, None]].transpose(1, 2, 0)
            joint_columns = _cross_last(axis, point[:, None] - origin)
            u = np.empty((len(group), m))
            u[:, nb:] = (joint_columns * n_hat[:, None]).sum(-1)  # (a x (p - o)) . n per joint
            if nb:
                u[:, :3] = n_hat
                u[:, 3:6] = _cross_last(point, n_hat)  # (e_k x p) . n = (p x n)_k
            weight = dt * damping[group] + dt * dt * stiffness[group]
            rows, cols = np.tril_indices(m)
            matrix_parts.append((self.pairs[s][:, rows, cols].ravel(), np.repeat(e, len(rows)),
                                 (weight[:, None] * u[:, rows] * u[:, cols]).ravel()))
            along = (velocity[:, group].T * n_hat).sum(-1)  # n . v_p
            generalized = -(dt * stiffness[group] * along)[:, None] * u
            np.add.at(force, (self.dofs[s, :m].ravel(), np.repeat(e, m)), generalized.ravel())
        if not matrix_parts:
            return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)), force
        return tuple(np.concatenate(part) for part in zip(*matrix_parts)), force


class NumpyEngine(Engine):
    """The Engine interface over :func:`step`, with the robot's contacts and the scene's components.

    Every call is vectorised over environments. Contacts follow physics/contacts.py; the free
    objects (physics/numpy_objects.py, always present, possibly none) and a garment
    (physics/numpy_cloth.py) are components stepped beside the robot.
    """

    contact_frequency = 150.0  # rad/s; critically damped contacts, w dt = 0.3 at 500 Hz

    def __init__(self, robot: RobotDescription, scene: Scene, num_envs: int = 1, config: EngineConfig | None = None,
                 gui: bool = False):
        super().__init__(robot, scene, num_envs, config)
        check_drive(self.config.drive)
        if gui:
            raise RuntimeError("the numpy engine has no GUI; use render_mode='rgb_array' or backend='pybullet'")
        self.model = load_model(robot, fixed_base=scene.fixed_base, base_position=scene.robot_position,
                                base_quaternion=scene.robot_quaternion, gravity=(0.0, 0.0, self.config.gravity))
        self.params = ActuatorParams.from_robot(robot)
        q = np.tile(robot.home_posture, (self.num_envs, 1))
        if self.model.floating:
            base = np.concatenate([scene.robot_position, scene.robot_quaternion])
            q = np.concatenate([np.tile(base, (self.num_envs, 1)), q], axis=1)
        self.state = init(self.model, q)
        self._kinematics_of = None  # see _current_kinematics
        self._watched_indices = np.array([self.model.link_index(link) for link in self._watched_links])
        self._viewer = None  # the cameras' renderer (Viewer or RenderPool), made at first use
        self._picture_viewer = None  # render()'s
        self._build_contacts()
        self.objects = NumpyObjects(self)
        self.components["objects"] = self.objects
        if scene.cloth is not None:
            self.components["cloth"] = NumpyCloth(self)

    def _build_contacts(self) -> None:
        model, robot = self.model, self.robot
        spheres = contact_spheres(robot, model.link_names)
        self.spheres = spheres
        # Mass that can load each sphere, shared among its link's spheres so that a body's contact
        # stiffness is the same however finely it is covered: on a fixed base, the link's subtree;
        # a floating robot can rest its whole weight on any link (a foot carries all of it).
        # Contacts are stiff enough for that load and stay stable because the robot's contacts
        # are integrated implicitly (ImplicitContacts).
        subtree_mass = model.ancestors.T.astype(float) @ model.mass  # [j]: mass of j's subtree
        if model.floating:
            subtree_mass[:] = model.mass.sum()
        per_link = np.bincount(spheres.body, minlength=model.num_links)
        self._sphere_mass = subtree_mass[spheres.body] / per_link[spheres.body]
        self._implicit = ImplicitContacts(model, spheres.body)
        mass = self._sphere_mass[:, None]
        self._sphere_gains = (mass * self.contact_frequency**2, 2.0 * mass * self.contact_frequency)  # k, c (S, 1)
        starts = np.flatnonzero(np.diff(spheres.body, prepend=-1))
        if len(np.unique(spheres.body)) != len(starts):
            raise ValueError("robot spheres must be grouped link by link")
        self._sphere_segments = (spheres.body[starts], starts)
        self._sphere_center = np.ascontiguousarray(spheres.center.T)  # (3, S)
        self._static = StaticGeometry.from_scene(self.scene)
        hand_links = []
        for hand in robot.hands.values():
            palm = model.link_index(hand.palm_link)
            hand_links.append(np.flatnonzero(model.ancestors[:, palm]))
        self._hand_spheres = [np.flatnonzero(np.isin(spheres.body, links)) for links in hand_links]
        self._grasp_site = np.array([h.grasp_site for h in robot.hands.values()])
        # Tangential spring displacements of the static contacts (static friction).
        self._robot_slip = np.zeros((3, spheres.size, self.num_envs))
        self._saturated_substeps = np.zeros((robot.num_joints, self.num_envs))  # batch-last, summed over a step

    def _hand_spread(self) -> np.ndarray:
        postures = []
        for closed in (False, True):
            # The spread is measured in the palm's own frame, so any arm posture serves.
            q = self.robot.home_posture
            for hand in self.robot.hands.values():
                q[self.robot.joint_indices(hand.finger_joints)] = hand.finger_closed if closed else hand.finger_open
            postures.append(q)
        q = np.array(postures)
        if self.model.floating:
            q = np.concatenate([np.tile([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], (2, 1)), q], axis=1)
        kin = _kinematics(self.model, np.ascontiguousarray(q.T))
        world, _, _ = self._robot_spheres_world(kin, np.zeros((self.model.nv, 2)))
        spread = []
        for hand in self._hand_spheres:
            centres = world[:, hand]
            distance = np.sqrt(_dot(centres - centres.mean(axis=1, keepdims=True), centres - centres.mean(axis=1, keepdims=True)))
            spread.append((distance + self.spheres.radius[hand][:, None]).max())
        return np.array(spread)

    @property
    def _joint_slice(self) -> slice:
        return slice(self.model.nq - self.model.num_joints, None)

    def reset(self, env_idx, episodes) -> None:
        env_ids = self._env_ids(env_idx)
        episodes = list(episodes)
        joint_pos, joint_vel = self._joint_arrays(env_ids, episodes)
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
        # Nothing of the slot's previous episode survives, so a saved state depends only on this one.
        self._robot_slip[..., env_ids] = 0.0
        self._clear_forces(env_ids)
        self.joint_targets[env_ids] = joint_pos
        self.grasp_commands[env_ids] = False
        self.diverged = diverged.copy()
        for component in self.components.values():
            component.reset(env_ids, episodes)

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        last_good, start = self.state, self._watched_positions()
        for component in self.components.values():
            component.begin_step()
        self._saturated_substeps[:] = 0.0
        for _ in range(self.config.substeps):
            self._substep(self.config.physics_dt)
        self.saturated_fraction = self._saturated_substeps.T / self.config.substeps
        for component in self.components.values():
            component.end_step()
        blown_up = self._left_bounds(start) & ~self.state.diverged
        if blown_up.any():
            self._keep_last_good(blown_up, last_good)
        self.diverged = self.state.diverged.copy()

    def _keep_last_good(self, env_mask: np.ndarray, last_good: State) -> None:
        """Environments ``env_mask`` blew up in this control step: back to its start, flagged, and frozen there."""
        q, v = self.state.q.copy(), self.state.v.copy()
        q[env_mask], v[env_mask] = last_good.q[env_mask], last_good.v[env_mask]
        self.state = State(q, v, self.state.diverged | env_mask)
        for component in self.components.values():
            component.keep_last_good(env_mask)

    def _robot_spheres_world(self, kin, v_last):
        """World positions (3, S, N), positions relative to the base origin, and velocities of the robot spheres."""
        body = self.spheres.body
        rotation = kin.rotation[:, :, body]
        relative = kin.origin[:, body] + (rotation * self._sphere_center[None, :, :, None]).sum(axis=1)
        omega, velocity = link_velocities(self.model, kin, v_last)
        sphere_velocity = velocity[:, body] + _cross(omega[:, body], relative - kin.origin[:, body])
        return relative + kin.base_position[:, None], relative, sphere_velocity

    def _sticking_contacts(self, relative, velocity, bearing, sliding, robot_force, dt: float):
        """The implicit treatment (:class:`ImplicitContacts`) of the bearing static contacts that stick, the
        "composite" way (:meth:`_sticking_terms`)."""
        sphere, env = np.nonzero(bearing & ~sliding)
        stiffness, damping = self._sphere_gains
        return self._sticking_terms(sphere, env, relative, velocity[:, sphere, env], stiffness[sphere, 0],
                                    damping[sphere, 0], robot_force, dt)

    def _sticking_terms(self, sphere, env, relative, velocity, stiffness, damping, robot_force, dt: float):
        """Sticking contacts of robot spheres ``sphere`` in environments ``env`` (C,), each moving at ``velocity``
        (3, C) against what it touches: their matrix term as point masses for the CRBA
        (:func:`contact_point_masses`), their force term -dt k v, a force at the contact point, added to
        robot_force (a sphere touching two bodies gets both)."""
        np.add.at(robot_force, (slice(None), sphere, env), -(dt * stiffness) * velocity)
        return contact_point_masses(self.num_envs, self.spheres.body[sphere], env, relative[:, sphere, env],
                                    dt * damping + dt * dt * stiffness)

    def _moving_contacts(self, kin, relative, contacts, robot_force, dt: float, point_masses, contact_matrix,
                         contact_force):
        """The implicit treatment of contacts against moving bodies (a component's ``implicit_contacts``: the free
        objects' hand contacts), joined to the static contacts' terms: :meth:`_sticking_terms` and
        ``sliding_terms`` with the contact's velocity relative to the body's surface in place of the sphere's
        own."""
        stick, sliding = ~contacts.sliding, contacts.sliding
        slots, values = self._sticking_terms(contacts.sphere[stick], contacts.env[stick], relative,
                                             contacts.relative[:, stick], contacts.stiffness[stick],
                                             contacts.damping[stick], robot_force, dt)
        if point_masses is not None:
            slots, values = np.concatenate([point_masses[0], slots]), np.concatenate([point_masses[1], values], axis=1)
        s, e = contacts.sphere[sliding], contacts.env[sliding]
        matrix, force = self._implicit.sliding_terms(kin, s, e, relative[:, s, e], contacts.relative[:, sliding],
                                                     contacts.normal[:, sliding], contacts.stiffness[sliding],
                                                     contacts.damping[sliding], dt, self.num_envs)
        matrix = tuple(np.concatenate([old, new]) for old, new in zip(contact_matrix, matrix))
        return (slots, values), matrix, contact_force + force

    def _substep(self, dt: float) -> None:
        model = self.model
        v_last = np.ascontiguousarray(self.state.v.T)
        kin = self._current_kinematics()  # the same function of the same q; shared with the reads before the step
        world, relative, velocity = self._robot_spheres_world(kin, v_last)
        depth, normal, friction = static_contacts(self._static, world, self.spheres.radius)
        mass = self._sphere_mass[:, None]
        robot_force, sliding = sticky_forces(depth, normal, velocity, friction, mass, self.contact_frequency,
                                             self._robot_slip, dt)
        bearing = (depth > 0) & (_dot(robot_force, normal) > 0)
        stiffness, damping = self._sphere_gains
        if self.config.contact_matrix == "composite":
            # Sticking contacts as point masses in the CRBA, sliding ones by their rank-one terms.
            point_masses = self._sticking_contacts(relative, velocity, bearing, sliding, robot_force, dt)
            sphere, env = np.nonzero(bearing & sliding)
            contact_matrix, contact_force = self._implicit.sliding_terms(
                kin, sphere, env, relative[:, sphere, env], velocity[:, sphere, env], normal[:, sphere, env],
                stiffness[sphere, 0], damping[sphere, 0], dt, self.num_envs)
        else:
            point_masses = None
            contact_matrix, contact_force = self._implicit.terms(
                kin, relative, velocity, normal, bearing, sliding, np.broadcast_to(stiffness, depth.shape),
                np.broadcast_to(damping, depth.shape), dt)
        for component in self.components.values():  # the objects' contacts add their reactions to robot_force
            component.substep_forces(world, velocity, robot_force, dt)
            hand_contacts = component.implicit_contacts()
            if hand_contacts is not None:
                point_masses, contact_matrix, contact_force = self._moving_contacts(
                    kin, relative, hand_contacts, robot_force, dt, point_masses, contact_matrix, contact_force)
        # Robot: sphere forces to link wrenches about the base origin, then to generalised forces.
        links = model.num_links
        link_force = np.zeros((3, links, self.num_envs))
        link_moment = np.zeros((3, links, self.num_envs))
        # Spheres are stored link by link: one sequential segment sum per link.
        bodies, starts = self._sphere_segments
        link_force[:, bodies] = np.add.reduceat(robot_force, starts, axis=1)
        link_moment[:, bodies] = np.add.reduceat(_cross(relative, robot_force), starts, axis=1)
        for link, force in self.external_forces.items():
            index = self.model.link_index(link)
            link_force[:, index] += force.T
            link_moment[:, index] += _cross(kin.origin[:, index], force.T)
        external = generalized_forces(model, kin, link_force, link_moment) + contact_force
        self.state = step(model, self.params, self.state, self.joint_targets, dt, self.config.divergence_speed,
                          external=external.T, drive=self.config.drive, kin=kin,
                          extra_matrix=contact_matrix, saturated_out=self._saturated_substeps,
                          point_masses=point_masses)
        for component in self.components.values():
            component.substep_integrate(dt)

    # ------------------------------------------------------------------ reading
    def joint_state(self):
        return self.state.q[:, self._joint_slice].copy(), self.state.v[:, self.model.base_dofs:].copy()

    def link_poses(self, links):
        indices = [self.model.link_index(link) for link in links]
        kin = self._current_kinematics()
        positions = np.moveaxis(kin.origin[:, indices] + kin.base_position[:, None], 0, -1).transpose(1, 0, 2)
        rotations = np.moveaxis(kin.rotation[:, :, indices], (0, 1), (-2, -1)).transpose(1, 0, 2, 3)
        return np.concatenate([positions, matrix_to_quat(rotations)], axis=-1)

    def point_jacobian(self, link, local_point):
        full = jacobian(self.model, self.state.q, link, local_point, self._current_kinematics())
        return full[:, :, self.model.base_dofs:]

    def link_index(self, link: str) -> int:
        return self.model.link_index(link)

    def _current_kinematics(self) -> Kinematics:
        """Kinematics of ``self.state``, computed once per state: every read of poses, Jacobians,
        centre of mass or hand spheres between two steps shares them. Each step, reset or restore
        installs a new State object (q is never edited in place), which is what invalidates them.
        """
        if self._kinematics_of is not self.state:
            self._kinematics = _kinematics(self.model, np.ascontiguousarray(self.state.q.T))
            self._kinematics_of = self.state
        return self._kinematics

    def _link_velocities(self):
        """Kinematics, link angular velocities and link-origin velocities (3, L, N) of the current state."""
        kin = self._current_kinematics()
        omega, velocity = link_velocities(self.model, kin, np.ascontiguousarray(self.state.v.T))
        return kin, omega, velocity

    def _center_of_mass_position(self, kin: Kinematics) -> np.ndarray:
        mass = self.model.mass[None, :, None]
        return ordered_sum(kin.com * mass, axis=1) / self.model.mass.sum() + kin.base_position

    def center_of_mass(self):
        kin, omega, velocity = self._link_velocities()
        mass = self.model.mass[None, :, None]
        com_velocity = velocity + _cross(omega, kin.com - kin.origin)
        total = self.model.mass.sum()
        position = self._center_of_mass_position(kin)
        return position.T.copy(), (ordered_sum(com_velocity * mass, axis=1) / total).T.copy()

    def base_velocity(self):
        # The base's own velocities are coordinates (zero on a fixed base): no recursion over the links.
        kin = self._current_kinematics()
        if self.model.floating:
            v_last = np.ascontiguousarray(self.state.v[:, :6].T)
            linear, omega = v_last[:3], v_last[3:6]
        else:
            linear = omega = np.zeros((3, self.num_envs))
        linear = linear + _cross(omega, kin.com[:, 0] - kin.origin[:, 0])
        return np.concatenate([linear, omega]).T.copy()

    def _watched_positions(self):
        """As the Engine's, without the orientations and velocities it drops (the same positions)."""
        kin = self._current_kinematics()
        links = kin.origin[:, self._watched_indices] + kin.base_position[:, None]
        return {"links": np.moveaxis(links, 0, -1).transpose(1, 0, 2), "com": self._center_of_mass_position(kin).T,
                "objects": self.objects.pose[..., :3].copy()}

    def snapshot(self, env_id: int) -> Snapshot:
        """What a picture of environment ``env_id`` needs (physics/rendering.py)."""
        return self.snapshots([env_id])[0]

    def snapshots(self, env_ids) -> list[Snapshot]:
        """:meth:`snapshot` of each of ``env_ids``, reading the state once."""
        joint_pos, _ = self.joint_state()
        cloth = self.components.get("cloth")
        particles = None if cloth is None else cloth.positions()
        return [Snapshot(joint_pos[i].copy(), self.state.q[i, :7].copy() if self.model.floating else None,
                         tuple(self.objects.params[i]), self.objects.pose[i].copy(),
                         None if particles is None else particles[i]) for i in map(int, env_ids)]

    def _renderer(self):
        """This engine's viewer: in ``config.render_workers`` worker processes, or one here for 0 (made at first use)."""
        if self._viewer is None:
            workers = self.config.render_workers
            self._viewer = (RenderPool(self.robot, self.scene, self.config, workers) if workers
                            else Viewer(self.robot, self.scene, self.config))
        return self._viewer

    def render(self, env_id: int = 0, width: int | None = None, height: int | None = None) -> np.ndarray:
        """Copy one environment's poses into a pybullet viewer (in this process) and take the scene camera's picture."""
        if self._picture_viewer is None:
            # Without render workers the cameras' viewer is in this process already: one pybullet world serves both.
            renderer = self._renderer() if not self.config.render_workers else None
            self._picture_viewer = renderer if isinstance(renderer, Viewer) else Viewer(self.robot, self.scene,
                                                                                       self.config)
        return self._picture_viewer.picture(self.snapshot(env_id), width, height)

    def _pictures(self, env_ids, view_matrices, views, width, height):
        return self._renderer().pictures(self.snapshots(env_ids), view_matrices, views, width, height)

    # ------------------------------------------------------------------ saving and restoring state
    def state_blocks(self):
        """q, v (generalised, floating base first), diverged, joint targets, grasp commands, held external
        forces (one row per model link), the static-friction springs of the robot's contacts (sphere, xyz),
        then the components' blocks. The robot's springs sit among the objects' blocks, before
        ``object_slip``, where the datasets recorded before the components existed have them."""
        blocks = {
            "q": self.state.q.copy(),
            "v": self.state.v.copy(),
            "diverged": self.state.diverged.astype(float),
            "joint_targets": self.joint_targets.copy(),
            "grasp_commands": self.grasp_commands.astype(float),
            "external_forces": self._external_force_rows(list(self.model.link_names)),
        }
        for component in self.components.values():
            for name, block in component.state_blocks().items():
                if name == "object_slip":
                    blocks["robot_slip"] = self._robot_slip.transpose(2, 1, 0).copy()
                blocks[name] = block
        return blocks

    def load_state_blocks(self, env_ids, blocks) -> None:
        q, v, diverged = self.state.q.copy(), self.state.v.copy(), self.state.diverged.copy()
        q[env_ids], v[env_ids], diverged[env_ids] = blocks["q"], blocks["v"], blocks["diverged"] > 0.5
        self.state = State(q, v, diverged)
        self.diverged = diverged.copy()
        self.joint_targets[env_ids] = blocks["joint_targets"]
        self.grasp_commands[env_ids] = blocks["grasp_commands"] > 0.5
        self._load_external_forces(env_ids, list(self.model.link_names), blocks["external_forces"])
        self._robot_slip[..., env_ids] = blocks["robot_slip"].transpose(2, 1, 0)
        for component in self.components.values():
            component.load_state_blocks(env_ids, blocks)

    def close(self) -> None:
        if self._picture_viewer is not None and self._picture_viewer is not self._viewer:
            self._picture_viewer.close()
        if self._viewer is not None:
            self._viewer.close()
        self._viewer = self._picture_viewer = None
        super().close()
