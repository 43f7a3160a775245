"""Scripted experts: state machines over the ``ee_delta`` action mode, batched over envs.

An expert reads only the task's observation (dict of arrays with a leading env axis, or
a single env's dict) and returns normalised actions, so the same object drives a single
env, a batch, or data collection.

:class:`TopDownPickPlaceExpert` is the shared state machine (a top-down pick with the right
hand, a carry, a place); each task's expert is a small subclass that names its observation
keys and says where the hand grasps, where it releases and how it turns.
"""

from __future__ import annotations

import numpy as np

from .scripted import HandExpert
from ..physics.rotations import matrix_to_quat, quat_conjugate, quat_multiply, quat_to_axis_angle, quat_to_matrix
from ..scenes import assembly as assembly_scene
from ..scenes import bread as bread_scene

def yaw_matrix(yaw: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) about the vertical by ``yaw``."""
    c, s, zero, one = np.cos(yaw), np.sin(yaw), np.zeros_like(yaw), np.ones_like(yaw)
    return np.stack([c, -s, zero, s, c, zero, zero, zero, one], -1).reshape(*np.shape(yaw), 3, 3)


def top_down_yaw(hand_quat: np.ndarray, top_down: np.ndarray) -> np.ndarray:
    """Yaw of a hand about the vertical, relative to its top-down grasp orientation ``top_down`` (its palm frame's
    axes in the world, physics/hand_geometry.py; 0: fingers forward)."""
    turn = quat_to_matrix(hand_quat) @ top_down.T
    return np.arctan2(turn[..., 1, 0], turn[..., 0, 0])


class TopDownPickPlaceExpert(HandExpert):
    """Right hand: hover over the grasp point, descend, close, lift, carry over the place point,
    lower, optionally insert slowly, open, retreat.

    Phases advance per env on position error and timers; a grasp that has not taken hold
    after ``grasp_wait`` steps sends that env back to hovering (a retry), and an object
    dropped while carried is picked again.

    Subclasses set the observation keys (``object_key``: ``<key>_pos``/``<key>_quat``;
    ``target_key``: ``<key>_to_hands``) and the heights, and implement :meth:`grasp_yaw`,
    :meth:`grasp_point` and :meth:`place_point`; :meth:`place_yaw` turns the held object
    (by default the hand keeps its grasp yaw). With ``insert_height`` > 0 the hand stops that
    far above the place point until ``ready_to_insert`` says so, then descends at no more than
    ``insert_speed`` per step.
    """

    APPROACH, DESCEND, CLOSE, LIFT, CARRY, LOWER, INSERT, RELEASE, RETREAT = range(9)
    hand = 1  # right
    object_key = ""
    target_key = ""
    #: World height of the surface objects lie on (m).
    surface_height = 0.0
    hover_height = 0.10  # above the object's centre, over the grasp point
    carry_height = 0.17  # above the surface
    retreat_height = 0.05  # above the carry point
    grasp_wait = 12
    #: Control steps the hand keeps closing on a held object before it lifts: a weld holds at once, fingers
    #: need the thumb's sweep and the grip force to build up (``physical_close_steps`` under grasp="physical").
    close_steps = 3
    physical_close_steps = 12
    close_ramp = 8  # under grasp="physical", control steps from open to the grip
    physical_lift_speed = 0.004  # under grasp="physical", m per control step while lifting
    #: Under grasp="physical" a held object counts as dropped once its centre is this far from the grasp site
    #: (m): the contact-hold flag flickers while fingers settle, the distance does not.
    drop_distance = 0.07
    #: Grasp actions (> 0 closes; -1 opens fully, 1 curls the fingers fully): while closing on the
    #: object, while holding it (the weld holds at any positive value) and while letting go.
    grip = 1.0
    hold_grip = 1.0
    release_grip = -1.0
    #: Largest orientation error (rad) at which the hand may leave the carry height.
    carry_alignment = np.inf
    descend_tolerance = 0.008
    descend_timeout = 25
    lower_tolerance = 0.015
    lower_timeout = 40
    #: Speed limits (m per control step): everywhere, while descending onto the object, while inserting.
    max_speed = np.inf
    descend_speed = np.inf
    insert_height = 0.0
    insert_speed = 0.002
    insert_tolerance = 0.0015
    insert_timeout = 40
    #: Fraction of the pose error requested per step. The arm lags its commands, so a high gain
    #: overshoots: fine for a roll dropped into a basket, not for a chip placed to a millimetre.
    gain = 0.3

    #: Under grasp="physical", whether a hand with a pinch (physics/hand_geometry.py Pinch) comes down on the object
    #: pre-shaped (grip_commands says how far) and follows its tips down as it closes: how a small part is picked
    #: off a surface, the tips sliding along it onto the part's edges.
    pinch_preshape = False
    #: Pinch pre-shape: the tips' centres this far above the surface the object lies on (m): their radius and a gap.
    tip_clearance = 0.0005
    #: Pinch pre-shape: the fraction of the height error integrated per control step, and the bias's bound (m).
    height_integral = 0.1
    height_bias_limit = 0.01

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.target_yaw = np.zeros(self.num_envs)
        #: The grasping hand's pinch, if it has one and grasps physically (None: the task's own grasp).
        self.pinch = self.hands[self.hand].pinch if self.physical else None
        #: Pre-shaped pinch: the integrated height error added to the goal while descending and closing (m).
        self.height_bias = np.zeros(self.num_envs)

    def __call__(self, observation: dict) -> np.ndarray:
        single = observation[f"{self.object_key}_pos"].ndim == 1
        obs = {k: np.asarray(v, float)[None] if single else np.asarray(v, float) for k, v in observation.items()}
        action = self.act(obs)
        return action[0] if single else action

    # ------------------------------------------------------------------ task hooks
    def grasp_yaw(self, obs: dict) -> np.ndarray:
        """Hand yaw (n,) for the grasp, chosen while approaching."""
        raise NotImplementedError

    def grasp_point(self, obs: dict, yaw: np.ndarray) -> np.ndarray:
        """Grasp-site position (n, 3) at which the hand, turned by ``yaw``, closes."""
        raise NotImplementedError

    def place_point(self, obs: dict, hand_pos: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Grasp-site position (n, 3) at which the hand opens; ``target`` is obs[target_key + "_to_hands"]'s point."""
        raise NotImplementedError

    def place_yaw(self, obs: dict, hand_quat: np.ndarray) -> np.ndarray:
        """Hand yaw (n,) while carrying and placing a held object."""
        return self.target_yaw

    def ready_to_insert(self, obs: dict, distance: np.ndarray, rotation_error: np.ndarray) -> np.ndarray:
        """Whether a hand held ``insert_height`` above the place point may start inserting (n,) bool."""
        return distance < self.lower_tolerance

    def grip_commands(self, obs: dict) -> tuple:
        """Grasp commands (each a scalar or (n,)): held while approaching and descending, closed to, held while
        carrying, and letting go of a placed object."""
        return -1.0, self.grip, self.hold_grip, self.release_grip

    def pinch_point(self, obs: dict, yaw: np.ndarray, centre: np.ndarray, tip_height: np.ndarray,
                    gap: np.ndarray) -> np.ndarray:
        """Grasp-site position (n, 3) that puts the pinch's tips, where the fingers stand now (``joint_pos``), around
        ``centre`` (n, 3) horizontally with the lower tip's centre at world height ``tip_height`` (n,) (base frame);
        past the command at which they are ``gap`` (n,) apart, the object stops them there, so the site stays where
        they touched."""
        hand, spec = self.hands[self.hand], self.hand_specs[self.hand]
        positions, stop = obs["joint_pos"][:, self.finger_indices[self.hand]], self.pinch.at_gap(gap)[0]
        thumb_command = np.minimum(spec.grasp_reached(positions, self.pinch.moves_thumb), stop)
        finger_command = np.minimum(spec.grasp_reached(positions, ~self.pinch.moves_thumb), stop)
        to_world = yaw_matrix(yaw) @ hand.top_down
        thumb, fingers = (np.einsum("nij,nj->ni", to_world, tip)
                          for tip in self.pinch.tips_at(thumb_command, finger_command))
        lower = np.minimum(thumb[:, 2], fingers[:, 2])
        site = np.concatenate([centre[:, :2] - (thumb[:, :2] + fingers[:, :2]) / 2, (tip_height - lower)[:, None]], -1)
        return site

    # ------------------------------------------------------------------ the state machine
    def act(self, obs: dict) -> np.ndarray:
        # float64 whatever the caller passes (the envs give float32): a batch and a single env,
        # whose __call__ converts, then compute the same actions.
        obs = {key: np.asarray(value, dtype=np.float64) for key, value in obs.items()}
        n = obs[f"{self.object_key}_pos"].shape[0]
        h = self.hand
        hand_pos = obs["hand_pos"].reshape(n, -1, 3)[:, h]
        hand_quat = obs["hand_quat"].reshape(n, -1, 4)[:, h]
        item = obs[f"{self.object_key}_pos"]
        grasped = obs["grasped"][:, h] > 0.5
        target = hand_pos + obs[f"{self.target_key}_to_hands"].reshape(n, -1, 3)[:, h]
        surface = self.surface_height - self.base_position[2]

        phase, timer = self.phase, self.timer
        timer += 1
        preshape, closed, hold, release = self.grip_commands(obs)
        closing = closed
        if self.physical:  # close over ``close_ramp`` steps: fingers that snap shut knock the object away
            closing = np.minimum(closed, preshape + 2.0 * (timer + 1) / self.close_ramp)
        holding = (phase == self.LIFT) | (phase == self.CARRY) | (phase == self.LOWER) | (phase == self.INSERT)
        grip = np.where(phase == self.CLOSE, closing, preshape)
        grip = np.where(holding, hold, grip)
        grip = np.where(phase == self.RELEASE, release, grip)
        # A pre-shaped hand keeps its release grip while it rises: opening fully swings the tips down past the part.
        grip = np.where((phase == self.RETREAT) & (preshape > -1.0), release, grip)
        self.target_yaw = np.where(phase == self.APPROACH, self.grasp_yaw(obs), self.target_yaw)
        placing = ((phase == self.CARRY) | (phase == self.LOWER) | (phase == self.INSERT)) & grasped
        self.target_yaw = np.where(placing, self.place_yaw(obs, hand_quat), self.target_yaw)
        yaw = self.target_yaw

        grasp_point = self.grasp_point(obs, yaw)
        hover = np.concatenate([grasp_point[:, :2], item[:, 2:] + [self.hover_height]], -1)
        goal = np.empty((n, 3))
        goal[:] = hover
        # Coming back from a missed grasp: rise before moving sideways so as not to sweep the object away.
        low = (hand_pos[:, 2] < hover[:, 2] - 0.03) & (np.linalg.norm(hand_pos[:, :2] - grasp_point[:, :2], axis=-1) > 0.02)
        goal = np.where(low[:, None], np.concatenate([hand_pos[:, :2], hover[:, 2:]], -1), goal)
        goal = np.where(((phase == self.DESCEND) | (phase == self.CLOSE))[:, None], grasp_point, goal)
        lift = hand_pos * [1, 1, 0] + [0, 0, surface + self.carry_height]
        goal = np.where((phase == self.LIFT)[:, None], lift, goal)
        place = self.place_point(obs, hand_pos, target)
        over_place = place * [1, 1, 0] + [0, 0, surface + self.carry_height]
        goal = np.where((phase == self.CARRY)[:, None], over_place, goal)
        goal = np.where((phase == self.LOWER)[:, None], place + [0.0, 0.0, self.insert_height], goal)
        goal = np.where(((phase == self.INSERT) | (phase == self.RELEASE))[:, None], place, goal)
        goal = np.where((phase == self.RETREAT)[:, None], over_place + [0, 0, self.retreat_height], goal)

        if self.pinch is not None and self.pinch_preshape:
            # The arm holds a hand a few millimetres above where it is sent (its PD has no integral action against
            # the arm's weight), and a pinch on a part 6 mm thick has no millimetres to spare: on the way down and
            # while closing, the height error is integrated into the goal.
            low = (phase == self.DESCEND) | (phase == self.CLOSE)
            self.height_bias = np.where(low, np.clip(self.height_bias + self.height_integral * (goal[:, 2] - hand_pos[:, 2]),
                                                     -self.height_bias_limit, self.height_bias_limit), 0.0)
            goal = goal + self.height_bias[:, None] * [0.0, 0.0, 1.0]
        error = goal - hand_pos
        distance = np.linalg.norm(error, axis=-1)

        desired = matrix_to_quat(yaw_matrix(yaw) @ self.hands[h].top_down)
        rotation_error = quat_to_axis_angle(quat_multiply(desired, quat_conjugate(hand_quat)))
        rotation_distance = np.linalg.norm(rotation_error, axis=-1)
        aligned = rotation_distance < 0.15

        # Phase transitions, evaluated on this step's measurements.
        new = phase.copy()
        new[(phase == self.APPROACH) & (distance < 0.015) & aligned] = self.DESCEND
        new[(phase == self.DESCEND) & ((distance < self.descend_tolerance) | (timer > self.descend_timeout))] = self.CLOSE
        close_steps = self.physical_close_steps if self.physical else self.close_steps
        new[(phase == self.CLOSE) & grasped & (timer > close_steps)] = self.LIFT
        new[(phase == self.CLOSE) & ~grasped & (timer > max(self.grasp_wait, close_steps))] = self.APPROACH
        new[(phase == self.LIFT) & (distance < 0.02)] = self.CARRY
        new[(phase == self.CARRY) & (distance < 0.02) & (rotation_distance < self.carry_alignment)] = self.LOWER
        if self.insert_height > 0:
            ready = self.ready_to_insert(obs, distance, rotation_error)
            new[(phase == self.LOWER) & (ready | (timer > self.lower_timeout))] = self.INSERT
            new[(phase == self.INSERT) & ((distance < self.insert_tolerance) | (timer > self.insert_timeout))] = self.RELEASE
        else:
            new[(phase == self.LOWER) & ((distance < self.lower_tolerance) | (timer > self.lower_timeout))] = self.RELEASE
        new[(phase == self.RELEASE) & (timer > 8)] = self.RETREAT
        if self.physical:
            lost = np.linalg.norm(item - hand_pos, axis=-1) > self.drop_distance
        else:
            lost = ~grasped
        dropped = ((phase == self.LIFT) | (phase == self.CARRY)) & lost
        new[dropped] = self.APPROACH
        timer[new != phase] = 0
        self.phase = new

        # Bounded speeds near the object and while inserting, so that a small part is met gently.
        speed = np.full(n, self.max_speed)
        speed = np.where((phase == self.DESCEND) | (phase == self.CLOSE), np.minimum(speed, self.descend_speed), speed)
        if self.physical:  # a grip starts the lift gently: fingers hold what they are not jerked out of
            speed = np.where(phase == self.LIFT, np.minimum(speed, self.physical_lift_speed), speed)
        speed = np.where(phase == self.INSERT, np.minimum(speed, self.insert_speed), speed)
        limit = np.minimum(speed / self.ik.translation_scale, 1.0)[:, None]
        translation = np.clip(self.gain * error / self.ik.translation_scale, -limit, limit)
        action = np.zeros((n, 2, 7))
        action[:, h, :3] = translation
        action[:, h, 3:6] = np.clip(self.gain * rotation_error / self.ik.rotation_scale, -1, 1)
        action[:, h, 6] = grip
        action[:, 1 - h, 6] = -1.0
        return action.reshape(n, -1).astype(np.float32)


class BreadPickPlaceExpert(TopDownPickPlaceExpert):
    """Presses the palm on top of the roll with the fingers across it, and drops it into the basket."""

    object_key = "bread"
    target_key = "basket"
    surface_height = bread_scene.TABLE_HEIGHT
    place_height = 0.085  # above the table
    palm_press = 0.004  # assisted grasp: how far below the roll's top the palm's face is sent (m)
    # Onto the roll at no more than 1 cm per step (0.5 m/s): a hand that strikes a light roll throws it.
    descend_speed = 0.01
    palm_clearance = 0.004  # physical grasp: the palm's face above the roll's top as the fingers close (m)
    physical_descend_speed = 0.005  # physical grasp: m per control step onto the roll, so the palm does not strike it

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.physical:
            self.descend_speed = self.physical_descend_speed

    def grasp_yaw(self, obs):
        # Fingers wrap across the roll: turn the hand so they point perpendicular to its axis.
        axis = quat_to_matrix(obs["bread_quat"])[..., :, 2]
        yaw = np.arctan2(axis[..., 1], axis[..., 0]) + np.pi / 2
        yaw = (yaw + np.pi / 2) % np.pi - np.pi / 2
        return np.clip(yaw, -0.7, 0.7)

    def grasp_point(self, obs, yaw):
        # Lying roll: its height above the table is its radius.
        bread = obs["bread_pos"]
        radius = bread[:, 2] - (self.surface_height - self.base_position[2])
        hand = self.hands[self.hand]
        if not self.physical:
            # Stop with the palm just on top of it; the weld holds it.
            return bread + np.stack([np.zeros_like(radius), np.zeros_like(radius),
                                     np.maximum(radius - hand.palm_to_site, 0.0) - self.palm_press], -1)
        site_height = radius + self.palm_clearance - hand.palm_to_site  # above the roll's axis
        if self.pinch is not None:
            # Thumb and fingers close on the roll from both sides (humanoid43 revision 3): the palm's face just above
            # it, the roll's axis where the tips meet on something as wide as the roll.
            _, midpoint = self.pinch.at_gap(2.0 * (radius + hand.fingertip_radius))
            offset = (yaw_matrix(yaw) @ hand.top_down @ midpoint[..., None])[..., 0]
            return bread - offset * [1.0, 1.0, 0.0] + site_height[:, None] * [0.0, 0.0, 1.0]
        # A wrap from above: the palm's face just above the roll, set forward so that the fingers join the palm
        # right over its far side and curl down past it, below its axis, while the thumb (humanoid43 revision 2)
        # swings under the palm against its near side.
        ahead = radius + hand.fingertip_radius - hand.finger_base
        forward = yaw_matrix(yaw)[..., :, 0]  # where the fingers point
        return bread + ahead[:, None] * forward + site_height[:, None] * [0.0, 0.0, 1.0]

    def place_point(self, obs, hand_pos, target):
        point = target * [1, 1, 0] + [0, 0, self.surface_height - self.base_position[2] + self.place_height]
        if self.physical:
            # Fingers hold the roll ahead of the grasp site: bring the roll, not the site, over the basket.
            point = point + (hand_pos - obs["bread_pos"]) * [1, 1, 0]
        return point


class Assembly3CExpert(TopDownPickPlaceExpert):
    """Pins the chip under the fingertips, turns it to the socket while carrying, centres it a
    centimetre above the socket, lowers it slowly and lets go just above its seat.

    The hand is much larger than the chip: fully curled, the fingertips end ``fingertip_reach``
    in front of the grasp site and ``fingertip_depth`` below it (the robot's hand, measured by
    physics/hand_geometry.py), so the site stops behind and above the chip and the closing
    fingers come down onto its top face.
    Carried that way the chip is the lowest thing on the hand.
    """

    object_key = "chip"
    target_key = "socket"
    surface_height = assembly_scene.TABLE_HEIGHT
    hover_height = 0.05
    carry_height = 0.10
    fingertip_press = 0.001  # how far the curled fingertips would reach into the chip's top face
    release_gap = 0.0015  # the chip's underside above its seat when the hand opens
    # Once welded, the fingers relax to just past half-closed, and letting go stops them at half-closed:
    # fingers that snap open swing the light wrist (reaction torque) and the chip with it.
    hold_grip = 0.02
    release_grip = 0.0
    carry_alignment = 0.05
    gain = 0.15
    max_speed = 0.008
    descend_speed = 0.003
    descend_tolerance = 0.002
    descend_timeout = 40
    insert_height = 0.012
    insert_speed = 0.001
    insert_tolerance = 0.001
    lower_timeout = 80
    seat_alignment = 0.0008  # m, horizontal
    yaw_alignment = np.deg2rad(1.5)

    # Under grasp="physical" with a pinch (humanoid43 revision 3): the hand comes down pre-shaped, tips just wider
    # than the chip and on the tray floor, and pinches the chip by two opposite edges, following the tips down as
    # they rise; it lets go with the chip's underside over the socket walls' tops (the tips rest on them), opening
    # the tips ``pinch_release_opening`` apart.
    pinch_preshape = True
    physical_close_ramp = 120  # slow enough for the hand to follow the tips down as they rise
    pinch_release_gap = assembly_scene.SOCKET_WALL_HEIGHT + 0.0005
    pinch_release_opening = 0.008
    # Pre-shaped this much wider than the chip (m): the tips rise as they close, so they are set down close to its
    # edges, with room for the arm's error, and rise only a millimetre or two before they meet them.
    pinch_preshape_margin = 0.012
    # Closed to tips this much closer than the chip is wide (m), not to a full fist: a gentle squeeze. A 10 g chip
    # needs a tenth of a newton; a full fist presses newtons, which the numpy engine's contacts on so light a part
    # (as stiff as its mass allows) let a tip sink through until it rides over the edge.
    pinch_squeeze = 0.004
    # The tips close just over the tray floor: tips that ride up meet the chip's top edge, squeezing it down and
    # out instead of holding it, and tips set down 0.5 mm over it (the arm follows them down a millimetre or two
    # late) pressed the floor: on pybullet the 2 cm part then slipped out at the lift, was dragged 3 cm and
    # retried (traced, seed 10), 22 of 100 times. At 1.5 mm: 1 of 100, and the chip 1 of 100 instead of 5.
    tip_clearance = 0.0015

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.release_point = np.zeros((self.num_envs, 3))
        if self.pinch is not None:
            self.close_ramp, self.release_gap = self.physical_close_ramp, self.pinch_release_gap
            # Lift once the command has reached the full grip, and the squeeze with it, from the lowest command a
            # pre-shape can start at (the tips at their deepest; grip_commands' pre-shapes are all above it).
            lowest = self.pinch.deepest_command(self.hands[self.hand].palm_normal)
            self.physical_close_steps = int(np.ceil((self.grip - lowest) * self.close_ramp / 2)) + 4
            self.grasp_wait = max(self.grasp_wait, self.physical_close_steps + 8)

    def grasp_yaw(self, obs):
        if self.pinch is not None:  # square to the chip, so that the tips close on two opposite edges
            return -self._yaw_to_socket(obs)
        # Split the turn the chip needs between the pick and the carry, so neither goes far.
        return -0.5 * self._yaw_to_socket(obs)

    def _pinch_gap(self, obs):
        """The tips' centres' distance on the chip's edges (n,)."""
        return 2.0 * (obs["chip_size"][:, 0] + self.hands[self.hand].fingertip_radius)

    def grip_commands(self, obs):
        if self.pinch is None:
            return super().grip_commands(obs)
        gap = self._pinch_gap(obs)
        squeeze = self.pinch.at_gap(gap - self.pinch_squeeze)[0]
        return (self.pinch.at_gap(gap + self.pinch_preshape_margin)[0], squeeze, squeeze,
                self.pinch.at_gap(gap + self.pinch_release_opening)[0])

    def _yaw_to_socket(self, obs):
        # The socket's yaw relative to the chip: the turn that seats it, folded to the nearest quarter turn.
        return -assembly_scene.square_yaw_error(obs["chip_quat"], obs["socket_quat"])

    def grasp_point(self, obs, yaw):
        chip, half_height = obs["chip_pos"], obs["chip_size"][:, 2]
        fingers = self.hands[self.hand]
        if self.pinch is not None:
            tray = chip[:, 2] - half_height
            return self.pinch_point(obs, yaw, chip, tray + fingers.fingertip_radius + self.tip_clearance,
                                    self._pinch_gap(obs))
        behind = yaw_matrix(yaw) @ np.array([fingers.fingertip_reach, 0.0, 0.0])
        above = half_height + fingers.fingertip_depth - self.fingertip_press
        return chip - behind + above[:, None] * [0.0, 0.0, 1.0]

    def place_point(self, obs, hand_pos, target):
        # Servo the chip, not the hand: wherever it sits in the hand, it goes over the seat. Once
        # let go the chip no longer tells where the hand is, so the last point measured while held stays.
        seat = obs["socket_pos"] + (obs["chip_size"][:, 2] + self.release_gap)[:, None] * [0.0, 0.0, 1.0]
        held = obs["grasped"][:, self.hand, None] > 0.5
        self.release_point = np.where(held, hand_pos + seat - obs["chip_pos"], self.release_point)
        return self.release_point

    def place_yaw(self, obs, hand_quat):
        return top_down_yaw(hand_quat, self.hands[self.hand].top_down) + self._yaw_to_socket(obs)

    def ready_to_insert(self, obs, distance, rotation_error):
        centred = np.linalg.norm(obs["chip_to_seat"][:, :2], axis=-1) < self.seat_alignment
        turned = np.abs(self._yaw_to_socket(obs)) < self.yaw_alignment
        return centred & turned & (distance < 0.003)
