"""The pybullet engine's free rigid objects: a component of one Bullet body per object and environment,
rebuilt at every reset from the episode's ObjectParams, and the assisted grasp's welds."""

from __future__ import annotations

import numpy as np
import pybullet

from . import grasp as grasp_rule
from .components import Objects
from .scene import ObjectParams


class PybulletObjects(Objects):
    """The scene's free objects (possibly none) in each environment's client."""

    def __init__(self, engine):
        self.engine = engine
        n, hands = engine.num_envs, len(engine.hand_names)
        self.num_objects = engine.scene.num_objects
        self._ids = [[-1] * self.num_objects for _ in range(n)]
        self._shown: list[list] = [[None] * self.num_objects for _ in range(n)]  # the params each body was made from
        self._welds = -np.ones((n, hands), dtype=np.int64)  # constraint ids
        self.held = -np.ones((n, hands), dtype=np.int64)
        self.masses = np.zeros((n, self.num_objects))  # (kg), set at each reset

    # ------------------------------------------------------------------ reads
    def _read(self, width: int, read) -> np.ndarray:
        """(num_envs, num_objects, width) from ``read(client, body)``, which returns two triples."""
        values = np.zeros((self.engine.num_envs, self.num_objects, width))
        for env_id, client in enumerate(self.engine.clients):
            for k, body in enumerate(self._ids[env_id]):
                if body >= 0:
                    first, second = read(client, body)
                    values[env_id, k] = (*first, *second)
        return values

    def poses(self):
        return self._read(7, lambda client, body: client.getBasePositionAndOrientation(body))

    def velocities(self):
        return self._read(6, lambda client, body: client.getBaseVelocity(body))

    def grasped(self):
        return self.held.copy()

    def hand_forces(self):
        return self._hand_touches()[1]

    def _hand_touches(self):
        """From the contact points between each hand's links and each object: how many distinct links touch it,
        and their normal forces summed (N, H, K) each."""
        engine = self.engine
        shape = (engine.num_envs, len(engine.hand_names), self.num_objects)
        links, forces = np.zeros(shape, dtype=np.int64), np.zeros(shape)
        for env_id, (client, robot_id) in enumerate(zip(engine.clients, engine._robot_ids)):
            for k, body in enumerate(self._ids[env_id]):
                if body < 0:
                    continue
                touched = [set() for _ in engine._hand_links]
                for contact in client.getContactPoints(robot_id, body):
                    for h, hand_links in enumerate(engine._hand_links):
                        if contact[3] in hand_links:
                            forces[env_id, h, k] += contact[9]
                            touched[h].add(contact[3])
                links[env_id, :, k] = [len(hand) for hand in touched]
        return links, forces

    # ------------------------------------------------------------------ hooks
    def _make(self, client, params: ObjectParams, pose: np.ndarray) -> int:
        collision, visual = params.geometry.pybullet_shape(client, params.rgba)
        body = client.createMultiBody(params.mass, collision, visual, pose[:3], pose[3:])
        client.changeDynamics(body, -1, lateralFriction=params.friction, rollingFriction=1e-4,
                              spinningFriction=1e-4, linearDamping=0.0, angularDamping=0.0)
        return body

    def reset(self, env_ids, episodes) -> None:
        for env_id, episode in zip(env_ids, episodes):
            client = self.engine.clients[env_id]
            self._release(env_id, range(len(self.engine.hand_names)))
            poses = np.asarray(episode.object_poses, float).reshape(self.num_objects, 7)
            for k in range(self.num_objects):
                if self._ids[env_id][k] >= 0:
                    client.removeBody(self._ids[env_id][k])
                self._ids[env_id][k] = self._make(client, episode.objects[k], poses[k])
                self._shown[env_id][k] = episode.objects[k]
                self.masses[env_id, k] = episode.objects[k].mass

    def show(self, env_id: int, objects: tuple[ObjectParams, ...], poses: np.ndarray) -> None:
        """Place environment ``env_id``'s objects at ``poses`` (num_objects, 7), at rest, for a picture; an object
        whose parameters differ from the one there is built anew (a viewer shows many episodes' objects)."""
        client = self.engine.clients[env_id]
        for k in range(self.num_objects):
            body = self._ids[env_id][k]
            if body < 0 or self._shown[env_id][k] != objects[k]:
                if body >= 0:
                    client.removeBody(body)
                self._ids[env_id][k] = self._make(client, objects[k], poses[k])
            else:
                client.resetBasePositionAndOrientation(body, poses[k, :3].tolist(), poses[k, 3:].tolist())
                client.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
            self._shown[env_id][k] = objects[k]

    def end_step(self) -> None:
        """The assisted grasp, then the divergence check of the objects' speeds."""
        engine = self.engine
        if not self.num_objects:
            return
        if engine.config.grasp == "assisted":
            for env_id in range(engine.num_envs):
                opening = [h for h in range(len(engine.hand_names)) if not engine.grasp_commands[env_id, h]]
                self._release(env_id, opening)
                for h in range(len(engine.hand_names)):
                    if engine.grasp_commands[env_id, h] and self.held[env_id, h] < 0:
                        self._try_attach(env_id, h)
        elif engine.config.grasp == "physical":
            self.held[:] = grasp_rule.contact_holds(*self._hand_touches(),
                                                    self.masses * abs(engine.config.gravity))
        speed = np.abs(self.velocities()).max(axis=(1, 2))
        engine.diverged |= ~np.isfinite(speed) | (speed > engine.config.divergence_speed)

    def _release(self, env_id: int, hands) -> None:
        for h in hands:
            if self._welds[env_id, h] >= 0:
                self.engine.clients[env_id].removeConstraint(int(self._welds[env_id, h]))
            self._welds[env_id, h] = -1
            self.held[env_id, h] = -1

    def _try_attach(self, env_id: int, hand: int) -> None:
        engine = self.engine
        client, robot_id = engine.clients[env_id], engine._robot_ids[env_id]
        palm = engine._palm_ids[hand]
        state = client.getLinkState(robot_id, palm, computeForwardKinematics=True)
        palm_position = np.array(state[4])
        rotation = np.array(client.getMatrixFromQuaternion(state[5])).reshape(3, 3)
        site = palm_position + rotation @ engine._grasp_sites[hand]
        held_elsewhere = set(self.held[env_id].tolist())
        for k, body in enumerate(self._ids[env_id]):
            if body < 0 or k in held_elsewhere:
                continue
            position, orientation = client.getBasePositionAndOrientation(body)
            distance = float(np.linalg.norm(np.asarray(position) - site))
            touching = distance <= grasp_rule.GRASP_RADIUS and any(
                client.getClosestPoints(robot_id, body, grasp_rule.TOUCH_MARGIN, linkIndexA=link)
                for link in engine._hand_links[hand]
            )
            if not grasp_rule.should_attach(np.bool_(True), np.bool_(False), np.float64(distance), np.bool_(touching)):
                continue
            # Weld at the current relative pose. createConstraint takes the parent frame relative
            # to the palm's centre of mass and the child frame relative to the object's (its origin).
            inv_com_position, inv_com_orientation = client.invertTransform(state[0], state[1])
            parent_position, parent_orientation = client.multiplyTransforms(
                inv_com_position, inv_com_orientation, position, orientation)
            weld = client.createConstraint(robot_id, palm, body, -1, pybullet.JOINT_FIXED, [0, 0, 0],
                                           parent_position, [0, 0, 0], parent_orientation, [0, 0, 0, 1])
            client.changeConstraint(weld, maxForce=500.0)
            self._welds[env_id, hand] = weld
            self.held[env_id, hand] = k
            return

    # ------------------------------------------------------------------ state
    def state_blocks(self):
        """Object poses and velocities, which object each hand holds, and each weld's frame in the palm's
        centre-of-mass frame plus its force limit."""
        engine = self.engine
        n, hands = engine.num_envs, len(engine.hand_names)
        welds = np.zeros((n, hands, 8))
        welds[..., 6] = 1.0
        for env_id, client in enumerate(engine.clients):
            for hand in range(hands):
                if self._welds[env_id, hand] >= 0:
                    info = client.getConstraintInfo(int(self._welds[env_id, hand]))
                    welds[env_id, hand] = (*info[6], *info[8], info[10])
        return {"object_pose": self.poses(), "object_vel": self.velocities(), "grasped": self.held.astype(float),
                "welds": welds}

    def load_state_blocks(self, env_ids, blocks) -> None:
        """After the robot: the welds are made at the frames they had."""
        engine = self.engine
        for row, env_id in enumerate(env_ids):
            client, robot_id = engine.clients[env_id], engine._robot_ids[env_id]
            self._release(env_id, range(len(engine.hand_names)))
            for k, body in enumerate(self._ids[env_id]):
                if body < 0:
                    continue
                pose, velocity = blocks["object_pose"][row, k], blocks["object_vel"][row, k]
                # Bullet stores orientation as a matrix, so re-setting an unchanged pose would still move
                # the quaternion by rounding; leave a pose that is already exact alone.
                if not np.array_equal(np.concatenate(client.getBasePositionAndOrientation(body)), pose):
                    client.resetBasePositionAndOrientation(body, pose[:3].tolist(), pose[3:].tolist())
                client.resetBaseVelocity(body, velocity[:3].tolist(), velocity[3:].tolist())
            for hand, held in enumerate(np.rint(blocks["grasped"][row]).astype(int)):
                if held < 0:
                    continue
                frame = blocks["welds"][row, hand]
                weld = client.createConstraint(robot_id, engine._palm_ids[hand], self._ids[env_id][held], -1,
                                               pybullet.JOINT_FIXED, [0, 0, 0], frame[:3].tolist(), [0, 0, 0],
                                               frame[3:7].tolist(), [0, 0, 0, 1])
                client.changeConstraint(weld, maxForce=float(frame[7]))
                self._welds[env_id, hand] = weld
                self.held[env_id, hand] = held
