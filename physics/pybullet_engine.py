"""The pybullet reference engine: N independent DIRECT clients, one per environment.

One client per environment (rather than N robots in one world) keeps environments
isolated by construction: no cross-talk in the broadphase, partial resets touch one
client only, and a single env gives bit-identical results whether it runs alone or in a
batch. ``benchmarks/pybullet_layout.py`` measures the alternative; see README.

Actuation uses TORQUE_CONTROL with the explicit law of :func:`pd_torques`, evaluated
every physics step; pybullet's default velocity motors and link damping are switched
off so that the model matches the URDF and the numpy engine exactly. That is
``drive="explicit"``, and it is also what runs for the default ``"damping_implicit"``
(a torque set before the step cannot depend on the step's end velocity); ``"implicit"``
is refused: pybullet's own position motors are constraint-based, not this PD law.

Both engines place and report the base LINK frame (and the velocity of its origin in the saved state), as the
numpy engine's coordinates are. pybullet's base pose and velocity are those of the base's inertial frame (its
centre of mass and principal axes), which differ wherever the root link's ``<inertial><origin>`` is not the
identity; :meth:`PybulletEngine._reset_base_link` and :meth:`PybulletEngine._base_link_state` convert. Links
without ``<inertial>`` follow physics/model.py's one rule (:func:`urdf_inertials`), set after loading.
"""

from __future__ import annotations

import os
from xml.etree import ElementTree

import numpy as np
import pybullet
from pybullet_utils import bullet_client

from ..robots import RobotDescription
from .scene import Scene
from ..errors import InputError
from .drives import check_drive_stability
from .engine import Engine, EngineConfig, pd_torques
from .model import urdf_inertials
from .pybullet_cloth import PybulletCloth
from .pybullet_objects import PybulletObjects
from .rendering import take_pictures
from .rotations import quat_conjugate, quat_multiply, quat_to_matrix

# Bullet's btBroadphaseProxy collision filter groups.
DEFAULT_FILTER, STATIC_FILTER, ALL_FILTER = 1, 2, -1


class PybulletEngine(Engine):
    def __init__(self, robot: RobotDescription, scene: Scene, num_envs: int = 1, config: EngineConfig | None = None,
                 gui: bool = False, check_drives: bool = True):
        """``check_drives=False`` skips the drive checks, for a viewer that only shows poses (never steps)."""
        super().__init__(robot, scene, num_envs, config)
        if check_drives:
            if self.config.drive == "implicit":
                raise InputError("the pybullet engine runs the PD drives explicitly in torque mode (drive='explicit', "
                                 "also run for the default 'damping_implicit'); drive='implicit' needs backend='numpy'")
            # Gains the explicit law cannot integrate make pybullet chatter at the torque limits and fall
            # without ever tripping the divergence bounds (humanoid43 with ten times its gains: measured in
            # tests/test_implicit_drives.py), so they are refused here rather than run.
            check_drive_stability(robot, "explicit", self.config.physics_dt, scene.fixed_base, "pybullet")
        if gui and not os.environ.get("DISPLAY"):
            raise RuntimeError("render_mode='human' opens a pybullet GUI window and needs a display; "
                               "no DISPLAY is set. Use render_mode='rgb_array' on a headless machine.")
        self._inertials, self._missing_inertials = urdf_inertials(robot.urdf_path, scene.fixed_base)
        # Components are made before the worlds, which they may prepare (a cloth needs a deformable world).
        self.objects = PybulletObjects(self)
        self.components["objects"] = self.objects
        if scene.cloth is not None:
            self.components["cloth"] = PybulletCloth(self)
        self.clients: list[bullet_client.BulletClient] = []
        try:
            for env_id in range(self.num_envs):
                mode = pybullet.GUI if (gui and env_id == 0) else pybullet.DIRECT
                self.clients.append(bullet_client.BulletClient(connection_mode=mode))
            self._robot_ids = [self._build_world(client) for client in self.clients]
        except Exception:
            self.close()
            raise
        self._index_robot(self.clients[0], self._robot_ids[0])

    # ----------------------------------------------------------------- building
    def _build_world(self, client) -> int:
        for component in self.components.values():
            component.prepare_world(client)
        client.setGravity(0, 0, self.config.gravity)
        client.setPhysicsEngineParameter(fixedTimeStep=self.config.physics_dt, numSubSteps=1,
                                         deterministicOverlappingPairs=1)
        plane = client.createCollisionShape(pybullet.GEOM_PLANE)
        floor = client.createMultiBody(0, plane)
        client.changeDynamics(floor, -1, lateralFriction=self.scene.floor_friction)
        for box in self.scene.static_boxes:
            collision = client.createCollisionShape(pybullet.GEOM_BOX, halfExtents=box.half_extents)
            visual = client.createVisualShape(pybullet.GEOM_BOX, halfExtents=box.half_extents, rgbaColor=box.rgba)
            body = client.createMultiBody(0, collision, visual, box.position, box.quaternion)
            client.changeDynamics(body, -1, lateralFriction=box.friction)
        robot_id = client.loadURDF(
            str(self.robot.urdf_path), self.scene.robot_position, self.scene.robot_quaternion,
            useFixedBase=self.scene.fixed_base,
            flags=pybullet.URDF_USE_INERTIA_FROM_FILE,
        )
        num_joints = client.getNumJoints(robot_id)
        for link in range(-1, num_joints):
            client.changeDynamics(robot_id, link, linearDamping=0.0, angularDamping=0.0, lateralFriction=1.0)
        # loadURDF gives a link without <inertial> 1 kg and unit inertia; the shared rule's values instead.
        link_index = self._read_link_index(client, robot_id)
        for link in self._missing_inertials:
            mass, _, inertia = self._inertials[link]
            client.changeDynamics(robot_id, link_index[link], mass=mass, localInertiaDiagonal=np.diag(inertia).tolist())
        # Default velocity motors would act as hidden joint friction; torque control needs them off.
        client.setJointMotorControlArray(robot_id, list(range(num_joints)), pybullet.VELOCITY_CONTROL,
                                         forces=[0.0] * num_joints)
        return robot_id

    @staticmethod
    def _read_link_index(client, robot_id) -> dict[str, int]:
        """Link name -> pybullet link index (-1 for the base)."""
        link_index = {client.getBodyInfo(robot_id)[0].decode(): -1}
        for j in range(client.getNumJoints(robot_id)):
            link_index[client.getJointInfo(robot_id, j)[12].decode()] = j
        return link_index

    def _index_robot(self, client, robot_id) -> None:
        link_index = self._read_link_index(client, robot_id)
        joint_index, parents, movable = {}, {}, []
        for j in range(client.getNumJoints(robot_id)):
            info = client.getJointInfo(robot_id, j)
            joint_index[info[1].decode()] = j
            parents[j] = info[16]
            if info[2] != pybullet.JOINT_FIXED:
                movable.append(j)
        self._link_index = link_index
        self._joint_ids = [joint_index[name] for name in self.robot.joint_names]
        # calculateJacobian orders columns by movable joint index; map them to joint_names order.
        self._movable = movable
        self._jacobian_columns = np.array([movable.index(j) for j in self._joint_ids])
        self._hand_links = []
        for hand in self.robot.hands.values():
            palm = link_index[hand.palm_link]
            subtree = {palm}
            for j in sorted(parents):
                if parents[j] in subtree:
                    subtree.add(j)
            self._hand_links.append(sorted(subtree))
        self._palm_ids = [link_index[h.palm_link] for h in self.robot.hands.values()]
        # Masses of the base (-1) and links 0..J-1, for the centre of mass: the URDF's, as the numpy engine sums
        # them (pybullet reports a fixed base as massless, which would leave it out).
        self._link_masses = np.array([self._inertials[name][0] for name in self._links_in_order()])
        # The base's inertial frame in its link frame (URDF <inertial><origin>, rotated onto principal axes).
        base_dynamics = client.getDynamicsInfo(robot_id, -1)
        self._base_inertial_position = np.array(base_dynamics[3])
        self._base_inertial_orientation = np.array(base_dynamics[4])
        self._grasp_sites = np.array([h.grasp_site for h in self.robot.hands.values()])
        self._collision_filters = self._urdf_collision_filters()

    def _urdf_collision_filters(self) -> list[tuple[int, int, int]]:
        """(link index, group, mask) of every robot collider as loadURDF made it (pybullet has no getter).

        URDF2Bullet's rule: a fixed base is static (group StaticFilter, mask all but static), every other link
        dynamic (DefaultFilter, all), unless a ``<collision group= mask=>`` of the link says otherwise.
        """
        declared: dict[str, dict[str, int]] = {}
        for link in ElementTree.parse(self.robot.urdf_path).getroot().iter("link"):
            for collision in link.iter("collision"):
                for key in ("group", "mask"):
                    if collision.get(key) is not None:
                        declared.setdefault(link.get("name"), {})[key] = int(collision.get(key))
        filters = []
        for name, index in sorted(self._link_index.items(), key=lambda item: item[1]):
            static = index == -1 and self.scene.fixed_base
            group = declared.get(name, {}).get("group", STATIC_FILTER if static else DEFAULT_FILTER)
            mask = declared.get(name, {}).get("mask", ALL_FILTER ^ STATIC_FILTER if static else ALL_FILTER)
            filters.append((index, group, mask))
        return filters

    def link_index(self, link: str) -> int:
        if link not in self._link_index:
            raise KeyError(f"robot {self.robot.name!r} has no link {link!r}")
        return self._link_index[link]

    # ----------------------------------------------------------------- state
    def reset(self, env_idx, episodes) -> None:
        env_ids = self._env_ids(env_idx)
        episodes = list(episodes)
        joint_pos, joint_vel = self._joint_arrays(env_ids, episodes)
        for row, env_id in enumerate(env_ids):
            client, robot_id = self.clients[env_id], self._robot_ids[env_id]
            self._reset_base_link(env_id, self.scene.robot_position, self.scene.robot_quaternion, np.zeros(6))
            for joint_id, q, qd in zip(self._joint_ids, joint_pos[row], joint_vel[row]):
                client.resetJointState(robot_id, joint_id, q, qd)
            self._drop_contacts(env_id)
        self._clear_forces(env_ids)
        self.joint_targets[env_ids] = joint_pos
        self.grasp_commands[env_ids] = False
        self.diverged[env_ids] = False
        for component in self.components.values():
            component.reset(env_ids, episodes)

    def _reset_base_link(self, env_id: int, position, quaternion, velocity) -> None:
        """Put the base link frame at ``position`` / ``quaternion`` (xyzw), its origin moving at ``velocity``
        (linear, then angular; world frame), by placing pybullet's base, its inertial frame, where that puts it."""
        client, robot_id = self.clients[env_id], self._robot_ids[env_id]
        position, quaternion, velocity = (np.asarray(x, float) for x in (position, quaternion, velocity))
        offset = quat_to_matrix(quaternion) @ self._base_inertial_position
        inertial_quaternion = quat_multiply(quaternion, self._base_inertial_orientation)
        client.resetBasePositionAndOrientation(robot_id, (position + offset).tolist(), inertial_quaternion.tolist())
        linear = velocity[:3] + np.cross(velocity[3:], offset)
        client.resetBaseVelocity(robot_id, linear.tolist(), velocity[3:].tolist())

    def _base_link_state(self, env_id: int) -> tuple[np.ndarray, np.ndarray]:
        """The base link frame's pose (7,) and its origin's velocity (6,: linear, then angular), in the world frame."""
        client, robot_id = self.clients[env_id], self._robot_ids[env_id]
        position, orientation = (np.asarray(x) for x in client.getBasePositionAndOrientation(robot_id))
        linear, angular = (np.asarray(x) for x in client.getBaseVelocity(robot_id))
        quaternion = quat_multiply(orientation, quat_conjugate(self._base_inertial_orientation))
        offset = quat_to_matrix(quaternion) @ self._base_inertial_position
        return (np.concatenate([position - offset, quaternion]),
                np.concatenate([linear - np.cross(angular, offset), angular]))

    def _drop_contacts(self, env_id: int) -> None:
        """Forget the robot's contact manifolds in one environment, as a fresh world has none.

        Bullet keeps a manifold (cached contact points) per overlapping pair, and resetting the base and joints
        leaves it: after a step that stamped a foot into the floor, the points that survive Bullet's distance
        check shape the next episode's first contacts, so the same seed rolled out otherwise than in a fresh
        env (issue 12, finding 8). Setting a collider's filter makes pybullet re-create its broadphase proxy,
        which removes the proxy's pairs with their manifolds; about 0.1 ms for the robot, where reloading it
        (loadURDF) or rebuilding the world costs about 20-25 ms, paid at every picture by the numpy engine's
        viewer, which resets for each. The objects and the cloth are made again by
        their own resets, so after a reset no manifold is left and new ones form in a fresh world's order.
        restoreState of a state saved after loading is no alternative: it keeps the manifolds, only refilling
        their points, and matches compound shapes' manifolds by body (bullet3 issue 4387).
        """
        client, robot_id = self.clients[env_id], self._robot_ids[env_id]
        for link, group, mask in self._collision_filters:
            client.setCollisionFilterGroupMask(robot_id, link, group, mask)

    def joint_state(self):
        q = np.empty((self.num_envs, self.robot.num_joints))
        qd = np.empty_like(q)
        for env_id, (client, robot_id) in enumerate(zip(self.clients, self._robot_ids)):
            states = client.getJointStates(robot_id, self._joint_ids)
            q[env_id] = [s[0] for s in states]
            qd[env_id] = [s[1] for s in states]
        return q, qd

    def link_poses(self, links):
        ids = [self.link_index(link) for link in links]
        poses = np.empty((self.num_envs, len(ids), 7))
        for env_id, (client, robot_id) in enumerate(zip(self.clients, self._robot_ids)):
            for i, link in enumerate(ids):
                if link == -1:
                    poses[env_id, i] = self._base_link_state(env_id)[0]
                else:
                    state = client.getLinkState(robot_id, link, computeForwardKinematics=True)
                    poses[env_id, i, :3] = state[4]
                    poses[env_id, i, 3:] = state[5]
        return poses

    def point_jacobian(self, link, local_point):
        link_id = self.link_index(link)
        local_point = np.asarray(local_point, float)
        q, _ = self.joint_state()
        movable_q = np.zeros((self.num_envs, len(self._movable)))
        movable_q[:, self._jacobian_columns] = q
        zeros = [0.0] * len(self._movable)
        jac = np.zeros((self.num_envs, 6, self.robot.num_joints))
        for env_id, (client, robot_id) in enumerate(zip(self.clients, self._robot_ids)):
            # calculateJacobian's point is in the URDF link frame (measured against finite
            # differences), although its documentation says the centre-of-mass frame.
            linear, angular = client.calculateJacobian(robot_id, link_id, local_point.tolist(),
                                                       movable_q[env_id].tolist(), zeros, zeros)
            offset = 0 if self.scene.fixed_base else 6
            jac[env_id, :3] = np.asarray(linear)[:, offset:][:, self._jacobian_columns]
            jac[env_id, 3:] = np.asarray(angular)[:, offset:][:, self._jacobian_columns]
        return jac

    def _apply_external_forces(self, env_id: int) -> None:
        # pybullet clears external forces after every stepSimulation, so they are set each step.
        client, robot_id = self.clients[env_id], self._robot_ids[env_id]
        for link, force in self.external_forces.items():
            if not force[env_id].any():
                continue
            index = self.link_index(link)
            if index == -1:
                position = self._base_link_state(env_id)[0][:3]
            else:
                position = client.getLinkState(robot_id, index, computeForwardKinematics=True)[4]
            client.applyExternalForce(robot_id, index, force[env_id].tolist(), list(position), pybullet.WORLD_FRAME)

    def center_of_mass(self):
        position = np.zeros((self.num_envs, 3))
        velocity = np.zeros((self.num_envs, 3))
        links = list(range(len(self._link_masses) - 1))
        for env_id, (client, robot_id) in enumerate(zip(self.clients, self._robot_ids)):
            # pybullet's base pose and velocity, like getLinkStates' first entry and velocity, are those of the
            # centre of mass: what this sum needs.
            base_position, _ = client.getBasePositionAndOrientation(robot_id)
            base_velocity, _ = client.getBaseVelocity(robot_id)
            states = client.getLinkStates(robot_id, links, computeLinkVelocity=1, computeForwardKinematics=1)
            positions = np.array([base_position] + [state[0] for state in states])
            velocities = np.array([base_velocity] + [state[6] for state in states])
            position[env_id] = self._link_masses @ positions / self._link_masses.sum()
            velocity[env_id] = self._link_masses @ velocities / self._link_masses.sum()
        return position, velocity

    def base_velocity(self):
        velocity = np.zeros((self.num_envs, 6))
        for env_id, (client, robot_id) in enumerate(zip(self.clients, self._robot_ids)):
            linear, angular = client.getBaseVelocity(robot_id)  # the base's centre of mass: what base_velocity means
            velocity[env_id] = (*linear, *angular)
        return velocity

    # ----------------------------------------------------------------- stepping
    def step(self) -> None:
        start = self._watched_positions()
        saturated = np.zeros_like(self.saturated_fraction)
        for _ in range(self.config.substeps):
            q, qd = self.joint_state()
            torques = pd_torques(self.robot, q, qd, self.joint_targets, saturated)
            for env_id, (client, robot_id) in enumerate(zip(self.clients, self._robot_ids)):
                if self.diverged[env_id]:
                    continue
                client.setJointMotorControlArray(robot_id, self._joint_ids, pybullet.TORQUE_CONTROL,
                                                 forces=torques[env_id].tolist())
                self._apply_external_forces(env_id)
                client.stepSimulation()
        self.saturated_fraction = saturated / self.config.substeps
        for component in self.components.values():  # the objects' grasps, then the cloth; each flags its blow-ups
            component.end_step()
        self._check_divergence(start)

    def _check_divergence(self, start: dict[str, np.ndarray]) -> None:
        """Flag the environments that blew up; they are not stepped again until a reset or restore."""
        q, qd = self.joint_state()
        speeds = np.abs(qd).max(axis=1)
        bad = ~np.isfinite(q).all(axis=1) | ~np.isfinite(speeds) | (speeds > self.config.divergence_speed)
        self.diverged |= bad | self._left_bounds(start)

    # ----------------------------------------------------------------- images
    def render(self, env_id: int = 0, width: int | None = None, height: int | None = None) -> np.ndarray:
        camera = self.scene.camera
        width, height = width or camera.width, height or camera.height
        client = self.clients[env_id]
        view = client.computeViewMatrixFromYawPitchRoll(camera.target, camera.distance, camera.yaw, camera.pitch, 0, 2)
        projection = client.computeProjectionMatrixFOV(camera.fov, width / height, 0.05, 10.0)
        _, _, rgba, _, _ = client.getCameraImage(width, height, view, projection, renderer=pybullet.ER_TINY_RENDERER)
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()

    def _pictures(self, env_ids, view_matrices, views, width, height):
        rgb = np.empty((len(env_ids), len(views), height, width, 3), np.uint8)
        depth = np.empty((len(env_ids), len(views), height, width, 1), np.float32)
        for row, env_id in enumerate(env_ids):
            rgb[row], depth[row] = take_pictures(self.clients[env_id], view_matrices[row], views, width, height)
        return rgb, depth

    def show(self, env_id: int, snapshot) -> None:
        """Put environment ``env_id`` into the state of a picture's Snapshot (physics/rendering.py), at rest: a
        viewer's use, which never steps it on."""
        client, robot_id = self.clients[env_id], self._robot_ids[env_id]
        if snapshot.cloth is not None and "cloth" in self.components:
            self.components["cloth"].show(env_id, snapshot.cloth)
        if snapshot.base_pose is not None:
            self._reset_base_link(env_id, snapshot.base_pose[:3], snapshot.base_pose[3:], np.zeros(6))
        for joint_id, q in zip(self._joint_ids, snapshot.joint_pos):
            client.resetJointState(robot_id, joint_id, float(q), 0.0)
        self.objects.show(env_id, tuple(snapshot.objects), np.asarray(snapshot.object_poses, float))

    # ----------------------------------------------------------------- saving and restoring state
    def _links_in_order(self) -> list[str]:
        return sorted(self._link_index, key=self._link_index.get)

    def state_blocks(self):
        """Base link pose and its origin's velocity, joint positions and velocities, diverged, joint targets,
        grasp commands, held external forces (one row per link, base first), then the components' blocks.

        Bullet's contact manifolds (warm-start impulses) cannot be read or written through the API, so
        a restore mid-contact resumes from cold contacts; a restore right after a reset is exact."""
        n = self.num_envs
        base_pose, base_velocity = np.zeros((n, 7)), np.zeros((n, 6))
        for env_id in range(n):
            base_pose[env_id], base_velocity[env_id] = self._base_link_state(env_id)
        joint_pos, joint_vel = self.joint_state()
        return {
            "base_pose": base_pose,
            "base_velocity": base_velocity,
            "joint_pos": joint_pos,
            "joint_vel": joint_vel,
            "diverged": self.diverged.astype(float),
            "joint_targets": self.joint_targets.copy(),
            "grasp_commands": self.grasp_commands.astype(float),
            "external_forces": self._external_force_rows(self._links_in_order()),
            **{name: block for component in self.components.values() for name, block in component.state_blocks().items()},
        }

    def load_state_blocks(self, env_ids, blocks) -> None:
        for row, env_id in enumerate(env_ids):
            client, robot_id = self.clients[env_id], self._robot_ids[env_id]
            pose = blocks["base_pose"][row]
            self._reset_base_link(env_id, pose[:3], pose[3:], blocks["base_velocity"][row])
            for joint_id, q, qd in zip(self._joint_ids, blocks["joint_pos"][row], blocks["joint_vel"][row]):
                client.resetJointState(robot_id, joint_id, float(q), float(qd))
        self.diverged[env_ids] = blocks["diverged"] > 0.5
        self.joint_targets[env_ids] = blocks["joint_targets"]
        self.grasp_commands[env_ids] = blocks["grasp_commands"] > 0.5
        self._load_external_forces(env_ids, self._links_in_order(), blocks["external_forces"])
        for component in self.components.values():
            component.load_state_blocks(env_ids, blocks)

    def close(self) -> None:
        for client in getattr(self, "clients", []):
            try:
                client.disconnect()
            except pybullet.error:
                pass
        self.clients = []
        super().close()
