"""The numpy engine's free rigid objects: a component of 6-DoF bodies covered by spheres.

Each object is integrated with semi-implicit Euler beside the robot, inside every physics
substep: contacts with the static world (physics/contacts.py, through the object's cover
spheres, explicit) and with the hands' spheres, whose reactions load the arm.

Hand contacts (``EngineConfig.hand_contact``):

- "primitive": every palm and finger sphere against the object's exact shape, a rounded box
  (physics/contacts.py ``rounded_box_distance``: sphere, capsule or box), with Coulomb friction
  and static friction (a tangential spring per hand sphere and object, kept in the state while
  they touch, as the static contacts keep theirs). The contact's stiffness is k = m w^2 with m the
  object's mass shared among its hand contacts (fifths at least) and w = HAND_CONTACT_FREQUENCY,
  implicit on both sides: a finger is
  far lighter than that, so on the robot's side the contact joins the robot's implicit contact
  treatment (physics/numpy_engine.py: a point mass while it sticks, a rank-one term while it
  slides, with the object's surface velocity as the counterpart's), and on the object's side
  :meth:`NumpyObjects._implicit_step` solves each touched object's 6 x 6 system with it. Objects
  are squeezed, lifted and carried by these forces alone when ``grasp="physical"``.
- "cover": hand spheres against the object's cover spheres, friction without stiction and the
  stiffness of the lighter side, explicit: what datasets recorded before "primitive" ran.

The assisted grasp (physics/grasp.py) welds an object to the palm kinematically: while held,
the object follows the palm and its weight is not fed back into the arm.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import grasp as grasp_rule
from .components import Objects
from .contacts import penalty_forces, rounded_box_distance, sphere_pair_contacts, static_contacts, sticky_forces
from .model import _cross, _cross_last, _dot
from .rotations import axis_angle_to_quat, quat_conjugate, quat_multiply, quat_to_matrix
from .scene import COVER_SPHERES, ObjectParams

#: Spheres in each free object's cover.
OBJECT_SPHERES = COVER_SPHERES
#: Natural frequency (rad/s) of a primitive hand contact on its share of its object's mass: stiffer than the
#: static contacts' (physics/numpy_engine.py contact_frequency, 150), which their explicit step bounds, since
#: both sides of a hand contact are implicit. A 0.1 kg roll's contact is 3,200 N/m: a finger's 5 N sinks 1.6 mm.
HAND_CONTACT_FREQUENCY = 400.0


class HandContacts(NamedTuple):
    """One substep's bearing primitive hand contacts, C of them, ordered env by env as :func:`np.nonzero` over
    (hand sphere, env, object) gives them (per env the same alone or in a batch). Both sides' implicit treatment
    reads them: the robot's (:meth:`NumpyObjects.implicit_contacts`) and the object's (``_implicit_step``).

    sphere, env, obj: (C,) the robot sphere, its environment and the object it touches. arm: (C, 3) the contact
    point from the object's centre. normal: (3, C) from the object towards the sphere. relative: (3, C) the
    sphere's velocity against the object's surface there. stiffness, damping: (C,). sliding: (C,) bool.
    """

    sphere: np.ndarray
    env: np.ndarray
    obj: np.ndarray
    arm: np.ndarray
    normal: np.ndarray
    relative: np.ndarray
    stiffness: np.ndarray
    damping: np.ndarray
    sliding: np.ndarray


class NumpyObjects(Objects):
    """The scene's free objects (none is fine: the state keeps its blocks, empty) in every environment.

    pose (N, K, 7), vel (N, K, 6: linear, angular); held (N, H): the object each hand holds or -1;
    contact_forces (N, H, K): the last substep's hand-object normal forces. Reads return copies.
    """

    def __init__(self, engine):
        self.engine = engine
        n, k, h = engine.num_envs, engine.scene.num_objects, len(engine.hand_names)
        self.num_objects = k
        self.pose = np.zeros((n, k, 7))
        self.pose[..., 6] = 1.0
        self.vel = np.zeros((n, k, 6))
        self._centers = np.zeros((n, k, OBJECT_SPHERES, 3))
        self._radius = np.zeros((n, k, OBJECT_SPHERES))
        self._mass = np.ones((n, k))
        self._inertia = np.ones((n, k, 3))
        self._friction = np.ones((n, k))
        #: Each environment's ObjectParams, as its episode set them.
        self.params: list[list[ObjectParams]] = [[] for _ in range(n)]
        self.held = -np.ones((n, h), dtype=np.int64)
        self._slip = np.zeros((3, k * OBJECT_SPHERES, n))  # tangential springs of the static contacts
        self._grasp_offset = np.zeros((n, h, 7))  # object pose in the palm frame
        self.contact_forces = np.zeros((n, h, k))
        # Broad phase for hand-object contacts: how far a hand sphere's surface can be from the
        # centroid of the hand's sphere centres, measured with the fingers open and closed, plus a
        # margin for posture in between.
        self._hand_reach = engine._hand_spread() + 0.03
        self._pending = None  # this substep's contact forces, until the objects are integrated
        self._object_index = np.arange(k)
        self._owner = np.repeat(self._object_index, OBJECT_SPHERES)  # each cover sphere's object
        self._sphere_params = None  # per-sphere mass, friction and radius of the current episodes; see _spheres
        self._step_start = (self.pose.copy(), self.vel.copy())  # poses and velocities at begin_step
        self._primitive = engine.config.hand_contact == "primitive"
        # Each object as a rounded box (its exact shape) for the primitive hand contacts.
        self._core = np.zeros((n, k, 3))
        self._rounding = np.zeros((n, k))
        #: Every hand sphere (robot sphere indices, hand by hand) and the hand it belongs to.
        self._hand_sphere_ids = np.concatenate(engine._hand_spheres) if h else np.zeros(0, np.int64)
        self._hand_of_sphere = np.concatenate([np.full(len(hand), i) for i, hand in enumerate(engine._hand_spheres)]
                                              ) if h else np.zeros(0, np.int64)
        #: Tangential springs of the primitive hand contacts, (3, hand spheres, K, N).
        self._hand_slip = np.zeros((3, len(self._hand_sphere_ids), k, n))
        #: This substep's primitive hand contacts (HandContacts), or None.
        self._hand_contacts = None
        #: How many distinct links of each hand touch each object (N, H, K), in the last substep.
        self._touching_links = np.zeros((n, h, k), dtype=np.int64)

    # ------------------------------------------------------------------ reads
    def poses(self):
        return self.pose.copy()

    def velocities(self):
        return self.vel.copy()

    def grasped(self):
        return self.held.copy()

    def hand_forces(self):
        return self.contact_forces.copy()

    # ------------------------------------------------------------------ hooks
    def reset(self, env_ids, episodes) -> None:
        self._sphere_params = None
        if self.num_objects:
            for row, env_id in enumerate(env_ids):
                self.params[env_id] = list(episodes[row].objects)
                for k, params in enumerate(episodes[row].objects):
                    geometry = params.geometry
                    centers, radii = geometry.cover()
                    self._centers[env_id, k], self._radius[env_id, k] = centers, radii
                    self._mass[env_id, k] = params.mass
                    self._inertia[env_id, k] = geometry.inertia(params.mass)
                    self._friction[env_id, k] = params.friction
                    self._core[env_id, k], self._rounding[env_id, k] = geometry.rounded_box()
            self.pose[env_ids] = [np.asarray(episode.object_poses, float).reshape(self.num_objects, 7)
                                  for episode in episodes]
            self.vel[env_ids] = 0.0
            self._slip[..., env_ids] = 0.0
            self._hand_slip[..., env_ids] = 0.0
        self.held[env_ids] = -1
        # Nothing of the slot's previous episode survives, so a saved state depends only on this one.
        self._grasp_offset[env_ids] = 0.0
        self.contact_forces[env_ids] = 0.0

    def substep_forces(self, robot_world, robot_velocity, robot_force, dt: float) -> None:
        if self.num_objects:
            self._pending = self._contacts(robot_world, robot_velocity, robot_force, dt)

    def substep_integrate(self, dt: float) -> None:
        if self.num_objects:
            self._integrate(*self._pending, dt)
            self._pending = None

    def begin_step(self) -> None:
        self._step_start = (self.pose.copy(), self.vel.copy())  # the last good state, should this step blow up

    def end_step(self) -> None:
        if self.num_objects:
            self._follow_palms(self.engine.config.control_dt)
        self._update_grasps()

    def keep_last_good(self, env_mask) -> None:
        pose, vel = self._step_start
        self.pose[env_mask], self.vel[env_mask] = pose[env_mask], vel[env_mask]

    # ------------------------------------------------------------------ contacts and integration
    def _spheres(self):
        """Per-sphere mass (K*Ks, N) (an object's mass shared among its spheres), friction and radius (K*Ks, N):
        fixed for an episode, so computed once after each reset."""
        if self._sphere_params is None:
            n = self.engine.num_envs
            self._sphere_params = (np.repeat(self._mass, OBJECT_SPHERES, axis=1).T / OBJECT_SPHERES,
                                   np.repeat(self._friction, OBJECT_SPHERES, axis=1).T,
                                   np.ascontiguousarray(self._radius.reshape(n, -1).T))
        return self._sphere_params

    def _spheres_world(self):
        """World positions (3, K*Ks, N) and velocities of the object spheres, their radii (K*Ks, N), their offsets
        from the object centres (N, K, Ks, 3) and the objects' rotations (N, K, 3, 3)."""
        n, k = self.engine.num_envs, self.num_objects
        rotation = quat_to_matrix(self.pose[..., 3:])  # (N, K, 3, 3)
        offset = (rotation[:, :, None] * self._centers[..., None, :]).sum(axis=-1)
        centers = self.pose[:, :, None, :3] + offset
        velocity = self.vel[:, :, None, :3] + _cross_last(self.vel[:, :, None, 3:], offset)
        to_last = lambda a: np.ascontiguousarray(a.reshape(n, k * OBJECT_SPHERES, 3).transpose(2, 1, 0))
        return to_last(centers), to_last(velocity), self._spheres()[2], offset, rotation

    def _contacts(self, robot_world, robot_velocity, robot_force, dt: float):
        """Static and hand contacts of the objects; adds the reaction to robot_force in place."""
        engine = self.engine
        frequency = engine.contact_frequency
        centers, velocity, radius, offset, rotation = self._spheres_world()
        spin = np.ascontiguousarray(np.repeat(self.vel[..., 3:], OBJECT_SPHERES, axis=1).transpose(2, 1, 0))
        sphere_mass, sphere_friction, _ = self._spheres()  # (K*Ks, N)
        depth, normal, friction = static_contacts(engine._static, centers, radius)
        # Friction acts at the contact point, whose velocity lets a rolling body roll.
        contact_velocity = velocity + _cross(spin, -normal * radius)
        # Coulomb coefficients combine by product, as in Bullet (robot links have 1.0).
        force, _ = sticky_forces(depth, normal, contact_velocity, friction * sphere_friction, sphere_mass,
                                 frequency, self._slip, dt)
        self.contact_forces[:] = 0.0
        if self._primitive:
            return force, offset, rotation, self._primitive_hand_contacts(rotation, robot_world, robot_velocity,
                                                                          robot_force, dt)
        owner = self._owner
        for h, hand in enumerate(engine._hand_spheres):
            # Broad phase: only environments where some object sphere is within reach of the hand.
            hand_center = robot_world[:, hand].mean(axis=1)  # (3, N)
            gap = centers - hand_center[:, None]
            envs = np.flatnonzero((_dot(gap, gap) < (self._hand_reach[h] + radius) ** 2).any(axis=0))
            if not len(envs):
                continue
            pair_depth, pair_normal = sphere_pair_contacts(centers[:, :, envs], radius[:, envs],
                                                           robot_world[:, hand][:, :, envs], engine.spheres.radius[hand])
            # A welded object does not collide with the hand that holds it.
            held = self.held[envs, h][None, :] == owner[:, None]  # (K*Ks, M)
            touching = (pair_depth > 0) & ~held[:, None, :]
            # Narrow phase on the touching pairs only: a handful per env out of K*Ks x hand spheres.
            a, b, m = np.nonzero(touching)
            if not len(a):
                continue
            env = envs[m]
            sphere = hand[b]
            normal = pair_normal[:, a, b, m]
            relative_velocity = velocity[:, a, env] - robot_velocity[:, sphere, env]
            mass = np.minimum(sphere_mass[a, env], engine._sphere_mass[sphere])
            pair_force = penalty_forces(pair_depth[a, b, m], normal, relative_velocity, sphere_friction[a, env], mass,
                                        frequency)
            # np.add.at sums each env's contacts in the same order whatever the batch: env i of a
            # batch stays bit-identical to a single env.
            np.add.at(force, (slice(None), a, env), pair_force)
            np.add.at(robot_force, (slice(None), sphere, env), -pair_force)
            np.add.at(self.contact_forces, (env, h, owner[a]), np.abs(_dot(pair_force, normal)))
        return force, offset, rotation, None

    def _primitive_hand_contacts(self, rotation, robot_world, robot_velocity, robot_force, dt: float):
        """The "primitive" hand contacts (module docstring), the objects' rotations (N, K, 3, 3) given: adds the
        reactions to robot_force and keeps the contacts (HandContacts) for both sides' implicit treatment. Returns
        the force and torque on each object (N, K, 3) and the contacts (None when there are none)."""
        engine, n, k = self.engine, self.engine.num_envs, self.num_objects
        ids = self._hand_sphere_ids
        centers = np.moveaxis(robot_world[:, ids], 0, -1)  # (S, N, 3): S hand spheres
        # Broad phase: hand sphere and object pairs whose bounding spheres overlap.
        reach = np.sqrt((self._core ** 2).sum(-1)) + self._rounding  # (N, K)
        gap = centers[:, :, None, :] - self.pose[None, :, :, :3]  # (S, N, K, 3)
        radius = engine.spheres.radius[ids][:, None, None]
        near = (gap * gap).sum(-1) < (reach[None] + radius) ** 2
        s, env, obj = np.nonzero(near)
        new_slip = np.zeros_like(self._hand_slip)
        object_force = np.zeros((n, k, 3))
        object_torque = np.zeros((n, k, 3))
        self._hand_contacts = None
        self._touching_links[:] = 0
        if len(s):
            frame = rotation[env, obj]  # (C, 3, 3)
            local = np.einsum("cji,cj->ci", frame, gap[s, env, obj])
            distance, normal_local, surface_local = rounded_box_distance(local, self._core[env, obj],
                                                                         self._rounding[env, obj])
            depth = engine.spheres.radius[ids][s] - distance
            held = self.welded()[env, self._hand_of_sphere[s]] == obj  # a welded object does not collide with its hand
            touching = (depth > 0) & ~held
            s, env, obj = s[touching], env[touching], obj[touching]
            if len(s):
                frame, depth = frame[touching], depth[touching]
                normal = np.einsum("cij,cj->ic", frame, normal_local[touching])  # (3, C): object -> hand sphere
                arm = np.einsum("cij,cj->ci", frame, surface_local[touching])  # contact point from the object centre
                point_velocity = self.vel[env, obj, :3] + _cross_last(self.vel[env, obj, 3:], arm)
                sphere = ids[s]
                relative = robot_velocity[:, sphere, env] - point_velocity.T  # the hand sphere against the object
                # Each contact as stiff as its share of the object at HAND_CONTACT_FREQUENCY, implicit on both
                # sides, so that a squeeze of newtons sinks millimetres. The object's mass is shared among its hand
                # contacts, at least as finely as among its cover spheres: the two sides are solved one after the
                # other, each taking the other's velocity as given, which holds while the contacts' summed weight
                # stays below the object's own (a mesh-covered hand can press with twenty spheres at once).
                contacts = np.bincount(env * k + obj, minlength=n * k)[env * k + obj]
                mass = self._mass[env, obj] / np.maximum(contacts, OBJECT_SPHERES)
                friction = self._friction[env, obj]  # robot links have 1.0; coefficients combine by product
                slip = self._hand_slip[:, s, obj, env]
                hand_force, sliding = sticky_forces(depth, normal, relative, friction, mass, HAND_CONTACT_FREQUENCY,
                                                    slip, dt)
                new_slip[:, s, obj, env] = slip
                # hand_force acts on the hand sphere; its reaction on the object, at the contact point.
                np.add.at(robot_force, (slice(None), sphere, env), hand_force)
                np.add.at(object_force, (env, obj), -hand_force.T)
                np.add.at(object_torque, (env, obj), _cross_last(arm, -hand_force.T))
                np.add.at(self.contact_forces, (env, self._hand_of_sphere[s], obj), np.abs(_dot(hand_force, normal)))
                bearing = _dot(hand_force, normal) > 0
                links, hands = engine.model.num_links, len(engine.hand_names)
                pair = (env * hands + self._hand_of_sphere[s]) * k + obj
                touched = np.unique(pair * links + engine.spheres.body[sphere]) // links
                self._touching_links += np.bincount(touched, minlength=n * hands * k).reshape(n, hands, k)
                self._hand_contacts = HandContacts(
                    sphere[bearing], env[bearing], obj[bearing], arm[bearing], normal[:, bearing], relative[:, bearing],
                    (mass * HAND_CONTACT_FREQUENCY ** 2)[bearing], (2.0 * mass * HAND_CONTACT_FREQUENCY)[bearing],
                    sliding[bearing])
        self._hand_slip = new_slip
        return object_force, object_torque, self._hand_contacts

    def implicit_contacts(self):
        """This substep's bearing primitive hand contacts (HandContacts), or None."""
        return self._hand_contacts

    def _integrate(self, sphere_force, offset, rotation, point_forces, dt: float) -> None:
        """``rotation``: the objects' rotations, as :meth:`_contacts` found them (the poses have not moved since);
        ``point_forces``: None, or the force and torque (N, K, 3) of the primitive hand contacts and the contacts
        themselves (HandContacts or None; :meth:`_implicit_step`)."""
        engine, k = self.engine, self.num_objects
        n = engine.num_envs
        held = (self.welded()[:, :, None] == self._object_index).any(axis=1)  # (N, K): moved by the palm instead
        saved_pose, saved_vel = self.pose[held], self.vel[held]
        force = sphere_force.T.reshape(n, k, OBJECT_SPHERES, 3)
        total = force.sum(axis=2) + self._mass[..., None] * np.array([0.0, 0.0, engine.config.gravity])
        torque = _cross_last(offset, force).sum(axis=2)
        if point_forces is not None:
            total = total + point_forces[0]
            torque = torque + point_forces[1]
        inertia = ((rotation * self._inertia[..., None, :])[..., :, None, :] * rotation[..., None, :, :]).sum(-1)
        omega = self.vel[..., 3:]
        angular_rhs = torque - _cross_last(omega, (inertia * omega[..., None, :]).sum(-1))
        change = np.concatenate([dt * total / self._mass[..., None],
                                 dt * np.linalg.solve(inertia, angular_rhs[..., None])[..., 0]], axis=-1)
        if point_forces is not None and point_forces[2] is not None:
            self._implicit_step(change, inertia, total, angular_rhs, point_forces[2], dt)
        self.vel += change
        self.pose[..., :3] += dt * self.vel[..., :3]
        turn = axis_angle_to_quat(dt * self.vel[..., 3:])
        quat = quat_multiply(turn, self.pose[..., 3:])
        self.pose[..., 3:] = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
        bad = ~np.isfinite(self.pose).all(axis=(1, 2)) | (np.abs(self.vel).max(axis=(1, 2))
                                                          > engine.config.divergence_speed)
        self.pose[held], self.vel[held] = saved_pose, saved_vel
        if bad.any():
            engine.state.diverged |= bad
            self.vel[bad] = 0.0
            self.pose[bad] = np.nan_to_num(self.pose[bad])

    def _implicit_step(self, change, inertia, force, torque, contacts: HandContacts, dt: float) -> None:
        """Replace the explicit velocity change (N, K, 6) of every object a hand touches by the implicit one, as the
        robot's side of the contacts is integrated: (M + sum w G^T A G) dv = dt (f - dt sum k G^T A v_c), where a
        contact at arm r from the object's centre has G = [I, -[r]x] (its point's velocity from the object's
        twist), A = I while it sticks and n n^T while it slides, w = dt c + dt^2 k and v_c its velocity relative to
        the hand."""
        env, obj, arm, stiffness, sliding = contacts.env, contacts.obj, contacts.arm, contacts.stiffness, contacts.sliding
        if not len(env):
            return
        normal, velocity = contacts.normal.T, -contacts.relative.T  # (C, 3); the object's point against the hand
        # One system per touched object: ``slot`` numbers the (env, object) pairs in order of first appearance.
        pairs, slot = np.unique(env * self.num_objects + obj, return_inverse=True)
        pair_env, pair_obj = pairs // self.num_objects, pairs % self.num_objects
        matrix = np.zeros((len(pairs), 6, 6))
        matrix[:, [0, 1, 2], [0, 1, 2]] = self._mass[pair_env, pair_obj][:, None]
        matrix[:, 3:, 3:] = inertia[pair_env, pair_obj]
        rhs = dt * np.concatenate([force[pair_env, pair_obj], torque[pair_env, pair_obj]], axis=-1)
        g = np.zeros((len(env), 3, 6))
        g[:, [0, 1, 2], [0, 1, 2]] = 1.0
        x, y, z = arm.T
        # -[r]x: the point's velocity gains w x r = -r x w.
        g[:, 0, 4], g[:, 0, 5], g[:, 1, 3], g[:, 1, 5], g[:, 2, 3], g[:, 2, 4] = z, -y, -z, x, y, -x
        a = np.where(sliding[:, None, None], normal[:, :, None] * normal[:, None, :], np.eye(3))
        ag = a @ g
        weight = dt * contacts.damping + dt * dt * stiffness
        np.add.at(matrix, slot, weight[:, None, None] * (g.transpose(0, 2, 1) @ ag))
        np.add.at(rhs, slot, -(dt * dt * stiffness)[:, None] * np.einsum("cji,cj->ci", ag, velocity))
        change[pair_env, pair_obj] = np.linalg.solve(matrix, rhs[..., None])[..., 0]

    # ------------------------------------------------------------------ assisted grasp
    def _palm_poses(self) -> np.ndarray:
        engine = self.engine
        return engine.link_poses([engine.robot.hands[h].palm_link for h in engine.hand_names])

    def _follow_palms(self, elapsed: float) -> None:
        """Held objects take the palm pose composed with their grasp offset, and the palm's velocity."""
        held = self.welded() >= 0
        if not held.any():
            return
        palms = self._palm_poses()
        env, hand = np.nonzero(held)
        obj = self.held[env, hand]
        offset = self._grasp_offset[env, hand]
        rotation = quat_to_matrix(palms[env, hand, 3:])
        previous = self.pose[env, obj, :3].copy()
        self.pose[env, obj, :3] = palms[env, hand, :3] + (rotation * offset[:, None, :3]).sum(-1)
        self.pose[env, obj, 3:] = quat_multiply(palms[env, hand, 3:], offset[:, 3:])
        self.vel[env, obj, :3] = (self.pose[env, obj, :3] - previous) / elapsed
        self.vel[env, obj, 3:] = 0.0

    def _update_grasps(self) -> None:
        engine = self.engine
        if engine.config.grasp == "physical" and self._primitive and self.num_objects:
            self.held[:] = grasp_rule.contact_holds(self._touching_links, self.contact_forces,
                                                    self._mass * abs(engine.config.gravity))
            return
        if engine.config.grasp != "assisted" or not self.num_objects:
            return
        self.held[~engine.grasp_commands] = -1
        candidates = engine.grasp_commands & (self.held < 0)
        if not candidates.any():
            return
        kin = engine._current_kinematics()
        world, _, _ = engine._robot_spheres_world(kin, np.zeros((engine.model.nv, engine.num_envs)))
        centers, _, radius, _, _ = self._spheres_world()
        palms = self._palm_poses()
        rotation = quat_to_matrix(palms[..., 3:])
        sites = palms[..., :3] + np.einsum("nhij,hj->nhi", rotation, engine._grasp_site)
        k = self.num_objects
        for h, hand in enumerate(engine._hand_spheres):
            gap, _ = sphere_pair_contacts(centers, radius, world[:, hand], engine.spheres.radius[hand])
            # A mesh-covered hand reaches up to its cover's inset beyond its spheres (0 for primitives).
            gap = gap + engine.spheres.inset[hand][None, :, None]
            touching = (gap.max(axis=1) >= -grasp_rule.TOUCH_MARGIN).reshape(k, OBJECT_SPHERES, -1).any(axis=1).T
            distance = np.linalg.norm(self.pose[..., :3] - sites[:, h, None], axis=-1)  # (N, K)
            held_elsewhere = (self.held[:, :, None] == np.arange(k)).any(axis=1)
            attach = grasp_rule.should_attach(candidates[:, h, None], held_elsewhere, distance, touching)
            for env in np.flatnonzero(attach.any(axis=1)):
                obj = int(np.flatnonzero(attach[env])[0])
                self.held[env, h] = obj
                inverse = quat_conjugate(palms[env, h, 3:])
                self._grasp_offset[env, h, :3] = quat_to_matrix(inverse) @ (self.pose[env, obj, :3] - palms[env, h, :3])
                self._grasp_offset[env, h, 3:] = quat_multiply(inverse, self.pose[env, obj, 3:])
                candidates[env, h] = False

    # ------------------------------------------------------------------ state
    def state_blocks(self):
        """Object poses and velocities, which object each hand holds and its pose in the palm frame, the
        static-friction springs of the object contacts (sphere, xyz) and the last hand-object contact forces
        (observations read them)."""
        return {
            "object_pose": self.pose.copy(),
            "object_vel": self.vel.copy(),
            "grasped": self.held.astype(float),
            "grasp_offset": self._grasp_offset.copy(),
            "object_slip": self._slip.transpose(2, 1, 0).copy(),
            "hand_forces": self.contact_forces.copy(),
            # The primitive hand contacts' springs (datasets of the "cover" contacts have no such block).
            **({"hand_slip": self._hand_slip.transpose(3, 1, 2, 0).copy()} if self._primitive else {}),
        }

    def load_state_blocks(self, env_ids, blocks) -> None:
        self.pose[env_ids] = blocks["object_pose"]
        self.vel[env_ids] = blocks["object_vel"]
        self.held[env_ids] = np.rint(blocks["grasped"]).astype(np.int64)
        self._grasp_offset[env_ids] = blocks["grasp_offset"]
        self._slip[..., env_ids] = blocks["object_slip"].transpose(2, 1, 0)
        self.contact_forces[env_ids] = blocks["hand_forces"]
        if self._primitive:
            self._hand_slip[..., env_ids] = blocks["hand_slip"].transpose(3, 1, 2, 0)
