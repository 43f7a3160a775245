"""A hand's shape as experts need it, measured from the robot's URDF and hand spec, never assumed.

A scripted expert that grasps from above must know which way the palm faces and the fingers
point (vendors' palm frames differ), how far the palm's surface is from the grasp site, and
where the curled fingertips end. :func:`measure_hand` reads these off the hand's collision
spheres (physics/contacts.py ``robot_spheres``, the shapes both engines collide) posed by the
forward kinematics at the spec's open and closed finger positions, all in the palm frame:

- the palm normal is the palm's thinnest direction (the least principal axis of its sphere centres: a palm is
  a plate), turned towards the grasp site (the site sits off the palm's inner face, in the grasp volume);
- the finger axis points from the palm to the open fingertips, across the normal; the thumb is the
  tip that reaches less than half as far along it as the longest finger, and is left out;
- a fingertip is the sphere of a finger's last link farthest from that link's joint;
- a pinch (:class:`Pinch`) is where the thumb tip and the fingertips meet as the grasp command closes the hand,
  if they do at one depth: a hand whose thumb ends above its curled fingers (humanoid43 revision 2) has none.

Axes within :data:`SNAP_ANGLE` of a palm-frame axis are snapped to it: URDF palm frames are
drawn along the palm, so sphere-cover noise does not tilt an expert's hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..robots import RobotDescription
from .contacts import robot_spheres
from .model import forward_kinematics, load_model
from .rotations import quat_to_matrix

#: Largest angle (rad) between a measured axis and a palm-frame axis at which the axis is snapped to it.
SNAP_ANGLE = np.deg2rad(15.0)


#: Grasp commands at which a hand's closing path is sampled for its pinch.
PINCH_SAMPLES = 201
#: A pinch is a stretch of the closing path along which thumb tip and fingertips stay within this many of their
#: radii of one depth below the palm, and close on each other along the finger axis.
PINCH_DEPTH_TOLERANCE = 0.5
#: ... over at least this range of gaps (m): a path whose tips only cross at one depth in passing pinches nothing.
PINCH_MIN_SPAN = 0.01


def _interp_rows(x, xs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``rows`` (K, 3) sampled at increasing ``xs`` (K,), linearly interpolated at ``x`` (...): (..., 3)."""
    x = np.asarray(x, float)
    return np.stack([np.interp(x, xs, rows[:, axis]) for axis in range(rows.shape[1])], -1)


@dataclass(frozen=True)
class Pinch:
    """Thumb tip against fingertips, measured along the hand's closing path, in the palm frame (m).

    commands: grasp commands (K,), increasing, over the stretch where the tips close on each other at one depth;
    gaps: the distance between the thumb tip's centre and the fingertips' (their mean) along the finger axis (K,),
    decreasing; midpoints: the point half-way between them, relative to the grasp site (K, 3); spans: from the
    thumb tip's centre to the fingertips' (K, 3); moves_thumb: which of the hand's finger joints (F,) move the
    thumb tip (the others move the fingertips)."""

    commands: np.ndarray
    gaps: np.ndarray
    midpoints: np.ndarray
    spans: np.ndarray
    moves_thumb: np.ndarray

    def at_gap(self, gap) -> tuple[np.ndarray, np.ndarray]:
        """The grasp command (...) at which the tips' centres are ``gap`` (...) apart, and their midpoint relative to
        the site there (..., 3). A gap outside the pinch's range is clipped to it: a part too wide or too narrow to
        pinch is met at the range's end."""
        gap = np.asarray(gap, float)
        order = np.argsort(self.gaps)  # np.interp wants increasing abscissae
        return np.interp(gap, self.gaps[order], self.commands[order]), _interp_rows(gap, self.gaps[order],
                                                                                      self.midpoints[order])

    def midpoint_at(self, command) -> np.ndarray:
        """The tips' midpoint relative to the site (..., 3) at grasp ``command`` (...), clipped to the pinch's range."""
        return _interp_rows(command, self.commands, self.midpoints)

    def tips_at(self, command, finger_command=None) -> tuple[np.ndarray, np.ndarray]:
        """The thumb tip's and the fingertips' centres relative to the site (..., 3) each, at grasp ``command``, or
        with the thumb at ``command`` and the fingers at ``finger_command`` (thumb and fingers lag differently)."""
        finger_command = command if finger_command is None else finger_command
        thumb = _interp_rows(command, self.commands, self.midpoints) - _interp_rows(command, self.commands,
                                                                                    self.spans) / 2
        fingers = (_interp_rows(finger_command, self.commands, self.midpoints)
                   + _interp_rows(finger_command, self.commands, self.spans) / 2)
        return thumb, fingers

    def deepest_command(self, normal: np.ndarray) -> float:
        """The command at which the tips reach deepest along the palm ``normal``: a hand pre-shaped there, set down
        with its tips just over a surface, closes them along it only by coming down as they rise."""
        return float(self.commands[np.argmax(self.midpoints @ normal)])


@dataclass(frozen=True)
class HandGeometry:
    """One hand, in its palm frame (m). ``top_down``: the palm frame's axes as columns in the world for a grasp
    from above, palm facing down and fingers pointing forward (+x); the grasp-site orientation an expert asks for.

    palm_normal, finger_axis: unit vectors. palm_to_site: the grasp site's distance from the palm's inner face,
    along the normal. fingertip_reach: the closed fingertips' centres ahead of the site along the finger axis;
    fingertip_depth: how far beyond the site, along the normal, the closed fingertips' surfaces reach (mean over
    the fingers, thumb left out). fingertip_radius: their spheres' mean radius. open_reach: the open fingertips'
    centres ahead of the site. finger_base: where the fingers join the palm (their first joints), ahead of the
    site. pinch: where thumb and fingertips meet (None: they do not)."""

    palm_normal: np.ndarray
    finger_axis: np.ndarray
    top_down: np.ndarray
    palm_to_site: float
    fingertip_reach: float
    fingertip_depth: float
    fingertip_radius: float
    open_reach: float
    finger_base: float
    pinch: Pinch | None = None


def _snap(direction: np.ndarray) -> np.ndarray:
    direction = direction / np.linalg.norm(direction)
    axis = int(np.argmax(np.abs(direction)))
    if np.arccos(min(1.0, abs(direction[axis]))) < SNAP_ANGLE:
        snapped = np.zeros(3)
        snapped[axis] = np.sign(direction[axis])
        return snapped
    return direction


def _tips(model, spheres, poses, palm, leaves):
    """Each leaf link's fingertip sphere (centre in the palm frame, radius), and where its finger joins the palm
    (the origin of the chain's first link below the palm, in the palm frame)."""
    rotation, origin = quat_to_matrix(poses[palm, 3:]), poses[palm, :3]
    centres, radii, bases = [], [], []
    for leaf in leaves:
        mine = spheres.body == leaf
        if not mine.any():
            continue
        world = poses[leaf, :3] + spheres.center[mine] @ quat_to_matrix(poses[leaf, 3:]).T
        local = (world - origin) @ rotation
        tip = int(np.argmax(np.linalg.norm(spheres.center[mine], axis=1)))
        centres.append(local[tip])
        radii.append(spheres.radius[mine][tip])
        base = leaf
        while model.parent[base] != palm:
            base = model.parent[base]
        bases.append((poses[base, :3] - origin) @ rotation)
    return np.array(centres), np.array(radii), np.array(bases)


_CACHE: dict = {}


def measure_hand(robot: RobotDescription, side: str) -> HandGeometry:
    """The :class:`HandGeometry` of ``robot.hands[side]`` (cached per URDF, hand spec and home posture)."""
    if side not in robot.hands:
        raise KeyError(f"robot {robot.name!r} has no {side!r} hand; it has {sorted(robot.hands)}")
    hand = robot.hands[side]
    key = (str(robot.urdf_path), side, hand, robot.home_posture.tobytes())
    if key not in _CACHE:
        _CACHE[key] = _measure(robot, hand)
    return _CACHE[key]


def _measure(robot: RobotDescription, hand) -> HandGeometry:
    model = load_model(robot, fixed_base=True)
    palm = model.link_index(hand.palm_link)
    below_palm = [link for link in range(model.num_links) if model.ancestors[link, palm] and link != palm]
    leaves = [link for link in below_palm if not np.any(model.parent == link)]
    spheres = robot_spheres(robot.urdf_path, model.link_names, links=[model.link_names[i] for i in (palm, *leaves)])
    site = np.asarray(hand.grasp_site, float)
    fingers = robot.joint_indices(hand.finger_joints)
    tips = {}
    for name, targets in (("open", hand.finger_open), ("closed", hand.finger_closed)):
        q = robot.home_posture.copy()
        q[fingers] = targets
        tips[name] = _tips(model, spheres, forward_kinematics(model, q[None])[0], palm, leaves)
    if not len(tips["open"][0]):
        raise ValueError(f"hand {hand.palm_link!r}: its fingers' last links have no collision shapes to measure")

    on_palm = spheres.body == palm
    if not on_palm.any():
        raise ValueError(f"hand {hand.palm_link!r}: the palm link has no collision shape to measure")
    centres = spheres.center[on_palm]
    _, axes = np.linalg.eigh(np.cov(centres.T, bias=True)) if len(centres) > 2 else (None, None)
    if axes is None:
        raise ValueError(f"hand {hand.palm_link!r}: the palm's collision shape is too small to find its plane")
    normal = axes[:, 0] * np.sign((site - centres.mean(axis=0)) @ axes[:, 0])
    normal = _snap(normal)
    # The palm's inner face: its spheres' surfaces farthest along the normal.
    face = (spheres.center[on_palm] @ normal + spheres.radius[on_palm]).max()

    def across_normal(vectors):
        return vectors - np.outer(vectors @ normal, normal)

    open_centres, _, bases = tips["open"]
    axis = _snap(across_normal(open_centres - site).mean(axis=0))
    reach = (open_centres - site) @ axis
    is_finger = reach >= 0.5 * reach.max()  # the thumb reaches less far
    axis = _snap(across_normal(open_centres[is_finger] - site).mean(axis=0))
    closed_centres, closed_radii, _ = tips["closed"]
    closed_centres, closed_radii = closed_centres[is_finger], closed_radii[is_finger]

    pinch = _pinch(model, spheres, robot, hand, palm, leaves, site, axis, normal, is_finger)
    # Palm frame -> world for palm down (normal -> -z), fingers forward (axis -> +x): side = axis x normal -> +y.
    palm_basis = np.stack([axis, np.cross(axis, normal), normal], axis=1)
    world_basis = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]]).T
    return HandGeometry(
        palm_normal=normal, finger_axis=axis, top_down=world_basis @ palm_basis.T,
        palm_to_site=float(site @ normal - face),
        fingertip_reach=float(((closed_centres - site) @ axis).mean()),
        fingertip_depth=float(((closed_centres - site) @ normal + closed_radii).mean()),
        fingertip_radius=float(closed_radii.mean()),
        open_reach=float(((open_centres[is_finger] - site) @ axis).mean()),
        finger_base=float(((bases[is_finger] - site) @ axis).mean()),
        pinch=pinch,
    )


def _pinch(model, spheres, robot, hand, palm, leaves, site, axis, normal, is_finger) -> Pinch | None:
    """The hand's :class:`Pinch`, from its tips posed along the whole closing path (None without a thumb, or where
    thumb tip and fingertips never close on each other at one depth)."""
    if is_finger.all():
        return None
    commands = np.linspace(-1.0, 1.0, PINCH_SAMPLES)
    q = np.repeat(robot.home_posture[None], PINCH_SAMPLES, axis=0)
    q[:, robot.joint_indices(hand.finger_joints)] = np.stack([hand.finger_targets(c) for c in commands])
    poses = forward_kinematics(model, q)
    tips = [_tips(model, spheres, pose, palm, leaves) for pose in poses]
    centres = np.stack([centre for centre, _, _ in tips])  # (K, leaves, 3)
    radius = tips[0][1].mean()
    thumb = centres[:, ~is_finger].mean(axis=1)
    fingers = centres[:, is_finger].mean(axis=1)
    gaps = (fingers - thumb) @ axis
    level = np.abs((fingers - thumb) @ normal) <= PINCH_DEPTH_TOLERANCE * radius
    closing = np.diff(gaps, prepend=np.inf) < 0
    usable = level & closing & (gaps > 0)
    if usable.sum() < 2:
        return None
    # The longest run of usable samples: one stretch of the path, its gaps decreasing.
    runs = np.split(np.arange(PINCH_SAMPLES), np.flatnonzero(np.diff(usable.astype(int))) + 1)
    run = max((r for r in runs if usable[r[0]]), key=len)
    if gaps[run[0]] - gaps[run[-1]] < PINCH_MIN_SPAN:
        return None
    thumb_links = [leaf for leaf, finger in zip(leaves, is_finger) if not finger]
    joint_links = {model.joint_names[j]: link for link, j in enumerate(model.joint_of_link) if j >= 0}
    moves_thumb = np.array([any(model.ancestors[leaf, joint_links[name]] for leaf in thumb_links)
                            for name in hand.finger_joints])
    return Pinch(commands=commands[run], gaps=gaps[run], midpoints=(fingers[run] + thumb[run]) / 2 - site,
                 spans=fingers[run] - thumb[run], moves_thumb=moves_thumb)
