"""The numpy engine's garment component: the position-based cloth of physics/cloth.py beside the robot."""

from __future__ import annotations

import numpy as np

from . import grasp as grasp_rule
from .cloth import ClothPins, MovingSpheres, cloth_init, cloth_material, cloth_step, cloth_topology, update_passthrough
from .components import Cloth
from .contacts import StaticGeometry


class NumpyCloth(Cloth):
    """Particles stepped once per control period, colliding with the static boxes and the hands' spheres.

    It runs once per control step rather than inside the robot's substeps: it is one-way
    coupled (it does not load the arm), so it needs only the hands' path over the period,
    interpolated linearly between the frames of :meth:`begin_step` and :meth:`end_step`.
    """

    #: XPBD substeps per control period (1 kHz at 50 Hz control). 1 ms substeps hold a 500 N/m garment
    #: hanging from two corners to a median stretch under 1 % (the links at the pins stretch up to
    #: several per cent: one constraint pass per substep, tests/test_cloth.py).
    substeps = 20

    def __init__(self, engine):
        spec = engine.scene.cloth
        n = engine.num_envs
        super().__init__(spec, n, len(engine.hand_names))
        self.engine = engine
        self.topology = cloth_topology(spec)
        self._static = StaticGeometry.from_scene(engine.scene)
        #: Each environment's ClothParams, as its episode set them.
        self.params = [spec.default_params] * n
        self._material = cloth_material(self.topology, self.params)
        self.state = cloth_init(self.topology, self.params, np.tile(spec.default_pose, (n, 1)))
        self._previous = self.state.positions.copy()
        self._pinned_by = -np.ones((n, spec.num_particles), dtype=np.int64)
        self._pin_offset = np.zeros((n, spec.num_particles, 3))  # in the pinning palm's frame
        # The cloth collides with the hands' spheres (palms and fingers).
        hand_spheres = np.concatenate(engine._hand_spheres)
        self._sphere_body = engine.spheres.body[hand_spheres]
        self._sphere_center = np.ascontiguousarray(engine.spheres.center[hand_spheres].T)  # (3, S)
        self._sphere_radius = engine.spheres.radius[hand_spheres]
        self._sphere_owner = np.concatenate([np.full(len(s), h) for h, s in enumerate(engine._hand_spheres)])
        self._passthrough = -np.ones((n, spec.num_particles), dtype=np.int64)  # see cloth.update_passthrough
        self._palms = [engine.model.link_index(engine.robot.hands[h].palm_link) for h in engine.hand_names]
        self._start = None

    # ------------------------------------------------------------------ reads
    def positions(self):
        return self.state.positions.copy()

    def velocities(self):
        return (self.state.positions - self._previous) / self.engine.config.control_dt

    def pinned_by(self):
        return self._pinned_by.copy()

    # ------------------------------------------------------------------ hooks
    def reset(self, env_ids, episodes) -> None:
        params, poses = self.garments(env_ids, episodes)
        fresh = cloth_init(self.topology, params, poses)
        self.state.positions[env_ids] = fresh.positions
        self.state.velocities[env_ids] = 0.0
        self._previous[env_ids] = fresh.positions
        self._material.assign(env_ids, cloth_material(self.topology, params))
        for row, env_id in enumerate(env_ids):
            self.params[env_id] = params[row]
        self._pinned_by[env_ids] = -1
        self._passthrough[env_ids] = -1
        # Nothing of the slot's previous episode survives, so a saved state depends only on this one.
        self._pin_offset[env_ids] = 0.0

    def begin_step(self) -> None:
        self._start = self._frames()  # the hands' poses at the start of the control period

    def end_step(self) -> None:
        engine, start = self.engine, self._start
        end = self._frames()
        pinned = self._pinned_by >= 0
        pins = ClothPins(pinned, self._pin_targets(start), self._pin_targets(end)) if pinned.any() else None
        spheres = MovingSpheres(start[0], end[0], self._sphere_radius, self._sphere_owner)
        previous = self.state.positions
        state = cloth_step(self.state, self.topology, self._material, self._static, engine.config.control_dt,
                           self.substeps, engine.config.gravity, spheres=spheres, pins=pins,
                           passthrough=self._passthrough)
        bad = ~(np.isfinite(state.positions).all(axis=(1, 2)) & np.isfinite(state.velocities).all(axis=(1, 2)))
        if bad.any():  # keep the last good cloth, as the robot keeps its last good state
            state.positions[bad], state.velocities[bad] = previous[bad], 0.0
            engine.state.diverged |= bad
        self.state, self._previous = state, previous
        if engine.config.grasp != "assisted":
            return
        _, palm_position, palm_rotation = end
        sites = palm_position + (palm_rotation * engine._grasp_site[None, :, None, :]).sum(-1)
        pinned_by = grasp_rule.update_cloth_pins(engine.grasp_commands, self._pinned_by, sites, state.positions)
        env, particle = np.nonzero((pinned_by >= 0) & (self._pinned_by < 0))
        if len(env):
            hand = pinned_by[env, particle]
            offset = state.positions[env, particle] - palm_position[env, hand]
            self._pin_offset[env, particle] = (palm_rotation[env, hand] * offset[:, :, None]).sum(axis=1)
        released = (self._pinned_by >= 0) & (pinned_by < 0)
        self._passthrough = update_passthrough(state.positions, spheres, self.spec.thickness, self._passthrough,
                                               released, self._pinned_by)
        self._pinned_by = pinned_by

    def keep_last_good(self, env_mask) -> None:
        # The particles go back to where the control period began, at rest, as after a non-finite step.
        self.state.positions[env_mask], self.state.velocities[env_mask] = self._previous[env_mask], 0.0

    def _frames(self):
        """Hand-sphere centres (N, S, 3), palm positions (N, H, 3) and rotations (N, H, 3, 3) now."""
        kin = self.engine._current_kinematics()
        body = self._sphere_body
        rotation = kin.rotation[:, :, body]
        spheres = kin.origin[:, body] + (rotation * self._sphere_center[None, :, :, None]).sum(axis=1)
        spheres = spheres + kin.base_position[:, None]
        palms = self._palms
        palm_position = (kin.origin[:, palms] + kin.base_position[:, None]).transpose(2, 1, 0)
        palm_rotation = kin.rotation[:, :, palms].transpose(3, 2, 0, 1)
        return spheres.transpose(2, 1, 0), palm_position, palm_rotation

    def _pin_targets(self, frames) -> np.ndarray:
        """Where the pinned particles' palm-frame offsets put them for the given frames, (N, P, 3)."""
        _, palm_position, palm_rotation = frames
        hand = np.maximum(self._pinned_by, 0)
        position = np.take_along_axis(palm_position, hand[..., None], axis=1)
        rotation = np.take_along_axis(palm_rotation, hand[..., None, None], axis=1)
        return position + (rotation * self._pin_offset[..., None, :]).sum(-1)

    # ------------------------------------------------------------------ state
    def state_blocks(self):
        """Its particles' positions, velocities and positions a control period ago, which hand pins each
        particle and where in its palm frame, and which hand each passes through (none without)."""
        return {
            "cloth_positions": self.state.positions.copy(),
            "cloth_velocities": self.state.velocities.copy(),
            "cloth_previous": self._previous.copy(),
            "cloth_pinned_by": self._pinned_by.astype(float),
            "cloth_pin_offset": self._pin_offset.copy(),
            "cloth_passthrough": self._passthrough.astype(float),
        }

    def load_state_blocks(self, env_ids, blocks) -> None:
        self.state.positions[env_ids] = blocks["cloth_positions"]
        self.state.velocities[env_ids] = blocks["cloth_velocities"]
        self._previous[env_ids] = blocks["cloth_previous"]
        self._pinned_by[env_ids] = np.rint(blocks["cloth_pinned_by"]).astype(np.int64)
        self._pin_offset[env_ids] = blocks["cloth_pin_offset"]
        self._passthrough[env_ids] = np.rint(blocks["cloth_passthrough"]).astype(np.int64)

