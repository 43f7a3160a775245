"""Scripted expert for WardrobeFold: a batched two-handed state machine over the ``ee_delta`` action mode.

Each hand works its own side of the garment (left hand the left corners). Phases, per env:
grasp both near corners, lift them and lay them onto the far corners (the fold: folding away
from the robot keeps the garment off the table's near edge), let go and, once both layers'
corners are within reach, close again so each hand pins both, lift the folded garment, carry it
over the shelf, lower it until its fold touches the shelf near the robot, move the hands forward
so it lies flat, let go, and withdraw. Phases advance on position errors and timers; a grasp that
does not take, or a corner dropped during the fold, sends the env back to the start (a retry); a
failed regrasp or a garment lost on the way to the shelf leaves the env waiting (``STUCK``).
"""

from __future__ import annotations

import numpy as np

from .scripted import HandExpert
from ..physics.rotations import matrix_to_quat, quat_conjugate, quat_multiply, quat_to_axis_angle
from ..scenes import wardrobe as wardrobe_scene

class WardrobeFoldExpert(HandExpert):
    (APPROACH, DESCEND, CLOSE, LIFT, ARC, OVER, LOWER, RELEASE, REGRASP, CARRY_UP, CARRY, LAY, LAY_OUT, LET_GO,
     WITHDRAW, STUCK) = range(16)
    grasp_height = 0.015  # grasp site above the corner particle when closing (m)
    regrasp_height = 0.008  # above the pair of corners: lower, so both lie well inside the grasp radius
    lay_height = 0.02  # grasp site above the shelf when letting go (m)
    regrasp_reach = 0.016  # close once both corners of each pair are this near the grasp site (m)
    hover_height = 0.06
    carry_clearance = 0.035  # of the hanging fold above the shelf top (m)
    shelf_margin = 0.045  # of the fold inside the shelf's near edge (m)
    grasp_wait = 12
    slack = 0.93  # of the garment's width between the hands while carrying: a taut edge would stretch
    # Grasp commands: holding is just past half-closed (enough for the grasp rule) and letting go
    # just short of it, so that the fingers neither curl down and rake the cloth under them nor
    # sweep it aside as they open.
    grip = 0.1
    loosen = -0.1
    gain = 0.3
    # Largest hand displacement per control step (m) in each phase: slow enough for the cloth to follow.
    speed = {APPROACH: 0.015, DESCEND: 0.01, LIFT: 0.006, ARC: 0.006, OVER: 0.006, LOWER: 0.005, RELEASE: 0.005,
             REGRASP: 0.005, CARRY_UP: 0.008, CARRY: 0.008, LAY: 0.006, LAY_OUT: 0.004, WITHDRAW: 0.01}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        num_envs = self.num_envs
        self.fold_depth = np.zeros(num_envs)
        self.separation = np.zeros(num_envs)
        self.grasped_at = np.zeros((num_envs, 2, 3))  # the near corners where they were grasped
        self.fold_onto = np.zeros((num_envs, 2, 3))  # the far corners at that moment
        self.regrasped = np.zeros((num_envs, 2, 3))  # the hands where they took both layers

    def __call__(self, observation: dict) -> np.ndarray:
        single = observation["cloth_corners"].ndim == 1
        obs = {k: np.asarray(v, float)[None] if single else np.asarray(v, float) for k, v in observation.items()}
        action = self.act(obs)
        return action[0] if single else action

    def act(self, obs: dict) -> np.ndarray:
        obs = {key: np.asarray(value, float) for key, value in obs.items()}  # float64, batch or not: same bits
        n = obs["cloth_corners"].shape[0]
        hand = obs["hand_pos"].reshape(n, 2, 3)
        hand_quat = obs["hand_quat"].reshape(n, 2, 4)
        corners = obs["cloth_corners"].reshape(n, 4, 3)
        near, far = corners[:, [1, 0]], corners[:, [3, 2]]  # per hand (left, right)
        grasped = obs["grasped"] > 0.5
        both_grasped = grasped.all(axis=1)
        shelf_top = wardrobe_scene.SHELF_TOP - self.base_position[2]
        shelf_centre = np.array(wardrobe_scene.SHELF_CENTER) - self.base_position[:2]
        shelf_near_x = shelf_centre[0] - wardrobe_scene.SHELF_HALF[0]

        phase, timer = self.phase, self.timer
        timer += 1
        starting = phase == self.APPROACH
        self.fold_depth = np.where(starting, np.linalg.norm(far - near, axis=-1).mean(axis=1) / 2, self.fold_depth)
        # The hands fold the near corners ("held") onto the far ones ("dest").
        held, dest = near, far
        up = np.array([0.0, 0.0, 1.0])

        target = held + self.hover_height * up
        target = np.where(self._in(phase, self.DESCEND), held + self.grasp_height * up, target)
        # Closing, ease upwards: a hand that sags onto a pinned corner presses it into the table.
        target = np.where(self._in(phase, self.CLOSE), held + (self.grasp_height + 0.005) * up, target)
        # The held corners move with the hands, so the fold's arc starts from where they were grasped.
        # The far corners are aimed at where they lay when the fold began: chasing them as the
        # cloth shifts would push the garment along the table.
        self.grasped_at = np.where(self._in(phase, self.CLOSE), held, self.grasped_at)
        self.fold_onto = np.where(self._in(phase, self.CLOSE), dest, self.fold_onto)
        # The held corner travels on a circle about the fold line (half-way between the corners), so
        # the folding half hangs from the hand instead of dragging the other half along the table.
        held_offset = hand - held  # aim the held corner, not the hand
        middle = (self.grasped_at + self.fold_onto) / 2
        forward = (self.fold_onto - self.grasped_at) / np.maximum(2 * self.fold_depth[:, None, None], 1e-9)
        radius = self.fold_depth[:, None, None]
        lift = middle - 0.15 * radius * forward + 1.05 * radius * up
        target = np.where(self._in(phase, self.LIFT), lift + held_offset, target)
        arc = middle + 0.7 * radius * forward + 0.75 * radius * up
        target = np.where(self._in(phase, self.ARC), arc + held_offset, target)
        over = self.fold_onto - 0.01 * forward + 0.03 * up
        target = np.where(self._in(phase, self.OVER), over + held_offset, target)
        target = np.where(self._in(phase, self.LOWER), self.fold_onto + held_offset + 0.008 * up, target)
        pair = (near + far) / 2  # after the fold both layers' corners lie together
        target = np.where(self._in(phase, self.RELEASE, self.REGRASP), pair + self.regrasp_height * up, target)
        # Carrying: the hands hold the garment's folded-over edge, a little closer together than its width.
        centre_y = shelf_centre[1]
        self.separation = np.where(phase == self.REGRASP, np.abs(hand[:, 0, 1] - hand[:, 1, 1]), self.separation)
        offsets = np.stack([self.separation, -self.separation], axis=1) * self.slack / 2
        carry_z = shelf_top + self.fold_depth + self.carry_clearance + self.grasp_height
        edge_x = shelf_near_x + self.shelf_margin
        over_shelf = np.stack([np.full((n, 2), edge_x),
                               centre_y + offsets, np.broadcast_to(carry_z[:, None], (n, 2))], axis=-1)
        self.regrasped = np.where(self._in(phase, self.REGRASP), hand, self.regrasped)
        raised = np.concatenate([self.regrasped[..., :2], np.broadcast_to(carry_z[:, None, None], (n, 2, 1))], axis=-1)
        target = np.where(self._in(phase, self.CARRY_UP), raised, target)
        target = np.where(self._in(phase, self.CARRY), over_shelf, target)
        touch_z = shelf_top + self.fold_depth + self.grasp_height
        touching = over_shelf.copy()
        touching[..., 2] = touch_z[:, None]
        target = np.where(self._in(phase, self.LAY), touching, target)
        laid = touching.copy()
        laid[..., 0] = edge_x + self.fold_depth[:, None]
        # Low, so the let-go layers barely drop, but not so low that the hands press them into the shelf.
        laid[..., 2] = shelf_top + self.lay_height
        target = np.where(self._in(phase, self.LAY_OUT, self.LET_GO), laid, target)
        target = np.where(self._in(phase, self.WITHDRAW, self.STUCK), laid + 0.1 * up, target)

        error = target - hand
        distance = np.linalg.norm(error, axis=-1)  # (n, 2)
        worst = distance.max(axis=1)
        closed = self._in(phase, self.CLOSE, self.LIFT, self.ARC, self.OVER, self.LOWER, self.REGRASP, self.CARRY_UP,
                          self.CARRY, self.LAY, self.LAY_OUT)[:, 0, 0]

        # Palms down, fingers forward: each hand's grasp-site orientation, measured from the robot.
        desired = matrix_to_quat(np.array([hand.top_down for hand in self.hands]))
        rotation_error = quat_to_axis_angle(quat_multiply(np.broadcast_to(desired, hand_quat.shape),
                                                          quat_conjugate(hand_quat)))
        aligned = (np.linalg.norm(rotation_error, axis=-1) < 0.15).all(axis=1)

        new = phase.copy()
        new[(phase == self.APPROACH) & (worst < 0.015) & aligned] = self.DESCEND
        new[(phase == self.DESCEND) & ((worst < 0.006) | (timer > 25))] = self.CLOSE
        new[(phase == self.CLOSE) & both_grasped & (timer > 3)] = self.LIFT
        new[(phase == self.CLOSE) & ~both_grasped & (timer > self.grasp_wait)] = self.APPROACH
        new[(phase == self.LIFT) & (worst < 0.02)] = self.ARC
        new[(phase == self.ARC) & (worst < 0.02)] = self.OVER
        new[(phase == self.OVER) & (worst < 0.015)] = self.LOWER
        # Open, settle over the pair of corners, then close on both layers.
        new[(phase == self.LOWER) & ((worst < 0.008) | (timer > 25))] = self.RELEASE
        both_near = (np.maximum(np.linalg.norm(near - hand, axis=-1), np.linalg.norm(far - hand, axis=-1))
                     < self.regrasp_reach).all(axis=1)
        new[(phase == self.RELEASE) & (timer > 3) & (both_near | (timer > 25))] = self.REGRASP
        new[(phase == self.REGRASP) & both_grasped & (timer > 3)] = self.CARRY_UP
        new[(phase == self.REGRASP) & ~both_grasped & (timer > self.grasp_wait)] = self.STUCK
        new[(phase == self.CARRY_UP) & (worst < 0.02)] = self.CARRY
        new[(phase == self.CARRY) & (worst < 0.015)] = self.LAY
        new[(phase == self.LAY) & ((worst < 0.01) | (timer > 30))] = self.LAY_OUT
        new[(phase == self.LAY_OUT) & ((worst < 0.01) | (timer > 60))] = self.LET_GO
        new[(phase == self.LET_GO) & (timer > 6)] = self.WITHDRAW
        dropped = self._in(phase, self.LIFT, self.ARC, self.OVER, self.LOWER)[:, 0, 0] & ~both_grasped
        new[dropped] = self.APPROACH
        lost = self._in(phase, self.CARRY_UP, self.CARRY, self.LAY)[:, 0, 0] & ~both_grasped
        new[lost] = self.STUCK
        timer[new != phase] = 0
        self.phase = new

        limit = np.array([self.speed.get(p, 0.01) for p in range(self.STUCK + 1)])[phase][:, None, None]
        step = self.gain * error
        size = np.linalg.norm(step, axis=-1, keepdims=True)
        step = step * np.minimum(1.0, limit / np.maximum(size, 1e-12))
        action = np.zeros((n, 2, 7))
        action[..., :3] = np.clip(step / self.ik.translation_scale, -1, 1)
        action[..., 3:6] = np.clip(self.gain * rotation_error / self.ik.rotation_scale, -1, 1)
        gentle = self._in(phase, self.RELEASE, self.LET_GO, self.WITHDRAW)[:, 0, 0]
        action[..., 6] = np.where(closed, self.grip, np.where(gentle, self.loosen, -1.0))[:, None]
        return action.reshape(n, -1).astype(np.float32)

    @staticmethod
    def _in(phase: np.ndarray, *phases: int) -> np.ndarray:
        """(n, 1, 1) mask of envs in any of ``phases``, shaped to select per-hand targets."""
        return np.isin(phase, phases)[:, None, None]
