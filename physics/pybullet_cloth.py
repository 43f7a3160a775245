"""The pybullet engine's garment component: a Bullet mass-spring soft body per environment, held by anchors."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pybullet

from . import grasp as grasp_rule
from .cloth import cloth_topology, grid_positions
from .components import Cloth


class PybulletCloth(Cloth):
    """One soft body in each environment's client, loaded from the grid mesh at every reset."""

    #: Damping (N s/m) of each of Bullet's cloth springs on the stretching speed of its ends (a damping
    #: ratio of about 0.6 at 400 N/m): with much less, a grasped garment breaks into wrinkles that throw
    #: it off the table. Only along the spring: damping of all relative motion would also resist the
    #: garment's bending and turn it into a board that slides along the table when folded (the numpy
    #: cloth's velocity drag plays this part there).
    spring_damping = 1.0

    def __init__(self, engine):
        spec = engine.scene.cloth
        n, particles = engine.num_envs, spec.num_particles
        super().__init__(spec, n, len(engine.hand_names))
        self.engine = engine
        self.topology = cloth_topology(spec)
        self._dir = tempfile.TemporaryDirectory(prefix="tground_cloth_")
        self._loads = 0
        self._ids = [-1] * n
        self._anchors: list[dict[int, int]] = [{} for _ in range(n)]  # particle -> anchor constraint id
        self._pinned_by = -np.ones((n, particles), dtype=np.int64)
        self._last = np.zeros((n, particles, 3))
        self._previous = np.zeros((n, particles, 3))

    def prepare_world(self, client) -> None:
        # Soft bodies live only in Bullet's deformable world.
        client.resetSimulation(pybullet.RESET_USE_DEFORMABLE_WORLD)

    # ------------------------------------------------------------------ reads
    def positions(self):
        return self._last.copy()

    def velocities(self):
        return (self._last - self._previous) / self.engine.config.control_dt

    def pinned_by(self):
        return self._pinned_by.copy()

    # ------------------------------------------------------------------ hooks
    def _load(self, env_id: int, params, pose) -> int:
        """A soft body from the grid mesh, written with its vertices already at their world positions."""
        return self._load_at(env_id, params, grid_positions(self.topology, params, pose))

    def _load_at(self, env_id: int, params, positions: np.ndarray) -> int:
        """A soft body of the grid's topology with its particles at ``positions`` (P, 3), its rest shape."""
        engine, topology, spec = self.engine, self.topology, self.spec
        # A fresh file name per load: pybullet caches meshes by file name.
        path = os.path.join(self._dir.name, f"cloth_{self._loads}.obj")
        self._loads += 1
        lines = [f"v {x:.9f} {y:.9f} {z:.9f}" for x, y, z in positions]
        lines += [f"vt {u + 0.5:.6f} {v + 0.5:.6f}" for u, v in topology.grid]
        lines += ["f " + " ".join(f"{i + 1}/{i + 1}" for i in triangle) for triangle in topology.triangles]
        with open(path, "w") as file:
            file.write("\n".join(lines) + "\n")
        client = engine.clients[env_id]
        body = client.loadSoftBody(
            path, basePosition=[0, 0, 0], mass=params.mass, useNeoHookean=0, useMassSpring=1, useBendingSprings=1,
            springElasticStiffness=params.stretch_stiffness, springBendingStiffness=params.bend_stiffness,
            springDampingStiffness=self.spring_damping, springDampingAllDirections=0, useSelfCollision=0,
            frictionCoeff=params.friction, useFaceContact=1, collisionMargin=spec.thickness)
        os.remove(path)
        client.changeVisualShape(body, -1, rgbaColor=spec.rgba)
        # Bullet's deformable contact blows the cloth apart when a finger presses it onto the table,
        # so palms and fingers do not touch the cloth here: they hold it by anchors (the grasp rule).
        for link in sorted({link for links in engine._hand_links for link in links}):
            client.setCollisionFilterPair(engine._robot_ids[env_id], body, link, -1, 0)
        return body

    def _read(self, env_id: int) -> np.ndarray:
        _, vertices = self.engine.clients[env_id].getMeshData(self._ids[env_id], -1,
                                                              flags=pybullet.MESH_DATA_SIMULATION_MESH)
        return np.asarray(vertices, dtype=float)

    def _release(self, env_id: int) -> None:
        for anchor in self._anchors[env_id].values():
            self.engine.clients[env_id].removeConstraint(anchor)
        self._anchors[env_id] = {}
        self._pinned_by[env_id] = -1

    def reset(self, env_ids, episodes) -> None:
        params, poses = self.garments(env_ids, episodes)
        for row, env_id in enumerate(env_ids):
            self._release(env_id)
            if self._ids[env_id] >= 0:
                self.engine.clients[env_id].removeBody(self._ids[env_id])
            self._ids[env_id] = self._load(env_id, params[row], poses[row])
            self._last[env_id] = self._previous[env_id] = self._read(env_id)

    def end_step(self) -> None:
        """Read the particles after a control step, flag blow-ups, apply the cloth grasp rule with anchors."""
        engine = self.engine
        positions = np.array([self._read(env_id) for env_id in range(engine.num_envs)])
        self._previous, self._last = self._last, positions
        speed = np.abs(self.velocities()).max(axis=(1, 2))
        engine.diverged |= ~np.isfinite(positions).all(axis=(1, 2)) | ~(speed <= engine.config.divergence_speed)
        if engine.config.grasp != "assisted":
            return
        sites = np.zeros((engine.num_envs, self.num_hands, 3))
        for env_id, (client, robot_id) in enumerate(zip(engine.clients, engine._robot_ids)):
            for hand, palm in enumerate(engine._palm_ids):
                state = client.getLinkState(robot_id, palm, computeForwardKinematics=True)
                rotation = np.array(client.getMatrixFromQuaternion(state[5])).reshape(3, 3)
                sites[env_id, hand] = np.array(state[4]) + rotation @ engine._grasp_sites[hand]
        pinned_by = grasp_rule.update_cloth_pins(engine.grasp_commands, self._pinned_by, sites, positions)
        for env_id, particle in zip(*np.nonzero(pinned_by != self._pinned_by)):
            client, anchors = engine.clients[env_id], self._anchors[env_id]
            if particle in anchors:
                client.removeConstraint(anchors.pop(particle))
            hand = pinned_by[env_id, particle]
            if hand >= 0:
                # The anchor holds the node where it is now relative to the palm.
                anchors[particle] = client.createSoftBodyAnchor(self._ids[env_id], int(particle),
                                                                engine._robot_ids[env_id], engine._palm_ids[hand])
        self._pinned_by = pinned_by

    # ------------------------------------------------------------------ state
    def state_blocks(self):
        """Its particles' positions now and a control period ago, and which hand pins each.

        The API sets particle positions but not their velocities, so a restored cloth starts still.
        """
        return {"cloth_positions": self._last.copy(), "cloth_previous": self._previous.copy(),
                "cloth_pinned_by": self._pinned_by.astype(float)}

    def load_state_blocks(self, env_ids, blocks) -> None:
        """After the robot: anchors hold particles where they are relative to the palm when made."""
        engine = self.engine
        for row, env_id in enumerate(env_ids):
            self._release(env_id)
            client = engine.clients[env_id]
            client.resetMeshData(self._ids[env_id], blocks["cloth_positions"][row].tolist())
            self._last[env_id] = blocks["cloth_positions"][row]
            self._previous[env_id] = blocks["cloth_previous"][row]
            pinned_by = np.rint(blocks["cloth_pinned_by"][row]).astype(np.int64)
            for particle in np.flatnonzero(pinned_by >= 0):
                self._anchors[env_id][particle] = client.createSoftBodyAnchor(
                    self._ids[env_id], int(particle), engine._robot_ids[env_id], engine._palm_ids[pinned_by[particle]])
            self._pinned_by[env_id] = pinned_by

    def show(self, env_id: int, positions: np.ndarray) -> None:
        """Draw the garment with its particles at ``positions`` (P, 3), for a picture (the numpy engine's viewer).

        A soft body is loaded anew there: Bullet redraws one only when it steps, and a step moves it by what it did
        before, so a moved one would be drawn a little differently depending on the garments shown before it.
        """
        self._release(env_id)
        if self._ids[env_id] >= 0:
            self.engine.clients[env_id].removeBody(self._ids[env_id])
        self._ids[env_id] = self._load_at(env_id, self.spec.default_params, np.asarray(positions, float))
        self._last[env_id] = self._previous[env_id] = positions

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
